"""Recording money that moves after a charge: refunds and disputes, once each, and the
provider's fee and net on the charge itself. Each function is idempotent (keyed by the
provider's id) and keeps the gift's status in step with the ledger."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.finance.receipts import mail_receipt, reconcile_receipt
from app.giving.models import Gift
from app.payments.base import Card, ChargeDetails
from app.payments.models import Payment, PaymentKind, gift_status
from app.templating import org_zone


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
         occurred_at: datetime) -> bool:
    exists = db.session.scalar(select(Payment.id).where(
        Payment.provider == charge.provider, Payment.provider_id == provider_id))
    if exists:
        return False
    try:
        with db.session.begin_nested():
            db.session.add(Payment(
                gift_id=charge.gift_id, campaign_id=charge.campaign_id, kind=kind,
                amount=amount, currency=charge.currency, provider=charge.provider,
                provider_id=provider_id, charge_id=charge.charge_id,
                payment_intent_id=charge.payment_intent_id, occurred_at=occurred_at))
    except IntegrityError:  # recorded concurrently
        return False
    gift = db.session.get(Gift, charge.gift_id)
    refresh_gift_status(gift)
    if kind is PaymentKind.REFUND:
        _correct_receipt(gift, occurred_at)
    return True


def _correct_receipt(gift: Gift, when: datetime) -> None:
    """A refund voids the receipt; what is left of the gift gets a corrected one, mailed."""
    receipt = reconcile_receipt(gift, zone=org_zone(), now=when)
    if receipt is not None and receipt.replaces_id is not None:
        mail_receipt(gift, receipt, corrected=True)


def refunded_amount(charge: Payment) -> int:
    return db.session.scalar(select(func.coalesce(func.sum(Payment.amount), 0)).where(
        Payment.gift_id == charge.gift_id, Payment.kind == PaymentKind.REFUND))


def record_refund(charge: Payment, *, refund_id: str, amount: int,
                  occurred_at: datetime) -> bool:
    return _add(charge, PaymentKind.REFUND, refund_id, amount, occurred_at)


def record_dispute(charge: Payment, *, dispute_id: str, amount: int,
                   occurred_at: datetime) -> bool:
    return _add(charge, PaymentKind.DISPUTE, dispute_id, amount, occurred_at)


def dispute_won_id(dispute_id: str) -> str:
    """The provider id a won dispute's row is recorded under (its dispute has the plain id)."""
    return f"{dispute_id}:won"


def record_dispute_won(charge: Payment, *, dispute_id: str, amount: int,
                       occurred_at: datetime) -> bool:
    """A won dispute returns the withheld money; the dispute itself is recorded first."""
    record_dispute(charge, dispute_id=dispute_id, amount=amount, occurred_at=occurred_at)
    return _add(charge, PaymentKind.DISPUTE_WON, dispute_won_id(dispute_id), amount,
                occurred_at)


def refresh_gift_status(gift: Gift) -> None:
    """Derive a paid gift's status from its ledger rows."""
    totals = dict(db.session.execute(
        select(Payment.kind, func.sum(Payment.amount)).where(Payment.gift_id == gift.id)
        .group_by(Payment.kind)).all())
    status = gift_status(totals)
    if status is not None:
        gift.status = status
