"""The figures staff watch: a campaign's dashboard, all campaigns side by side, this year
against last for the same occasion. Every amount is derived from the ledger (``Payment`` rows,
signed by ``SIGN``); gift and donor counts from the gifts whose status counts
(``GiftStatus.counts``), as on the public progress bar.

Each figure is one aggregate query over indexes built for it (see migration 0008), so the whole
dashboard stays a handful of index scans however many gifts a campaign has.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, literal, select

from app.campaigns.models import Campaign
from app.campaigns.services import Progress, campaign_progress
from app.extensions import db
from app.finance.common import Period
from app.finance.reconciliation import Line, reconcile
from app.giving.models import Frequency, Gift, PlanStatus, RecurringPlan
from app.payments.models import SIGN, Payment, PaymentKind
from app.staff import rollup
from app.staff.figures import (
    COUNTED,
    DIRECT,
    counted_gifts,
    gift_figures,
    ledger_by_frequency,
    ledger_totals,
    raw_days,
    signed_amount,
)


@dataclass(frozen=True)
class Day:
    day: date
    raised: int  # net movement that day (refunds on the day they happened)
    cumulative: int


@dataclass(frozen=True)
class Source:
    source: str
    gifts: int
    raised: int


@dataclass(frozen=True)
class TopGift:
    amount: int
    donor: str  # "Anonymous" for anonymous gifts
    frequency: Frequency
    paid_at: datetime | None


@dataclass
class Dashboard:
    campaign: Campaign
    progress: Progress
    charged: int  # money in (charges and won disputes)
    refunded: int
    disputed: int
    gifts: int
    donors: int
    new_donors: int
    returning_donors: int
    by_frequency: dict[str, dict[str, int]]  # "one_time" / "recurring" -> gifts, raised
    monthly_recurring: int  # what this campaign's running plans bring each month
    active_plans: int
    average_gift: int
    median_gift: int
    days: list[Day]
    sources: list[Source]
    top_gifts: list[TopGift]
    as_of: datetime
    currency: str = field(init=False)

    def __post_init__(self):
        self.currency = self.campaign.currency

    @property
    def raised(self) -> int:
        return self.progress.raised

    @property
    def goal(self) -> int:
        return self.progress.goal

    def as_json(self) -> dict:
        """What the live refresh sends: the headline figures (minor units)."""
        return {
            "slug": self.campaign.slug, "currency": self.currency,
            "as_of": self.as_of.isoformat(), "raised": self.raised, "goal": self.goal,
            "percent": self.progress.percent, "charged": self.charged,
            "refunded": self.refunded, "disputed": self.disputed, "gifts": self.gifts,
            "donors": self.donors, "new_donors": self.new_donors,
            "returning_donors": self.returning_donors, "average_gift": self.average_gift,
            "median_gift": self.median_gift, "monthly_recurring": self.monthly_recurring,
            "match_used": self.progress.match_used,
        }


def daily_series(campaign: Campaign, *, zone: ZoneInfo, now: datetime,
                 per_day: dict[date, int] | None = None) -> list[Day]:
    """Net money per local day from the campaign's first day to its last (or today), with a
    running total; days with no movement are there with zero, so the chart's axis is true."""
    if per_day is None:
        per_day = raw_days(campaign.id, zone=zone)
    first = campaign.starts_at.astimezone(zone).date()
    last = (min(now, campaign.ends_at) - timedelta(microseconds=1)).astimezone(zone).date()
    if per_day:
        first, last = min(first, *per_day), max(last, *per_day)
    days, running, day = [], 0, first
    while day <= last:
        running += per_day.get(day, 0)
        days.append(Day(day=day, raised=per_day.get(day, 0), cumulative=running))
        day += timedelta(days=1)
    return days


def monthly_recurring(campaign_id: int) -> tuple[int, int]:
    """(plans still running, what they bring a month): monthly plans in full, yearly ones as a
    twelfth (rounded down, so the figure never promises more than arrives)."""
    per_month = case((RecurringPlan.frequency == Frequency.ANNUAL,
                      (RecurringPlan.amount + RecurringPlan.fee_covered) / 12),
                     else_=RecurringPlan.amount + RecurringPlan.fee_covered)
    plans, mrr = db.session.execute(
        select(func.count(), func.coalesce(func.sum(per_month), 0))
        .where(RecurringPlan.campaign_id == campaign_id,
               RecurringPlan.status.in_([PlanStatus.ACTIVE, PlanStatus.PAST_DUE]))).one()
    return plans, int(mrr)


