from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import UTCDateTime, enum_column, utcnow
from app.extensions import db
from app.giving.models import GiftStatus

if TYPE_CHECKING:
    from app.giving.models import Gift


class PaymentKind(enum.StrEnum):
    CHARGE = "charge"  # money in
    REFUND = "refund"  # money back to the donor
    DISPUTE = "dispute"  # money taken back by the card network
    DISPUTE_WON = "dispute_won"  # a lost dispute's money returned


#: How each kind moves the campaign's total.
SIGN = {
    PaymentKind.CHARGE: 1,
    PaymentKind.REFUND: -1,
    PaymentKind.DISPUTE: -1,
    PaymentKind.DISPUTE_WON: 1,
}


def gift_status(totals: Mapping[PaymentKind, int]) -> GiftStatus | None:
    """The one rule for a gift's status from its ledger (the sums of its rows by kind): money
    a dispute withholds makes it disputed, refunds as large as the charge refunded, smaller
    ones partly refunded; None before any charge (the gift stays pending)."""
    charged = totals.get(PaymentKind.CHARGE, 0)
    if not charged:
        return None
    refunded = totals.get(PaymentKind.REFUND, 0)
    if totals.get(PaymentKind.DISPUTE, 0) - totals.get(PaymentKind.DISPUTE_WON, 0) > 0:
        return GiftStatus.DISPUTED
    if refunded >= charged:
        return GiftStatus.REFUNDED
    return GiftStatus.PARTIALLY_REFUNDED if refunded > 0 else GiftStatus.PAID


class Payment(db.Model):
    """The ledger: one row per money movement, keyed by the provider's own id.

    The unique (provider, provider_id) pair is what makes a replayed webhook, a retried request
    or a double-clicked button unable to record the same money twice.
    """

    __tablename__ = "payment"
    __table_args__ = (
        UniqueConstraint("provider", "provider_id"),
        CheckConstraint("amount > 0", name="amount_positive"),
        # Campaign totals sum this index alone.
        Index("ix_payment_campaign_kind_amount", "campaign_id", "kind", "amount"),
        # The staff dashboards read a campaign's rows after their snapshot (app.staff.rollup).
        Index("ix_payment_campaign_id_id", "campaign_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    gift_id: Mapped[int] = mapped_column(ForeignKey("gift.id"), index=True)
    # Copied from the gift: the ledger line says which campaign it credits.
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"))
    kind: Mapped[PaymentKind] = mapped_column(enum_column(PaymentKind))
    amount: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    provider: Mapped[str] = mapped_column(String(20))
    provider_id: Mapped[str] = mapped_column(String(255))
    # The provider's charge and payment intent behind this movement (for a refund or dispute,
    # the ones it takes money back from), so later events about them find this row.
    charge_id: Mapped[str | None] = mapped_column(String(255), index=True)
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), index=True)
    # What the provider kept and what reached the organisation, from its balance transaction;
    # unknown (None) until the provider reports it.
    fee: Mapped[int | None] = mapped_column(Integer)
    net: Mapped[int | None] = mapped_column(Integer)
    # A charge's card as the provider reports it (brand, last four digits), for the receipt's
    # "Visa card ending 4242"; None for other movements, offline gifts, or when not reported.
    card_brand: Mapped[str | None] = mapped_column(String(20))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    # Finance reads the ledger by period (reconciliation, exports).
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    gift: Mapped[Gift] = relationship()


class ProviderEvent(db.Model):
    """Every webhook event received, stored raw, once."""

    __tablename__ = "provider_event"
    __table_args__ = (UniqueConstraint("provider", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why an event changed nothing: not one of ours, or it disagreed with our records; for a
    # parked event, what it still waits for.
    note: Mapped[str | None] = mapped_column(String(500))
    # About a sale that is not ours (another product sold on the same provider account):
    # acknowledged, stored, processed, changing nothing.
    not_ours: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Ours, but still waiting for an event it depends on longer than WEBHOOK_PARK_AFTER_HOURS
    # after the provider created it: acknowledged and left unprocessed (processed_at null) for
    # staff (the operations inbox); kept once it is applied later, as a record.
    parked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # Attempts to apply a stored event that did not go through (a worker, process-pending, a
    # retry from the operations inbox): how many, and the error the last one raised (empty
    # when it only waits for another event; ``note`` says which). Shown in the operations
    # inbox (``app.staff.operations``); cleared of the error once an attempt applies it.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(String(500))


class Payout(db.Model):
    """Money the provider sent to the organisation's bank account, as it reports it: one row per
    payout, updated by its events (``app.payments.payouts``). Amounts in minor units, the
    currency in upper case like the ledger's."""

    __tablename__ = "payout"
    __table_args__ = (UniqueConstraint("provider", "provider_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    provider_id: Mapped[str] = mapped_column(String(255))  # po_...
    amount: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    # pending, in_transit, paid, failed, canceled (the provider's words)
    status: Mapped[str] = mapped_column(String(20))
    # The day the provider expects the money in the bank (its arrival_date, a UTC midnight):
    # reconciliation picks payouts by this day.
    arrival_date: Mapped[date] = mapped_column(Date, index=True)
    automatic: Mapped[bool] = mapped_column(Boolean, default=True)
    # When the provider created it.
    created: Mapped[datetime] = mapped_column(UTCDateTime)
    # in_progress, completed or not_applicable: whether its balance transactions can be listed.
    reconciliation_status: Mapped[str | None] = mapped_column(String(20))
    failure_message: Mapped[str | None] = mapped_column(String(500))
    # Filled once its balance transactions are fetched (None until then): how many there were
    # (the payout's own debit left out) and the sum of their fees.
    transactions_fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    transaction_count: Mapped[int | None] = mapped_column(Integer)
    fee_total: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PayoutTransaction(db.Model):
    """One balance transaction a payout paid out, keyed by the provider's id.

    ``ledger_kind`` and ``ledger_ref`` say which ledger row (``Payment``) it should be: a charge
    by its charge id (or ``payment_intent_id``), a refund or dispute by the row's own provider
    id. The row itself is found when it is read (``app.payments.payouts.matches``), so a
    payout reported before the charge it pays out links as soon as the charge is recorded.
    Transactions with no ``ledger_kind`` (Stripe's own fees, adjustments of other origins) are
    kept too: finance sees them, counted and summed, as not in the ledger.
    """

    __tablename__ = "payout_transaction"
    __table_args__ = (UniqueConstraint("provider", "transaction_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    payout_id: Mapped[int] = mapped_column(ForeignKey("payout.id", ondelete="CASCADE"),
                                           index=True)
    provider: Mapped[str] = mapped_column(String(20))
    transaction_id: Mapped[str] = mapped_column(String(255))  # txn_...
    type: Mapped[str] = mapped_column(String(50))  # charge, payment, refund, adjustment, ...
    source_id: Mapped[str | None] = mapped_column(String(255))  # ch_, py_, re_, du_, ...
    ledger_kind: Mapped[PaymentKind | None] = mapped_column(enum_column(PaymentKind))
    ledger_ref: Mapped[str | None] = mapped_column(String(255))
    payment_intent_id: Mapped[str | None] = mapped_column(String(255))
    amount: Mapped[int] = mapped_column(Integer)  # signed, as the provider reports it
    fee: Mapped[int] = mapped_column(Integer)
    net: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
