"""One campaign's figures by full queries over its ledger and gifts: what the dashboard shows
straight from the ledger (``app.staff.dashboards``) and what the rollup stores in its snapshot
(``app.staff.rollup``). Both build on this module; it imports neither."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, String, case, cast, exists, func, select
from sqlalchemy.orm import aliased

from app.campaigns.models import Campaign
from app.extensions import db
from app.giving.models import Frequency, Gift, GiftStatus
from app.payments.models import SIGN, Payment

COUNTED = [status for status in GiftStatus if status.counts]
DIRECT = "(direct)"


def signed_amount():
    """A ledger row's effect on the total: charges add, refunds and disputes subtract."""
    return case(*((Payment.kind == kind, Payment.amount * sign) for kind, sign in SIGN.items()),
                else_=0)


def counted_gifts(campaign_id: int):
    """The conditions picking a campaign's gifts that count (paid, not refunded in full)."""
    return (Gift.campaign_id == campaign_id, Gift.status.in_(COUNTED))


def ledger_totals(campaign_id: int) -> dict:
    rows = db.session.execute(
        select(Payment.kind, func.sum(Payment.amount))
        .where(Payment.campaign_id == campaign_id).group_by(Payment.kind)).all()
    return {kind: int(total) for kind, total in rows}


def _day_bucket(dialect: str, zone: ZoneInfo):
    """A SQL expression grouping ledger rows by day in the organisation's zone.

    PostgreSQL converts to the zone itself. SQLite stores naive UTC text and knows no zones, so
    it groups by UTC quarter-hour (every zone's offset is a whole number of quarter hours) and
    ``_local_day`` finishes the job in Python.
    """
    if dialect == "postgresql":
        return func.date(func.timezone(zone.key, Payment.occurred_at))
    minute = cast(func.substr(Payment.occurred_at, 15, 2), Integer)
    return func.substr(Payment.occurred_at, 1, 14).concat(cast(minute // 15, String))


def _local_day(bucket, zone: ZoneInfo) -> date:
    if isinstance(bucket, date):
        return bucket
    if isinstance(bucket, datetime):  # some drivers hand back a datetime for date()
        return bucket.date()
    head, quarter = bucket[:13], int(bucket[14:] or 0)
    instant = datetime.strptime(head, "%Y-%m-%d %H").replace(tzinfo=UTC) + timedelta(
        minutes=15 * quarter)
    return instant.astimezone(zone).date()


def raw_days(campaign_id: int, *, zone: ZoneInfo) -> dict[date, int]:
    """Net money per local day, only the days with movement."""
    bucket = _day_bucket(db.session.get_bind().dialect.name, zone)
    rows = db.session.execute(
        select(bucket, func.sum(signed_amount())).where(Payment.campaign_id == campaign_id)
        .group_by(bucket)).all()
    per_day: dict[date, int] = defaultdict(int)
    for key, total in rows:
        per_day[_local_day(key, zone)] += int(total)
    return dict(per_day)


def gave_before(supporter_ids: list[int], when: datetime) -> set[int]:
    """Which of these supporters had a counted gift paid before ``when``."""
    if not supporter_ids:
        return set()
    return set(db.session.scalars(select(Gift.supporter_id).where(
        Gift.supporter_id.in_(supporter_ids), Gift.status.in_(COUNTED),
        Gift.paid_at < when).distinct()))


def gift_figures(campaign: Campaign, *, median: bool = True) -> dict:
    """Counts, donors (new or returning), average and median of the counted gifts."""
    counted = counted_gifts(campaign.id)
    total = Gift.amount + Gift.fee_covered
    gifts, summed, recurring, recurring_sum = db.session.execute(
        select(func.count(), func.coalesce(func.sum(total), 0),
               func.count().filter(Gift.frequency != Frequency.ONE_TIME),
               func.coalesce(func.sum(total).filter(Gift.frequency != Frequency.ONE_TIME), 0))
        .where(*counted)).one()
    donors_q = select(Gift.supporter_id).where(*counted).distinct().subquery()
    earlier = aliased(Gift)
    # A returning donor gave (and it counted) before this campaign opened.
    gave_before = exists().where(
        earlier.supporter_id == donors_q.c.supporter_id,
        earlier.status.in_(COUNTED), earlier.paid_at < campaign.starts_at)
    donors, returning = db.session.execute(
        select(func.count(), func.count().filter(gave_before)).select_from(donors_q)).one()
    return {"gifts": gifts, "sum": int(summed), "recurring": recurring,
            "recurring_sum": int(recurring_sum), "donors": donors, "returning": returning,
            "median": _median(campaign.id, gifts) if median else None}


def _median(campaign_id: int, count: int) -> int:
    """The median gift (the lower middle one for an even count, an amount someone gave):
    one ``OFFSET`` into the (campaign, status, amount) index, on every backend."""
    if not count:
        return 0
    total = Gift.amount + Gift.fee_covered
    return int(db.session.scalar(
        select(total).where(*counted_gifts(campaign_id)).order_by(total)
        .offset((count - 1) // 2).limit(1)))


def ledger_by_frequency(campaign_id: int) -> dict[bool, int]:
    """Net raised split by whether the gift behind each ledger row is recurring."""
    recurring = Gift.frequency != Frequency.ONE_TIME
    rows = db.session.execute(
        select(recurring, func.sum(signed_amount()))
        .join(Gift, Gift.id == Payment.gift_id)
        .where(Payment.campaign_id == campaign_id).group_by(recurring)).all()
    return {bool(flag): int(total) for flag, total in rows}
