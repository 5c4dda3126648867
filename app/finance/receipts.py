"""Issuing, voiding and reissuing receipts, numbered without gaps per year."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update

from app.db import insert
from app.extensions import db
from app.finance.models import Receipt, ReceiptCounter, ReceiptStatus
from app.giving.models import Gift
from app.payments.models import SIGN, Payment, PaymentKind


def next_sequence(year: int) -> int:
    """The next receipt number of ``year``, taken under the counter row's lock.

    The UPDATE locks the year's row until the transaction ends, so concurrent issuers queue
    behind one another; a rollback returns the number along with the receipt.
    """
    return reserve_sequences(year, 1)


def reserve_sequences(year: int, count: int) -> int:
    """Take ``count`` consecutive receipt numbers of ``year`` at once, the same way (for
    receipts issued in bulk, such as the demo data's); returns the first."""
    db.session.execute(insert(ReceiptCounter).values(year=year, last_sequence=0)
                       .on_conflict_do_nothing(index_elements=["year"]))
    last = db.session.execute(
        update(ReceiptCounter).where(ReceiptCounter.year == year)
        .values(last_sequence=ReceiptCounter.last_sequence + count)
        .returning(ReceiptCounter.last_sequence)
    ).scalar_one()
    return last - count + 1


def receipt_year(when: datetime, zone: ZoneInfo) -> int:
    """Receipts belong to the calendar year of the organisation's zone (a gift at 23:30 on 31
    December in New York is that year's, though it is already January in UTC)."""
    return when.astimezone(zone).year


def issue_receipt(gift: Gift, *, amount: int, zone: ZoneInfo, now: datetime,
                  replaces: Receipt | None = None) -> Receipt:
    year = receipt_year(gift.paid_at or now, zone)
    sequence = next_sequence(year)
    receipt = Receipt(gift_id=gift.id, year=year, sequence=sequence,
                      number=f"{year}-{sequence:06d}", amount=amount, currency=gift.currency,
                      issued_at=now, replaces=replaces)
    db.session.add(receipt)
    db.session.flush()
    return receipt


def current_receipt(gift: Gift) -> Receipt | None:
    return db.session.scalar(select(Receipt).where(
        Receipt.gift_id == gift.id, Receipt.status == ReceiptStatus.ISSUED)
        .order_by(Receipt.id.desc()).limit(1))


def void_receipt(receipt: Receipt, *, reason: str, now: datetime) -> None:
    if receipt.status is ReceiptStatus.VOID:
        return
    receipt.status = ReceiptStatus.VOID
    receipt.voided_at = now
    receipt.void_reason = reason[:300]


def receipted_amount(gift: Gift) -> int:
    """What the donor gave and kept given: charges less refunds (a dispute is not a refund)."""
    kinds = (PaymentKind.CHARGE, PaymentKind.REFUND)
    totals = dict(db.session.execute(
        select(Payment.kind, func.sum(Payment.amount)).where(
            Payment.gift_id == gift.id, Payment.kind.in_(kinds)).group_by(Payment.kind)).all())
    return sum(SIGN[kind] * total for kind, total in totals.items())


def reconcile_receipt(gift: Gift, *, zone: ZoneInfo, now: datetime) -> Receipt | None:
    """Make the gift's receipt say what the ledger says: issue one for a new payment, void it
    after a full refund, void and reissue it for a partial one. Returns the current receipt."""
    amount = receipted_amount(gift)
    receipt = current_receipt(gift)
    if receipt is not None and receipt.amount == amount:
        return receipt
    if receipt is not None:
        void_receipt(receipt, reason="refunded in full" if amount <= 0
                     else "partially refunded; replaced by a corrected receipt", now=now)
    if amount <= 0:
        return None
    return issue_receipt(gift, amount=amount, zone=zone, now=now, replaces=receipt)


def reissue_receipt(gift: Gift, *, reason: str, zone: ZoneInfo, now: datetime) -> Receipt | None:
    """Void the gift's current receipt and issue a corrected one, with a new number, for what
    the ledger says: after a correction to something the receipt shows (the donor's name, the
    date, the campaign), where the amount alone would not call for one."""
    amount = receipted_amount(gift)
    receipt = current_receipt(gift)
    if receipt is not None:
        void_receipt(receipt, reason=reason, now=now)
    if amount <= 0:
        return None
    return issue_receipt(gift, amount=amount, zone=zone, now=now, replaces=receipt)
