"""Issuing, voiding and reissuing receipts, numbered without gaps per year, and mailing them
(:func:`mail_receipt`, the one place a receipt email is made; :func:`mail_void_notice`, the
one that tells a donor a receipt is void).

A receipt follows the money (:func:`settle_receipt`): it is for what the donor gave and kept
given, charges less refunds less what a dispute withholds. A refund voids it (and what is left
gets a corrected one); a dispute that takes the money voids it; a dispute won reissues it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update

from app.db import insert
from app.extensions import db
from app.finance.models import Receipt, ReceiptCounter, ReceiptStatus
from app.giving.models import Gift
from app.mail import queue_email, queue_emails
from app.payments.base import Card
from app.payments.models import SIGN, Payment, PaymentKind

#: How a gift was paid, by the provider of its charge, when no card is known.
METHOD_LABELS = {
    "stripe": "Card, online",
    "sandbox": "Card, online (test payment)",
    "demo": "Online",
    "cheque": "Cheque",
    "wire": "Bank transfer",
    "cash": "Cash",
}


def reserve_sequences(year: int, count: int) -> int:
    """Take ``count`` consecutive receipt numbers of ``year``; returns the first. The UPDATE
    locks the year's counter row until the transaction ends, so concurrent issuers queue
    behind one another, and a rollback returns the numbers along with the receipts. The row
    is created by the year's first receipt (one statement more, once a year)."""
    take = (update(ReceiptCounter).where(ReceiptCounter.year == year)
            .values(last_sequence=ReceiptCounter.last_sequence + count)
            .returning(ReceiptCounter.last_sequence))
    last = db.session.execute(take).scalar_one_or_none()
    if last is None:
        db.session.execute(insert(ReceiptCounter).values(year=year, last_sequence=0)
                           .on_conflict_do_nothing(index_elements=["year"]))
        last = db.session.execute(take).scalar_one()
    return last - count + 1


def receipt_year(when: datetime, zone: ZoneInfo) -> int:
    """Receipts belong to the calendar year of the organisation's zone (a gift at 23:30 on 31
    December in New York is that year's, though it is already January in UTC)."""
    return when.astimezone(zone).year


def issue_receipt(gift: Gift, *, amount: int, zone: ZoneInfo, now: datetime,
                  replaces: Receipt | None = None) -> Receipt:
    receipt, = number_receipts([(gift, amount)], zone=zone, now=now, replaces=replaces)
    db.session.add(receipt)
    db.session.flush()
    return receipt


def number_receipts(gifts: Sequence[tuple[Gift, int]], *, zone: ZoneInfo, now: datetime,
                    replaces: Receipt | None = None) -> list[Receipt]:
    """A new receipt for each ``(gift, amount)``, numbered in that order, each year's numbers
    taken with one counter update (:func:`reserve_sequences`); not added to the session:
    :func:`issue_receipt` adds its one, a batch of gifts paid at once inserts theirs together
    (``app.db.insert_all``)."""
    years = [receipt_year(gift.paid_at or now, zone) for gift, _ in gifts]
    first = {year: reserve_sequences(year, years.count(year)) for year in dict.fromkeys(years)}
    receipts = []
    for (gift, amount), year in zip(gifts, years, strict=True):
        sequence, first[year] = first[year], first[year] + 1
        receipts.append(Receipt(gift_id=gift.id, year=year, sequence=sequence,
                                number=f"{year}-{sequence:06d}", amount=amount,
                                currency=gift.currency, issued_at=now, replaces=replaces))
    return receipts


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


def _ledger_totals(gift: Gift) -> dict[PaymentKind, int]:
    return {PaymentKind(kind): total for kind, total in db.session.execute(
        select(Payment.kind, func.sum(Payment.amount)).where(Payment.gift_id == gift.id)
        .group_by(Payment.kind)).all()}


def receipted_amount(gift: Gift) -> int:
    """What the donor gave and kept given: charges less refunds, less what disputes withhold
    (a dispute won gives it back)."""
    return sum(SIGN[kind] * total for kind, total in _ledger_totals(gift).items())


def _void_reason(gift: Gift, amount: int) -> str:
    totals = _ledger_totals(gift)
    withheld = totals.get(PaymentKind.DISPUTE, 0) - totals.get(PaymentKind.DISPUTE_WON, 0)
    if amount > 0:
        why = "disputed" if withheld > 0 else "partially refunded"
        return f"{why}; replaced by a corrected receipt"
    return "disputed: the card's issuer took the money back" if withheld > 0 \
        else "refunded in full"


def last_receipt(gift: Gift) -> Receipt | None:
    """The gift's latest receipt, void or not."""
    return db.session.scalar(select(Receipt).where(Receipt.gift_id == gift.id)
                             .order_by(Receipt.id.desc()).limit(1))


