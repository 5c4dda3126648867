"""Offline gifts: cheques, wires and cash that finance records by hand.

Each is a paid one-time ``Gift`` (provider ``offline``) with one charge in the ledger whose
provider is the method and whose provider id is the reference (the cheque number, the bank's
wire reference; one is made up for cash), unique per method by the ledger's own constraint, so
the same cheque cannot be entered twice. It gets a numbered receipt like any gift. Corrections
change the gift and its ledger row, are written to the audit log with the values before and
after, and void the receipt and issue a corrected one when anything it shows has changed. A
bounced cheque or a gift entered by mistake is reversed, never deleted: a refund in the ledger,
and the receipt voided.

Every function takes the acting staff member (``Actor``) and never commits.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from app import audit
from app.accounts.services import get_or_create_supporter
from app.audit import Actor
from app.campaigns.models import Campaign
from app.extensions import db
from app.finance.common import FinanceError, campaign_by_slug
from app.finance.models import Receipt, ReceiptStatus
from app.finance.receipts import current_receipt, mail_receipt, reconcile_receipt, reissue_receipt
from app.giving.models import Dedication, Frequency, Gift, GiftStatus
from app.money import to_decimal
from app.payments import ledger
from app.payments.models import Payment, PaymentKind

METHODS = ("cheque", "wire", "cash")
PROVIDER = "offline"


@dataclass(frozen=True)
class OfflineGift:
    """What finance enters for a cheque, wire or cash gift. Amounts in minor units."""

    received_on: date
    method: str
    donor_name: str
    email: str
    campaign: str  # slug
    amount: int
    currency: str | None = None  # the campaign's, when not given
    reference: str | None = None  # required for cheques and wires; made up for cash
    dedication: Dedication | None = None
    dedication_name: str | None = None
    goods_value: int | None = None
    goods_description: str | None = None
    anonymous: bool = False


def received_at(day: date, zone: ZoneInfo) -> datetime:
    """Noon of the day received in the organisation's zone, in UTC: the day and the receipt
    year stay the same whatever the zone's midnight rules."""
    return datetime.combine(day, time(12), zone).astimezone(UTC)


def _check(entry: OfflineGift, campaign: Campaign, *, zone: ZoneInfo, now: datetime) -> None:
    if entry.method not in METHODS:
        raise FinanceError(f"Unknown method {entry.method!r}; use one of: "
                           f"{', '.join(METHODS)}.", field="method")
    if entry.method != "cash" and not (entry.reference or "").strip():
        raise FinanceError(f"Give the {entry.method}'s reference (the cheque number or the "
                           "bank's reference).", field="reference")
    if not entry.donor_name.strip():
        raise FinanceError("Give the donor's name.", field="donor_name")
    try:
        validate_email(entry.email, check_deliverability=False)
    except EmailNotValidError as exc:
        raise FinanceError(f"The donor's email is not valid: {exc}", field="email") from None
    if entry.amount <= 0:
        raise FinanceError("The amount must be more than zero.", field="amount")
    currency = entry.currency or campaign.currency
    if currency != campaign.currency:
        raise FinanceError(f"The campaign {campaign.slug!r} takes gifts in {campaign.currency}; "
                           f"record this {currency} gift on a {currency} campaign.",
                           field="currency")
    if entry.received_on > now.astimezone(zone).date():
        raise FinanceError("The date received is in the future.", field="received_on")
    if entry.dedication and not (entry.dedication_name or "").strip():
        raise FinanceError("Name whom the gift honours or remembers.", field="dedication_name")
    if entry.goods_value is not None:
        if entry.goods_value < 0:
            raise FinanceError("The value of goods or services cannot be negative.",
                               field="goods_value")
        if entry.goods_value > entry.amount:
            # A receipt would show more received than given, and nothing deductible.
            raise FinanceError(
                f"The goods or services cannot be worth more than the gift: "
                f"{to_decimal(entry.goods_value, currency)} {currency} received for "
                f"{to_decimal(entry.amount, currency)} {currency} given. Enter their "
                "fair-market value, at most the amount.", field="goods_value")
        if entry.goods_value and not (entry.goods_description or "").strip():
            raise FinanceError("Describe the goods or services the donor received.",
                               field="goods_description")


