"""Helpers for the news tests: a signed-in supporter, subscribers, the digest run and a transport
that records it, mail links."""

from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

from flask import current_app

from app.accounts.models import Supporter
from app.accounts.services import get_or_create_supporter
from app.db import expect_writes, utcnow
from app.extensions import db
from app.mail import transport_from_config
from app.news.digest import DigestSettings, send_digest
from app.news.models import NewsSubscriber, SubscriberStatus
from app.news.services import Signer
from tests.support.accounts import open_sign_in
from tests.support.flow import hidden_value

# The shipped sample feed's newest story; the digest tests pretend it is two hours later.
FEED_NEWEST = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
DIGEST_NOW = FEED_NEWEST + timedelta(hours=2)


def verified_supporter(email: str = "reader@example.org", name: str = "Noa Levi") -> Supporter:
    """A supporter whose account can be signed in as (a proven address)."""
    supporter = get_or_create_supporter(email, name)
    if hasattr(supporter, "email_verified_at") and supporter.email_verified_at is None:
        supporter.email_verified_at = utcnow()
    db.session.commit()
    return supporter


def sign_in(client, supporter: Supporter) -> None:
    """Flask-Login's session keys, set as its own ``login_user`` would, and the sign-in opened on
    the server: the next request from this client is the supporter's."""
    login_id = open_sign_in(supporter)
    with client.session_transaction() as session:
        session["_user_id"] = login_id
        session["_fresh"] = True


def subscribe(client, email="Noa@Example.org", consent=True, **fields):
    page = client.get("/news/subscribe")
    assert page.status_code == 200
    data = {"csrf_token": hidden_value(page.get_data(as_text=True), "csrf_token"),
            "email": email, "source": "subscribe"}
    if consent:
        data["consent"] = "y"
    data.update(fields)
    return client.post("/news/subscribe", data=data)


def confirmed_subscriber(email: str, supporter: Supporter | None = None) -> NewsSubscriber:
    now = utcnow()
    subscriber = NewsSubscriber(
        email=email.lower(), supporter_id=supporter.id if supporter else None,
        status=SubscriberStatus.CONFIRMED, consent_version="test", consented_at=now,
        consent_source="test", confirmed_at=now)
    db.session.add(subscriber)
    db.session.commit()
    return subscriber


def public_link():
    """Absolute links on PUBLIC_URL, as the command line builds them (``app.urls``)."""
    from app.urls import external_url

    return external_url


def digest(*, now: datetime = DIGEST_NOW, transport=None, **kwargs):
    """``send_digest`` wired as ``flask news send-digest`` wires it (its transactions taking
    SQLite's write lock up front)."""
    expect_writes()
    link = public_link()
    config = current_app.config
    return send_digest(
        now=now, transport=transport or transport_from_config(config),
        signer=Signer(config["SECRET_KEY"]), settings=DigestSettings.from_config(config),
        unsubscribe_url=lambda token: link("news.unsubscribe_page", token=token),
        manage_url=link("news.my_news"), subscribe_url=link("news.subscribe_page"),
        give_url=link("campaigns.home"), **kwargs)


def body(message: EmailMessage, kind: str = "plain") -> str:
    """A part's text, with the CRLF line ends of mail made plain newlines."""
    return message.get_body((kind,)).get_content().replace("\r\n", "\n")


def path_of(url: str) -> str:
    """The path of a link from an email (the host differs between mail and test client)."""
    return re.sub(r"^https?://[^/]+", "", url)


def confirm_link(message: EmailMessage) -> str:
    match = re.search(r"https?://\S+/news/confirm/[\w.-]+", body(message))
    assert match, body(message)
    return path_of(match.group(0))


def unsubscribe_link(message: EmailMessage) -> str:
    header = message["List-Unsubscribe"]
    assert header.startswith("<") and header.endswith(">"), header
    return path_of(header[1:-1])


class Recorder:
    """A transport that keeps what it is handed; ``fail`` decides per message what to raise."""

    def __init__(self, fail=None):
        self.sent: list[tuple[str, bytes]] = []
        self.sessions = 0
        self.fail = fail

    @contextmanager
    def connection(self):
        self.sessions += 1
        yield self

    def send(self, recipient: str, message: bytes) -> None:
        if self.fail:
            error = self.fail(recipient, len(self.sent))
            if error:
                raise error
        self.sent.append((recipient, message))

    def messages(self):
        return [message_from_bytes(raw, policy=policy.default) for _, raw in self.sent]

    def recipients(self) -> list[str]:
        return [r for r, _ in self.sent]
