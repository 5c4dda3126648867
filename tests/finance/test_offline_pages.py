"""The offline gifts pages: record a cheque through the form, see it listed, correct it and
reverse it; every bad input answered beside its field with nothing written."""

from __future__ import annotations

import json
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from app.audit import AuditEntry
from app.db import utcnow
from app.extensions import db
from app.finance.models import Receipt, ReceiptStatus
from app.giving.models import Gift, GiftStatus
from app.mail import OutboundEmail
from app.payments.models import Payment, PaymentKind
from app.staff.models import Role
from tests.factories import make_campaign
from tests.support.staff import csrf_token, make_person, sign_in_as

NY = ZoneInfo("America/New_York")


@pytest.fixture
def clerk(app, client):
    make_campaign("appeal", title="The anniversary appeal")
    make_campaign("ramadan", title="Ramadan Kareem")
    make_campaign("euro-appeal", title="European friends", currency="EUR")
    person = make_person("clerk@levantwire.example", roles=(Role.FINANCE,))
    sign_in_as(client, person)
    return person


def today():
    return utcnow().astimezone(NY).date()


def form(client, **fields) -> dict:
    values = {"csrf_token": csrf_token(client), "received_on": today().isoformat(),
              "method": "cheque", "reference": "004512", "donor_name": "Yusuf Haddad",
              "email": "yusuf@example.org", "campaign": "appeal", "amount": "250.00",
              "send_receipt": "y"}
    values.update(fields)
    return {k: v for k, v in values.items() if v is not None}


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def everything() -> tuple[int, ...]:
    return tuple(count(m) for m in (Gift, Payment, Receipt, AuditEntry, OutboundEmail))


def record(client, **fields) -> Gift:
    response = client.post("/staff/finance/offline/new", data=form(client, **fields))
    assert response.status_code == 303, response.get_data(as_text=True)[:3000]
    gift_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    return db.session.get(Gift, gift_id)


def entries(gift: Gift, action: str) -> list[AuditEntry]:
    return list(db.session.scalars(select(AuditEntry).where(
        AuditEntry.target_type == "gift", AuditEntry.target_id == str(gift.id),
        AuditEntry.action == action).order_by(AuditEntry.id)))


def receipts(gift: Gift) -> list[Receipt]:
    return list(db.session.scalars(select(Receipt).where(Receipt.gift_id == gift.id)
                                   .order_by(Receipt.id)))


# -- recording ------------------------------------------------------------------------------------

def test_the_form_offers_every_campaign_and_todays_date(client, clerk):
    page = client.get("/staff/finance/offline/new")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'value="appeal"' in html and "European friends (EUR)" in html
    assert f'value="{today().isoformat()}"' in html
    for label in ("Date received", "Method", "Reference", "Donor&#39;s name", "Donor&#39;s email",
                  "Campaign", "Amount", "Email the receipt to the donor"):
        assert label in html, label


def test_a_cheque_recorded_through_the_form(client, clerk, outbox):
    response = client.post("/staff/finance/offline/new", data=form(client))
    assert response.status_code == 303
    gift = db.session.scalar(select(Gift).where(Gift.provider == "offline"))
    assert response.headers["Location"].endswith(f"/staff/finance/offline/{gift.id}")
    assert (gift.amount, gift.currency, gift.status) == (25000, "USD", GiftStatus.PAID)
    assert gift.donor_name == "Yusuf Haddad" and gift.supporter.email == "yusuf@example.org"
    assert gift.paid_at.astimezone(NY).date() == today()
    charge = db.session.scalar(select(Payment).where(Payment.gift_id == gift.id))
    assert (charge.kind, charge.provider, charge.provider_id, charge.amount, charge.fee) == (
        PaymentKind.CHARGE, "cheque", "004512", 25000, 0)
    [receipt] = receipts(gift)
    assert receipt.status is ReceiptStatus.ISSUED and receipt.amount == 25000
    assert receipt.number == f"{today().year}-000001"
    [entry] = entries(gift, "offline_gift.record")
    assert entry.actor_id == clerk.id and entry.actor_label == "clerk@levantwire.example"
    assert json.loads(entry.after)["receipt"] == receipt.number
    [mail] = outbox()
    assert mail["To"] == "yusuf@example.org"

    page = client.get(response.headers["Location"])
    html = page.get_data(as_text=True)
    assert f"Gift recorded with receipt {receipt.number}, emailed to the donor." in html
    assert f"/staff/finance/receipts/{receipt.number}.pdf" in html
    assert "offline_gift.record" in html and "clerk@levantwire.example" in html

    listing = client.get("/staff/finance/offline").get_data(as_text=True)
    assert "004512" in listing and "Yusuf Haddad" in listing and "$250.00" in listing
    assert f"/staff/finance/receipts/{receipt.number}.pdf" in listing
    assert "The anniversary appeal" in listing
    pdf = client.get(f"/staff/finance/receipts/{receipt.number}.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")


