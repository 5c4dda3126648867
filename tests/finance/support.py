"""The finance tests' period and clock: March 2026 in New York. Gifts, refunds and disputes
come from ``tests.factories``."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from app.finance.common import make_period

NY = ZoneInfo("America/New_York")
MARCH = make_period("2026-03-01", "2026-03-31", NY)


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)