def _reference(entry: OfflineGift) -> str:
    reference = (entry.reference or "").strip()
    if not reference:  # cash: a reference to write on the deposit slip
        reference = f"CASH-{entry.received_on:%Y%m%d}-{secrets.token_hex(3).upper()}"
    return reference[:255]


def _duplicate(method: str, reference: str) -> FinanceError:
    gift_id = db.session.scalar(select(Payment.gift_id).where(
        Payment.provider == method, Payment.provider_id == reference))
    return FinanceError(f"A {method} with reference {reference!r} is already recorded "
                        f"(gift {gift_id}).", field="reference")


def _snapshot(gift: Gift, charge: Payment) -> dict:
    return {
        "received_at": gift.paid_at.isoformat(), "method": charge.provider,
        "reference": charge.provider_id, "donor_name": gift.donor_name,
        "email": gift.supporter.email, "campaign": gift.campaign.slug, "amount": gift.amount,
        "currency": gift.currency,
        "dedication": gift.dedication.value if gift.dedication else None,
        "dedication_name": gift.dedication_name, "goods_value": gift.goods_value,
        "goods_description": gift.goods_description, "anonymous": gift.anonymous,
        "status": gift.status.value,
    }


def record_offline_gift(entry: OfflineGift, *, actor: Actor, zone: ZoneInfo, now: datetime,
                        send_receipt: bool = True) -> Gift:
    """Record a cheque, wire or cash gift with its ledger row and receipt; email the receipt
    (after the commit) unless ``send_receipt`` is False."""
    entry = replace(entry, method=entry.method.strip().lower(),
                    email=entry.email.strip(), donor_name=entry.donor_name.strip())
    campaign = campaign_by_slug(entry.campaign)
    _check(entry, campaign, zone=zone, now=now)
    reference = _reference(entry)
    if db.session.scalar(select(Payment.id).where(Payment.provider == entry.method,
                                                  Payment.provider_id == reference)):
        raise _duplicate(entry.method, reference)
    when = received_at(entry.received_on, zone)
    supporter = get_or_create_supporter(entry.email, entry.donor_name)
    gift = Gift(
        campaign=campaign, supporter=supporter, frequency=Frequency.ONE_TIME,
        amount=entry.amount, fee_covered=0, currency=campaign.currency,
        status=GiftStatus.PAID, donor_name=entry.donor_name, anonymous=entry.anonymous,
        dedication=entry.dedication,
        dedication_name=entry.dedication_name.strip() if entry.dedication else None,
        goods_value=entry.goods_value or None,
        goods_description=(entry.goods_description or "").strip() or None,
        provider=PROVIDER, paid_at=when, created_at=now,
    )
    db.session.add(gift)
    db.session.flush()
    charge = Payment(
        gift_id=gift.id, campaign_id=campaign.id, kind=PaymentKind.CHARGE, amount=entry.amount,
        currency=campaign.currency, provider=entry.method, provider_id=reference,
        # No provider takes a cut of a cheque: the fee is known, and nil.
        fee=0, net=entry.amount, occurred_at=when, created_at=now,
    )
    try:
        with db.session.begin_nested():
            db.session.add(charge)
    except IntegrityError:  # the same cheque, recorded at the same moment by someone else
        raise _duplicate(entry.method, reference) from None
    receipt = reconcile_receipt(gift, zone=zone, now=now)
    audit.record(actor_id=actor.id, actor_label=actor.label, action="offline_gift.record",
                 target_type="gift", target_id=gift.id, now=now,
                 after={**_snapshot(gift, charge), "receipt": receipt.number})
    if send_receipt:
        mail_receipt(gift, receipt)
    return gift


def get_offline_gift(gift_id: int) -> tuple[Gift, Payment]:
    gift = db.session.execute(select(Gift).where(Gift.id == gift_id).with_for_update()
                              ).scalar_one_or_none()
    if gift is None or gift.provider != PROVIDER:
        raise FinanceError(f"Gift {gift_id} is not an offline gift.", field="gift")
    charge = db.session.scalar(select(Payment).where(
        Payment.gift_id == gift.id, Payment.kind == PaymentKind.CHARGE))
    return gift, charge