def test_no_receipt_email_when_unticked_and_the_extras_are_kept(client, clerk, outbox):
    gift = record(client, send_receipt=None, method="wire", reference="FT2401-88",
                  goods_value="40", goods_description="a gala dinner ticket",
                  dedication="memory", dedication_name="Salim Haddad", anonymous="y",
                  campaign="euro-appeal", amount="1,000")
    assert outbox() == []
    assert (gift.amount, gift.currency, gift.goods_value, gift.anonymous) == (
        100000, "EUR", 4000, True)
    assert gift.dedication.value == "memory" and gift.dedication_name == "Salim Haddad"
    assert receipts(gift)[0].currency == "EUR"


@pytest.mark.parametrize("fields, field, message", [
    ({"received_on": "05/03/2026"}, "received_on", "Enter the date as YYYY-MM-DD"),
    ({"received_on": ""}, "received_on", "Enter the date the money was received."),
    # A typo for 2026: taken, it made the campaign's dashboard a chart of 740,000 days.
    ({"received_on": "0026-03-05"}, "received_on",
     "Enter a date between the years 1900 and 2999."),
    ({"amount": "0"}, "amount", "The amount must be more than zero."),
    ({"amount": "-20"}, "amount", "The amount must be more than zero."),
    ({"amount": "12.345"}, "amount", "Use at most 2 decimal places."),
    ({"amount": "ten"}, "amount", "Enter the amount as a number"),
    ({"amount": ""}, "amount", "Enter an amount."),
    ({"campaign": "nowhere"}, "campaign", "There is no campaign &#39;nowhere&#39;"),
    ({"campaign": ""}, "campaign", "Choose the campaign the gift is for."),
    ({"email": "not-an-email"}, "email", "Enter an email address like name@example.com."),
    ({"donor_name": "  "}, "donor_name", "Enter the donor&#39;s name."),
    ({"method": "bitcoin"}, "method", "Not a valid choice"),
    ({"reference": ""}, "reference", "Give the cheque&#39;s reference"),
    ({"goods_value": "-5"}, "goods_value", "The amount must be more than zero."),
    ({"goods_value": "30"}, "goods_description", "Describe the goods or services"),
    ({"goods_value": "300", "goods_description": "a gala table"}, "goods_value",
     "The goods or services cannot be worth more than the gift: 300.00 USD received for "
     "250.00 USD given."),
    ({"dedication": "honour"}, "dedication_name", "Name whom the gift honours or remembers."),
])
def test_bad_input_is_answered_beside_its_field_and_nothing_is_written(
        client, clerk, outbox, fields, field, message):
    before = everything()
    response = client.post("/staff/finance/offline/new", data=form(client, **fields))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f'id="{field}-error"' in html, html[html.find("error-summary"):][:1500]
    error = html[html.find(f'id="{field}-error"'):][:300]
    assert message in error, error
    assert everything() == before and outbox() == []


def test_a_date_in_the_future_is_refused(client, clerk):
    before = everything()
    tomorrow = (today() + timedelta(days=1)).isoformat()
    response = client.post("/staff/finance/offline/new", data=form(client, received_on=tomorrow))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "The date received is in the future." in html[html.find('id="received_on-error"'):]
    assert everything() == before


def test_the_same_cheque_twice_is_refused(client, clerk, outbox):
    gift = record(client)
    before = everything()
    response = client.post("/staff/finance/offline/new",
                           data=form(client, donor_name="Someone Else", email="else@example.org"))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    error = html[html.find('id="reference-error"'):][:300]
    assert f"A cheque with reference &#39;004512&#39; is already recorded (gift {gift.id})" \
        in error
    assert everything() == before
    assert len(outbox()) == 1  # the first gift's receipt only
    # The same number by wire is another payment.
    assert record(client, method="wire").id != gift.id


