"""Membership levels and their perks, derived from a supporter's giving.

The level is computed, never stored: from the ledger (charges less refunds and disputes over the
last 12 months) and from the supporter's active monthly or yearly plans, each of which counts
as a full year at its current amount in place of its own past payments. Amounts in different
currencies are not added together: the level is the highest one reached in any one currency.
A plan cancelled but paid until a date (``RecurringPlan.ends_at``) counts until then. A
supporter whose membership was given, not paid for (``Supporter.comped_until``, Ghost's
complimentary plan, brought by ``flask supporters import``), holds the lowest level at least
until then.

Whether someone has a perk is decided here and only here: :func:`has_perk` for code,
:func:`requires_perk` for views, :func:`supporters_with_perk` for many supporters at once (the
daily email asks it for each batch of subscribers, in four queries a batch; ``has_perk`` is
the same rule for one).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import wraps

from flask import current_app, render_template
from flask_login import current_user
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import aliased

from app.accounts.models import Supporter
from app.db import utcnow
from app.extensions import db, login_manager
from app.giving.models import Frequency, Gift, PlanStatus, RecurringPlan
from app.payments.models import SIGN, Payment

WINDOW = timedelta(days=365)
ACTIVE_PLAN = (PlanStatus.ACTIVE, PlanStatus.PAST_DUE)


def _plan_counts(plan, now: datetime):
    """A plan that counts towards a level now: active (or retrying), and not past the date
    its donor cancelled it for."""
    return and_(plan.status.in_(ACTIVE_PLAN), or_(plan.ends_at.is_(None), plan.ends_at > now))


@dataclass(frozen=True)
class Perk:
    key: str
    name: str
    description: str


@dataclass(frozen=True)
class Level:
    key: str
    name: str
    minimum: dict[str, int]  # currency -> minor units a year
    perks: tuple[Perk, ...]  # its own and those of every level below it

    def reached_by(self, totals: dict[str, int]) -> bool:
        return any(currency in self.minimum and amount >= self.minimum[currency]
                   for currency, amount in totals.items())


@dataclass(frozen=True)
class Membership:
    level: Level | None
    # Net giving of the last 12 months per currency, active plans counted for a full year.
    totals: dict[str, int] = field(default_factory=dict)
    next_level: Level | None = None

    def has_perk(self, key: str) -> bool:
        return self.level is not None and any(p.key == key for p in self.level.perks)

    def next_step(self, default_currency: str) -> tuple[Level, str, int] | None:
        """The next level, in the currency the supporter gives most in, and how much more a
        year reaches it."""
        if self.next_level is None:
            return None
        usable = {c: a for c, a in self.totals.items() if c in self.next_level.minimum}
        currency = max(usable, key=usable.get) if usable else default_currency
        if currency not in self.next_level.minimum:
            return None
        return (self.next_level, currency,
                max(0, self.next_level.minimum[currency] - self.totals.get(currency, 0)))


class MembershipConfigError(ValueError):
    pass


def levels_from_config(config) -> tuple[Level, ...]:
    """The configured levels, lowest first, each carrying its cumulative perks."""
    perks = {key: Perk(key, spec["name"], spec.get("description", ""))
             for key, spec in config["MEMBERSHIP_PERKS"].items()}
    levels, inherited = [], ()
    for spec in config["MEMBERSHIP_LEVELS"]:
        unknown = set(spec.get("perks", ())) - perks.keys()
        if unknown:
            raise MembershipConfigError(f"level {spec['key']!r} names unknown perks {unknown}")
        inherited = inherited + tuple(perks[k] for k in spec.get("perks", ()))
        levels.append(Level(key=spec["key"], name=spec["name"],
                            minimum={c.upper(): int(v) for c, v in spec["minimum"].items()},
                            perks=inherited))
    return tuple(levels)


def giving_totals(supporter_id: int, *, now: datetime) -> dict[str, int]:
    """What counts towards a level, per currency (see the module's docstring)."""
    return giving_totals_of([supporter_id], now=now).get(supporter_id, {})


def giving_totals_of(supporter_ids: Iterable[int], *,
                     now: datetime) -> dict[int, dict[str, int]]:
    """:func:`giving_totals` for many supporters, in two queries per 500; a supporter with
    nothing that counts is left out."""
    totals: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    signed = case(*((Payment.kind == kind, Payment.amount * sign) for kind, sign in SIGN.items()),
                  else_=0)
    active_plan = aliased(RecurringPlan)
    for chunk in _chunks(sorted(set(supporter_ids)), 500):
        for plan in db.session.execute(
                select(RecurringPlan.supporter_id, RecurringPlan.frequency,
                       RecurringPlan.amount, RecurringPlan.fee_covered, RecurringPlan.currency)
                .where(RecurringPlan.supporter_id.in_(chunk),
                       _plan_counts(RecurringPlan, now))):
            per_year = 12 if plan.frequency is Frequency.MONTHLY else 1
            totals[plan.supporter_id][plan.currency] += (
                (plan.amount + plan.fee_covered) * per_year)
        # The window's payments, less those of the supporter's own active plans (counted for a
        # full year above).
        query = (
            select(Gift.supporter_id, Payment.currency, func.coalesce(func.sum(signed), 0))
            .join(Gift, Gift.id == Payment.gift_id)
            .outerjoin(active_plan, and_(active_plan.id == Gift.plan_id,
                                         active_plan.supporter_id == Gift.supporter_id,
                                         _plan_counts(active_plan, now)))
            .where(Gift.supporter_id.in_(chunk), Payment.occurred_at >= now - WINDOW,
                   active_plan.id.is_(None))
            .group_by(Gift.supporter_id, Payment.currency)
        )
        for supporter_id, currency, amount in db.session.execute(query):
            totals[supporter_id][currency] += int(amount)
    result = {}
    for supporter_id, per_currency in totals.items():
        counted = {currency: amount for currency, amount in per_currency.items() if amount > 0}
        if counted:
            result[supporter_id] = counted
    return result


def membership_from(totals: dict[str, int], levels: tuple[Level, ...], *,
                    comped: bool = False) -> Membership:
    """The level reached by these totals (from :func:`giving_totals`), and the next one; a
    comped supporter holds the lowest level at least."""
    reached = [level for level in levels if level.reached_by(totals)]
    if comped and levels and not reached:
        reached = [levels[0]]
    level = reached[-1] if reached else None
    above = levels[levels.index(level) + 1:] if level else levels
    return Membership(level=level, totals=totals, next_level=above[0] if above else None)


def membership_for(supporter: Supporter, *, levels: tuple[Level, ...],
                   now: datetime) -> Membership:
    return membership_from(giving_totals(supporter.id, now=now), levels,
                           comped=supporter.comped_until is not None
                           and supporter.comped_until > now)


def comped_among(supporter_ids: Iterable[int], *, now: datetime) -> set[int]:
    """Which of these supporters have a comped membership now."""
    comped: set[int] = set()
    for chunk in _chunks(sorted(set(supporter_ids)), 500):
        comped.update(db.session.scalars(select(Supporter.id).where(
            Supporter.id.in_(chunk), Supporter.comped_until > now)))
    return comped


def level_granting(perk: str, levels: tuple[Level, ...]) -> Level | None:
    """The lowest level with ``perk``, or None: levels are configurable, and a configuration
    may offer a perk at no level."""
    return next((level for level in levels if any(p.key == perk for p in level.perks)), None)


def has_perk(supporter: Supporter | None, perk: str, *, levels: tuple[Level, ...],
             now: datetime) -> bool:
    """The one check of a perk. A perk nobody can have is a mistake, not a "no"."""
    _offered(perk, levels)
    if supporter is None or supporter.erased_at is not None:
        return False
    return bool(_holders([supporter.id], perk, levels=levels, now=now))


def supporters_with_perk(supporter_ids: Iterable[int], perk: str, *,
                         levels: tuple[Level, ...], now: datetime) -> set[int]:
    """Which of these supporters have ``perk``: :func:`has_perk` for many at once, in four
    queries per 500 supporters rather than two per supporter. Erased supporters have none.

    Raises :class:`MembershipConfigError` when no level grants ``perk``, as ``has_perk`` does.
    """
    _offered(perk, levels)
    present: set[int] = set()
    for chunk in _chunks(sorted(set(supporter_ids)), 500):
        present.update(db.session.scalars(
            select(Supporter.id).where(Supporter.id.in_(chunk), Supporter.erased_at.is_(None))))
    return _holders(present, perk, levels=levels, now=now)


def members_with_perk(perk: str, *, levels: tuple[Level, ...],
                      now: datetime) -> list[tuple[Supporter, Level]]:
    """Every supporter who has ``perk`` now, with their level, by name: the list staff deliver
    the perks the app does not (the supporters' letter, the founder's call, the annual report's
    thanks) from. Only supporters with a payment in the window or an active plan can have one,
    so only those are counted."""
    candidates = set(db.session.scalars(
        select(Gift.supporter_id).join(Payment, Payment.gift_id == Gift.id)
        .where(Payment.occurred_at >= now - WINDOW).distinct()))
    candidates.update(db.session.scalars(
        select(RecurringPlan.supporter_id).where(_plan_counts(RecurringPlan, now))))
    candidates.update(db.session.scalars(
        select(Supporter.id).where(Supporter.comped_until > now)))
    holders = supporters_with_perk(candidates, perk, levels=levels, now=now)
    totals = giving_totals_of(holders, now=now)
    comped = comped_among(holders, now=now)
    members = []
    for chunk in _chunks(sorted(holders), 500):
        for supporter in db.session.scalars(select(Supporter).where(Supporter.id.in_(chunk))):
            members.append((supporter, membership_from(
                totals.get(supporter.id, {}), levels,
                comped=supporter.id in comped).level))
    return sorted(members, key=lambda m: (m[0].name.casefold(), m[0].email))


def _offered(perk: str, levels: tuple[Level, ...]) -> None:
    if level_granting(perk, levels) is None:
        raise MembershipConfigError(f"no level grants the perk {perk!r}")


def _holders(supporter_ids: Iterable[int], perk: str, *, levels: tuple[Level, ...],
             now: datetime) -> set[int]:
    ids = set(supporter_ids)
    totals = giving_totals_of(ids, now=now)
    comped = comped_among(ids, now=now)
    return {supporter_id for supporter_id in totals.keys() | comped
            if membership_from(totals.get(supporter_id, {}), levels,
                               comped=supporter_id in comped).has_perk(perk)}


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# -- in requests ------------------------------------------------------------------------------

def current_levels() -> tuple[Level, ...]:
    return levels_from_config(current_app.config)


def current_membership() -> Membership | None:
    """The signed-in supporter's membership."""
    if not current_user.is_authenticated:
        return None
    return membership_for(current_user, levels=current_levels(), now=utcnow())


def requires_perk(perk: str):
    """A view only supporters with ``perk`` may open; others see which level brings it."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            levels = current_levels()
            if not has_perk(current_user, perk, levels=levels, now=utcnow()):
                needed = level_granting(perk, levels)
                return render_template("accounts/perk_locked.html", level=needed,
                                       membership=current_membership()), 403
            return view(*args, **kwargs)

        return wrapper

    return decorate