def reconcile_receipt(gift: Gift, *, zone: ZoneInfo, now: datetime) -> Receipt | None:
    """Make the gift's receipt say what the ledger says: issue one for a new payment, void it
    after a full refund or a dispute that took the money, void and reissue it for a partial
    refund, issue it again (naming the void one) when a dispute is won. Returns the current
    receipt."""
    amount = receipted_amount(gift)
    receipt = current_receipt(gift)
    if receipt is not None and receipt.amount == amount:
        return receipt
    if receipt is not None:
        void_receipt(receipt, reason=_void_reason(gift, amount), now=now)
    if amount <= 0:
        return None
    return issue_receipt(gift, amount=amount, zone=zone, now=now,
                         replaces=receipt or last_receipt(gift))


def settle_receipt(gift: Gift, *, zone: ZoneInfo, now: datetime) -> Receipt | None:
    """After money moved on a paid gift (a refund, a dispute opened, lost or won): make its
    receipt follow (:func:`reconcile_receipt`) and tell the donor what changed, once: the
    corrected (or reissued) receipt, or, when none replaces it, that the receipt is void.
    Returns the current receipt."""
    before = current_receipt(gift)
    after = reconcile_receipt(gift, zone=zone, now=now)
    if after is not None and after is not before:
        mail_receipt(gift, after, corrected=after.replaces_id is not None)
    elif after is None and before is not None:
        mail_void_notice(gift, before)
    return after


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


def gift_charge(gift: Gift) -> Payment | None:
    """The charge that paid ``gift`` (its first, should there be more)."""
    return db.session.scalar(select(Payment).where(
        Payment.gift_id == gift.id, Payment.kind == PaymentKind.CHARGE)
        .order_by(Payment.id).limit(1))


def payment_method(gift: Gift, charge: Payment | None) -> str:
    """How a gift was paid, on its receipt (mail and PDF): "Visa card ending 4242" (the card
    the provider reported; "... (test payment)" in the sandbox), "Card, online" when it
    reported none, "Cheque no. 001234", "Bank transfer", "Cash"."""
    method = charge.provider if charge is not None else gift.provider
    if charge is not None and charge.card_last4:
        label = Card(brand=charge.card_brand, last4=charge.card_last4).label
        return f"{label} (test payment)" if method == "sandbox" else label
    if method == "cheque" and charge is not None:
        return f"Cheque no. {charge.provider_id}"
    return METHOD_LABELS.get(method, method.title() or "Online")


def mail_receipt(gift: Gift, receipt: Receipt | None, *, corrected: bool = False) -> bool:
    """Queue the receipt email for ``gift`` (sent after the commit): our thanks and the receipt
    with how and how often the donor gives, and links (on PUBLIC_URL) to the receipt's PDF and
    to the gift in their account. ``corrected``: a new receipt replacing a void one (after a
    refund or a correction), mailed once per receipt number; otherwise the first receipt,
    mailed once per gift. Returns False when that mail was queued already."""
    return queue_email(**_receipt_mail(gift, receipt, gift_charge(gift), corrected=corrected))


def mail_first_receipts(paid: Sequence[tuple[Gift, Receipt, Payment]]) -> None:
    """Queue the receipt emails of many gifts paid at once, each ``(gift, its first receipt,
    the charge that paid it)``: the mail :func:`mail_receipt` makes, stored together (once per
    gift all the same: the outbox's unique key)."""
    queue_emails([_receipt_mail(gift, receipt, charge) for gift, receipt, charge in paid])


def _receipt_mail(gift: Gift, receipt: Receipt | None, charge: Payment | None, *,
                  corrected: bool = False) -> dict:
    if corrected:
        subject, key = f"Your corrected receipt {receipt.number}", \
            f"receipt:{gift.id}:{receipt.number}"
    else:
        subject, key = f"Thank you for your gift to {gift.campaign.title}", f"receipt:{gift.id}"
    return {"to": gift.supporter.email, "subject": subject, "template": "receipt",
            "dedupe_key": key, "gift": gift, "campaign": gift.campaign, "receipt": receipt,
            "payment_method": payment_method(gift, charge)}


def mail_void_notice(gift: Gift, receipt: Receipt) -> bool:
    """Queue the note telling the donor that ``receipt`` is void, and why (its void reason),
    once per receipt: it must not be used for taxes. Returns False when queued already."""
    return queue_email(to=gift.supporter.email, subject=f"Your receipt {receipt.number} is void",
                       template="receipt_void", dedupe_key=f"receipt-void:{receipt.number}",
                       gift=gift, campaign=gift.campaign, receipt=receipt)