def sources(campaign_id: int) -> list[Source]:
    """Gifts and net raised per ``utm_source``; gifts with none are "(direct)"."""
    source = func.coalesce(Gift.utm_source, literal(DIRECT))
    raised = dict(db.session.execute(
        select(source, func.sum(signed_amount())).join(Gift, Gift.id == Payment.gift_id)
        .where(Payment.campaign_id == campaign_id).group_by(source)).all())
    counts = dict(db.session.execute(
        select(source, func.count()).where(*counted_gifts(campaign_id)).group_by(source)).all())
    found = [Source(source=s, gifts=counts.get(s, 0), raised=int(raised.get(s, 0)))
             for s in set(raised) | set(counts)]
    return sorted(found, key=lambda s: (-s.raised, s.source))


def top_gifts(campaign_id: int, limit: int = 10) -> list[TopGift]:
    """The largest counted gifts. An anonymous donor's name never leaves this function."""
    total = Gift.amount + Gift.fee_covered
    rows = db.session.execute(
        select(total, Gift.donor_name, Gift.anonymous, Gift.frequency, Gift.paid_at)
        .where(*counted_gifts(campaign_id)).order_by(total.desc(), Gift.id).limit(limit)).all()
    return [TopGift(amount=amount, donor="Anonymous" if anonymous else (name or "Unnamed"),
                    frequency=frequency, paid_at=paid_at)
            for amount, name, anonymous, frequency, paid_at in rows]


def direct_dashboard(campaign: Campaign, *, now: datetime, zone: ZoneInfo) -> Dashboard:
    """Every figure straight from the ledger and the gifts: the reference the rollup
    (``campaign_dashboard``) must equal, and too slow for a page at a few hundred thousand
    gifts."""
    progress = campaign_progress(campaign, now)
    ledger = ledger_totals(campaign.id)
    figures = gift_figures(campaign)
    by_freq = ledger_by_frequency(campaign.id)
    plans, mrr = monthly_recurring(campaign.id)
    one_time_gifts = figures["gifts"] - figures["recurring"]
    return Dashboard(
        campaign=campaign, progress=progress,
        charged=ledger.get(PaymentKind.CHARGE, 0) + ledger.get(PaymentKind.DISPUTE_WON, 0),
        refunded=ledger.get(PaymentKind.REFUND, 0),
        disputed=ledger.get(PaymentKind.DISPUTE, 0),
        gifts=figures["gifts"], donors=figures["donors"],
        new_donors=figures["donors"] - figures["returning"],
        returning_donors=figures["returning"],
        by_frequency={"one_time": {"gifts": one_time_gifts, "raised": by_freq.get(False, 0)},
                      "recurring": {"gifts": figures["recurring"],
                                    "raised": by_freq.get(True, 0)}},
        monthly_recurring=mrr, active_plans=plans,
        average_gift=figures["sum"] // figures["gifts"] if figures["gifts"] else 0,
        median_gift=figures["median"],
        days=daily_series(campaign, zone=zone, now=now),
        sources=sources(campaign.id), top_gifts=top_gifts(campaign.id), as_of=now,
    )


def _progress(campaign: Campaign, now: datetime, raised: int, gifts: int,
              donors: int) -> Progress:
    """What ``campaign_progress`` computes, from figures already at hand."""
    match_open = campaign.match_amount and (campaign.match_ends_at is None
                                            or now < campaign.match_ends_at)
    seconds_left = (campaign.ends_at - now).total_seconds()
    return Progress(raised=raised, goal=campaign.goal_amount, currency=campaign.currency,
                    donors=donors, gifts=gifts,
                    days_left=max(0, math.ceil(seconds_left / 86400)),
                    match_amount=campaign.match_amount if match_open else None,
                    match_used=min(raised, campaign.match_amount or 0))


