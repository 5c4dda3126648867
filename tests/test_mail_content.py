"""What our emails say (issue 10's polish): the organisation's name at the top of every one,
and the receipt's payment method, frequency and links (on PUBLIC_URL) to its PDF and to the
gift in the donor's account; the refusal of a gift above the online maximum names where to
write. Mail is read from the outbox, and once through a real SMTP server."""

from __future__ import annotations

import re
from datetime import date
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from app import jobs
from app.audit import Actor
from app.db import utcnow
from app.extensions import db
from app.finance.offline import OfflineGift, record_offline_gift
from app.giving.models import Gift, RecurringPlan
from app.payments.models import Payment, PaymentKind
from app.payments.providers import current_provider
from app.templating import org_zone
from tests.factories import make_campaign, refund_gift
from tests.support import stripe_objects as so
from tests.support.accounts import html_of, make_account, post_form, sign_in, text_of
from tests.support.flow import give, submit_gift
from tests.support.smtp import smtp_server
from tests.support.stripe import deliver, serve_charge, stripe_config

PUBLIC_URL = "https://donate.levantwire.example"
TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "email"


@pytest.fixture
def public(app):
    """Links must name PUBLIC_URL, not the host the test client's requests name."""
    app.config["PUBLIC_URL"] = PUBLIC_URL
    app.config["TRUSTED_HOSTS"] = [*app.config["TRUSTED_HOSTS"], "donate.levantwire.example"]
    make_campaign("twenty", title="Twenty years of reporting")
    return app


def receipts(outbox) -> list[EmailMessage]:
    return [m for m in outbox() if m["Subject"].startswith(("Thank you for your gift",
                                                            "Your corrected receipt"))]


def field(message: EmailMessage, name: str) -> str:
    """A line of the text receipt's table: ``  Paid with:     Visa card ending 4242``."""
    match = re.search(rf"^  {name}:[ \t]+([^\r\n]+)", text_of(message), re.M)
    assert match, (name, text_of(message))
    return match.group(1).strip()


def links(message: EmailMessage) -> set[str]:
    return set(re.findall(r"https?://[^\s\"'<>]+", text_of(message) + html_of(message)))


def assert_org_header(message: EmailMessage, org_name: str) -> None:
    """The organisation's name is the text part's first line and the first text of the HTML
    body."""
    assert text_of(message).splitlines()[0] == org_name, text_of(message)[:200]
    body = html_of(message).split("<body", 1)[1].split(">", 1)[1]
    first_text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)).strip()
    assert first_text.startswith(org_name), first_text[:200]


# -- the receipt ------------------------------------------------------------------------------

def test_a_one_time_receipt_names_the_card_the_frequency_and_links_on_public_url(public, client,
                                                                                outbox):
    give(client, "twenty", amount="5000", card="4242 4242 4242 4242")
    [receipt] = receipts(outbox)
    assert_org_header(receipt, "Levant Wire")
    assert field(receipt, "Paid with") == "Visa card ending 4242 (test payment)"
    assert field(receipt, "Frequency") == "One time"
    assert "Visa card ending 4242" in html_of(receipt)
    assert re.search(r">Frequency</td><td>One time<", html_of(receipt))
    number = re.search(r"receipt, number (\d{4}-\d{6})", text_of(receipt)).group(1)
    assert links(receipt) == {f"{PUBLIC_URL}/account/receipts/{number}.pdf",
                              f"{PUBLIC_URL}/account/gifts"}
    # Only the brand and the last four digits were kept, on the ledger's charge.
    charge = db.session.scalar(select(Payment).where(Payment.kind == PaymentKind.CHARGE))
    assert (charge.card_brand, charge.card_last4) == ("visa", "4242")


def test_the_receipts_pdf_link_opens_the_pdf_once_signed_in(public, client, outbox):
    give(client, "twenty", amount="5000")
    [receipt] = receipts(outbox)
    pdf_link = next(link for link in links(receipt) if link.endswith(".pdf"))
    path = pdf_link.removeprefix(PUBLIC_URL)
    assert client.get(path).status_code in (302, 303)  # to sign in first
    make_account("noa@example.org")
    sign_in(client)
    response = client.get(path)
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")


