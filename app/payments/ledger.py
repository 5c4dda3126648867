"""Recording money that moves after a charge: refunds and disputes, once each, and the
provider's fee and net on the charge itself. Each function is idempotent (keyed by the
provider's id) and keeps the gift's status in step with the ledger.

A dispute row carries the provider's dispute fee in ``fee`` (what its balance transaction
says: 1500 on a $100 dispute at Stripe); the row of a dispute won carries the fee of the
reinstatement, negative when the provider returns the dispute fee, 0 when it keeps it.

The receipt follows the money (:func:`follow_money`): after all of an event's movements are
recorded, not after each, so a donor is mailed the final state only."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from app.db import utcnow
from app.extensions import db
from app.finance.models import Receipt
from app.finance.receipts import settle_receipt
from app.giving.models import Gift
from app.payments.base import Card, ChargeDetails
from app.payments.models import Payment, PaymentKind, gift_status


def find_charge(provider: str, *, payment_intent_id: str | None = None,
                charge_id: str | None = None) -> Payment | None:
    """The recorded charge a provider object refers to by its payment intent or charge id."""
    keys = []
    if payment_intent_id:
        keys += [Payment.provider_id == payment_intent_id,
                 Payment.payment_intent_id == payment_intent_id]
    if charge_id:
        keys.append(Payment.charge_id == charge_id)
    if not keys:
        return None
    return db.session.scalar(select(Payment).where(
        Payment.provider == provider, Payment.kind == PaymentKind.CHARGE, or_(*keys)))


def settle_charge(charge: Payment, details: ChargeDetails | None) -> None:
    """Fill in the ids, fee and net, and the card, the provider reported; never overwrite what
    is known."""
    if details is None:
        return
    charge.charge_id = charge.charge_id or details.charge_id
    charge.payment_intent_id = charge.payment_intent_id or details.payment_intent_id
    if charge.card_last4 is None and details.card is not None:
        charge.card_brand, charge.card_last4 = details.card.brand, details.card.last4
    if charge.fee is None and details.fee is not None:
        charge.fee, charge.net = details.fee, details.net


def last_card(plan_id: int) -> Card | None:
    """The card of a recurring plan's latest charge that names one (the sandbox charges its
    renewals to it, as Stripe charges a subscription's card on file)."""
    row = db.session.execute(
        select(Payment.card_brand, Payment.card_last4).join(Gift, Gift.id == Payment.gift_id)
        .where(Gift.plan_id == plan_id, Payment.kind == PaymentKind.CHARGE,
               Payment.card_last4.is_not(None))
        .order_by(Payment.id.desc()).limit(1)).first()
    return Card(brand=row.card_brand, last4=row.card_last4) if row else None


def _add(charge: Payment, kind: PaymentKind, provider_id: str, amount: int,
         occurred_at: datetime, fee: int | None = None) -> bool:
    existing = db.session.scalar(select(Payment).where(
        Payment.provider == charge.provider, Payment.provider_id == provider_id))
    if existing is not None:
        if existing.fee is None and fee is not None:  # reported since: never overwritten
            existing.fee = fee
        return False
    try:
        with db.session.begin_nested():
            db.session.add(Payment(
                gift_id=charge.gift_id, campaign_id=charge.campaign_id, kind=kind,
                amount=amount, currency=charge.currency, provider=charge.provider,
                provider_id=provider_id, charge_id=charge.charge_id,
                payment_intent_id=charge.payment_intent_id, occurred_at=occurred_at, fee=fee))
    except IntegrityError:  # recorded concurrently
        return False
    refresh_gift_status(db.session.get(Gift, charge.gift_id))
    return True


def follow_money(charge: Payment, *, zone: ZoneInfo,
                 now: datetime | None = None) -> Receipt | None:
    """Make the receipt of the charge's gift say what its money says now, and tell the donor
    (``app.finance.receipts.settle_receipt``; ``zone``: the organisation's, whose year numbers
    receipts): called once the movements of an event are all recorded, so that a donor hears
    of the final state only. Returns the current receipt."""
    return settle_receipt(db.session.get(Gift, charge.gift_id), zone=zone, now=now or utcnow())


def refunded_amount(charge: Payment) -> int:
    return db.session.scalar(select(func.coalesce(func.sum(Payment.amount), 0)).where(
        Payment.gift_id == charge.gift_id, Payment.kind == PaymentKind.REFUND))


def record_refund(charge: Payment, *, refund_id: str, amount: int,
                  occurred_at: datetime) -> bool:
    """A refund, once. The caller then calls :func:`follow_money`, once every movement of
    the event is recorded."""
    return _add(charge, PaymentKind.REFUND, refund_id, amount, occurred_at)


def record_dispute(charge: Payment, *, dispute_id: str, amount: int, occurred_at: datetime,
                   fee: int | None = None) -> bool:
    """Money a dispute withdrew, and the provider's dispute fee (None: not reported; filled
    in when a later event reports it), once. Then :func:`follow_money`, as for a refund."""
    return _add(charge, PaymentKind.DISPUTE, dispute_id, amount, occurred_at, fee)


def dispute_won_id(dispute_id: str) -> str:
    """The provider id a won dispute's row is recorded under (its dispute has the plain id)."""
    return f"{dispute_id}:won"


def record_dispute_won(charge: Payment, *, dispute_id: str, amount: int,
                       occurred_at: datetime, fee: int | None = None) -> bool:
    """A won dispute returns the withheld money (``amount``) and, as the provider decides,
    its fee (``fee`` negative; 0 when it keeps it). The dispute itself must be recorded
    first (:func:`record_dispute`); if it is not, it is recorded here with the same amount
    and its fee unknown."""
    record_dispute(charge, dispute_id=dispute_id, amount=amount, occurred_at=occurred_at)
    return _add(charge, PaymentKind.DISPUTE_WON, dispute_won_id(dispute_id), amount,
                occurred_at, fee)


def refresh_gift_status(gift: Gift) -> None:
    """Derive a paid gift's status from its ledger rows."""
    totals = dict(db.session.execute(
        select(Payment.kind, func.sum(Payment.amount)).where(Payment.gift_id == gift.id)
        .group_by(Payment.kind)).all())
    status = gift_status(totals)
    if status is not None:
        gift.status = status
