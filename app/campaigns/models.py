from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import UTCDateTime, enum_column, utcnow
from app.extensions import db


class Frequency(enum.StrEnum):
    """How often a gift is given: once, or a recurring plan's period. Here, below giving,
    because a campaign has a default one (``app.giving.models`` uses it from here)."""

    ONE_TIME = "one_time"
    MONTHLY = "monthly"
    ANNUAL = "annual"

    @property
    def label(self) -> str:
        return {"one_time": "One time", "monthly": "Monthly", "annual": "Yearly"}[self.value]

    @property
    def is_recurring(self) -> bool:
        return self is not Frequency.ONE_TIME


class CampaignKind(enum.StrEnum):
    ANNIVERSARY = "anniversary"
    HOLIDAY = "holiday"
    YEAR_END = "year_end"
    GENERAL = "general"


class Campaign(db.Model):
    __tablename__ = "campaign"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("goal_amount > 0", name="goal_positive"),
        CheckConstraint("match_amount IS NULL OR match_amount > 0", name="match_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[CampaignKind] = mapped_column(enum_column(CampaignKind))
    summary: Mapped[str] = mapped_column(String(300), default="")
    appeal_markdown: Mapped[str] = mapped_column(Text, default="")
    signatory_name: Mapped[str] = mapped_column(String(200))
    signatory_title: Mapped[str] = mapped_column(String(200), default="")
    # The campaign's own greeting on the thank-you page and in the receipt email.
    thank_you_message: Mapped[str] = mapped_column(Text, default="")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    goal_amount: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    default_frequency: Mapped[Frequency] = mapped_column(
        enum_column(Frequency), default=Frequency.ONE_TIME
    )
    # "Every gift doubled up to match_amount", by match_sponsor, until match_ends_at (or the end).
    match_amount: Mapped[int | None] = mapped_column(Integer)
    match_sponsor: Mapped[str | None] = mapped_column(String(200))
    match_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published: Mapped[bool] = mapped_column(Boolean, default=True)
    # Set while staff have paused a published campaign: its page stays up, gifts stop.
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The fund or ledger code the accounting system books this campaign's gifts to.
    fund_code: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when `flask finance import` created it for gifts brought from another platform: an
    # ended, unpublished campaign whose goal (1) and dates (its earliest gift to the import)
    # stand in for what that platform did not export.
    imported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    suggested_amounts: Mapped[list[SuggestedAmount]] = relationship(
        back_populates="campaign",
        order_by="SuggestedAmount.position",
        cascade="all, delete-orphan",
    )

    def is_live(self, now: datetime) -> bool:
        return (self.published and self.paused_at is None
                and self.starts_at <= now < self.ends_at)

    @property
    def is_paused(self) -> bool:
        return self.paused_at is not None

    def has_ended(self, now: datetime) -> bool:
        return now >= self.ends_at

    def state(self, now: datetime) -> str:
        """draft, scheduled, live, paused or ended: what staff call the stages of a campaign
        (the dashboards, the calendar, the preview)."""
        if self.has_ended(now):
            return "ended"
        if self.paused_at is not None:
            return "paused"
        if not self.published:
            return "draft"
        return "live" if self.starts_at <= now else "scheduled"

    def __repr__(self) -> str:
        return f"<Campaign {self.slug}>"


class SuggestedAmount(db.Model):
    __tablename__ = "suggested_amount"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"),
                                             index=True)
    amount: Mapped[int] = mapped_column(Integer)
    impact: Mapped[str] = mapped_column(String(200), default="")
    position: Mapped[int] = mapped_column(Integer, default=0)

    campaign: Mapped[Campaign] = relationship(back_populates="suggested_amounts")