def test_a_monthly_receipt_links_to_the_plan_and_its_renewal_names_the_same_card(
        public, client, outbox):
    give(client, "twenty", amount="2500", frequency="monthly", card="5555 5555 5555 4444")
    plan = db.session.scalar(select(RecurringPlan))
    [first] = receipts(outbox)
    assert field(first, "Frequency") == "Monthly"
    assert field(first, "Paid with") == "Mastercard card ending 4444 (test payment)"
    assert f"{PUBLIC_URL}/account/plans/{plan.id}" in links(first)
    assert "Manage your monthly gift" in html_of(first)

    result = public.test_cli_runner().invoke(
        args=["sandbox", "renew", "--now", plan.next_charge_at.isoformat()])
    assert "renewed 1 plan period(s)" in result.output, result.output
    renewal = receipts(outbox)[-1]
    assert renewal is not first and field(renewal, "Frequency") == "Monthly"
    assert field(renewal, "Paid with") == "Mastercard card ending 4444 (test payment)"
    assert f"{PUBLIC_URL}/account/plans/{plan.id}" in links(renewal)


def test_a_corrected_receipt_after_a_refund_still_names_the_card(public, client, outbox):
    give(client, "twenty", amount="5000", card="6011 1111 1111 1117")
    gift = db.session.scalar(select(Gift))
    refund_gift(gift, current_provider(), now=utcnow(), amount=1000)
    jobs.commit()
    corrected = receipts(outbox)[-1]
    assert corrected["Subject"].startswith("Your corrected receipt")
    assert field(corrected, "Paid with") == "Discover card ending 1117 (test payment)"
    assert field(corrected, "Receipted").startswith("$40.00")


def test_a_cheques_receipt_names_the_cheque(public, outbox):
    record_offline_gift(OfflineGift(
        received_on=date(2026, 3, 5), method="cheque", reference="001234",
        donor_name="Yusuf Haddad", email="yusuf@example.org", campaign="twenty", amount=25000),
        actor=Actor(id=None, label="clerk"), zone=org_zone(), now=utcnow())
    jobs.commit()
    [receipt] = receipts(outbox)
    assert field(receipt, "Paid with") == "Cheque no. 001234"
    assert field(receipt, "Frequency") == "One time"
    assert_org_header(receipt, "Levant Wire")


def test_the_stripe_card_comes_from_the_charge(make_app, database_url, app, httpserver, outbox):
    """With Stripe, the card is on the charge, not the event: asked for before the receipt is
    mailed (the same request that reports the fee)."""
    stripe_app = make_app(database_url, **stripe_config(httpserver.url_for("/").rstrip("/")))
    with stripe_app.app_context():
        make_campaign("twenty")
        client = stripe_app.test_client()
        httpserver.expect_request("/v1/checkout/sessions", method="POST").respond_with_json(
            {**so.checkout_session(gift="x", amount=5000), "url": "https://checkout.stripe.test/x"})
        submit_gift(client, "twenty", amount="5000")
        httpserver.clear()
        gift = db.session.scalar(select(Gift))
        serve_charge(httpserver)
        deliver(client, so.event("checkout.session.completed",
                                 so.checkout_session(gift=gift.public_id, amount=5000)))
        [receipt] = receipts(outbox)
        assert field(receipt, "Paid with") == "Visa card ending 4242"
        charge = db.session.scalar(select(Payment))
        assert (charge.card_last4, charge.fee) == ("4242", 175)
        # One request to Stripe for card and fee alike.
        assert [r.path for r, _ in httpserver.log] == ["/v1/payment_intents/pi_test_1"]


# -- the organisation's name on every email ---------------------------------------------------

