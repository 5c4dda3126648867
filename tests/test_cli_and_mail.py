"""The command line and mail delivery (outbox folder and a real SMTP server on loopback)."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.utils import parseaddr

import pytest
from sqlalchemy import func, select

from app.campaigns.models import Campaign
from app.campaigns.services import campaign_progress
from app.extensions import db
from app.giving.models import Gift
from app.mail import OutboundEmail, queue_email, ready_to_send
from app.payments.models import Payment
from tests.factories import make_campaign
from tests.support.flow import give
from tests.support.pgcluster import free_port
from tests.support.smtp import smtp_server


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_seed_demo_is_idempotent_and_shows_progress(app):
    # 2 December 2026, 10:00 in New York: the twentieth anniversary is eight days away.
    now = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed-demo", "--now", now.isoformat()])
    assert first.exit_code == 0, first.output
    assert "twenty-years" in first.output
    gifts = count(Gift)
    assert gifts > 500
    second = runner.invoke(args=["seed-demo", "--now", now.isoformat()])
    assert "none (already there)" in second.output
    assert count(Gift) == gifts

    campaigns = {c.slug: c for c in db.session.scalars(select(Campaign))}
    live = {slug for slug, c in campaigns.items() if c.is_live(now)}
    assert live == {"twenty-years", "year-end-2026", "membership-2026"}
    assert campaigns["rosh-hashanah-5787"].has_ended(now)  # September 2026
    assert campaigns["ramadan-1447"].has_ended(now)  # February and March 2026
    assert campaigns["ramadan-1448"].starts_at > now  # scheduled: February 2027
    assert campaigns["year-end-2025"].has_ended(now)
    for slug, campaign in campaigns.items():
        progress = campaign_progress(campaign, now)
        if campaign.starts_at < now:
            assert 0 < progress.raised and progress.donors > 5, slug
        else:
            assert progress.raised == 0, slug
    # A day and a half into its 31: a few percent of its goal, not over it.
    year_end = campaign_progress(campaigns["year-end-2026"], now)
    assert 0 < year_end.raised < year_end.goal * 0.5
    # Totals come from the ledger: the sum of charges equals the sum of paid gifts.
    assert db.session.scalar(select(func.sum(Payment.amount))) == db.session.scalar(
        select(func.sum(Gift.amount)))


def test_seed_demo_adds_gifts_in_bulk(app):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    demo = count(Gift)
    result = runner.invoke(args=["seed-demo", "--gifts", "300"])
    assert result.exit_code == 0, result.output
    assert "added 300 gifts" in result.output
    # The bulk gifts on top of the demo's history, each with one ledger row.
    assert count(Payment) == count(Gift) == demo + 300
    # Sequences (PostgreSQL) moved past the bulk rows: the next gift gets a fresh id.
    make_campaign("after-bulk")


def test_bad_gift_count_is_refused(app):
    result = app.test_cli_runner().invoke(args=["seed-demo", "--gifts", "-5"])
    assert result.exit_code == 2
    assert "-5" in result.output


@pytest.fixture
def smtp():
    with smtp_server() as served:
        yield served


def test_receipt_goes_through_a_real_smtp_server(make_app, database_url, app, smtp,
                                                 outbox):
    controller, inbox = smtp
    smtp_app = make_app(database_url, MAIL_URL=f"smtp://127.0.0.1:{controller.port}")
    with smtp_app.app_context():
        make_campaign("twenty")
        give(smtp_app.test_client(), "twenty", amount="5000")
    [envelope] = inbox.messages
    assert envelope.rcpt_tos == ["noa@example.org"]
    text = envelope.content.decode()
    assert "Subject: Thank you for your gift to A test appeal" in text
    assert "$50.00" in text
    assert outbox() == []  # SMTP replaced the folder
    # Queued without a From (services do not know the sender): the transport names MAIL_FROM,
    # the envelope sender its address.
    message = message_from_bytes(envelope.content, policy=policy.default)
    assert message["From"] == smtp_app.config["MAIL_FROM"]
    assert envelope.mail_from == parseaddr(smtp_app.config["MAIL_FROM"])[1]
    assert message["Message-ID"].endswith("@levantwire.example>")


def test_the_sender_named_at_delivery_is_the_same_at_every_attempt(app):
    queue_email(to="noa@example.org", subject="Hello", template="account/email_changed",
                dedupe_key="t:1", new_email="dana@example.org", deliver_after_commit=False)
    queue_email(to="noa@example.org", subject="Hello", template="account/email_changed",
                dedupe_key="t:2", new_email="dana@example.org", deliver_after_commit=False,
                headers={"From": "Levant Wire News <news@levantwire.example>"})
    first, own = db.session.scalars(select(OutboundEmail).order_by(OutboundEmail.id))
    assert "From:" not in first.message
    sent = ready_to_send(first, "Levant Wire <giving@levantwire.example>")
    assert sent == ready_to_send(first, "Levant Wire <giving@levantwire.example>")
    message = message_from_bytes(sent, policy=policy.default)
    assert message["From"] == "Levant Wire <giving@levantwire.example>"
    assert message["Subject"] == "Hello" and message.get_body(("plain",)) is not None
    assert message["Message-ID"].endswith(f".{first.id}.newsfund@levantwire.example>")
    # A message that names its own sender goes as it is.
    assert ready_to_send(own, "Levant Wire <giving@levantwire.example>") == own.message.encode()


@pytest.mark.parametrize("sender", [
    "Levant Wire <giving@levantwire.example>", "giving@levantwire.example",
    "ليفانت واير <giving@levantwire.example>",
    "Long <giving@" + "a-rather-long-subdomain." * 3 + "example>",  # its Message-ID folded
])
def test_the_lines_a_message_gets_at_delivery_are_what_email_writes(sender):
    """``ready_to_send`` writes the ``From`` and ``Message-ID`` lines without ``email``'s
    objects for each message; they are the lines ``email`` writes for them."""
    from email.message import EmailMessage
    from types import SimpleNamespace


    row = SimpleNamespace(id=4321, created_at=datetime(2026, 12, 4, 21, 0, 5, 123, tzinfo=UTC),
                          message="To: a@example.org\r\nSubject: Hi\r\n\r\nbody\r\n")
    expected = EmailMessage(policy=policy.SMTP)
    expected["From"] = sender
    domain = parseaddr(sender)[1].partition("@")[2]
    expected["Message-ID"] = f"<20261204210005000123.4321.newsfund@{domain}>"
    assert ready_to_send(row, sender) == (expected.as_bytes().rstrip(b"\r\n") + b"\r\n"
                                          + row.message.encode())


def test_mail_outage_loses_no_receipt(make_app, database_url, app, smtp):
    controller, inbox = smtp
    down = make_app(database_url, MAIL_URL=f"smtp://127.0.0.1:{free_port()}")
    with down.app_context():
        make_campaign("twenty")
        paid = give(down.test_client(), "twenty")
        assert paid.status_code == 303  # the donor is not troubled by our mail outage
        email = db.session.scalar(select(OutboundEmail))
        assert email.sent_at is None and "ConnectionRefusedError" in email.last_error
    up = make_app(database_url, MAIL_URL=f"smtp://127.0.0.1:{controller.port}")
    with up.app_context():  # the CLI runs in the app context it finds
        result = up.test_cli_runner().invoke(args=["mail", "send-pending"])
        assert "sent 1, failed 0" in result.output
        assert len(inbox.messages) == 1
        again = up.test_cli_runner().invoke(args=["mail", "send-pending"])
        assert "sent 0, failed 0" in again.output
        assert len(inbox.messages) == 1
