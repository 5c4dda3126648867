"""Offline gifts: recorded with a ledger row and a receipt, once per cheque; corrections and
reversals audited, receipts voided and reissued."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from app import jobs
from app.audit import Actor, AuditEntry
from app.db import utcnow
from app.extensions import db
from app.finance.common import FinanceError, make_period
from app.finance.exports import export_filter, iter_rows, totals
from app.finance.models import Receipt, ReceiptStatus
from app.finance.offline import (
    OfflineGift,
    correct_offline_gift,
    record_offline_gift,
    reverse_offline_gift,
)
from app.finance.reconciliation import reconcile
from app.giving.models import Dedication, Frequency, GiftStatus
from app.payments.models import Payment, PaymentKind
from tests.factories import make_campaign
from tests.finance.support import NY

CLERK = Actor(id=None, label="clerk@levantwire.example")
TODAY = date(2026, 3, 10)


def entry(**fields) -> OfflineGift:
    values = dict(received_on=date(2026, 3, 5), method="cheque", reference="001234",
                  donor_name="Yusuf Haddad", email="yusuf@example.org", campaign="appeal",
                  amount=25000)
    values.update(fields)
    return OfflineGift(**values)


@pytest.fixture
def record(app):
    make_campaign("appeal", fund_code="4100")
    now = utcnow().replace(year=2026, month=3, day=10)

    def record(**fields):
        return record_offline_gift(entry(**fields), actor=CLERK, zone=NY, now=now)

    record.now = now
    return record


def charge_of(gift) -> Payment:
    return db.session.scalar(select(Payment).where(Payment.gift_id == gift.id,
                                                   Payment.kind == PaymentKind.CHARGE))


def receipts_of(gift) -> list[Receipt]:
    return list(db.session.scalars(select(Receipt).where(Receipt.gift_id == gift.id)
                                   .order_by(Receipt.id)))


def audit_of(gift) -> list[AuditEntry]:
    return list(db.session.scalars(select(AuditEntry).where(
        AuditEntry.target_type == "gift", AuditEntry.target_id == str(gift.id))
        .order_by(AuditEntry.id)))


def test_a_cheque_is_a_paid_gift_with_a_receipt(app, record, outbox):
    gift = record(dedication=Dedication.MEMORY, dedication_name="Nadia Khoury")
    assert (gift.provider, gift.frequency, gift.status) == (
        "offline", Frequency.ONE_TIME, GiftStatus.PAID)
    assert gift.paid_at.astimezone(NY).date() == date(2026, 3, 5)
    charge = charge_of(gift)
    assert (charge.provider, charge.provider_id, charge.amount, charge.fee, charge.net) == (
        "cheque", "001234", 25000, 0, 25000)
    [receipt] = receipts_of(gift)
    assert receipt.amount == 25000 and receipt.number.startswith("2026-")
    [entry_] = audit_of(gift)
    assert entry_.action == "offline_gift.record" and entry_.actor_label == CLERK.label
    assert json.loads(entry_.after)["reference"] == "001234"
    jobs.commit()
    [mail] = outbox()
    assert mail["To"] == "yusuf@example.org" and receipt.number in mail.get_body(
        ("plain",)).get_content()
    # It is in the export and the reconciliation like any gift.
    march = make_period("2026-03-01", "2026-03-31", NY)
    [row] = list(iter_rows(export_filter(march, method="cheque")))
    assert row[26:29] == ("cheque", "001234", receipt.number)
    assert reconcile(march).by_method[0].label == "cheque"
    assert totals([row])["USD"]["net_minor"] == 25000


def test_the_same_cheque_cannot_be_recorded_twice(app, record):
    first = record()
    with pytest.raises(FinanceError, match="already recorded"):
        record(amount=100)
    # The same number by wire is another payment.
    assert record(method="wire").id != first.id


def test_cash_gets_a_reference_and_wires_need_one(app, record):
    gift = record(method="cash", reference=None)
    assert charge_of(gift).provider_id.startswith("CASH-20260305-")
    with pytest.raises(FinanceError, match="reference"):
        record(method="wire", reference="  ")


@pytest.mark.parametrize("fields, message", [
    ({"method": "bitcoin"}, "Unknown method"),
    ({"amount": 0}, "more than zero"),
    ({"campaign": "nope"}, "no campaign"),
    ({"currency": "EUR"}, "takes gifts in USD"),
    ({"email": "not-an-email"}, "email is not valid"),
    ({"donor_name": " "}, "donor's name"),
    ({"received_on": date(2026, 3, 11)}, "future"),
    ({"dedication": Dedication.HONOUR}, "honours or remembers"),
    ({"goods_value": 5000}, "Describe the goods"),
    ({"goods_value": -1, "goods_description": "x"}, "negative"),
    ({"goods_value": 25001, "goods_description": "a gala dinner"},
     "cannot be worth more than the gift: 250.01 USD received for 250.00 USD given"),
])
def test_bad_input_is_refused(app, record, fields, message):
    with pytest.raises(FinanceError, match=message):
        record(**fields)
    assert db.session.scalar(select(Payment.id)) is None


def test_correcting_the_amount_voids_and_reissues_the_receipt(app, record, outbox):
    gift = record()
    jobs.commit()
    correct_offline_gift(gift.id, {"amount": 20000, "donor_name": "Yusuf Haddad-Levi"},
                         reason="typo on entry", actor=CLERK, zone=NY, now=record.now)
    old, new = receipts_of(gift)
    assert (old.status, old.amount, new.status, new.amount) == (
        ReceiptStatus.VOID, 25000, ReceiptStatus.ISSUED, 20000)
    assert new.replaces_id == old.id and "typo on entry" in old.void_reason
    assert charge_of(gift).amount == 20000 and charge_of(gift).net == 20000
    assert gift.donor_name == "Yusuf Haddad-Levi"
    correction = audit_of(gift)[-1]
    assert correction.action == "offline_gift.correct"
    before, after = json.loads(correction.before), json.loads(correction.after)
    assert (before["amount"], after["amount"]) == (25000, 20000)
    assert after["reason"] == "typo on entry" and after["receipt"] == new.number
    jobs.commit()
    assert outbox()[-1]["Subject"] == f"Your corrected receipt {new.number}"


def test_moving_the_date_to_another_year_renumbers_the_receipt(app, record):
    gift = record(received_on=date(2026, 1, 2))
    correct_offline_gift(gift.id, {"received_on": date(2025, 12, 31)},
                         reason="cheque dated in December", actor=CLERK, zone=NY,
                         now=record.now)
    old, new = receipts_of(gift)
    assert old.year == 2026 and new.year == 2025 and new.number.startswith("2025-")
    assert charge_of(gift).occurred_at.astimezone(NY).date() == date(2025, 12, 31)


def test_a_change_the_receipt_does_not_show_keeps_it(app, record):
    gift = record()
    correct_offline_gift(gift.id, {"anonymous": True}, reason="asked by phone", actor=CLERK,
                         zone=NY, now=record.now)
    [receipt] = receipts_of(gift)
    assert receipt.status is ReceiptStatus.ISSUED and gift.anonymous
    assert [e.action for e in audit_of(gift)] == ["offline_gift.record",
                                                  "offline_gift.correct"]


def test_corrections_are_checked_like_new_gifts(app, record):
    gift = record()
    other = record(reference="999")
    with pytest.raises(FinanceError, match="already recorded"):
        correct_offline_gift(other.id, {"reference": "001234"}, reason="x", actor=CLERK,
                             zone=NY, now=record.now)
    with pytest.raises(FinanceError, match="cannot be corrected: status"):
        correct_offline_gift(gift.id, {"status": "paid"}, reason="x", actor=CLERK, zone=NY,
                             now=record.now)
    with pytest.raises(FinanceError, match="Say why"):
        correct_offline_gift(gift.id, {"amount": 1}, reason=" ", actor=CLERK, zone=NY,
                             now=record.now)
    with pytest.raises(FinanceError, match="not an offline gift"):
        correct_offline_gift(123456, {"amount": 1}, reason="x", actor=CLERK, zone=NY,
                             now=record.now)


def test_a_bounced_cheque_is_reversed_not_deleted(app, record):
    gift = record()
    reverse_offline_gift(gift.id, reason="cheque bounced", actor=CLERK, zone=NY,
                         now=record.now + timedelta(days=1))
    assert gift.status is GiftStatus.REFUNDED
    [receipt] = receipts_of(gift)
    assert receipt.status is ReceiptStatus.VOID
    kinds = sorted(p.kind.value for p in db.session.scalars(
        select(Payment).where(Payment.gift_id == gift.id)))
    assert kinds == ["charge", "refund"]
    assert audit_of(gift)[-1].action == "offline_gift.reverse"
    with pytest.raises(FinanceError, match="already reversed"):
        reverse_offline_gift(gift.id, reason="again", actor=CLERK, zone=NY, now=record.now)
    with pytest.raises(FinanceError, match="can no longer be corrected"):
        correct_offline_gift(gift.id, {"amount": 100}, reason="x", actor=CLERK, zone=NY,
                             now=record.now)


def test_goods_in_return_change_the_statement(app, record):
    from app.finance.documents import DocumentSettings, receipt_document

    gift = record(goods_value=15000, goods_description="two gala dinner tickets")
    [receipt] = receipts_of(gift)
    doc = receipt_document(receipt, DocumentSettings.from_config(app.config))
    assert "two gala dinner tickets" in doc.statement
    assert "$150.00" in doc.statement and "$100.00" in doc.statement
    assert doc.method == "Cheque no. 001234" and doc.reference == "001234"


def test_goods_worth_the_whole_gift_are_taken_but_not_more(app, record):
    """A receipt may say nothing is deductible (the donor bought a ticket at its price); it
    never shows more received than given, even after a correction lowers the amount."""
    gift = record(goods_value=25000, goods_description="a gala table")
    assert gift.goods_value == 25000
    with pytest.raises(FinanceError, match="cannot be worth more than the gift") as refused:
        correct_offline_gift(gift.id, {"amount": 20000}, reason="misread", actor=CLERK,
                             zone=NY, now=record.now)
    assert refused.value.field == "goods_value"
    db.session.refresh(gift)
    assert (gift.amount, len(receipts_of(gift))) == (25000, 1)
