"""A campaign's dashboard figures as a snapshot of the ledger plus what came after it.

Summing a few hundred thousand ledger rows takes seconds, too long for a page that refreshes
while a campaign runs. So the figures are computed once over the whole ledger (``build``, in one
consistent read) and stored with a *mark*: every ledger row of the campaign with an id up to the
mark, plus the few newer ones listed in ``extra_ids``, is in the snapshot. A request then reads
only the rows after it (``apply_delta``): their sums are added, and for the gifts they touch,
whether each counted then and counts now adjusts the gift, donor, median and source figures.
The result is exactly what a full computation over the ledger gives (tests check both ways).

The mark trails the newest row by ``SAFETY`` (rows newer than that are listed one by one), so a
ledger row whose transaction committed after the snapshot's read, with a lower id than rows it
saw, is still picked up, as long as no transaction stays open longer than that.

The snapshot is rebuilt when it is missing, when the campaign's start date or the zone changed,
when more than ``REBUILD_AFTER`` rows came after it, or when a staff change that rewrites ledger
rows in place (an offline gift's correction) was audited since.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ForeignKey, Integer, Text, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from app import jobs
from app.audit import AuditEntry
from app.campaigns.models import Campaign
from app.db import UTCDateTime
from app.extensions import db
from app.giving.models import Frequency, Gift, GiftStatus
from app.payments.models import SIGN, Payment, PaymentKind, gift_status
from app.staff import figures

VERSION = 1
SAFETY = timedelta(seconds=120)
REBUILD_AFTER = 20_000
TOP = 50
# Audited actions that never rewrite a ledger row or a gift in place.
HARMLESS_ACTIONS = ("campaign.", "role.")


class DashboardSnapshot(db.Model):
    __tablename__ = "dashboard_snapshot"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    payment_mark: Mapped[int] = mapped_column(Integer)
    audit_mark: Mapped[int] = mapped_column(Integer)
    data: Mapped[str] = mapped_column(Text)


def _counts_by_rule(rows: list[tuple[PaymentKind, int]]) -> bool:
    """Whether a gift with these ledger rows counts (``app.payments.models.gift_status``)."""
    totals: dict[PaymentKind, int] = defaultdict(int)
    for kind, amount in rows:
        totals[kind] += amount
    status = gift_status(totals)
    return status is not None and status.counts


def build(campaign: Campaign, *, zone: ZoneInfo, now: datetime) -> tuple[dict, int, int]:
    """Every figure over the whole ledger, as of the current transaction's read; returns
    (data, mark, audit mark). Call it inside one consistent read (see ``snapshot_for``)."""
    cid = campaign.id
    newest = db.session.scalar(select(func.max(Payment.id)).where(Payment.campaign_id == cid))
    safe = db.session.scalar(select(func.max(Payment.id)).where(
        Payment.campaign_id == cid, Payment.created_at < now - SAFETY)) or 0
    extra = list(db.session.scalars(select(Payment.id).where(
        Payment.campaign_id == cid, Payment.id > safe))) if newest and newest > safe else []
    audit_mark = db.session.scalar(select(func.coalesce(func.max(AuditEntry.id), 0)))

    kinds = {str(k): v for k, v in figures.ledger_totals(cid).items()}
    days = {day.isoformat(): amount
            for day, amount in figures.raw_days(cid, zone=zone).items()}
    by_freq = figures.ledger_by_frequency(cid)
    source = func.coalesce(Gift.utm_source, figures.DIRECT)
    src_raised = {s: int(v) for s, v in db.session.execute(
        select(source, func.sum(figures.signed_amount()))
        .join(Gift, Gift.id == Payment.gift_id)
        .where(Payment.campaign_id == cid).group_by(source))}
    counted = figures.counted_gifts(cid)
    total = Gift.amount + Gift.fee_covered
    hist = {str(t): n for t, n in db.session.execute(
        select(total, func.count()).where(*counted).group_by(total))}
    src_gifts = dict(db.session.execute(
        select(source, func.count()).where(*counted).group_by(source)).all())
    gifts = figures.gift_figures(campaign, median=False)
    top = [[t, gid] for t, gid in db.session.execute(
        select(total, Gift.id).where(*counted).order_by(total.desc(), Gift.id).limit(TOP))]
    data = {
        "v": VERSION, "zone": zone.key, "starts_at": campaign.starts_at.isoformat(),
        "kinds": kinds, "days": days,
        "freq_raised": {"recurring": by_freq.get(True, 0), "one_time": by_freq.get(False, 0)},
        "src_raised": src_raised, "src_gifts": src_gifts, "hist": hist,
        "gifts": gifts["gifts"], "sum": gifts["sum"], "recurring": gifts["recurring"],
        "recurring_sum": gifts["recurring_sum"], "donors": gifts["donors"],
        "returning": gifts["returning"], "top": top, "top_full": len(top) == TOP,
        "extra_ids": extra,
    }
    return data, safe, audit_mark


def _stale(snapshot: DashboardSnapshot | None, campaign: Campaign, zone: ZoneInfo) -> bool:
    if snapshot is None:
        return True
    data = json.loads(snapshot.data)
    if (data.get("v") != VERSION or data.get("zone") != zone.key
            or data.get("starts_at") != campaign.starts_at.isoformat()):
        return True
    query = select(AuditEntry.id).where(AuditEntry.id > snapshot.audit_mark)
    for prefix in HARMLESS_ACTIONS:
        query = query.where(AuditEntry.action.not_like(f"{prefix}%"))
    return db.session.scalar(query.limit(1)) is not None


def snapshot_for(campaign: Campaign, *, zone: ZoneInfo, now: datetime,
                 force: bool = False, save: bool = True) -> tuple[dict, int]:
    """The stored snapshot (data, mark), rebuilt first when needed.

    A rebuild ends the current read transaction, reads everything in a new one (repeatable
    read on PostgreSQL; SQLite's read transactions always are) and stores the result in its own
    short write transaction (``save``: the command line, the scheduler), or, for a page (a GET
    writes nothing), hands it to a job that stores it once the response is sent."""
    snapshot = db.session.get(DashboardSnapshot, campaign.id)
    if not force and not _stale(snapshot, campaign, zone):
        return json.loads(snapshot.data), snapshot.payment_mark
    campaign_id = campaign.id
    db.session.rollback()  # end the read: the rebuild needs its own consistent one
    bind = db.session.get_bind()
    if isinstance(bind, Engine) and bind.dialect.name == "postgresql":
        # (Under the tests' outer transaction the bind is a Connection, already consistent.)
        db.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    campaign = db.session.get(Campaign, campaign_id)
    data, mark, audit_mark = build(campaign, zone=zone, now=now)
    db.session.rollback()
    if save:
        store(campaign_id, data, mark, audit_mark, now)
    else:
        jobs.submit(store_snapshot, campaign_id, json.dumps(data, separators=(",", ":")), mark,
                    audit_mark, now.isoformat())
    return data, mark


@jobs.after_response
def store_snapshot(campaign_id: int, data: str, mark: int, audit_mark: int,
                   computed_at: str) -> None:
    """Job: store the snapshot a page built (its request wrote nothing). An older one stored
    over a newer one is still right, only less fresh: the rows after its mark are added."""
    store(campaign_id, json.loads(data), mark, audit_mark, datetime.fromisoformat(computed_at))


def store(campaign_id: int, data: dict, mark: int, audit_mark: int, now: datetime) -> None:
    row = db.session.get(DashboardSnapshot, campaign_id)
    try:
        with db.session.begin_nested():
            if row is None:
                row = DashboardSnapshot(campaign_id=campaign_id)
                db.session.add(row)
            row.computed_at, row.payment_mark, row.audit_mark = now, mark, audit_mark
            row.data = json.dumps(data, separators=(",", ":"))
    except IntegrityError:  # another request stored one at the same moment: theirs is as good
        pass
    db.session.commit()


def delta_rows(campaign_id: int, data: dict, mark: int) -> list:
    """Ledger rows of the campaign the snapshot does not hold."""
    extra = set(data.get("extra_ids", ()))
    rows = db.session.execute(
        select(Payment.id, Payment.gift_id, Payment.kind, Payment.amount, Payment.occurred_at)
        .where(Payment.campaign_id == campaign_id, Payment.id > mark)
        .order_by(Payment.id)).all()
    return [r for r in rows if r.id not in extra]


def apply_delta(data: dict, campaign: Campaign, rows: list, mark: int, *,
                zone: ZoneInfo) -> dict:
    """The snapshot's figures moved forward by the ledger rows after it (a new dict)."""
    if not rows:
        return data
    data = json.loads(json.dumps(data))
    extra = set(data.get("extra_ids", ()))
    touched = sorted({r.gift_id for r in rows})
    gifts = {g.id: g for g in db.session.execute(
        select(Gift.id, Gift.supporter_id, Gift.status, Gift.amount, Gift.fee_covered,
               Gift.frequency, Gift.utm_source).where(Gift.id.in_(touched)))}
    for r in rows:
        signed = r.amount * SIGN[r.kind]
        kinds = data["kinds"]
        kinds[str(r.kind)] = kinds.get(str(r.kind), 0) + r.amount
        day = r.occurred_at.astimezone(zone).date().isoformat()
        data["days"][day] = data["days"].get(day, 0) + signed
        g = gifts[r.gift_id]
        key = "one_time" if g.frequency is Frequency.ONE_TIME else "recurring"
        data["freq_raised"][key] += signed
        source = g.utm_source or figures.DIRECT
        data["src_raised"][source] = data["src_raised"].get(source, 0) + signed

    # Whether each touched gift counted in the snapshot: its rows the snapshot holds.
    before: dict[int, list] = defaultdict(list)
    for gift_id, kind, amount, pid in db.session.execute(
            select(Payment.gift_id, Payment.kind, Payment.amount, Payment.id)
            .where(Payment.gift_id.in_(touched))):
        if pid <= mark or pid in extra:
            before[gift_id].append((kind, amount))
    counted_then = {gid: _counts_by_rule(before[gid]) for gid in touched}
    counted_now = {gid: GiftStatus(gifts[gid].status).counts for gid in touched}
    hist = data["hist"]
    top = [entry for entry in data["top"] if entry[1] not in gifts]
    for gid in touched:
        then, now_ = counted_then[gid], counted_now[gid]
        g = gifts[gid]
        total = g.amount + g.fee_covered
        if now_:
            top.append([total, gid])
        if then == now_:
            continue
        step = 1 if now_ else -1
        data["gifts"] += step
        data["sum"] += step * total
        if g.frequency is not Frequency.ONE_TIME:
            data["recurring"] += step
            data["recurring_sum"] += step * total
        hist[str(total)] = hist.get(str(total), 0) + step
        source = g.utm_source or figures.DIRECT
        data["src_gifts"][source] = data["src_gifts"].get(source, 0) + step
    top.sort(key=lambda e: (-e[0], e[1]))
    data["top"] = top[:TOP]

    # Donors: a touched gift's donor gave (in this campaign) then and/or now.
    supporters = {gifts[gid].supporter_id for gid in touched}
    others = set(db.session.scalars(
        select(Gift.supporter_id).where(
            Gift.campaign_id == campaign.id, Gift.supporter_id.in_(supporters),
            Gift.id.not_in(touched),
            Gift.status.in_([s for s in GiftStatus if s.counts])).distinct()))
    changed = {}
    for sid in supporters:
        mine = [gid for gid in touched if gifts[gid].supporter_id == sid]
        then = sid in others or any(counted_then[g] for g in mine)
        now_ = sid in others or any(counted_now[g] for g in mine)
        if then != now_:
            changed[sid] = 1 if now_ else -1
    if changed:
        returning = figures.gave_before(list(changed), campaign.starts_at)
        for sid, step in changed.items():
            data["donors"] += step
            if sid in returning:
                data["returning"] += step
    return data


def median_from(hist: dict[str, int], count: int) -> int:
    """The lower middle gift of ``count`` (as the full query's OFFSET picks it)."""
    if not count:
        return 0
    amounts = sorted((int(a), n) for a, n in hist.items() if n > 0)
    running, wanted = 0, (count - 1) // 2
    for amount, n in amounts:
        running += n
        if running > wanted:
            return amount
    return amounts[-1][0] if amounts else 0


def refresh_live(now: datetime, *, zone: ZoneInfo) -> int:
    """Rebuild the snapshot of every live campaign (the scheduler's ``rollup`` task), so that
    its dashboard reads only the few ledger rows since; returns how many were rebuilt."""
    ids = [c.id for c in db.session.scalars(select(Campaign).order_by(Campaign.id))
           if c.is_live(now)]
    for campaign_id in ids:
        db.session.rollback()
        snapshot_for(db.session.get(Campaign, campaign_id), zone=zone, now=now, force=True)
    return len(ids)
