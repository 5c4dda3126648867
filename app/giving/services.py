"""The rules of giving: starting a gift, confirming its payment once, and recurring plans.

Services take plain arguments, add and flush, and never commit: the caller owns the transaction
(see ``app.jobs.commit``). Side effects such as the receipt email are queued to run after it.
"""

from __future__ import annotations

import calendar
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parseaddr
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app import audit
from app.accounts.services import get_or_create_supporter
from app.audit import Actor
from app.campaigns.models import Campaign
from app.db import insert_all, utcnow
from app.extensions import db
from app.finance.models import Receipt
from app.finance.receipts import (
    mail_first_receipts,
    mail_receipt,
    number_receipts,
    reconcile_receipt,
)
from app.giving.models import Dedication, Frequency, Gift, GiftStatus, PlanStatus, RecurringPlan
from app.mail import queue_email
from app.money import amount_text, cover_fee, format_money
from app.payments import ledger
from app.payments.base import (
    Card,
    ChargeDetails,
    CheckoutRequest,
    PaymentProvider,
    RefundResult,
)
from app.payments.models import Payment, PaymentKind
from app.urls import external_url


class GiftError(Exception):
    """A gift that breaks a rule. ``field`` names the form field the message belongs beside."""

    def __init__(self, field: str | None, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


class PaymentMismatch(Exception):
    """A provider reported a payment that does not match the gift it names."""


@dataclass(frozen=True)
class GivingRules:
    currencies: tuple[str, ...]
    min_amount: int
    max_amount: int
    fee_percent_bp: int
    fee_fixed: int
    # Named in the refusal of a gift above max_amount: where to arrange it instead.
    major_gifts_email: str = ""

    @classmethod
    def from_config(cls, config) -> GivingRules:
        return cls(
            currencies=tuple(config["CURRENCIES"]),
            min_amount=config["GIFT_MIN_MINOR"],
            max_amount=config["GIFT_MAX_MINOR"],
            fee_percent_bp=config["FEE_PERCENT_BP"],
            fee_fixed=config["FEE_FIXED_MINOR"],
            major_gifts_email=(config.get("MAJOR_GIFTS_EMAIL")
                               or parseaddr(config["MAIL_FROM"])[1]),
        )

    def fee_for(self, amount: int) -> int:
        return cover_fee(amount, percent_bp=self.fee_percent_bp, fixed=self.fee_fixed)


@dataclass(frozen=True)
class GiftRequest:
    """What the donor asked for on the form, already shaped (types, lengths, email syntax)."""

    amount: int
    currency: str
    frequency: Frequency
    donor_name: str
    email: str
    submission_key: str
    cover_fee: bool = False
    anonymous: bool = False
    comment: str | None = None
    dedication: Dedication | None = None
    dedication_name: str | None = None
    dedication_email: str | None = None
    utm: dict[str, str] = field(default_factory=dict)


UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
#: The longest name a dedication takes: it is printed in the note mailed to whoever the donor
#: names, so it is a name, not room for a message to a stranger.
DEDICATION_NAME_MAX = 100
DEDICATION_NAME_TOO_LONG = f"Use at most {DEDICATION_NAME_MAX} characters for their name."


def start_gift(campaign: Campaign, req: GiftRequest, *, rules: GivingRules, now: datetime) -> Gift:
    """Create the pending gift for a submitted form, or return the one this submission already
    created (a double-clicked button or a retried request)."""
    existing = gift_for_submission(req.submission_key)
    if existing is not None:
        return existing
    if not campaign.is_live(now):
        if campaign.has_ended(now):
            raise GiftError(None, "This campaign has ended, so it no longer takes gifts.")
        raise GiftError(None, "This campaign has not started yet.")
    if req.currency not in rules.currencies or req.currency != campaign.currency:
        raise GiftError("amount", f"This campaign takes gifts in {campaign.currency} only.")
    _check_amount(req.amount, req.currency, rules)
    if req.dedication and not req.dedication_name:
        raise GiftError("dedication_name", "Tell us who the gift honours or remembers.")
    if req.dedication and len(req.dedication_name) > DEDICATION_NAME_MAX:
        raise GiftError("dedication_name", DEDICATION_NAME_TOO_LONG)

    supporter = get_or_create_supporter(req.email, req.donor_name)
    gift = Gift(
        submission_key=req.submission_key,
        campaign=campaign,
        supporter=supporter,
        frequency=req.frequency,
        amount=req.amount,
        fee_covered=rules.fee_for(req.amount) if req.cover_fee else 0,
        currency=req.currency,
        donor_name=req.donor_name,
        anonymous=req.anonymous,
        comment=req.comment or None,
        dedication=req.dedication,
        dedication_name=req.dedication_name if req.dedication else None,
        dedication_email=req.dedication_email if req.dedication else None,
        provider="",
        **{name: req.utm.get(name) or None for name in UTM_FIELDS},
    )
    try:
        with db.session.begin_nested():
            db.session.add(gift)
    except IntegrityError:  # the same submission, committed meanwhile by a concurrent request
        existing = gift_for_submission(req.submission_key)
        if existing is None:
            raise
        return existing
    return gift


def _check_amount(amount: int, currency: str, rules: GivingRules) -> None:
    if amount < rules.min_amount:
        low = format_money(rules.min_amount, currency)
        raise GiftError("amount", f"The smallest gift we can take is {low}.")
    if amount > rules.max_amount:
        high = format_money(rules.max_amount, currency)
        to = f"us at {rules.major_gifts_email}" if rules.major_gifts_email else "us"
        raise GiftError("amount", f"Gifts above {high} cannot be made online; please write to "
                                  f"{to} and we will arrange a transfer.")


def gift_for_submission(submission_key: str) -> Gift | None:
    return db.session.scalar(select(Gift).where(Gift.submission_key == submission_key))


def begin_checkout(gift: Gift, provider: PaymentProvider, *, success_url: str,
                   cancel_url: str) -> str:
    """The hosted checkout URL for a pending gift, opened once per gift."""
    if gift.checkout_url:
        return gift.checkout_url
    checkout = provider.create_checkout(
        CheckoutRequest(
            reference=gift.public_id,
            amount=gift.total,
            currency=gift.currency,
            frequency=gift.frequency,
            description=f"{gift.frequency.label} gift to {gift.campaign.title}",
            email=gift.supporter.email,
            success_url=success_url,
            cancel_url=cancel_url,
            metadata={"gift": gift.public_id, "campaign": gift.campaign.slug},
        ),
        idempotency_key=f"gift-{gift.public_id}",
    )
    gift.provider = provider.name
    gift.checkout_id = checkout.id
    gift.checkout_url = checkout.url
    db.session.flush()
    return checkout.url


def gift_by_public_id(public_id: str) -> Gift | None:
    return db.session.scalar(select(Gift).where(Gift.public_id == public_id))


#: How long after it was started a gift can fill the form again: as long as a checkout session
#: lasts at the provider (Stripe's: 24 hours).
REFILL_WITHIN = timedelta(hours=24)


def gift_to_refill(campaign: Campaign, public_id: str, *, started: Collection[str],
                   now: datetime) -> Gift | None:
    """The gift whose details may fill ``campaign``'s donation form again, or None.

    ``started`` are the public ids of the gifts the asking browser session started
    (``giving.started``): the id alone is in links anyone may hold, so only a gift among them,
    of this campaign and started within ``REFILL_WITHIN``, comes back. What of it fills the form
    is the form's rule (``giving.forms.refill``): all of it while unpaid, only who gave once paid.
    """
    if public_id not in started:
        return None
    gift = gift_by_public_id(public_id)
    if gift is None or gift.campaign_id != campaign.id or now - gift.created_at > REFILL_WITHIN:
        return None
    return gift


def offers_monthly(gift: Gift, now: datetime) -> bool:
    """Whether the thank-you page offers to make ``gift`` monthly: a paid one-time gift to a
    campaign still taking gifts. The offer is a link to the donation form, filled in; the monthly
    gift is made there and paid through the checkout like any other."""
    return (gift.status is GiftStatus.PAID and gift.frequency is Frequency.ONE_TIME
            and gift.campaign.is_live(now))


def _locked_gift(gift_id: int) -> Gift:
    """Re-read the gift under a row lock (PostgreSQL), so two deliveries confirming the same
    gift at once run one after the other. SQLite serialises writers anyway."""
    return db.session.execute(
        select(Gift).where(Gift.id == gift_id).with_for_update().execution_options(
            populate_existing=True)
    ).scalar_one()


def _charge_row(provider: str, provider_id: str) -> Payment | None:
    return db.session.scalar(
        select(Payment).where(Payment.provider == provider, Payment.provider_id == provider_id))


def _new_charge(gift: Gift, *, provider: str, provider_id: str, amount: int, currency: str,
                occurred_at: datetime, payment_intent_id: str | None = None,
                charge_id: str | None = None, card: Card | None = None) -> Payment:
    return Payment(
        gift_id=gift.id, campaign_id=gift.campaign_id, kind=PaymentKind.CHARGE,
        amount=amount, currency=currency, provider=provider, provider_id=provider_id,
        payment_intent_id=payment_intent_id, charge_id=charge_id, occurred_at=occurred_at,
        card_brand=card.brand if card else None, card_last4=card.last4 if card else None,
    )


def _add_charge(gift: Gift, **charge) -> Payment | None:
    """Insert the charge row, or return None when another delivery recorded it meanwhile."""
    new = _new_charge(gift, **charge)
    try:
        with db.session.begin_nested():
            db.session.add(new)
    except IntegrityError:
        return None
    return new


def _check_payment(gift: Gift, amount: int, currency: str) -> None:
    if amount != gift.total or currency.upper() != gift.currency:
        raise PaymentMismatch(
            f"gift {gift.public_id} expects {gift.total} {gift.currency}, "
            f"provider reported {amount} {currency.upper()}"
        )


def _mark_paid(gift: Gift, occurred_at: datetime) -> None:
    if not gift.status.moved_money:  # pending, or a bank debit processing (or failed)
        gift.status = GiftStatus.PAID
        gift.paid_at = occurred_at


def record_gift_payment(gift: Gift, *, provider: str, provider_id: str, amount: int,
                        currency: str, occurred_at: datetime,
                        payment_intent_id: str | None = None,
                        zone: ZoneInfo, charge_id: str | None = None,
                        card: Card | None = None) -> Payment:
    """Record the charge that pays ``gift``: once, whatever the number of deliveries.

    Checks amount and currency against the gift first. Returns the charge's ledger row, new or
    already there. ``card``, when the provider has told it, goes on the charge and the receipt;
    ``zone``: the organisation's, whose year numbers the receipt.
    """
    gift = _locked_gift(gift.id)
    _check_payment(gift, amount, currency)
    existing = _charge_row(provider, provider_id)
    if existing is not None:
        return existing
    charge = _add_charge(gift, provider=provider, provider_id=provider_id, amount=amount,
                         currency=gift.currency, occurred_at=occurred_at,
                         payment_intent_id=payment_intent_id, charge_id=charge_id, card=card)
    if charge is None:
        return _charge_row(provider, provider_id)
    _mark_paid(gift, occurred_at)
    _queue_receipt(gift, zone)
    queue_dedication_notice(gift, now=utcnow())
    return charge


@dataclass(frozen=True)
class ReportedPayment:
    """A one-time gift's payment as its provider reported it, for
    :func:`record_first_payments`: the gift it names (public id), and what
    :func:`record_gift_payment` takes, with the provider's charge (fee, net, ids)."""

    gift: str
    provider_id: str
    amount: int
    currency: str
    occurred_at: datetime
    payment_intent_id: str | None = None
    charge_id: str | None = None
    card: Card | None = None
    details: ChargeDetails | None = None


def record_first_payments(provider: str, payments: Sequence[ReportedPayment], *,
                          zone: ZoneInfo) -> list[Payment | None]:
    """What :func:`record_gift_payment` (then ``ledger.settle_charge``) does for each of many
    payments reported at once (a batch of webhook events), set-based: the gifts locked with
    one query, the charges, receipts and receipt mails inserted together, each year's receipt
    numbers taken with one counter update. Only for a gift's first money, the common case: a
    payment whose gift is not here, has money or a receipt recorded already, does not match
    the gift's amount, comes second for its gift in ``payments``, or is recorded already, is
    left out, for :func:`record_gift_payment` to take with its rules and outcomes. Returns
    the charge recorded for each of ``payments`` (inserted, outside the session: to read),
    None for those left out."""
    named: dict[str, ReportedPayment] = {}
    for payment in payments:
        named.setdefault(payment.gift, payment)
    gifts = db.session.scalars(
        select(Gift).where(Gift.public_id.in_(named)).order_by(Gift.id).with_for_update()
        .options(selectinload(Gift.supporter), selectinload(Gift.campaign))  # for the mails
        .execution_options(populate_existing=True)).all()
    ids = [gift.id for gift in gifts]
    with_money = set(db.session.scalars(select(Payment.gift_id).where(Payment.gift_id.in_(ids))))
    with_money.update(db.session.scalars(select(Receipt.gift_id).where(Receipt.gift_id.in_(ids))))
    recorded = set(db.session.scalars(select(Payment.provider_id).where(
        Payment.provider == provider,
        Payment.provider_id.in_([payment.provider_id for payment in named.values()]))))
    found = {gift.public_id: gift for gift in gifts}
    first = [(gift, payment) for public_id, payment in named.items()  # in the order they came
             if (gift := found.get(public_id)) is not None and gift.id not in with_money
             and not gift.status.moved_money and payment.provider_id not in recorded
             and _pays(gift, payment)]
    if not first:
        return [None] * len(payments)
    charges: dict[int, Payment] = {}  # by id(payment)
    for gift, payment in first:
        charge = _new_charge(
            gift, provider=provider, provider_id=payment.provider_id, amount=payment.amount,
            currency=gift.currency, occurred_at=payment.occurred_at,
            payment_intent_id=payment.payment_intent_id, charge_id=payment.charge_id,
            card=payment.card)
        ledger.settle_charge(charge, payment.details)
        charges[id(payment)] = charge
        _mark_paid(gift, payment.occurred_at)
    insert_all(list(charges.values()), key="provider_id")
    now = utcnow()
    receipts = number_receipts([(gift, payment.amount) for gift, payment in first], zone=zone,
                               now=now)
    insert_all(receipts, key="number")
    mail_first_receipts([(gift, receipt, charges[id(payment)])
                         for (gift, payment), receipt in zip(first, receipts, strict=True)])
    for gift, _ in first:
        queue_dedication_notice(gift, now=now)
    return [charges.get(id(payment)) for payment in payments]


def _pays(gift: Gift, payment: ReportedPayment) -> bool:
    try:
        _check_payment(gift, payment.amount, payment.currency)
    except PaymentMismatch:
        return False
    return True


def mark_gift_processing(gift: Gift) -> None:
    """The checkout is complete but its money clears days later (a bank debit, ACH Direct
    Debit): the gift shows as processing to the donor until the provider says it cleared
    (``record_gift_payment``, which mails the receipt) or failed (``mark_gift_failed``).
    Nothing is recorded in the ledger and no receipt is issued before the money clears."""
    gift = _locked_gift(gift.id)
    if gift.status is GiftStatus.PENDING:
        gift.status = GiftStatus.PROCESSING


def mark_gift_failed(gift: Gift, *, now: datetime) -> None:
    """The delayed payment failed: no money came. The gift is marked failed and the donor
    told once, with a link to the donation form set to the same gift. A gift whose money was
    recorded meanwhile is left as it is."""
    gift = _locked_gift(gift.id)
    if gift.status not in (GiftStatus.PENDING, GiftStatus.PROCESSING):
        return
    gift.status = GiftStatus.FAILED
    queue_email(
        to=gift.supporter.email,
        subject=f"Your gift to {gift.campaign.title} did not go through",
        template="gift_payment_failed",
        dedupe_key=f"gift-payment-failed:{gift.id}",
        gift=gift,
        campaign=gift.campaign,
        retry_url=give_again_url(gift, now=now),
    )


def give_again_url(gift: Gift | RecurringPlan, *, now: datetime) -> str:
    """The donation form, on PUBLIC_URL, set to the gift's (or a plan's) amount and
    frequency: its campaign's while that takes gifts, else the main appeal's (``/give``)."""
    choice = {"frequency": gift.frequency.value,
              "amount": amount_text(gift.amount, gift.currency)}
    if gift.campaign.is_live(now):
        return external_url("campaigns.campaign", slug=gift.campaign.slug, **choice)
    return external_url("campaigns.give_now", **choice)


def queue_dedication_notice(gift: Gift, *, now: datetime) -> bool:
    """Queue the note telling the person a paid gift honours (or their family, for a gift in
    memory) about it, if the donor gave their address; returns whether it was queued.

    The app mails an address a stranger typed in, so: only for a gift whose payment is recorded
    (the caller, ``record_gift_payment``, runs on the provider's paid event, the sandbox's
    included: a form sent or a checkout left sends nothing); at most once per gift, whoever
    calls and however often or at once (``dedication_sent_at`` is claimed by a conditional
    UPDATE that one transaction wins, on top of the outbox's unique key); and the note says
    who asked for it, that they entered the address, and where to report it
    (``ORG_CONTACT_EMAIL``). It names the donor, unless anonymous, but never the amount.
    """
    if not (gift.dedication and gift.dedication_email) or not gift.status.counts:
        return False
    claimed = db.session.execute(
        update(Gift).where(Gift.id == gift.id, Gift.dedication_sent_at.is_(None))
        .values(dedication_sent_at=now).execution_options(synchronize_session="fetch"))
    if claimed.rowcount != 1:
        return False
    return queue_email(
        to=gift.dedication_email,
        subject="A gift to independent journalism, "
                + ("in your honour" if gift.dedication is Dedication.HONOUR
                   else f"in memory of {gift.dedication_name}"),
        template="dedication",
        dedupe_key=f"dedication:{gift.id}",
        gift=gift,
        campaign=gift.campaign,
    )


def ensure_plan(gift: Gift, *, provider: str, subscription_id: str, customer_id: str | None,
                started_at: datetime) -> RecurringPlan:
    """The recurring plan behind a monthly or annual gift's subscription, created once."""
    plan = plan_by_subscription(provider, subscription_id)
    if plan is None:
        plan = RecurringPlan(
            supporter_id=gift.supporter_id, campaign_id=gift.campaign_id,
            frequency=gift.frequency, amount=gift.amount, fee_covered=gift.fee_covered,
            currency=gift.currency, provider=provider, provider_subscription_id=subscription_id,
            provider_customer_id=customer_id, started_at=started_at,
            next_charge_at=next_period(started_at, gift.frequency), periods_paid=1,
        )
        try:
            with db.session.begin_nested():
                db.session.add(plan)
        except IntegrityError:
            plan = plan_by_subscription(provider, subscription_id)
    if gift.plan_id is None:
        gift.plan_id = plan.id
    return plan


def record_plan_start(plan: RecurringPlan, started_at: datetime | None) -> None:
    """A plan started when its subscription did (the provider's ``start_date``, which its
    subscription events carry); until one of them comes, when it was first paid."""
    if started_at is not None:
        plan.started_at = started_at


def plan_by_subscription(provider: str, subscription_id: str) -> RecurringPlan | None:
    return db.session.scalar(select(RecurringPlan).where(
        RecurringPlan.provider == provider,
        RecurringPlan.provider_subscription_id == subscription_id,
    ))


def record_renewal(plan: RecurringPlan, *, provider_id: str, amount: int, currency: str,
                   occurred_at: datetime, zone: ZoneInfo,
                   payment_intent_id: str | None = None, card: Card | None = None) -> Payment:
    """A later period's payment of a plan: a new paid gift with its charge, recorded once
    (its receipt numbered in ``zone``'s year).

    Returns the charge's ledger row, new or already there.
    """
    plan = db.session.execute(
        select(RecurringPlan).where(RecurringPlan.id == plan.id).with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    existing = _charge_row(plan.provider, provider_id)
    if existing is not None:
        return existing
    if amount != plan.total or currency.upper() != plan.currency:
        raise PaymentMismatch(f"plan {plan.id} charges {plan.total} {plan.currency}, "
                              f"provider reported {amount} {currency.upper()}")
    first = plan.gifts[0] if plan.gifts else None
    gift = Gift(
        campaign_id=plan.campaign_id, supporter_id=plan.supporter_id, plan_id=plan.id,
        frequency=plan.frequency, amount=plan.amount, fee_covered=plan.fee_covered,
        currency=plan.currency, status=GiftStatus.PAID, paid_at=occurred_at,
        donor_name=first.donor_name if first else plan.supporter.name,
        anonymous=first.anonymous if first else False,
        provider=plan.provider,
    )
    db.session.add(gift)
    db.session.flush()
    charge = _add_charge(gift, provider=plan.provider, provider_id=provider_id, amount=amount,
                         currency=plan.currency, occurred_at=occurred_at,
                         payment_intent_id=payment_intent_id, card=card)
    if charge is None:  # recorded concurrently by another delivery
        db.session.delete(gift)
        return _charge_row(plan.provider, provider_id)
    plan.periods_paid += 1
    plan.next_charge_at = next_period(plan.next_charge_at, plan.frequency)
    if plan.status is PlanStatus.PAST_DUE:
        plan.status = PlanStatus.ACTIVE
    _queue_receipt(gift, zone)
    return charge


def cancel_plan(plan: RecurringPlan, provider: PaymentProvider, *, now: datetime,
                reason: str | None = None) -> None:
    """Stop a monthly or annual gift at the provider, then here. Cancelling twice is a no-op."""
    if plan.status is PlanStatus.CANCELED:
        return
    provider.cancel_subscription(plan.provider_subscription_id,
                                 idempotency_key=f"cancel-plan-{plan.id}")
    mark_plan_canceled(plan, when=now, reason=reason)


def mark_plan_canceled(plan: RecurringPlan, *, when: datetime, reason: str | None = None,
                       tell_donor: bool = False) -> None:
    """Record that a plan ended (our request, or the provider telling us). ``tell_donor``:
    the provider ended it (payment failed for good, or cancelled in its portal), so the donor
    hears from us that the gift ended, once, with a link to start it again; a plan cancelled
    on our pages was cancelled by the donor or staff, who know."""
    if plan.status is PlanStatus.CANCELED:
        return
    plan.status = PlanStatus.CANCELED
    plan.canceled_at = when
    plan.cancel_reason = (reason or "").strip()[:500] or None
    if tell_donor:
        queue_email(
            to=plan.supporter.email,
            subject=f"Your {plan.frequency.label.lower()} gift to {plan.campaign.title} has "
                    "ended",
            template="plan_ended",
            dedupe_key=f"plan-ended:{plan.id}",
            plan=plan,
            campaign=plan.campaign,
            restart_url=give_again_url(plan, now=utcnow()),
        )


def mark_plan_past_due(plan: RecurringPlan, *, invoice_id: str, attempt: int,
                       retrying: bool) -> None:
    """A renewal (invoice ``invoice_id``) failed: flag the plan, and tell the donor once per
    invoice, whatever the order the provider's events come in. The mail offers the
    card-update link only while the plan can still be saved: the provider will try the
    payment again (``retrying``) and the plan has not ended; an invoice paid meanwhile (a
    retry that went through, its event here first) changes nothing."""
    if _charge_row(plan.provider, invoice_id) is not None:
        return
    savable = retrying and plan.status is not PlanStatus.CANCELED
    if plan.status is not PlanStatus.CANCELED:
        plan.status = PlanStatus.PAST_DUE
    queue_email(
        to=plan.supporter.email,
        subject="Your gift to independent journalism could not be renewed",
        template="payment_failed",
        dedupe_key=f"payment-failed:{plan.id}:{invoice_id}",
        plan=plan,
        campaign=plan.campaign,
        attempt=attempt,
        savable=savable,
        restart_url=give_again_url(plan, now=utcnow()),
    )


#: The provider's subscription states, in our terms.
PROVIDER_PLAN_STATUS = {
    "active": PlanStatus.ACTIVE, "trialing": PlanStatus.ACTIVE,
    "past_due": PlanStatus.PAST_DUE, "unpaid": PlanStatus.PAST_DUE,
    "canceled": PlanStatus.CANCELED, "incomplete_expired": PlanStatus.CANCELED,
}


def sync_plan(plan: RecurringPlan, *, status: str, amount: int | None, when: datetime,
              reason: str | None = None, ends_at: datetime | None = None) -> None:
    """Apply the provider's view of a subscription (a change made in its portal, say).
    ``ends_at``: cancelled by the donor, paid until then (None: it goes on, or goes on again).

    Cancelled is final: a late 'active' update cannot bring a cancelled plan back.
    """
    if plan.status is PlanStatus.CANCELED:
        return
    ours = PROVIDER_PLAN_STATUS.get(status)
    if ours is PlanStatus.CANCELED:
        mark_plan_canceled(plan, when=when, reason=reason, tell_donor=True)
        return
    if ours is not None:
        plan.status = ours
    plan.ends_at = ends_at
    if amount and amount != plan.total:
        # Changed outside our pages: the new price is the whole charge.
        plan.amount, plan.fee_covered = amount, 0


def change_plan_amount(plan: RecurringPlan, provider: PaymentProvider, *, amount: int,
                       rules: GivingRules) -> None:
    """Charge ``amount`` (plus the fee, if the donor covers it) from the next period on."""
    if plan.status is PlanStatus.CANCELED:
        raise GiftError(None, "This gift has been cancelled; start a new one instead.")
    _check_amount(amount, plan.currency, rules)
    fee = rules.fee_for(amount) if plan.fee_covered else 0
    provider.change_subscription_amount(
        plan.provider_subscription_id, amount=amount + fee, currency=plan.currency,
        frequency=plan.frequency, description=f"{plan.frequency.label} gift to "
                                              f"{plan.campaign.title}",
        idempotency_key=f"plan-{plan.id}-amount-{amount + fee}-{plan.periods_paid}")
    plan.amount = amount
    plan.fee_covered = fee


def refundable(gift: Gift, amount: int | None = None) -> tuple[Payment, int, int]:
    """The gift's charge, how much of it the ledger shows refunded, and the amount to refund
    (all that is left when ``amount`` is None). Raises GiftError when there is nothing to
    refund, or ``amount`` is more than what is left."""
    charge = db.session.scalar(select(Payment).where(
        Payment.gift_id == gift.id, Payment.kind == PaymentKind.CHARGE))
    if charge is None:
        raise GiftError(None, "This gift has not been paid, so there is nothing to refund.")
    already = ledger.refunded_amount(charge)
    remaining = charge.amount - already
    amount = remaining if amount is None else amount
    if remaining <= 0:
        raise GiftError("amount", "This gift has already been refunded in full.")
    if not 0 < amount <= remaining:
        left = format_money(remaining, charge.currency)
        raise GiftError("amount", f"Refund between {format_money(1, charge.currency)} and "
                                  f"{left}, the part not refunded yet.")
    return charge, already, amount


def online_refund_problem(charge: Payment, provider: PaymentProvider) -> str | None:
    """Why a charge cannot be refunded through the provider (None: it can)."""
    if charge.provider != provider.name:
        return ("This gift was not paid online through the payment provider: an offline gift "
                "is reversed or corrected on its own page.")
    if not (charge.payment_intent_id or charge.charge_id):
        return ("The payment provider has not told us this gift's charge yet; refund it in "
                "the provider's dashboard.")
    return None


def request_refund(gift: Gift, provider: PaymentProvider, *, amount: int | None, reason: str,
                   key: str, actor: Actor) -> RefundResult:
    """Staff give back ``amount`` of an online gift (all that is left when None), for
    ``reason``, through the provider. Nothing is recorded in the ledger here: the provider's
    refund event does that and corrects the receipt, as for a refund made in its dashboard,
    so the books follow the money whichever way it was refunded. ``key`` is the refund form's
    one-time key: a repeated or double-clicked submission asks the provider with the same
    idempotency key, and so refunds once. Audited."""
    reason = " ".join((reason or "").split())
    if not reason:
        raise GiftError("reason", "Say why the gift is refunded.")
    charge, already, amount = refundable(gift, amount)
    problem = online_refund_problem(charge, provider)
    if problem:
        raise GiftError(None, problem)
    result = provider.refund(payment_intent_id=charge.payment_intent_id,
                             charge_id=charge.charge_id, amount=amount,
                             idempotency_key=f"staff-refund-{gift.id}-{key}")
    audit.record_change(actor, "gift.refund", "gift", gift.id,
                        before={"status": gift.status.value, "refunded": already},
                        after={"requested": amount, "currency": charge.currency,
                               "reason": reason[:500], "refund": result.id,
                               "provider_status": result.status})
    return result


def due_plans(provider: str, now: datetime) -> list[RecurringPlan]:
    return list(db.session.scalars(
        select(RecurringPlan).where(
            RecurringPlan.provider == provider,
            RecurringPlan.status == PlanStatus.ACTIVE,
            RecurringPlan.next_charge_at <= now,
        ).order_by(RecurringPlan.id)
    ))


def next_period(start: datetime, frequency: Frequency) -> datetime:
    """The same day next month (or year), clamped to the month's last day (Jan 31 -> Feb 28)."""
    months = 1 if frequency is Frequency.MONTHLY else 12
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)


def _queue_receipt(gift: Gift, zone: ZoneInfo) -> None:
    """Number the gift's receipt and mail it with our thanks."""
    mail_receipt(gift, reconcile_receipt(gift, zone=zone, now=utcnow()))

