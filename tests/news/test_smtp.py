"""The news mail through a real SMTP server on loopback (aiosmtpd), not only the outbox."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import db
from app.news.models import DigestSend, SendStatus
from tests.support.flow import hidden_value
from tests.support.news import DIGEST_NOW, confirmed_subscriber
from tests.support.pgcluster import free_port
from tests.support.smtp import smtp_server


@pytest.fixture
def smtp(request):
    with smtp_server(**getattr(request, "param", {})) as served:
        yield served


@pytest.fixture
def smtp_app(make_app, database_url, app, smtp):
    controller, _ = smtp
    return make_app(database_url, MAIL_URL=f"smtp://127.0.0.1:{controller.port}")


def test_confirmation_email_over_smtp(smtp_app, smtp, outbox):
    _, inbox = smtp
    with smtp_app.app_context():
        client = smtp_app.test_client()
        page = client.get("/news/subscribe").get_data(as_text=True)
        response = client.post("/news/subscribe", data={
            "csrf_token": hidden_value(page, "csrf_token"), "email": "noa@example.org",
            "consent": "y", "source": "subscribe"})
        assert response.status_code == 303
    [envelope] = inbox.messages
    assert envelope.rcpt_tos == ["noa@example.org"]
    assert envelope.mail_from == "giving@levantwire.example"  # MAIL_FROM is the envelope sender
    message = inbox.parsed()[0]
    assert message["From"] == "Levant Wire News <news@levantwire.example>"
    assert message["List-Unsubscribe"].startswith("<http://donate.test/news/unsubscribe/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert outbox() == []


def test_digest_over_smtp_one_session_per_batch(smtp_app, smtp, stories):
    _, inbox = smtp
    with smtp_app.app_context():
        for i in range(5):
            confirmed_subscriber(f"reader{i}@example.org")
        result = smtp_app.test_cli_runner().invoke(
            args=["news", "send-digest", "--now", DIGEST_NOW.isoformat(), "--batch", "2"])
        assert result.exit_code == 0, result.output
        assert "sent 5, failed 0" in result.output
    assert sorted(r for e in inbox.messages for r in e.rcpt_tos) == [
        f"reader{i}@example.org" for i in range(5)]
    assert inbox.sessions == 3  # batches of 2, 2 and 1
    for message in inbox.parsed():
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["List-Unsubscribe"].startswith(
            f"<{smtp_app.config['PUBLIC_URL']}/news/unsubscribe/")
        assert "Unsubscribe with one click" in message.get_body(("plain",)).get_content()


@pytest.mark.parametrize("smtp", [{"refuse": {"reader1@example.org"}}], indirect=True)
def test_digest_over_smtp_with_a_refused_recipient(smtp_app, smtp, stories):
    _, inbox = smtp
    with smtp_app.app_context():
        for i in range(3):
            confirmed_subscriber(f"reader{i}@example.org")
        result = smtp_app.test_cli_runner().invoke(
            args=["news", "send-digest", "--now", DIGEST_NOW.isoformat()])
        assert result.exit_code == 1  # something failed: say so to cron
        assert "sent 2, failed 1" in result.output
        [failed] = db.session.scalars(select(DigestSend).where(
            DigestSend.status == SendStatus.FAILED)).all()
        assert "550" in failed.last_error and "No such user" in failed.last_error
    assert sorted(r for e in inbox.messages for r in e.rcpt_tos) == [
        "reader0@example.org", "reader2@example.org"]


def test_digest_with_the_smtp_server_down(make_app, database_url, app, stories):
    down = make_app(database_url, MAIL_URL=f"smtp://127.0.0.1:{free_port()}")
    with down.app_context():
        confirmed_subscriber("reader@example.org")
        result = down.test_cli_runner().invoke(
            args=["news", "send-digest", "--now", DIGEST_NOW.isoformat()])
        assert result.exit_code == 1
        assert "stopped: the mail transport failed: ConnectionRefusedError" in result.output
        [row] = db.session.scalars(select(DigestSend)).all()
        assert row.status is SendStatus.FAILED  # retried by the next run