def test_without_the_csrf_token_nothing_is_written(client, clerk):
    before = everything()
    data = form(client)
    del data["csrf_token"]
    response = client.post("/staff/finance/offline/new", data=data)
    assert response.status_code == 400
    assert everything() == before


# -- correcting and reversing ---------------------------------------------------------------------

def correction(client, gift: Gift, **fields) -> dict:
    page = client.get(f"/staff/finance/offline/{gift.id}")
    assert page.status_code == 200
    values = {"correct-csrf_token": csrf_token(client),
              "correct-received_on": gift.paid_at.astimezone(NY).date().isoformat(),
              "correct-method": "cheque", "correct-reference": "004512",
              "correct-donor_name": gift.donor_name, "correct-email": gift.supporter.email,
              "correct-campaign": gift.campaign.slug, "correct-amount": "250.00",
              "correct-send_receipt": "y"}
    values.update({f"correct-{k}": v for k, v in fields.items()})
    return {k: v for k, v in values.items() if v is not None}


def test_the_correction_form_is_filled_with_what_was_recorded(client, clerk):
    gift = record(client, amount="1234.50")
    html = client.get(f"/staff/finance/offline/{gift.id}").get_data(as_text=True)
    assert 'id="correct-amount"' in html and 'value="1234.50"' in html
    assert 'name="correct-reference"' in html and 'value="004512"' in html
    assert '<option selected value="appeal">' in html


def test_a_correction_with_a_reason_reissues_the_receipt_and_is_audited(client, clerk, outbox):
    gift = record(client)
    [first] = receipts(gift)
    response = client.post(f"/staff/finance/offline/{gift.id}/correct",
                           data=correction(client, gift, amount="300", campaign="ramadan",
                                           reason="Amount misread from the cheque"))
    assert response.status_code == 303, response.get_data(as_text=True)[:3000]
    db.session.refresh(gift)
    assert gift.amount == 30000 and gift.campaign.slug == "ramadan"
    charge = db.session.scalar(select(Payment).where(Payment.gift_id == gift.id))
    assert (charge.amount, charge.net) == (30000, 30000)
    old, new = receipts(gift)
    assert old.id == first.id and old.status is ReceiptStatus.VOID
    assert new.status is ReceiptStatus.ISSUED and new.amount == 30000 and new.replaces_id == old.id
    [entry] = entries(gift, "offline_gift.correct")
    before, after = json.loads(entry.before), json.loads(entry.after)
    assert (before["amount"], after["amount"]) == (25000, 30000)
    assert (before["campaign"], after["campaign"]) == ("appeal", "ramadan")
    assert after["reason"] == "Amount misread from the cheque" and after["receipt"] == new.number
    assert entry.actor_id == clerk.id
    assert [m["Subject"] for m in outbox()][-1] == f"Your corrected receipt {new.number}"
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Gift corrected (amount, campaign)." in html
    assert new.number in html and old.number in html and "Void" in html


def test_a_correction_without_a_reason_changes_nothing(client, clerk):
    gift = record(client)
    before = everything()
    response = client.post(f"/staff/finance/offline/{gift.id}/correct",
                           data=correction(client, gift, amount="300", reason="  "))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Say why the gift is corrected" in html[html.find('id="correct-reason-error"'):]
    assert everything() == before
    db.session.refresh(gift)
    assert gift.amount == 25000


def test_a_correction_that_changes_nothing_says_so(client, clerk):
    gift = record(client)
    before = everything()
    response = client.post(f"/staff/finance/offline/{gift.id}/correct",
                           data=correction(client, gift, reason="checking"))
    assert response.status_code == 422
    assert "Nothing to correct" in response.get_data(as_text=True)
    assert everything() == before


def test_a_correction_to_another_gifts_cheque_number_is_refused(client, clerk):
    other = record(client, reference="777")
    gift = record(client)
    before = everything()
    response = client.post(f"/staff/finance/offline/{gift.id}/correct",
                           data=correction(client, gift, reference="777", reason="typo"))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f"(gift {other.id})" in html[html.find('id="correct-reference-error"'):][:300]
    assert everything() == before


