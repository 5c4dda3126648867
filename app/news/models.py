"""News: categories and topics, ingested articles, follows, daily-email subscribers and sends.

Invariants live here (unique keys, lowercased emails, one send per subscriber per day); the
rules that move between states live in ``services.py`` and ``digest.py``.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import UTCDateTime, enum_column, utcnow
from app.extensions import db

if TYPE_CHECKING:
    from app.accounts.models import Supporter


class CategoryKind(enum.StrEnum):
    REGION = "region"
    TOPIC = "topic"

    @property
    def plural(self) -> str:
        return {"region": "Regions", "topic": "Topics"}[self.value]


# Which categories an article is tagged with (from the feed's <category> terms).
article_category = Table(
    "news_article_category",
    db.metadata,
    Column("article_id", ForeignKey("news_article.id", ondelete="CASCADE"), primary_key=True),
    Column("category_id", ForeignKey("news_category.id", ondelete="CASCADE"), primary_key=True,
           index=True),
)


class Category(db.Model):
    """A region (Syria, the Gulf and the UAE) or a topic (security, economy) readers can follow.

    Feed entries are matched to it by ``slug`` or ``name``, case-insensitively.
    """

    __tablename__ = "news_category"
    __table_args__ = (CheckConstraint("slug = lower(slug)", name="slug_lowercase"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[CategoryKind] = mapped_column(enum_column(CategoryKind))
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<Category {self.slug}>"


class Article(db.Model):
    """One story from the newsroom's feed, stored once under its feed id (or its link)."""

    __tablename__ = "news_article"
    __table_args__ = (
        # The link is the story's href on My news and in the daily email: a web address only,
        # never javascript: or data: (app.news.ingest.web_link stores the scheme in lower case).
        CheckConstraint("link LIKE 'http://%' OR link LIKE 'https://%'", name="link_http"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The entry's <id>/<guid>, or its link when the feed gives none: what makes ingest idempotent.
    guid: Mapped[str] = mapped_column(String(500), unique=True)
    # Not unique: entries with distinct ids may share a link (a live page updated all day).
    link: Mapped[str] = mapped_column(String(2000))
    title: Mapped[str] = mapped_column(String(500))
    summary: Mapped[str] = mapped_column(Text, default="")  # plain text, tags stripped
    author: Mapped[str] = mapped_column(String(200), default="")
    # The newsroom's pick for readers who follow nothing (a "top-story" category in the feed).
    is_top: Mapped[bool] = mapped_column(Boolean, default=False)
    # A correspondent's analysis (an "analysis" category term in the feed, NEWS_ANALYSIS_TERMS):
    # it goes to the daily email's analysis section, a Sustainer perk, not to its news list.
    is_analysis: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    categories: Mapped[list[Category]] = relationship(
        secondary=article_category, order_by=(Category.kind, Category.position, Category.name))

    def __repr__(self) -> str:
        return f"<Article {self.id}>"


class Follow(db.Model):
    """A supporter follows a category; their "My news" page and daily email are made of it."""

    __tablename__ = "news_follow"

    supporter_id: Mapped[int] = mapped_column(
        ForeignKey("supporter.id", ondelete="CASCADE"), primary_key=True)
    category_id: Mapped[int] = mapped_column(
        ForeignKey("news_category.id", ondelete="CASCADE"), primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SubscriberStatus(enum.StrEnum):
    PENDING = "pending"  # asked, not yet confirmed by the link in the email
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"


class NewsSubscriber(db.Model):
    """An address that asked for the daily news email, with the consent it gave.

    One row per address (stored lowercased). Consent is recorded as given: the version of the
    terms and privacy text shown, when, and where (``consent_source``: the page or "account").
    """

    __tablename__ = "news_subscriber"
    __table_args__ = (
        CheckConstraint("email = lower(email)", name="email_lowercase"),
        Index("ix_news_subscriber_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    # Set when the address belongs to a supporter: their follows make the email personal.
    supporter_id: Mapped[int | None] = mapped_column(
        ForeignKey("supporter.id", ondelete="SET NULL"), index=True)
    status: Mapped[SubscriberStatus] = mapped_column(
        enum_column(SubscriberStatus), default=SubscriberStatus.PENDING)
    consent_version: Mapped[str] = mapped_column(String(40))
    consented_at: Mapped[datetime] = mapped_column(UTCDateTime)
    consent_source: Mapped[str] = mapped_column(String(200))
    confirm_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # How the address was confirmed when that happened elsewhere ("double opt-in", from the old
    # platform's records): an imported subscription is confirmed only with this and the time.
    confirmation_source: Mapped[str | None] = mapped_column(String(200))
    # The import file and line this consent came from (``flask supporters import``); none for
    # a consent given here.
    consent_file: Mapped[str | None] = mapped_column(String(255))
    consent_line: Mapped[int | None] = mapped_column(Integer)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    supporter: Mapped[Supporter | None] = relationship()

    def __repr__(self) -> str:
        return f"<NewsSubscriber {self.id} {self.status}>"


class Digest(db.Model):
    """One day's news email: the window of articles it covers, fixed by the first run of the day
    so that a rerun (after a crash, say) sends the same stories."""

    __tablename__ = "news_digest"

    id: Mapped[int] = mapped_column(primary_key=True)
    digest_date: Mapped[date] = mapped_column(Date, unique=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SendStatus(enum.StrEnum):
    CLAIMED = "claimed"  # a run is building and handing over this message
    SENT = "sent"  # the transport accepted it
    FAILED = "failed"  # the transport refused it; a later run retries


class DigestSend(db.Model):
    """The daily email to one subscriber on one day, at most once: the unique pair is claimed
    before the message is built, so a second run (or a concurrent one) skips it."""

    __tablename__ = "news_digest_send"
    __table_args__ = (
        UniqueConstraint("subscriber_id", "digest_date"),
        Index("ix_news_digest_send_date_status", "digest_date", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("news_subscriber.id", ondelete="CASCADE"))
    digest_date: Mapped[date] = mapped_column(Date)
    status: Mapped[SendStatus] = mapped_column(enum_column(SendStatus))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    articles: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
