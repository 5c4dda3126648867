"""The whole giving flow through HTTP: form -> sandbox checkout -> signed event -> gift ->
campaign total -> thank-you page and receipt email."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from app.campaigns.services import campaign_progress
from app.extensions import db
from app.giving.models import Dedication, Frequency, Gift, GiftStatus, RecurringPlan
from app.payments.models import Payment, ProviderEvent
from tests.factories import make_campaign
from tests.support.flow import donation_form, give, pay, submit_gift


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def campaign(app):
    return make_campaign("twenty", match_amount=100_000, match_sponsor="the Halabi Foundation")


def test_one_time_gift_end_to_end(client, campaign, outbox, now):
    before = campaign_progress(campaign, now)
    response = submit_gift(client, "twenty", amount="5000", cover_fee="y",
                           query="?utm_source=newsletter&utm_medium=email&utm_campaign=nov",
                           dedication="memory", dedication_name="Yosef Levi",
                           comment="Keep going.")
    assert response.status_code == 303
    checkout = response.headers["Location"]
    assert checkout.startswith("/sandbox/checkout/")
    gift = db.session.scalar(select(Gift))
    assert gift.status is GiftStatus.PENDING
    assert (gift.amount, gift.fee_covered, gift.total) == (5000, 181, 5181)
    assert (gift.utm_source, gift.utm_medium, gift.utm_campaign) == ("newsletter", "email", "nov")
    assert gift.dedication is Dedication.MEMORY and gift.dedication_name == "Yosef Levi"
    assert outbox() == []

    page = client.get(urlsplit(checkout).path).get_data(as_text=True)
    assert "$51.81" in page

    paid = pay(client, checkout)
    assert paid.status_code == 303
    assert urlsplit(paid.headers["Location"]).path == f"/thanks/{gift.public_id}"

    db.session.refresh(gift)
    assert gift.status is GiftStatus.PAID
    after = campaign_progress(campaign, now)
    assert after.raised == before.raised + 5181
    assert (after.donors, after.gifts) == (before.donors + 1, before.gifts + 1)
    assert count(ProviderEvent) == 1

    thanks = client.get(f"/thanks/{gift.public_id}").get_data(as_text=True)
    assert "Thank you, Noa." in thanks
    assert "Thank you for standing with us." in thanks
    assert "$50.00" in thanks and "$1.81" in thanks

    [mail] = outbox()
    assert mail["To"] == "noa@example.org"
    body = mail.get_body(preferencelist=("plain",)).get_content()
    for expected in ("$50.00", "$51.81", "A test appeal", "In memory of: Yosef Levi",
                     "No goods or services were provided", "Noa Levi"):
        assert expected in body
    assert mail.get_body(preferencelist=("html",)) is not None

    campaign_page = client.get("/campaigns/twenty").get_data(as_text=True)
    assert f"${after.raised // 100:,}" in campaign_page


def test_monthly_gift_creates_a_plan_and_renews(client, app, campaign, outbox):
    paid = give(client, "twenty", frequency="monthly", amount="2500")
    assert paid.status_code == 303
    plan = db.session.scalar(select(RecurringPlan))
    assert plan.frequency is Frequency.MONTHLY and plan.total == 2500
    assert plan.periods_paid == 1
    # The checkout completion and the first invoice both name the first charge: one payment.
    assert count(ProviderEvent) == 2 and count(Payment) == 1
    assert len(outbox()) == 1

    result = app.test_cli_runner().invoke(
        args=["sandbox", "renew", "--now", plan.next_charge_at.isoformat()])
    assert result.exit_code == 0, result.output
    assert "renewed 1 plan period(s)" in result.output
    db.session.refresh(plan)
    assert plan.periods_paid == 2
    assert count(Gift) == 2 and count(Payment) == 2
    assert db.session.scalar(select(func.sum(Payment.amount))) == 5000
    assert len(outbox()) == 2

    again = app.test_cli_runner().invoke(
        args=["sandbox", "renew", "--now", plan.started_at.isoformat()])
    assert "renewed 0 plan period(s)" in again.output
    assert count(Payment) == 2


def test_declined_card_records_nothing_and_says_why(client, campaign, outbox):
    response = submit_gift(client, "twenty")
    declined = pay(client, response.headers["Location"], card="4000 0000 0000 0002")
    assert declined.status_code == 402
    assert "Your card was declined." in declined.get_data(as_text=True)
    assert count(Payment) == 0 and count(ProviderEvent) == 0
    assert db.session.scalar(select(Gift)).status is GiftStatus.PENDING
    assert outbox() == []
    # The donor can try another card on the same page.
    assert pay(client, response.headers["Location"]).status_code == 303
    assert count(Payment) == 1


@pytest.mark.parametrize("card, message", [
    ("4000 0000 0000 9995", "insufficient funds"),
    ("4000 0000 0000 0069", "expired"),
    ("4242 4242 4242 4241", "card number is incorrect"),
    ("4111 1111 1111 1111", "test card numbers only"),
])
def test_sandbox_declines_per_stripe_test_cards(client, campaign, card, message):
    response = submit_gift(client, "twenty")
    declined = pay(client, response.headers["Location"], card=card)
    assert declined.status_code == 402
    assert message in declined.get_data(as_text=True)
    assert card.replace(" ", "") not in declined.get_data(as_text=True).replace(" ", "")
    assert count(Payment) == 0


def test_double_submitted_form_makes_one_gift(client, campaign):
    data = donation_form(client, "twenty")
    data.update(amount_choice="2500", frequency="one_time", name="Noa", email="noa@example.org")
    first = client.post("/campaigns/twenty/give", data=data)
    second = client.post("/campaigns/twenty/give", data=data)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert count(Gift) == 1


def test_paying_twice_and_reloading_thanks_records_one_gift_and_one_receipt(client, campaign,
                                                                           outbox):
    response = submit_gift(client, "twenty")
    checkout = response.headers["Location"]
    assert pay(client, checkout).status_code == 303
    assert pay(client, checkout).status_code == 303  # the Pay button clicked twice
    gift = db.session.scalar(select(Gift))
    for _ in range(3):
        assert client.get(f"/thanks/{gift.public_id}").status_code == 200
    assert count(Payment) == 1 and count(ProviderEvent) == 1
    assert len(outbox()) == 1


def test_email_is_matched_case_insensitively(client, campaign):
    give(client, "twenty", email="Noa@Example.ORG")
    give(client, "twenty", email="noa@example.org")
    donors = db.session.scalars(select(Gift.supporter_id)).all()
    assert len(donors) == 2 and len(set(donors)) == 1
    assert campaign_progress(campaign, db.session.scalar(select(Gift.paid_at))).donors == 1


def test_pending_thank_you_page_waits_for_confirmation(client, campaign):
    submit_gift(client, "twenty")
    gift = db.session.scalar(select(Gift))
    page = client.get(f"/thanks/{gift.public_id}").get_data(as_text=True)
    assert "confirming your payment" in page and 'http-equiv="refresh"' in page


def test_unknown_thank_you_page_is_404(client, campaign):
    assert client.get("/thanks/not-a-gift").status_code == 404


def test_tampered_checkout_link_is_404(client, campaign):
    response = submit_gift(client, "twenty")
    assert client.get(response.headers["Location"] + "x").status_code == 404


def test_matching_pool_shows_what_is_left(client, campaign):
    give(client, "twenty", amount="10000")
    page = client.get("/campaigns/twenty").get_data(as_text=True)
    assert "doubled by the Halabi Foundation" in page
    assert "$900" in page  # $1,000 pool less the $100 given


def test_dedication_email_tells_the_honoree_without_the_amount(client, campaign, outbox):
    give(client, "twenty", amount="10000", dedication="honour", dedication_name="Savta Rivka",
         dedication_email="rivka@example.org")
    receipt, note = sorted(outbox(), key=lambda m: m["To"] != "noa@example.org")
    assert note["To"] == "rivka@example.org"
    assert "in your honour" in note["Subject"]
    body = note.get_body(preferencelist=("plain",)).get_content()
    assert "Noa Levi has made a gift" in body and "Savta Rivka" in body
    assert "$100" not in body


def test_anonymous_dedication_does_not_name_the_donor(client, campaign, outbox):
    give(client, "twenty", dedication="memory", dedication_name="Yosef",
         dedication_email="family@example.org", anonymous="y")
    [note] = [m for m in outbox() if m["To"] == "family@example.org"]
    body = note.get_body(preferencelist=("plain",)).get_content()
    assert "Noa" not in body and "Someone who cares about you" in body
    assert "in memory of Yosef" in body and note["Subject"].endswith("in memory of Yosef")


def test_line_breaks_in_a_name_cannot_inject_mail_headers(client, campaign, outbox):
    give(client, "twenty", dedication="memory", dedication_name="Yosef\r\nBcc: all@example.org",
         dedication_email="family@example.org")
    [note] = [m for m in outbox() if m["To"] == "family@example.org"]
    assert note["Bcc"] is None
    assert "\n" not in note["Subject"]
