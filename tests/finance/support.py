"""The finance tests' period and clock: March 2026 in New York. Gifts, refunds and disputes
come from ``tests.factories``."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from app.finance.common import make_period
from tests import factories
from tests.factories import dispute, refund  # noqa: F401 (see paid_gift below)

NY = ZoneInfo("America/New_York")
MARCH = make_period("2026-03-01", "2026-03-31", NY)


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def paid_gift(app, campaign, **fields):
    """``tests.factories.paid_gift`` in the finance tests' former spelling (the app first),
    for the test files other work in progress still has calling it from here; new tests call
    the factory."""
    return factories.paid_gift(campaign, **fields)