#: What a correction may change, and whether the receipt shows it.
CORRECTABLE = ("received_on", "method", "reference", "donor_name", "email", "campaign",
               "amount", "dedication", "dedication_name", "goods_value", "goods_description",
               "anonymous")


def correct_offline_gift(gift_id: int, changes: dict, *, reason: str, actor: Actor,
                         zone: ZoneInfo, now: datetime, send_receipt: bool = True) -> Gift:
    """Change what was entered for an offline gift. The audit log keeps the values before and
    after; when anything the receipt shows changed, the receipt is voided and a corrected one
    (a new number) issued and, unless ``send_receipt`` is False, emailed."""
    unknown = set(changes) - set(CORRECTABLE)
    if unknown:
        raise FinanceError(f"These cannot be corrected: {', '.join(sorted(unknown))}.")
    if not reason.strip():
        raise FinanceError("Say why the gift is corrected (it goes in the audit log).",
                           field="reason")
    gift, charge = get_offline_gift(gift_id)
    if gift.status is not GiftStatus.PAID:
        raise FinanceError(f"Gift {gift_id} has been reversed or refunded; it can no longer "
                           "be corrected.")
    before = _snapshot(gift, charge)
    current = OfflineGift(
        received_on=gift.paid_at.astimezone(zone).date(), method=charge.provider,
        donor_name=gift.donor_name, email=gift.supporter.email, campaign=gift.campaign.slug,
        amount=gift.amount, currency=gift.currency, reference=charge.provider_id,
        dedication=gift.dedication, dedication_name=gift.dedication_name,
        goods_value=gift.goods_value, goods_description=gift.goods_description,
        anonymous=gift.anonymous)
    values = {f.name: getattr(current, f.name) for f in fields(OfflineGift)}
    values.update(changes)
    if "campaign" in changes and "currency" not in changes:
        values["currency"] = None
    entry = OfflineGift(**values)
    entry = replace(entry, method=entry.method.strip().lower(), email=entry.email.strip(),
                    donor_name=entry.donor_name.strip())
    campaign = campaign_by_slug(entry.campaign)
    _check(entry, campaign, zone=zone, now=now)
    reference = _reference(entry)
    if (entry.method, reference) != (charge.provider, charge.provider_id) and \
            db.session.scalar(select(Payment.id).where(Payment.provider == entry.method,
                                                       Payment.provider_id == reference)):
        raise _duplicate(entry.method, reference)

    when = received_at(entry.received_on, zone)
    if when.astimezone(zone).date() == gift.paid_at.astimezone(zone).date():
        when = gift.paid_at  # same day: keep the recorded time
    gift.paid_at = when
    gift.donor_name = entry.donor_name
    gift.anonymous = entry.anonymous
    gift.amount = entry.amount
    gift.currency = campaign.currency
    gift.campaign = campaign
    gift.dedication = entry.dedication
    gift.dedication_name = (entry.dedication_name or "").strip() or None \
        if entry.dedication else None
    gift.goods_value = entry.goods_value or None
    gift.goods_description = (entry.goods_description or "").strip() or None \
        if gift.goods_value else None
    if entry.email.lower() != gift.supporter.email:
        gift.supporter = get_or_create_supporter(entry.email, entry.donor_name)
    charge.provider, charge.provider_id = entry.method, reference
    charge.amount, charge.net, charge.currency = entry.amount, entry.amount, campaign.currency
    charge.campaign_id = campaign.id
    charge.occurred_at = when
    db.session.flush()

    after = _snapshot(gift, charge)
    changed = sorted(k for k in after if after[k] != before[k])
    if not changed:
        return gift
    shown = {"received_at", "method", "reference", "donor_name", "campaign", "amount",
             "currency", "dedication", "dedication_name", "goods_value", "goods_description"}
    receipt = current_receipt(gift)
    if shown.intersection(changed) or receipt is None:
        receipt = reissue_receipt(gift, reason=f"corrected ({', '.join(changed)}): {reason}",
                                  zone=zone, now=now)
        if send_receipt and receipt is not None:
            mail_receipt(gift, receipt, corrected=True)
    audit.record(actor_id=actor.id, actor_label=actor.label, action="offline_gift.correct",
                 target_type="gift", target_id=gift.id, now=now,
                 before=before, after={**after, "reason": reason.strip(),
                                       "receipt": receipt.number if receipt else None})
    return gift