def test_a_correction_below_the_goods_value_is_refused_beside_the_field(client, clerk):
    gift = record(client, goods_value="100", goods_description="a gala dinner")
    before = everything()
    response = client.post(f"/staff/finance/offline/{gift.id}/correct",
                           data=correction(client, gift, amount="80", goods_value="100",
                                           goods_description="a gala dinner", reason="typo"))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    error = html[html.find('id="correct-goods_value-error"'):][:300]
    assert "cannot be worth more than the gift: 100.00 USD received for 80.00 USD" in error
    assert everything() == before


def test_a_correction_with_a_bad_amount_is_refused(client, clerk):
    gift = record(client)
    before = everything()
    response = client.post(f"/staff/finance/offline/{gift.id}/correct",
                           data=correction(client, gift, amount="0", reason="typo"))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "more than zero" in html[html.find('id="correct-amount-error"'):][:300]
    assert everything() == before


def reversal(client, **fields) -> dict:
    values = {"reverse-csrf_token": csrf_token(client),
              "reverse-reason": "Cheque returned unpaid by the bank", "reverse-confirm": "y"}
    values.update({f"reverse-{k}": v for k, v in fields.items()})
    return {k: v for k, v in values.items() if v is not None}


def test_reversing_a_bounced_cheque(client, clerk):
    gift = record(client)
    [receipt] = receipts(gift)
    response = client.post(f"/staff/finance/offline/{gift.id}/reverse", data=reversal(client))
    assert response.status_code == 303
    db.session.refresh(gift)
    assert gift.status is GiftStatus.REFUNDED
    refund = db.session.scalar(select(Payment).where(Payment.gift_id == gift.id,
                                                     Payment.kind == PaymentKind.REFUND))
    assert refund.amount == 25000
    db.session.refresh(receipt)
    assert receipt.status is ReceiptStatus.VOID
    [entry] = entries(gift, "offline_gift.reverse")
    assert json.loads(entry.after)["reason"] == "Cheque returned unpaid by the bank"
    assert entry.actor_id == clerk.id
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Gift reversed" in html and "Reversed" in html
    assert "data-correct-form" not in html and "data-reverse-form" not in html
    listing = client.get("/staff/finance/offline").get_data(as_text=True)
    assert "<strong>Reversed</strong>" in listing
    # A second reversal is refused, and nothing more is written.
    before = everything()
    again = client.post(f"/staff/finance/offline/{gift.id}/reverse", data=reversal(client))
    assert again.status_code == 422
    assert f"Gift {gift.id} is already reversed." in again.get_data(as_text=True)
    assert everything() == before


@pytest.mark.parametrize("fields, field, message", [
    ({"reason": ""}, "reverse-reason", "Say why the gift is reversed"),
    ({"confirm": None}, "reverse-confirm", "Tick the box to confirm the reversal."),
])
def test_a_reversal_needs_a_reason_and_a_confirmation(client, clerk, fields, field, message):
    gift = record(client)
    before = everything()
    response = client.post(f"/staff/finance/offline/{gift.id}/reverse",
                           data=reversal(client, **fields))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in html[html.find(f'id="{field}-error"'):][:300]
    assert everything() == before
    db.session.refresh(gift)
    assert gift.status is GiftStatus.PAID


def test_an_online_gift_has_no_offline_page(client, clerk, app):
    from tests.factories import paid_gift

    gift, _ = paid_gift(make_campaign("online"))
    db.session.commit()
    assert client.get(f"/staff/finance/offline/{gift.id}").status_code == 404
    response = client.post(f"/staff/finance/offline/{gift.id}/reverse", data=reversal(client))
    assert response.status_code == 404
    assert client.get("/staff/finance/offline/999999").status_code == 404


def test_only_finance_and_admin_staff_get_in(client, app):
    sign_in_as(client, make_person("fund@levantwire.example", roles=(Role.FUNDRAISER,)))
    assert client.get("/staff/finance/offline").status_code == 403
    assert client.get("/staff/finance/offline/new").status_code == 403
    sign_in_as(client, make_person("admin@levantwire.example", roles=(Role.ADMIN,)))
    assert client.get("/staff/finance/offline").status_code == 200
