"""Supporter lookup and the lapsed-donor report.

Years are calendar years in the organisation's zone. A gift "counts" as on the dashboards
(paid, or partly refunded); erased supporters are left out of every list.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select

from app.accounts.models import Supporter
from app.extensions import db
from app.giving.models import Gift, GiftStatus

COUNTED = [status for status in GiftStatus if status.counts]
LAPSED_KINDS = {
    "lybunt": "Gave last year but not this year",
    "sybunt": "Gave in an earlier year, but neither last year nor this year",
}


def year_start(year: int, zone: ZoneInfo) -> datetime:
    return datetime.combine(date(year, 1, 1), time(0), zone)


@dataclass(frozen=True)
class LapsedDonor:
    supporter_id: int
    name: str
    email: str
    currency: str
    last_gift_at: datetime
    gifts: int
    total: int  # lifetime, in this currency (gift amounts of counted gifts)


def lapsed_donors(kind: str, *, now: datetime, zone: ZoneInfo,
                  limit: int | None = None) -> list[LapsedDonor]:
    """``lybunt``: gave last year, not this year. ``sybunt``: gave before last year, and neither
    last year nor this year. One row per donor and currency, most recent gift first."""
    if kind not in LAPSED_KINDS:
        raise ValueError(f"unknown report {kind!r}")
    this_year = now.astimezone(zone).year
    this_start = year_start(this_year, zone)
    last_start = year_start(this_year - 1, zone)
    last = func.max(Gift.paid_at)
    query = (
        select(Supporter.id, Supporter.name, Supporter.email, Gift.currency, last,
               func.count(), func.sum(Gift.amount + Gift.fee_covered))
        .join(Gift, Gift.supporter_id == Supporter.id)
        .where(Gift.status.in_(COUNTED), Gift.paid_at.is_not(None),
               Supporter.erased_at.is_(None))
        .group_by(Supporter.id, Supporter.name, Supporter.email, Gift.currency)
        .order_by(last.desc(), Supporter.id)
    )
    # The latest counted gift says it all: in last year for LYBUNT, before it for SYBUNT.
    if kind == "lybunt":
        query = query.having(last >= last_start, last < this_start)
    else:
        query = query.having(last < last_start)
    if limit:
        query = query.limit(limit)
    return [LapsedDonor(supporter_id=sid, name=name, email=email, currency=currency,
                        last_gift_at=last_at, gifts=gifts, total=int(total))
            for sid, name, email, currency, last_at, gifts, total in db.session.execute(query)]


def _cell(value) -> str:
    """Spreadsheets run a cell that starts with = + - @ as a formula; a quote keeps it text."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def lapsed_csv(rows: list[LapsedDonor], *, zone: ZoneInfo, amount_text) -> str:
    """The report as CSV text; ``amount_text(minor, currency)`` writes an exact decimal."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["supporter_id", "name", "email", "last_gift_date", "gifts", "total",
                     "currency"])
    for r in rows:
        writer.writerow([r.supporter_id, _cell(r.name), _cell(r.email),
                         r.last_gift_at.astimezone(zone).date().isoformat(), r.gifts,
                         amount_text(r.total, r.currency), r.currency])
    return out.getvalue()


# -- supporter lookup -------------------------------------------------------------------------

def search_supporters(query: str, *, limit: int = 50) -> list[Supporter]:
    """Supporters whose name or email contains ``query`` (any letter case), exact email first."""
    text = query.strip()
    if len(text) < 2:
        return []
    pattern = "%" + text.lower().replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") \
        + "%"
    exact = (Supporter.email == text.lower()).desc()
    return list(db.session.scalars(
        select(Supporter).where(
            Supporter.erased_at.is_(None),
            or_(Supporter.email.like(pattern, escape="\\"),
                func.lower(Supporter.name).like(pattern, escape="\\")))
        .order_by(exact, Supporter.name, Supporter.id).limit(limit)))


@dataclass
class SupporterProfile:
    supporter: Supporter
    gifts: list
    plans: list
    membership: object
    subscriptions: list
    follows: list


def supporter_profile(supporter: Supporter, *, levels, now: datetime) -> SupporterProfile:
    """Everything staff see about one supporter: gifts, plans, membership level, the news
    email and the consent given for it, and the categories followed."""
    from app.accounts.history import giving_history, supporter_plans
    from app.accounts.membership import membership_for
    from app.news.models import Category, Follow, NewsSubscriber

    subscriptions = list(db.session.scalars(
        select(NewsSubscriber).where(or_(NewsSubscriber.supporter_id == supporter.id,
                                         NewsSubscriber.email == supporter.email))
        .order_by(NewsSubscriber.id)))
    follows = list(db.session.scalars(
        select(Category).join(Follow, Follow.category_id == Category.id)
        .where(Follow.supporter_id == supporter.id).order_by(Category.name)))
    return SupporterProfile(
        supporter=supporter, gifts=giving_history(supporter), plans=supporter_plans(supporter),
        membership=membership_for(supporter, levels=levels, now=now),
        subscriptions=subscriptions, follows=follows)
