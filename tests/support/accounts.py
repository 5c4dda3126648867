"""Helpers for the account tests: accounts in a given state, forms with their CSRF token, and
the links in the emails we sent."""

from __future__ import annotations

import re
from email.message import EmailMessage
from urllib.parse import urlsplit

from flask import current_app, g
from flask.testing import FlaskClient

from app.accounts.auth import session_max_age
from app.accounts.passwords import Hasher
from app.accounts.services import get_or_create_supporter
from app.accounts.sessions import open_session
from app.db import utcnow
from app.extensions import db
from tests.support.flow import hidden_value

PASSWORD = "correct horse battery staple"


class RequestScopedClient(FlaskClient):
    """A test client with a fresh ``g`` for every request, as in production.

    The ``app`` fixture keeps an application context open for the whole test, and Flask reuses
    it for the test client's requests, so ``g`` would carry over from one request to the next.
    Flask-Login keeps the signed-in user there (and the staff pages their roles), Flask-WTF the
    CSRF token: a second request would see the first one's user even after its cookie is gone.
    """

    def open(self, *args, **kwargs):
        vars(g).clear()
        return super().open(*args, **kwargs)


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