def test_every_email_starts_with_the_organisations_name(public, client, outbox):
    public.config["ORG_NAME"] = "Levant Wire Giving"
    give(client, "twenty", amount="5000", dedication="honour", dedication_name="Rivka",
         dedication_email="rivka@example.org")
    post_form(client, "/account/signin/link", email="noa@example.org")
    post_form(client, "/news/subscribe", email="reader@example.org", consent="y",
              source="subscribe")
    messages = outbox()
    subjects = {m["Subject"] for m in messages}
    assert len(messages) >= 4, subjects  # receipt, dedication, sign-in link, news confirmation
    for message in messages:
        assert_org_header(message, "Levant Wire Giving")


@pytest.mark.parametrize("path", sorted(p.relative_to(TEMPLATES).as_posix()
                                        for p in TEMPLATES.rglob("*.*")
                                        if not p.name.startswith("_")))
def test_every_email_template_has_the_layout_with_the_header(path):
    """Each message extends the layout that puts the name first (the daily news email opens
    with its own header: "Levant Wire daily" and "Levant Wire: the news for ...")."""
    source = (TEMPLATES / path).read_text()
    if path.startswith("news_digest."):
        first = "{{ org_name }}" if path.endswith(".html") else "{{ org_name }}: the news"
        assert first in source
        return
    layout = "_layout.html" if path.endswith(".html") else "_layout.txt"
    assert source.startswith(f'{{% extends "email/{layout}" %}}'), path


# -- through a real SMTP server ---------------------------------------------------------------

def test_the_receipt_through_smtp(make_app, database_url, app):
    with smtp_server() as (controller, inbox):
        smtp_app = make_app(database_url, MAIL_URL=f"smtp://127.0.0.1:{controller.port}",
                            PUBLIC_URL=PUBLIC_URL, TRUSTED_HOSTS="donate.test")
        with smtp_app.app_context():
            make_campaign("twenty")
            give(smtp_app.test_client(), "twenty", amount="5000")
    [envelope] = inbox.messages
    message = message_from_bytes(envelope.content, policy=policy.default)
    assert_org_header(message, "Levant Wire")
    assert field(message, "Paid with") == "Visa card ending 4242 (test payment)"
    assert links(message) and all(link.startswith(f"{PUBLIC_URL}/account/")
                                  for link in links(message))


# -- the online maximum ---------------------------------------------------------------------

def test_a_gift_above_the_online_maximum_names_where_to_write(public, client, make_app,
                                                              database_url):
    refused = submit_gift(client, "twenty", amount="other", other="60000")
    assert refused.status_code == 422
    assert ("Gifts above $50,000.00 cannot be made online; please write to us at "
            "giving@levantwire.example and we will arrange a transfer.") in \
        refused.get_data(as_text=True)

    own = make_app(database_url, MAJOR_GIFTS_EMAIL="major.gifts@levantwire.example")
    refused = submit_gift(own.test_client(), "twenty", amount="other", other="60000")
    assert "write to us at major.gifts@levantwire.example" in refused.get_data(as_text=True)


BUILT = [
    dict(sender=None, to="donor1@example.org", subject="Thank you for your gift to Twenty years",
         text="Dear Noa,\n\nThank you. " * 40, html="<p>" + "Thank you for your gift, " * 20),
    dict(sender="Levant Wire <news@levant.example>", to="רבקה <rivka@example.org>",
         subject="תודה על מתנתך — Ramadan كريم " * 3, text="שלום רבקה\n" * 30 + "x" * 200,
         html="<p>مرحبا</p>" * 50),
    dict(sender=None, to="a@example.org", subject="Daily news", text="short", html="<b>short</b>",
         headers={"List-Unsubscribe": "<https://donate.example.org/u/" + "x" * 300 + ">",
                  "From": "News <news@levant.example>"}),
    dict(sender=None, to="b@example.org", subject="Statement", text="attached", html="<p>x</p>",
         attachments=[("statement.pdf", "application/pdf", b"%PDF-1.4 " + bytes(range(256)))]),
    dict(sender="Levant Wire <news@levant.example>", to="Dana Ab <dana@example.org>",
         subject="  A\tsubject\n spread ", text="one\r\ntwo\rthree\n\n\nlast, no end",
         html="<p>" + "long line " * 90 + "</p>\n" * 3,
         headers={"from": "Giving <giving@levant.example>", "Reply-To": "help@levant.example"}),
    dict(sender=None, to="c@example.org", subject="Empty", text="", html="\n"),
    dict(sender=None, to="d@example.org", subject="Arabic", text="شكرا\n" * 100,
         html="<p>" + "ش" * 500 + "</p>", headers={"List-Unsubscribe": "<https://x.example/u>"}),
    dict(sender="ليفانت واير <news@levant.example>", to="רבקה כהן <rivka@example.org>",
         subject="תודה על מתנתך — شكرا لك " * 4, text="שלום רבקה\n" * 3, html="<p>مرحبا</p>"),
]


