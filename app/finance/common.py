"""What the finance services share: their error, a period of days in the organisation's zone,
and amounts written as exact decimal text. (The acting staff member is ``app.audit.Actor``.)"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from sqlalchemy import select

from app.campaigns.models import Campaign
from app.extensions import db
from app.money import minor_digits


class FinanceError(Exception):
    """Input a finance operation cannot act on; the message is fit to show staff."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Period:
    """Whole days, ``first`` to ``last`` inclusive, in the organisation's zone."""

    first: date
    last: date
    zone: ZoneInfo

    @property
    def start(self) -> datetime:
        """The first instant of the period, in UTC."""
        return datetime.combine(self.first, time(0), self.zone).astimezone(UTC)

    @property
    def end(self) -> datetime:
        """The first instant after the period, in UTC (exclusive)."""
        return datetime.combine(self.last + timedelta(days=1), time(0), self.zone).astimezone(UTC)

    def __str__(self) -> str:
        return f"{self.first.isoformat()} to {self.last.isoformat()} ({self.zone.key})"


def make_period(first: date | str, last: date | str, zone: ZoneInfo) -> Period:
    first, last = _date(first, "from"), _date(last, "to")
    if last < first:
        raise FinanceError(f"The end date {last.isoformat()} is before the start date "
                           f"{first.isoformat()}.", field="to")
    return Period(first, last, zone)


def _date(value: date | str, name: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value.strip())
    except (AttributeError, ValueError):
        raise FinanceError(f"{value!r} is not a date: write it as YYYY-MM-DD.",
                           field=name) from None


def campaign_by_slug(slug: str) -> Campaign:
    campaign = db.session.scalar(select(Campaign).where(Campaign.slug == slug.strip()))
    if campaign is None:
        raise FinanceError(f"There is no campaign {slug!r}.", field="campaign")
    return campaign


@lru_cache(maxsize=64)
def _digits(currency: str) -> int:
    return minor_digits(currency)


def decimal_text(minor: int, currency: str) -> str:
    """Minor units as exact decimal text in the currency's precision: 1999 USD -> "19.99",
    -5 USD -> "-0.05", 1500 JPY -> "1500". Integer arithmetic only."""
    digits = _digits(currency)
    if not digits:
        return str(minor)
    sign = "-" if minor < 0 else ""
    whole, part = divmod(abs(minor), 10 ** digits)
    return f"{sign}{whole}.{part:0{digits}d}"