def reverse_offline_gift(gift_id: int, *, reason: str, actor: Actor, zone: ZoneInfo,
                         now: datetime) -> Gift:
    """Take an offline gift back out of the books (a bounced cheque, an entry made by
    mistake): a refund of the whole amount in the ledger, and its receipt voided (``zone``:
    the organisation's, as for recording one)."""
    if not reason.strip():
        raise FinanceError("Say why the gift is reversed (it goes in the audit log).",
                           field="reason")
    gift, charge = get_offline_gift(gift_id)
    if gift.status is GiftStatus.REFUNDED:
        raise FinanceError(f"Gift {gift_id} is already reversed.")
    before = _snapshot(gift, charge)
    left = charge.amount - ledger.refunded_amount(charge)
    ledger.record_refund(charge, refund_id=f"{charge.provider_id}:reversed", amount=left,
                         occurred_at=now)
    ledger.follow_money(charge, zone=zone, now=now)
    db.session.flush()
    audit.record(actor_id=actor.id, actor_label=actor.label, action="offline_gift.reverse",
                 target_type="gift", target_id=gift.id, now=now, before=before,
                 after={**_snapshot(gift, charge), "reason": reason.strip()})
    return gift


@dataclass(frozen=True)
class OfflineRow:
    """One line of the offline gifts list."""

    gift: Gift
    charge: Payment
    receipt: str | None  # the current receipt's number; None once reversed


def recent_offline_gifts(limit: int = 100) -> list[OfflineRow]:
    """The latest offline gifts by date received (newest first), with their current receipt."""
    current = (select(Receipt.number).where(Receipt.gift_id == Gift.id,
                                            Receipt.status == ReceiptStatus.ISSUED)
               .order_by(Receipt.id.desc()).limit(1).correlate(Gift).scalar_subquery())
    rows = db.session.execute(
        select(Gift, Payment, current)
        .join(Payment, (Payment.gift_id == Gift.id) & (Payment.kind == PaymentKind.CHARGE))
        .where(Gift.provider == PROVIDER)
        .options(joinedload(Gift.campaign), joinedload(Gift.supporter))
        .order_by(Gift.paid_at.desc(), Gift.id.desc()).limit(limit)).all()
    return [OfflineRow(gift, charge, number) for gift, charge, number in rows]


@dataclass(frozen=True)
class OfflineGiftRecord:
    """An offline gift as its page shows it: the ledger, every receipt, the audit history."""

    gift: Gift
    charge: Payment
    ledger: list[Payment]
    receipts: list[Receipt]  # newest first, void ones included
    history: list[audit.AuditEntry]  # oldest first


def offline_gift_record(gift_id: int) -> OfflineGiftRecord:
    """Read an offline gift for its page (no lock, nothing changed)."""
    gift = db.session.get(Gift, gift_id)
    if gift is None or gift.provider != PROVIDER:
        raise FinanceError(f"Gift {gift_id} is not an offline gift.", field="gift")
    rows = list(db.session.scalars(select(Payment).where(Payment.gift_id == gift.id)
                                   .order_by(Payment.occurred_at, Payment.id)))
    charge = next(p for p in rows if p.kind is PaymentKind.CHARGE)
    receipts = list(db.session.scalars(select(Receipt).where(Receipt.gift_id == gift.id)
                                       .order_by(Receipt.id.desc())))
    history = list(db.session.scalars(select(audit.AuditEntry).where(
        audit.AuditEntry.target_type == "gift", audit.AuditEntry.target_id == str(gift.id))
        .order_by(audit.AuditEntry.at, audit.AuditEntry.id)))
    return OfflineGiftRecord(gift, charge, rows, receipts, history)


def campaign_choices() -> dict[str, tuple[str, str]]:
    """Every campaign an offline gift may be for, newest first: slug -> (title, currency)."""
    return {slug: (title, currency) for slug, title, currency in db.session.execute(
        select(Campaign.slug, Campaign.title, Campaign.currency)
        .order_by(Campaign.starts_at.desc(), Campaign.id.desc()))}
