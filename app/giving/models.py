from __future__ import annotations

import enum
import secrets
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.campaigns.models import Frequency
from app.db import UTCDateTime, enum_column, utcnow
from app.extensions import db

if TYPE_CHECKING:
    from app.accounts.models import Supporter
    from app.campaigns.models import Campaign


class GiftStatus(enum.StrEnum):
    PENDING = "pending"  # the donor is at the provider's checkout
    # Paid by a method whose money comes days later (a bank debit: ACH Direct Debit): the
    # checkout is complete, the money not yet cleared; then paid, or failed.
    PROCESSING = "processing"
    FAILED = "failed"  # that delayed payment failed: no money came
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    DISPUTED = "disputed"  # the card holder disputed it and the money is withheld

    @property
    def counts(self) -> bool:
        """Whether the gift counts among a campaign's gifts and donors."""
        return self in (GiftStatus.PAID, GiftStatus.PARTIALLY_REFUNDED)

    @property
    def moved_money(self) -> bool:
        """Whether money has been recorded for the gift (it may have gone back since)."""
        return self not in (GiftStatus.PENDING, GiftStatus.PROCESSING, GiftStatus.FAILED)


class Dedication(enum.StrEnum):
    HONOUR = "honour"
    MEMORY = "memory"

    @property
    def label(self) -> str:
        return "In honour of" if self is Dedication.HONOUR else "In memory of"


class PlanStatus(enum.StrEnum):
    ACTIVE = "active"
    PAST_DUE = "past_due"  # the last renewal failed; the provider is retrying
    CANCELED = "canceled"


def _public_id() -> str:
    return secrets.token_urlsafe(16)


class Gift(db.Model):
    """One donation: what the donor chose on the form, and whether it has been paid.

    A recurring plan produces one gift per period. The money itself is in the ledger
    (``payments.Payment``); a gift is paid once its charge is recorded there.
    """

    __tablename__ = "gift"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("fee_covered >= 0", name="fee_not_negative"),
        Index("ix_gift_campaign_status_supporter", "campaign_id", "status", "supporter_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Unguessable id for the thank-you URL, so gifts cannot be enumerated.
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=_public_id)
    # The form's one-time token: a double-submitted form finds the gift it already made.
    submission_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"))
    supporter_id: Mapped[int] = mapped_column(ForeignKey("supporter.id"), index=True)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("recurring_plan.id"), index=True)
    frequency: Mapped[Frequency] = mapped_column(enum_column(Frequency))
    amount: Mapped[int] = mapped_column(Integer)
    fee_covered: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[GiftStatus] = mapped_column(enum_column(GiftStatus), default=GiftStatus.PENDING)
    donor_name: Mapped[str] = mapped_column(String(200))
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    comment: Mapped[str | None] = mapped_column(Text)
    dedication: Mapped[Dedication | None] = mapped_column(enum_column(Dedication))
    dedication_name: Mapped[str | None] = mapped_column(String(200))
    dedication_email: Mapped[str | None] = mapped_column(String(254))
    # When the note to dedication_email was queued: claimed once, after the payment is recorded
    # (app.giving.services.queue_dedication_notice), so that it goes out at most once.
    dedication_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    utm_source: Mapped[str | None] = mapped_column(String(100))
    utm_medium: Mapped[str | None] = mapped_column(String(100))
    utm_campaign: Mapped[str | None] = mapped_column(String(100))
    utm_term: Mapped[str | None] = mapped_column(String(100))
    utm_content: Mapped[str | None] = mapped_column(String(100))
    provider: Mapped[str] = mapped_column(String(20))
    checkout_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    checkout_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Goods or services the donor received in return (a dinner ticket paid by cheque, a perk
    # with a market value): their fair-market value is not deductible, and the receipt says so.
    # Never negative (app.finance.offline checks; SQLite cannot add a CHECK to a live table).
    goods_value: Mapped[int | None] = mapped_column(Integer)
    goods_description: Mapped[str | None] = mapped_column(String(200))

    campaign: Mapped[Campaign] = relationship()
    supporter: Mapped[Supporter] = relationship()
    plan: Mapped[RecurringPlan | None] = relationship(back_populates="gifts")

    @property
    def total(self) -> int:
        """What the donor is charged: the gift plus any processing fee they chose to cover."""
        return self.amount + self.fee_covered

    def __repr__(self) -> str:
        return f"<Gift {self.id} {self.status}>"


class RecurringPlan(db.Model):
    """A monthly or annual gift, backed by the provider's subscription."""

    __tablename__ = "recurring_plan"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("fee_covered >= 0", name="fee_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    supporter_id: Mapped[int] = mapped_column(ForeignKey("supporter.id"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"), index=True)
    frequency: Mapped[Frequency] = mapped_column(enum_column(Frequency))
    amount: Mapped[int] = mapped_column(Integer)
    fee_covered: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[PlanStatus] = mapped_column(enum_column(PlanStatus), default=PlanStatus.ACTIVE)
    provider: Mapped[str] = mapped_column(String(20))
    provider_subscription_id: Mapped[str] = mapped_column(String(255), unique=True)
    provider_customer_id: Mapped[str | None] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the next period's payment is due.
    next_charge_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    periods_paid: Mapped[int] = mapped_column(Integer, default=0)
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Cancelled by the donor but paid until then (Stripe's ``cancel_at_period_end`` or
    # ``cancel_at``): still a member until this time, charged no more (app.accounts.membership).
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_reason: Mapped[str | None] = mapped_column(String(500))

    supporter: Mapped[Supporter] = relationship()
    campaign: Mapped[Campaign] = relationship()
    gifts: Mapped[list[Gift]] = relationship(back_populates="plan", order_by="Gift.id")

    @property
    def total(self) -> int:
        return self.amount + self.fee_covered
