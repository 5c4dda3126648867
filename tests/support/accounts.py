"""Helpers for the account tests: accounts in a given state, forms with their CSRF token, and
the links in the emails we sent."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from email.message import EmailMessage
from urllib.parse import urlsplit

from flask import current_app

from app.accounts.auth import session_max_age
from app.accounts.passwords import Hasher
from app.accounts.services import get_or_create_supporter
from app.accounts.sessions import open_session
from app.db import utcnow
from app.extensions import db
from app.giving.models import Gift
from app.giving.services import GivingRules, record_gift_payment, start_gift
from tests.factories import gift_request
from tests.support.flow import hidden_value

PASSWORD = "correct horse battery staple"


def make_account(email: str = "noa@example.org", *, password: str | None = PASSWORD,
                 verified: bool = True, name: str = "Noa Levi"):
    """A supporter with this password (None: a guest's account) and proven address or not,
    committed like real data (a savepoint in the test's transaction)."""
    supporter = get_or_create_supporter(email, name)
    if password is not None:
        supporter.password_hash = Hasher.from_config(current_app.config).hash(password)
    supporter.email_verified_at = utcnow() if verified else None
    db.session.commit()
    return supporter


def open_sign_in(supporter) -> str:
    """A sign-in opened on the server for ``supporter``, committed, as signing in opens one:
    the id Flask-Login keeps in the session cookie (for tests that skip the sign-in page)."""
    login_id = open_session(supporter, now=utcnow(), max_age=session_max_age(current_app.config))
    db.session.commit()
    return login_id


def paid_gift(campaign, email: str = "noa@example.org", *, amount: int = 2500,
              when: datetime | None = None, **fields) -> Gift:
    """A gift paid in the ledger at ``when`` (default now), through the giving services."""
    rules = GivingRules.from_config(current_app.config)
    gift = start_gift(campaign, gift_request(email=email, amount=amount,
                                             currency=campaign.currency, **fields),
                      rules=rules, now=utcnow())
    db.session.flush()
    record_gift_payment(gift, provider="sandbox", provider_id=f"pi_test_{uuid.uuid4().hex}",
                        amount=gift.total, currency=gift.currency,
                        occurred_at=when or utcnow())
    db.session.commit()
    return gift


def csrf_token(client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, (path, page.status_code)
    return hidden_value(page.get_data(as_text=True), "csrf_token")


def post_form(client, path: str, *, page: str | None = None, **data):
    """POST a form as the browser would: with the CSRF token of the page it is on. The answer
    is read in full and closed, as a server sends it, so what the app does once the response
    is out (account mail: ``app.jobs.after_response``) is done when this returns."""
    data.setdefault("csrf_token", csrf_token(client, page or path))
    return client.post(path, data=data, buffered=True)


def sign_in(client, email: str = "noa@example.org", password: str = PASSWORD, **extra):
    response = post_form(client, "/account/signin", email=email, password=password, **extra)
    assert response.status_code == 303, response.get_data(as_text=True)[:3000]
    return response


def text_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def html_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


def link_in(message: EmailMessage, prefix: str) -> str:
    """The path of the one link in the message's text that starts with ``prefix``; the HTML
    part must carry the same link."""
    found = {urlsplit(url).path for url in re.findall(r"https?://\S+", text_of(message))
             if urlsplit(url).path.startswith(prefix)}
    assert len(found) == 1, (prefix, found, text_of(message))
    path = found.pop()
    assert path in html_of(message)
    return path


def mail_to(outbox, address: str) -> list[EmailMessage]:
    return [m for m in outbox() if m["To"] == address]


def flashes(response) -> str:
    html = response.get_data(as_text=True)
    return " ".join(re.findall(r'class="flash[^"]*"[^>]*>([^<]*)<', html))


def sign_out(client):
    response = post_form(client, "/account/signout", page="/account")
    assert response.status_code == 303
    return response