def current_figures(campaign: Campaign, *, zone: ZoneInfo, now: datetime) -> dict:
    """The rollup's figures for now: the stored snapshot plus the ledger rows after it. Pages
    call this on GET: a snapshot rebuilt here is stored by a job after the response."""
    data, mark = rollup.snapshot_for(campaign, zone=zone, now=now, save=False)
    rows = rollup.delta_rows(campaign.id, data, mark)
    if len(rows) > rollup.REBUILD_AFTER:
        data, mark = rollup.snapshot_for(campaign, zone=zone, now=now, force=True, save=False)
        rows = rollup.delta_rows(campaign.id, data, mark)
    figures = rollup.apply_delta(data, campaign, rows, mark, zone=zone)
    if figures.get("top_full") and len(figures["top"]) < 10:  # the best gifts were refunded
        data, mark = rollup.snapshot_for(campaign, zone=zone, now=now, force=True, save=False)
        figures = rollup.apply_delta(data, campaign, rollup.delta_rows(campaign.id, data, mark),
                                     mark, zone=zone)
    return figures


def campaign_dashboard(campaign: Campaign, *, now: datetime, zone: ZoneInfo) -> Dashboard:
    """The dashboard, from the rollup (see ``app.staff.rollup``): equal to
    ``direct_dashboard`` figure for figure."""
    f = current_figures(campaign, zone=zone, now=now)
    kinds = {PaymentKind(k): v for k, v in f["kinds"].items()}
    raised = sum(amount * SIGN[kind] for kind, amount in kinds.items())
    plans, mrr = monthly_recurring(campaign.id)
    top_ids = [gid for _, gid in f["top"][:10]]
    total = Gift.amount + Gift.fee_covered
    found = {row.id: row for row in db.session.execute(
        select(Gift.id, total.label("total"), Gift.donor_name, Gift.anonymous, Gift.frequency,
               Gift.paid_at).where(Gift.id.in_(top_ids)))} if top_ids else {}
    top = [TopGift(amount=found[gid].total,
                   donor="Anonymous" if found[gid].anonymous else (found[gid].donor_name
                                                                   or "Unnamed"),
                   frequency=found[gid].frequency, paid_at=found[gid].paid_at)
           for gid in top_ids]
    sources_ = [Source(source=s, gifts=f["src_gifts"].get(s, 0),
                       raised=f["src_raised"].get(s, 0))
                for s in set(f["src_raised"]) | set(f["src_gifts"])]
    per_day = {date.fromisoformat(k): v for k, v in f["days"].items() if v or k}
    per_day = {k: v for k, v in per_day.items()}
    return Dashboard(
        campaign=campaign, progress=_progress(campaign, now, raised, f["gifts"], f["donors"]),
        charged=kinds.get(PaymentKind.CHARGE, 0) + kinds.get(PaymentKind.DISPUTE_WON, 0),
        refunded=kinds.get(PaymentKind.REFUND, 0), disputed=kinds.get(PaymentKind.DISPUTE, 0),
        gifts=f["gifts"], donors=f["donors"], new_donors=f["donors"] - f["returning"],
        returning_donors=f["returning"],
        by_frequency={
            "one_time": {"gifts": f["gifts"] - f["recurring"],
                         "raised": f["freq_raised"]["one_time"]},
            "recurring": {"gifts": f["recurring"], "raised": f["freq_raised"]["recurring"]}},
        monthly_recurring=mrr, active_plans=plans,
        average_gift=f["sum"] // f["gifts"] if f["gifts"] else 0,
        median_gift=rollup.median_from(f["hist"], f["gifts"]),
        days=daily_series(campaign, zone=zone, now=now, per_day=per_day),
        sources=sorted((s for s in sources_ if s.gifts or s.raised),
                       key=lambda s: (-s.raised, s.source)),
        top_gifts=top, as_of=now)


# -- all campaigns ----------------------------------------------------------------------------

@dataclass(frozen=True)
class OverviewRow:
    campaign: Campaign
    state: str
    raised: int
    gifts: int
    donors: int

    @property
    def percent(self) -> int:
        return self.raised * 100 // self.campaign.goal_amount if self.campaign.goal_amount else 0


def campaign_state(campaign: Campaign, now: datetime) -> str:
    """``Campaign.state``: draft, scheduled, live, paused or ended."""
    return campaign.state(now)


def overview(*, now: datetime, zone: ZoneInfo) -> list[OverviewRow]:
    """Every campaign with its net raised, gifts and donors, from each one's rollup."""
    rows = []
    for c in db.session.scalars(select(Campaign).order_by(Campaign.starts_at.desc())).all():
        f = current_figures(c, zone=zone, now=now)
        raised = sum(amount * SIGN[PaymentKind(k)] for k, amount in f["kinds"].items())
        rows.append(OverviewRow(campaign=c, state=campaign_state(c, now), raised=raised,
                                gifts=f["gifts"], donors=f["donors"]))
    return rows


