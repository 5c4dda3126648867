"""Finding campaigns and measuring their progress from the ledger."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, Text, bindparam, case, cast, func, literal_column, null, select
from sqlalchemy.dialects.postgresql import aggregate_order_by

from app.audit import Actor, AuditEntry, record_change
from app.campaigns.calendar import (
    CalendarEntry,
    Occasion,
    calendar_entries,
    draft_start,
    local_midnight,
    upcoming_occasions,
)
from app.campaigns.models import Campaign, SuggestedAmount
from app.extensions import db
from app.giving.models import Gift, GiftStatus
from app.money import minor_digits
from app.payments.models import SIGN, Payment


@dataclass(frozen=True)
class Progress:
    raised: int
    goal: int
    currency: str
    donors: int
    gifts: int
    days_left: int
    match_amount: int | None
    match_used: int

    @property
    def percent(self) -> int:
        """Whole percent of the goal reached, floored (99.6% is not yet 100%)."""
        return self.raised * 100 // self.goal if self.goal else 0

    @property
    def bar_percent(self) -> int:
        return max(0, min(100, self.percent))

    @property
    def match_left(self) -> int:
        return max(0, (self.match_amount or 0) - self.match_used)


def get_campaign(slug: str) -> Campaign | None:
    return db.session.scalar(select(Campaign).where(Campaign.slug == slug, Campaign.published))


def list_campaigns(now: datetime) -> tuple[list[Campaign], list[Campaign], list[Campaign]]:
    """Published campaigns split into (live, upcoming, ended), each in a sensible order."""
    campaigns = db.session.scalars(select(Campaign).where(Campaign.published)).all()
    live = sorted((c for c in campaigns if c.is_live(now)), key=lambda c: c.ends_at)
    upcoming = sorted((c for c in campaigns if c.starts_at > now), key=lambda c: c.starts_at)
    ended = sorted((c for c in campaigns if c.has_ended(now)), key=lambda c: c.ends_at,
                   reverse=True)
    return live, upcoming, ended


def main_appeal(now: datetime) -> Campaign | None:
    """The campaign the site's "Give" links lead to: the live campaign that ends soonest (the
    first on the home page), or None when no campaign is live."""
    live = list_campaigns(now)[0]
    return live[0] if live else None


@dataclass(frozen=True)
class LedgerVersion:
    """Which state of the ledger a campaign's figures were read from, told apart by index
    lookups only (whatever the number of gifts).

    ``last_payment_id`` is the campaign's newest ledger row and ``last_audit_id`` the newest
    entry of the audit log. On SQLite the two are exact: writers take the database lock one at
    a time, so ids are handed out in commit order and every new row raises a maximum. Money
    moves by adding ledger rows (a charge pays a gift, a refund or dispute changes its status,
    with its own row); a staff change that rewrites a ledger row or a gift in place (an
    offline gift's correction) is written to the audit log in the same transaction (DESIGN:
    every staff action that changes money is). Both logs are only ever added to.

    On PostgreSQL ids come from sequences, and a transaction holding a lower id can commit
    after one holding a higher id, so the maxima alone could miss a gift. There the version
    also carries the statement's snapshot (``pg_current_snapshot()``: which transactions had
    finished). Two reads under the same snapshot saw the same committed data, whatever it is;
    once the snapshot moves (anything committed anywhere), the figures are read again before
    anything cached on them is trusted.
    """

    last_payment_id: int | None
    last_audit_id: int | None
    snapshot: str | None = None


def ledger_version_columns(campaign_id, dialect: str) -> tuple:
    """The columns of a ``LedgerVersion``, for a SELECT that reads other things with them (so
    that all of them come from one snapshot)."""
    # The campaign's newest row, as the last entry of ix_payment_campaign_id_id up to this
    # campaign: a short walk down that index on both databases. (Written as max(id) WHERE
    # campaign_id = ..., PostgreSQL's generic plan may walk the primary key backwards instead,
    # past every newer payment of every other campaign: all of them for a campaign with none.)
    # LIMIT 1 in the SQL text, not as a parameter: PostgreSQL's generic plan for a prepared
    # statement otherwise guesses a larger limit, finds that plan dear, and plans the statement
    # again on every execution (most of its cost).
    last_payment = (select(case((Payment.campaign_id == campaign_id, Payment.id)))
                    .where(Payment.campaign_id <= campaign_id)
                    .order_by(Payment.campaign_id.desc(), Payment.id.desc())
                    .limit(literal_column("1")).scalar_subquery())
    last_audit = select(func.max(AuditEntry.id)).scalar_subquery()
    pg_snapshot = cast(func.pg_current_snapshot(), Text) if dialect == "postgresql" else null()
    return (last_payment.label("last_payment_id"), last_audit.label("last_audit_id"),
            pg_snapshot.label("ledger_snapshot"))


def campaign_progress(campaign: Campaign, now: datetime) -> Progress:
    """Raised (charges less refunds and disputes), donors and gifts, straight from the ledger."""
    return campaign_progress_versioned(campaign, now)[0]


def campaign_progress_versioned(campaign: Campaign,
                                now: datetime) -> tuple[Progress, LedgerVersion]:
    """``campaign_progress`` and the ``LedgerVersion`` it was read at, in one statement."""
    signed = case(*((Payment.kind == kind, Payment.amount * sign) for kind, sign in SIGN.items()),
                  else_=0)
    raised_q = (select(func.coalesce(func.sum(signed), 0))
                .where(Payment.campaign_id == campaign.id).scalar_subquery())
    # COUNT(DISTINCT supporter_id) sorts every paid gift; counting a DISTINCT subquery lets
    # SQLite and PostgreSQL walk ix_gift_campaign_status_supporter in order instead (a third
    # faster at 10k gifts, more beyond). Same figures: id and supporter_id are NOT NULL.
    paid = (Gift.campaign_id == campaign.id,
            Gift.status.in_([status for status in GiftStatus if status.counts]))
    donors_q = select(Gift.supporter_id).where(*paid).distinct().subquery()
    dialect = db.session.get_bind().dialect.name
    raised, gifts, donors, *version = db.session.execute(select(
        raised_q,
        select(func.count()).select_from(Gift).where(*paid).scalar_subquery(),
        select(func.count()).select_from(donors_q).scalar_subquery(),
        *ledger_version_columns(campaign.id, dialect),
    )).one()
    seconds_left = (campaign.ends_at - now).total_seconds()
    match_open = campaign.match_amount and (campaign.match_ends_at is None
                                            or now < campaign.match_ends_at)
    progress = Progress(
        raised=int(raised),
        goal=campaign.goal_amount,
        currency=campaign.currency,
        donors=donors,
        gifts=gifts,
        days_left=max(0, math.ceil(seconds_left / 86400)),
        match_amount=campaign.match_amount if match_open else None,
        match_used=min(int(raised), campaign.match_amount or 0),
    )
    return progress, LedgerVersion(*version)


@dataclass(frozen=True)
class PageState:
    """What a campaign page shows apart from the clock and the visitor: the campaign's row and
    its suggested amounts as stored (compared, never interpreted), and its ``LedgerVersion``."""

    content: tuple
    version: LedgerVersion


def campaign_page_state(slug: str) -> PageState | None:
    """One cheap statement (index lookups, whatever the number of gifts) that says whether a
    page rendered earlier is still the page to show; None for no such campaign.

    It runs on every view of a campaign page, so it skips what it can: the SQL is compiled
    once per dialect; the values come back as the driver returns them (they are only compared,
    never interpreted); and it reads on a connection of its own, in autocommit (one round trip
    to PostgreSQL instead of BEGIN, SELECT, ROLLBACK), outside the ORM session it has no need
    for. A session bound to a connection (the tests' transaction) is read through that.
    """
    bind = db.session.get_bind()
    sql, params_for = _page_state_sql(bind.dialect)
    params = params_for(slug)
    if isinstance(bind, Engine):
        row = _autocommit_fetchone(bind, sql, params)
    else:
        row = bind.exec_driver_sql(sql, params).first()
    if row is None:
        return None
    return PageState(content=tuple(row[:-3]), version=LedgerVersion(*row[-3:]))


def _autocommit_fetchone(engine: Engine, sql: str, params) -> tuple | None:
    pooled = engine.raw_connection()
    try:
        connection = pooled.driver_connection
        # SQLite connections are already in autocommit (app.db); a psycopg one is switched
        # for this statement and always switched back before it returns to the pool.
        switch = engine.dialect.name == "postgresql"
        if switch:
            connection.autocommit = True
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(sql, params)
                return cursor.fetchone()
            finally:
                cursor.close()
        finally:
            if switch:
                connection.autocommit = False
    finally:
        pooled.close()


@lru_cache(maxsize=4)
def _page_state_sql(dialect) -> tuple[str, Callable[[str], tuple | dict]]:
    """The campaign's row, its suggested amounts as one JSON text, and its ledger version."""
    fields = (SuggestedAmount.id, SuggestedAmount.amount, SuggestedAmount.impact,
              SuggestedAmount.position)
    of_campaign = SuggestedAmount.campaign_id == Campaign.id
    if dialect.name == "postgresql":
        suggested = select(cast(func.json_agg(aggregate_order_by(
            func.json_build_array(*fields), SuggestedAmount.position, SuggestedAmount.id)),
            Text)).where(of_campaign)
    else:
        ordered = (select(*fields).where(of_campaign).correlate(Campaign)
                   .order_by(SuggestedAmount.position, SuggestedAmount.id).subquery())
        suggested = select(func.json_group_array(func.json_array(*ordered.c)))
    statement = (
        select(*Campaign.__table__.c, suggested.scalar_subquery().label("suggested"),
               *ledger_version_columns(Campaign.id, dialect.name))
        .where(Campaign.slug == bindparam("slug"), Campaign.published)
    )
    compiled = statement.compile(dialect=dialect)
    fixed = compiled.construct_params({"slug": ""})  # any other value is fixed (SQLite: OFFSET)
    if compiled.positional:
        order = compiled.positiontup
        return str(compiled), lambda slug: tuple(slug if name == "slug" else fixed[name]
                                                 for name in order)
    return str(compiled), lambda slug: {**fixed, "slug": slug}


#: Suggested amounts (in whole units) a new draft starts with, by tradition: multiples of 18
#: (chai) for Jewish holidays, of 30 (the days of Ramadan) for Muslim ones.
DRAFT_AMOUNTS = {"Jewish": (18, 36, 72, 180), "Muslim": (30, 60, 120, 300)}
DEFAULT_DRAFT_AMOUNTS = (25, 50, 100, 250)


def draft_from_occasion(occasion: Occasion, *, zone: ZoneInfo, today: date, currency: str,
                        goal: int, signatory_name: str, signatory_title: str) -> Campaign:
    """An unpublished campaign for an occasion, with its suggested dates (midnight to midnight
    in the organisation's zone), ready for staff to write the letter and publish; when the
    suggested start is before ``today`` (in that zone), it starts today (``draft_start``).
    Creating the same occasion's draft twice returns the first."""
    existing = db.session.scalar(select(Campaign).where(Campaign.slug == occasion.key))
    if existing is not None:
        return existing
    digits = 10 ** minor_digits(currency)
    amounts = DRAFT_AMOUNTS.get(occasion.tradition, DEFAULT_DRAFT_AMOUNTS)
    campaign = Campaign(
        slug=occasion.key, title=occasion.name, kind=occasion.kind,
        summary=f"Our appeal for {occasion.name}.",
        appeal_markdown="Dear friend,\n\n(Write the appeal letter here.)\n",
        signatory_name=signatory_name, signatory_title=signatory_title,
        thank_you_message="Thank you for your gift.",
        starts_at=local_midnight(draft_start(occasion, today), zone).astimezone(UTC),
        ends_at=local_midnight(occasion.ends, zone).astimezone(UTC),
        goal_amount=goal, currency=currency, published=False,
    )
    campaign.suggested_amounts = [SuggestedAmount(amount=a * digits, impact="", position=i)
                                  for i, a in enumerate(amounts)]
    db.session.add(campaign)
    db.session.flush()
    return campaign


# -- staff: creating and running campaigns ----------------------------------------------------
# Every change is written to the audit log with the campaign's fields before and after.

SLUG_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
EDITABLE = ("slug", "title", "kind", "summary", "appeal_markdown", "signatory_name",
            "signatory_title", "thank_you_message", "starts_at", "ends_at", "goal_amount",
            "currency", "default_frequency", "match_amount", "match_sponsor", "match_ends_at",
            "fund_code")


class CampaignError(Exception):
    """A change staff asked for that breaks a rule; the message is fit to show them."""

    def __init__(self, field: str | None, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Amount:
    amount: int  # minor units
    impact: str = ""


def snapshot(campaign: Campaign) -> dict:
    """The campaign as the audit log keeps it: every editable field, its state and amounts."""
    values = {name: getattr(campaign, name) for name in EDITABLE}
    for name in ("starts_at", "ends_at", "match_ends_at"):
        values[name] = values[name].isoformat() if values[name] else None
    values["kind"] = str(campaign.kind)
    values["default_frequency"] = str(campaign.default_frequency)
    values["published"] = bool(campaign.published)
    values["paused_at"] = campaign.paused_at.isoformat() if campaign.paused_at else None
    values["suggested_amounts"] = [[s.amount, s.impact] for s in campaign.suggested_amounts]
    return values


def _check(campaign: Campaign, *, currencies: tuple[str, ...]) -> None:
    if not SLUG_PATTERN.fullmatch(campaign.slug or ""):
        raise CampaignError("slug", "Use lowercase letters, digits and hyphens, like "
                                    "year-end-2026.")
    # Not flushed first: an edited campaign's row may break a constraint this check is about
    # to refuse with a message (ends before it starts).
    with db.session.no_autoflush:
        taken = db.session.scalar(select(Campaign.id).where(Campaign.slug == campaign.slug,
                                                            Campaign.id != campaign.id))
    if taken:
        raise CampaignError("slug", "Another campaign already has this address.")
    if not (campaign.title or "").strip():
        raise CampaignError("title", "Give the campaign a title.")
    if not (campaign.signatory_name or "").strip():
        raise CampaignError("signatory_name", "Say who signs the appeal letter.")
    if campaign.currency not in currencies:
        raise CampaignError("currency", f"Choose one of {', '.join(currencies)}.")
    if campaign.ends_at <= campaign.starts_at:
        raise CampaignError("ends_at", "The campaign must end after it starts.")
    if campaign.goal_amount is None or campaign.goal_amount <= 0:
        raise CampaignError("goal_amount", "The goal must be more than zero.")
    if campaign.match_amount is not None and campaign.match_amount <= 0:
        raise CampaignError("match_amount", "Leave the matching pool empty or make it more "
                                            "than zero.")
    if campaign.match_ends_at and not (campaign.starts_at < campaign.match_ends_at
                                       <= campaign.ends_at):
        raise CampaignError("match_ends_at", "Matching must end within the campaign.")


def _set_amounts(campaign: Campaign, amounts: list[Amount]) -> None:
    if not amounts:
        raise CampaignError("suggested_amounts", "Suggest at least one amount.")
    seen = set()
    for a in amounts:
        if a.amount <= 0:
            raise CampaignError("suggested_amounts", "Suggested amounts must be more than zero.")
        if a.amount in seen:
            raise CampaignError("suggested_amounts", "Each suggested amount once, please.")
        seen.add(a.amount)
    current = {s.amount: s for s in campaign.suggested_amounts}
    campaign.suggested_amounts = [
        _amount_row(current.get(a.amount), a, position)
        for position, a in enumerate(sorted(amounts, key=lambda a: a.amount))]


def _amount_row(row: SuggestedAmount | None, a: Amount, position: int) -> SuggestedAmount:
    row = row or SuggestedAmount(amount=a.amount)
    row.impact, row.position = a.impact, position
    return row


def create_campaign(fields: dict, amounts: list[Amount], *, actor: Actor,
                    currencies: tuple[str, ...]) -> Campaign:
    """A new campaign, unpublished: staff preview it, then publish or schedule it."""
    campaign = Campaign(published=False, **{k: v for k, v in fields.items() if k in EDITABLE})
    campaign.suggested_amounts = []
    _set_amounts(campaign, amounts)
    _check(campaign, currencies=currencies)
    db.session.add(campaign)
    db.session.flush()
    record_change(actor, "campaign.create", "campaign", campaign.id, after=snapshot(campaign))
    return campaign


def update_campaign(campaign: Campaign, fields: dict, amounts: list[Amount] | None = None, *,
                    actor: Actor, currencies: tuple[str, ...], now: datetime) -> bool:
    """Change any of the editable fields (and the suggested amounts); False when nothing
    changed. Once money has arrived, the currency is fixed."""
    before = snapshot(campaign)
    if fields.get("currency", campaign.currency) != campaign.currency and db.session.scalar(
            select(Payment.id).where(Payment.campaign_id == campaign.id).limit(1)):
        raise CampaignError("currency", "Gifts have been made in this currency; it cannot "
                                        "change now.")
    for name, value in fields.items():
        if name in EDITABLE:
            setattr(campaign, name, value)
    if amounts is not None:
        _set_amounts(campaign, amounts)
    try:
        _check(campaign, currencies=currencies)
    except CampaignError:
        db.session.expire(campaign)
        raise
    after = snapshot(campaign)
    if after == before:
        return False
    db.session.flush()
    record_change(actor, "campaign.update", "campaign", campaign.id, before=before, after=after)
    return True


def _transition(campaign: Campaign, action: str, actor: Actor, change) -> None:
    before = snapshot(campaign)
    change()
    db.session.flush()
    record_change(actor, action, "campaign", campaign.id, before=before,
                  after=snapshot(campaign))


def publish_campaign(campaign: Campaign, *, actor: Actor, now: datetime) -> None:
    """Put the campaign on the site: live at once if it has started, else scheduled for its
    start date (the public pages list it as coming soon until then)."""
    if campaign.has_ended(now):
        raise CampaignError(None, "This campaign has ended; change its end date first.")
    if campaign.published and not campaign.is_paused:
        raise CampaignError(None, "This campaign is already published.")

    def change():
        campaign.published = True
        campaign.paused_at = None

    action = "campaign.schedule" if campaign.starts_at > now else "campaign.publish"
    _transition(campaign, action, actor, change)


def schedule_campaign(campaign: Campaign, *, starts_at: datetime, ends_at: datetime,
                      actor: Actor, now: datetime, currencies: tuple[str, ...]) -> None:
    """Set the dates and publish: the campaign goes live by itself at ``starts_at``."""
    if starts_at <= now:
        raise CampaignError("starts_at", "A scheduled campaign starts in the future; to start "
                                         "now, publish it.")
    before = snapshot(campaign)
    campaign.starts_at, campaign.ends_at = starts_at, ends_at
    campaign.published, campaign.paused_at = True, None
    try:
        _check(campaign, currencies=currencies)
    except CampaignError:
        db.session.expire(campaign)
        raise
    db.session.flush()
    record_change(actor, "campaign.schedule", "campaign", campaign.id, before=before,
                  after=snapshot(campaign))


def pause_campaign(campaign: Campaign, *, actor: Actor, now: datetime) -> None:
    """Stop taking gifts for now; the page stays up and says so."""
    if not campaign.published or campaign.is_paused or campaign.has_ended(now):
        raise CampaignError(None, "Only a published campaign that has not ended can be "
                                  "paused.")
    _transition(campaign, "campaign.pause", actor, lambda: setattr(campaign, "paused_at", now))


def resume_campaign(campaign: Campaign, *, actor: Actor, now: datetime) -> None:
    if not campaign.is_paused:
        raise CampaignError(None, "This campaign is not paused.")
    if campaign.has_ended(now):
        raise CampaignError(None, "This campaign has ended; change its end date first.")
    _transition(campaign, "campaign.resume", actor, lambda: setattr(campaign, "paused_at", None))


def end_campaign(campaign: Campaign, *, actor: Actor, now: datetime) -> None:
    """End it now: no more gifts, the page thanks the donors. A campaign that never started is
    taken off the site instead (its dates could not end before they begin)."""
    if campaign.has_ended(now):
        raise CampaignError(None, "This campaign has already ended.")

    def change():
        if campaign.starts_at < now:
            campaign.ends_at = now
            if campaign.match_ends_at and campaign.match_ends_at > now:
                campaign.match_ends_at = now
        else:
            campaign.published = False
        campaign.paused_at = None

    _transition(campaign, "campaign.end", actor, change)


def occasion_calendar(*, now: datetime, zone: ZoneInfo, founded: date,
                      months: int = 24) -> list[CalendarEntry]:
    """The staff calendar: the occasions of the next ``months`` (from today in ``zone``), each
    with the campaign made from it, if any, and its state (``calendar_entries``)."""
    occasions = upcoming_occasions(now.astimezone(zone).date(), founded=founded, months=months)
    made = db.session.scalars(select(Campaign).where(
        Campaign.slug.in_([o.key for o in occasions])))
    return calendar_entries(occasions, {c.slug: c for c in made}, now=now, zone=zone)


def draft_for_occasion(occasion: Occasion, *, actor: Actor, zone: ZoneInfo, today: date,
                       currency: str, goal: int, signatory_name: str, signatory_title: str
                       ) -> tuple[Campaign, bool]:
    """:func:`draft_from_occasion`, audited; (the draft, whether it is new)."""
    existed = db.session.scalar(select(Campaign.id).where(Campaign.slug == occasion.key))
    campaign = draft_from_occasion(occasion, zone=zone, today=today, currency=currency,
                                   goal=goal, signatory_name=signatory_name,
                                   signatory_title=signatory_title)
    if existed is None:
        record_change(actor, "campaign.create", "campaign", campaign.id,
                      after={**snapshot(campaign), "occasion": occasion.key})
    return campaign, existed is None


def campaign_by_slug(slug: str) -> Campaign | None:
    """Any campaign, published or not (staff pages)."""
    return db.session.scalar(select(Campaign).where(Campaign.slug == slug))
