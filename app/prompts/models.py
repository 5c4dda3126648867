"""A prompt (an appeal tied to a campaign, for one segment of readers, with its A/B copy and
frequency rules) and its counters. The counters are aggregates per prompt, variant and day:
no reader, id or address is ever stored."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.campaigns.models import Campaign
from app.db import UTCDateTime, enum_column, utcnow
from app.extensions import db
from app.news.models import Category


class Placement(enum.StrEnum):
    INLINE = "inline"  # in the article, where the newsroom put data-newsfund="prompt"
    OVERLAY = "overlay"  # over the page (at most one per page)
    BOTTOM_BAR = "bottom_bar"  # fixed at the foot of the window

    @property
    def label(self) -> str:
        return {"inline": "Inline", "overlay": "Overlay", "bottom_bar": "Bottom bar"}[self.value]


class Segment(enum.StrEnum):
    """Who a prompt is for. Donor statuses are those of ``app.prompts.decide.DonorStatus``."""

    EVERYONE = "everyone"
    NON_DONOR = "non_donor"  # no gift in the last 12 months and no plan running
    FORMER_DONOR = "former_donor"  # gave before, gives nothing now
    MONTHLY_DONOR = "monthly_donor"  # an active monthly plan: thank them, don't ask
    SUBSCRIBER = "subscriber"  # gets the daily news email
    NOT_SUBSCRIBER = "not_subscriber"
    FROM_EMAIL = "from_email"  # this page was opened from our email (utm_medium=email)
    ENGAGED = "engaged"  # at least ``min_views`` article views in this browser
    FOLLOWER = "follower"  # follows the region or topic ``category_id``

    @property
    def label(self) -> str:
        return SEGMENT_LABELS[self]


SEGMENT_LABELS = {
    Segment.EVERYONE: "Everyone",
    Segment.NON_DONOR: "Not a donor in the last 12 months",
    Segment.FORMER_DONOR: "Former donors not giving now",
    Segment.MONTHLY_DONOR: "Active monthly donors (thank, don't ask)",
    Segment.SUBSCRIBER: "Daily-email subscribers",
    Segment.NOT_SUBSCRIBER: "Not subscribed to the daily email",
    Segment.FROM_EMAIL: "Arrived from our email",
    Segment.ENGAGED: "At least N article views",
    Segment.FOLLOWER: "Followers of a region or topic",
}


class Reset(enum.StrEnum):
    """When the "at most M times" count starts again."""

    NEVER = "never"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


VARIANTS = ("a", "b")


class Prompt(db.Model):
    __tablename__ = "prompt"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("start_at_view >= 1", name="start_at_view_positive"),
        CheckConstraint("every_nth_view >= 1", name="every_nth_view_positive"),
        CheckConstraint("max_times IS NULL OR max_times >= 1", name="max_times_positive"),
        CheckConstraint("gave_hide_days >= 0", name="gave_hide_days_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))  # staff's own name for it
    placement: Mapped[Placement] = mapped_column(enum_column(Placement))
    segment: Mapped[Segment] = mapped_column(enum_column(Segment))
    # Among the segments a reader matches, the prompt with the lowest number decides theirs.
    priority: Mapped[int] = mapped_column(Integer, default=100)
    min_views: Mapped[int | None] = mapped_column(Integer)  # Segment.ENGAGED
    category_id: Mapped[int | None] = mapped_column(
        ForeignKey("news_category.id", ondelete="SET NULL"))  # Segment.FOLLOWER
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Frequency: from the Nth article view, every nth one, at most max_times per reset period.
    start_at_view: Mapped[int] = mapped_column(Integer, default=1)
    every_nth_view: Mapped[int] = mapped_column(Integer, default=1)
    max_times: Mapped[int | None] = mapped_column(Integer)
    reset: Mapped[Reset] = mapped_column(enum_column(Reset), default=Reset.NEVER)
    # "I already gave" hides every appeal for this many days (0: the choice is not offered).
    gave_hide_days: Mapped[int] = mapped_column(Integer, default=30)
    # The copy: variant A always, variant B when it has a headline (then readers are split).
    headline_a: Mapped[str] = mapped_column(String(200))
    body_a: Mapped[str] = mapped_column(Text, default="")
    button_a: Mapped[str] = mapped_column(String(60))
    headline_b: Mapped[str] = mapped_column(String(200), default="")
    body_b: Mapped[str] = mapped_column(Text, default="")
    button_b: Mapped[str] = mapped_column(String(60), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    campaign: Mapped[Campaign] = relationship()
    category: Mapped[Category | None] = relationship()

    @property
    def variants(self) -> tuple[str, ...]:
        return VARIANTS if self.headline_b else VARIANTS[:1]

    def copy(self, variant: str) -> dict[str, str]:
        if variant not in self.variants:
            raise KeyError(variant)
        return {"headline": getattr(self, f"headline_{variant}"),
                "body": getattr(self, f"body_{variant}"),
                "button": getattr(self, f"button_{variant}")}

    def __repr__(self) -> str:
        return f"<Prompt {self.id} {self.name!r}>"


class PromptCount(db.Model):
    """Impressions, dismissals and clicks of one variant of a prompt on one (UTC) day."""

    __tablename__ = "prompt_count"
    __table_args__ = (UniqueConstraint("prompt_id", "variant", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    prompt_id: Mapped[int] = mapped_column(ForeignKey("prompt.id", ondelete="CASCADE"))
    variant: Mapped[str] = mapped_column(String(1))
    day: Mapped[date] = mapped_column(Date)
    impressions: Mapped[int] = mapped_column(Integer, default=0)
    dismissals: Mapped[int] = mapped_column(Integer, default=0)
    clicks: Mapped[int] = mapped_column(Integer, default=0)


class EmailAppeal(db.Model):
    """A campaign whose appeal block the daily email carries (staff switch it on and off);
    shown only while the campaign is live."""

    __tablename__ = "email_appeal"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"),
                                             primary_key=True)
    switched_on_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    campaign: Mapped[Campaign] = relationship()