@pytest.mark.parametrize("fields", BUILT, ids=["receipt", "unicode", "long-header", "pdf",
                                                "replaced-from", "empty", "base64",
                                                "encoded-headers"])
def test_a_message_is_built_byte_for_byte_as_emails_own_policies_build_it(fields, monkeypatch):
    """``build_message`` remembers the headers it has parsed and folded (most are the same in
    every message), and writes a message of text and HTML out by hand; what it makes is what
    email's objects and policies make, twice in a row."""
    import random

    from app import mail

    now = utcnow()
    monkeypatch.setattr(mail, "utcnow", lambda: now)
    monkeypatch.setattr(mail, "make_msgid", lambda domain=None: f"<fixed@{domain}>")

    def built() -> str:
        random.seed(7)  # the MIME boundary
        return mail.build_message(**fields)

    ours = [built(), built()]
    monkeypatch.setattr(mail, "_written", lambda fields, text, html, ctes, out: mail._built(
        fields, text, html, ctes, (), out))
    monkeypatch.setattr(mail, "_BUILD", policy.default)
    monkeypatch.setattr(mail, "_SMTP", policy.SMTP)
    monkeypatch.setattr(mail, "_LONG_HEADERS", mail.LONG_HEADERS)
    assert ours == [built()] * 2


def test_a_message_whose_text_holds_the_usual_boundary_gets_another():
    """The text and HTML are parted by the same boundary in every message, unless one of them
    holds it (a donor's comment could): then email's own, one they do not hold."""
    from email import message_from_string

    from app import mail

    usual = mail.build_message(sender=None, to="a@example.org", subject="Hi", text="plain",
                               html="<p>plain</p>")
    assert message_from_string(usual).get_boundary() == mail.BOUNDARY
    trap = f"before\n--{mail.BOUNDARY}\nContent-Type: text/html\n\n<p>forged</p>\n"
    built = message_from_string(mail.build_message(
        sender=None, to="a@example.org", subject="Hi", text=trap, html="<p>real</p>"))
    assert built.get_boundary() != mail.BOUNDARY
    text, html = built.get_payload()
    assert text.get_payload().replace("\r\n", "\n") == trap
    assert html.get_payload().strip() == "<p>real</p>"


def test_ascii_parts_go_as_they_are_unless_a_line_is_too_long_for_mail():
    """Text in ASCII is sent unencoded (7bit) with lines up to the 998 characters mail allows,
    readable as it is; a longer line is encoded, so that no line of the message is over."""
    from email import message_from_string, policy

    from app import mail

    long_line = "<p>" + "Thank you for your gift, " * 30 + "</p>"  # 753 characters
    over = "<p>" + "x" * 1200 + "</p>"
    raw = mail.build_message(sender=None, to="a@example.org", subject="Hi", text="plain",
                             html=long_line + "\n" + long_line)
    html = message_from_string(raw, policy=policy.default).get_payload()[1]
    assert html["Content-Transfer-Encoding"] == "7bit"
    assert long_line + "\r\n" + long_line in raw
    assert html.get_content().splitlines() == [long_line, long_line]

    raw = mail.build_message(sender=None, to="a@example.org", subject="Hi", text="plain",
                             html=over)
    html = message_from_string(raw, policy=policy.default).get_payload()[1]
    assert html["Content-Transfer-Encoding"] == "quoted-printable"
    assert max(map(len, raw.splitlines())) <= mail.MAX_LINE
    assert html.get_content().strip() == over