def direct_overview(*, now: datetime) -> list[OverviewRow]:
    """``overview`` straight from the ledger (three grouped scans): the reference."""
    campaigns = db.session.scalars(select(Campaign).order_by(Campaign.starts_at.desc())).all()
    raised = dict(db.session.execute(
        select(Payment.campaign_id, func.sum(signed_amount())).group_by(Payment.campaign_id)
    ).all())
    counted = Gift.status.in_(COUNTED)
    gifts = dict(db.session.execute(
        select(Gift.campaign_id, func.count()).where(counted).group_by(Gift.campaign_id)).all())
    pairs = select(Gift.campaign_id, Gift.supporter_id).where(counted).distinct().subquery()
    donors = dict(db.session.execute(
        select(pairs.c.campaign_id, func.count()).group_by(pairs.c.campaign_id)).all())
    return [OverviewRow(campaign=c, state=campaign_state(c, now), raised=int(raised.get(c.id, 0)),
                        gifts=gifts.get(c.id, 0), donors=donors.get(c.id, 0))
            for c in campaigns]


# -- the staff home ---------------------------------------------------------------------------

@dataclass(frozen=True)
class LiveCampaign:
    campaign: Campaign
    progress: Progress


@dataclass(frozen=True)
class StaffHome:
    """What the staff home page (/staff/) shows."""

    today: date  # in the organisation's zone
    # Today's ledger rows, one line per currency (amounts in different currencies are never
    # added together): the reconciliation of today, so the figures are the finance page's.
    money: list[Line]
    live: list[LiveCampaign] | None  # None when not asked for


def live_campaigns(*, now: datetime, zone: ZoneInfo) -> list[LiveCampaign]:
    """The campaigns taking gifts now (``Campaign.is_live``), the one ending soonest first,
    each with its progress from its rollup: equal to ``campaign_progress`` from the ledger."""
    found = db.session.scalars(select(Campaign).where(
        Campaign.published, Campaign.paused_at.is_(None), Campaign.starts_at <= now,
        Campaign.ends_at > now).order_by(Campaign.ends_at, Campaign.id)).all()
    live = []
    for campaign in found:
        f = current_figures(campaign, zone=zone, now=now)
        raised = sum(amount * SIGN[PaymentKind(k)] for k, amount in f["kinds"].items())
        live.append(LiveCampaign(campaign, _progress(campaign, now, raised, f["gifts"],
                                                     f["donors"])))
    return live


def staff_home(*, now: datetime, zone: ZoneInfo, campaigns: bool) -> StaffHome:
    """Today's gifts and money per currency (today in ``zone``) and, when ``campaigns``, the
    live campaigns with their progress."""
    today = now.astimezone(zone).date()
    return StaffHome(today=today, money=reconcile(Period(today, today, zone)).by_currency,
                     live=live_campaigns(now=now, zone=zone) if campaigns else None)


_YEARS = re.compile(r"-(\d{4})$")


def occasion_key(slug: str) -> str | None:
    """The occasion a slug names without its year ("rosh-hashanah-5787" -> "rosh-hashanah"),
    or None when the slug carries no year."""
    match = _YEARS.search(slug)
    return slug[: match.start()] if match else None


@dataclass(frozen=True)
class YearPair:
    occasion: str
    this: OverviewRow
    last: OverviewRow | None


def year_over_year(rows: list[OverviewRow]) -> list[YearPair]:
    """Each campaign beside the previous one for the same occasion (same slug but the year),
    e.g. ``year-end-2026`` beside ``year-end-2025`` or ``ramadan-1448`` beside
    ``ramadan-1447``; campaigns of the same kind are not guessed at."""
    by_occasion: dict[str, list[OverviewRow]] = defaultdict(list)
    for row in rows:
        key = occasion_key(row.campaign.slug)
        if key:
            by_occasion[key].append(row)
    pairs = []
    for key, found in by_occasion.items():
        found.sort(key=lambda r: int(_YEARS.search(r.campaign.slug).group(1)))
        for previous, current in zip([None, *found], found, strict=False):
            pairs.append(YearPair(occasion=key, this=current, last=previous))
    return sorted(pairs, key=lambda p: p.this.campaign.starts_at, reverse=True)

