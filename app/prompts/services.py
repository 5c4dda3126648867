"""The prompts' rules that need the database: the live candidates, what we know of a reader
(donor and subscriber status, for a signed-in reader or from a status token), the reader's facts
from the decision request, the counters, the results per variant, the staff's changes (audited),
and the daily email's appeal.

Services take plain arguments (the clock, the signing keys, the acting staff member); the views
pass them in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import exists, func, select

from app import audit
from app.accounts.models import Supporter
from app.audit import Actor
from app.campaigns.models import Campaign
from app.db import insert
from app.extensions import db
from app.giving.models import Frequency, Gift, GiftStatus, PlanStatus, RecurringPlan
from app.news.models import Follow, NewsSubscriber, SubscriberStatus
from app.payments.models import Payment
from app.prompts.decide import Candidate, DonorStatus, ReaderFacts, Seen
from app.prompts.models import VARIANTS, EmailAppeal, Prompt, PromptCount
from app.staff.figures import signed_amount

#: What the reader's browser may send at most: ids and periods it keeps for a few prompts.
MAX_LISTED = 50
#: How long a status token (thank-you and confirmation pages) is believed.
STATUS_TOKEN_MAX_AGE = timedelta(days=90)
COUNTED = (GiftStatus.PAID, GiftStatus.PARTIALLY_REFUNDED)
EVENTS = ("impressions", "dismissals", "clicks")


class PromptError(Exception):
    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


# -- the candidates ----------------------------------------------------------------------------

def live_prompts(now: datetime) -> list[Prompt]:
    """Prompts switched on, within their dates, whose campaign is live."""
    return list(db.session.scalars(
        select(Prompt).join(Campaign, Campaign.id == Prompt.campaign_id)
        .where(Prompt.enabled, Prompt.starts_at <= now, Prompt.ends_at > now,
               Campaign.published, Campaign.paused_at.is_(None), Campaign.starts_at <= now,
               Campaign.ends_at > now)
        .order_by(Prompt.priority, Prompt.id)))


def live_candidates(now: datetime) -> list[Candidate]:
    return [Candidate.of(p) for p in live_prompts(now)]


# -- what we know of a reader ------------------------------------------------------------------

def donor_status(supporter_id: int, now: datetime) -> DonorStatus:
    """The supporter's giving as the segments see it (``DonorStatus``)."""
    plans = db.session.execute(
        select(RecurringPlan.frequency, RecurringPlan.status)
        .where(RecurringPlan.supporter_id == supporter_id)).all()
    running = [f for f, s in plans if s in (PlanStatus.ACTIVE, PlanStatus.PAST_DUE)]
    if Frequency.MONTHLY in running:
        return DonorStatus.MONTHLY
    if running:
        return DonorStatus.RECENT
    last = db.session.scalar(select(func.max(Gift.paid_at)).where(
        Gift.supporter_id == supporter_id, Gift.status.in_(COUNTED)))
    if last is None:
        return DonorStatus.NEVER
    if last < now - timedelta(days=365):
        return DonorStatus.LAPSED
    return DonorStatus.ENDED if plans else DonorStatus.RECENT


def is_subscriber(supporter: Supporter) -> bool:
    """Whether the supporter gets the daily email (linked to their account or at their
    address)."""
    return db.session.scalar(select(exists().where(
        NewsSubscriber.status == SubscriberStatus.CONFIRMED,
        (NewsSubscriber.supporter_id == supporter.id)
        | (NewsSubscriber.email == supporter.email))))


def follows_of(supporter_id: int) -> frozenset[int]:
    return frozenset(db.session.scalars(
        select(Follow.category_id).where(Follow.supporter_id == supporter_id)))


@dataclass(frozen=True)
class Known:
    """Donor and subscriber status (None: unknown) and follows, for the facts."""

    donor: DonorStatus | None = None
    subscriber: bool | None = None
    follows: frozenset[int] = frozenset()


def known_supporter(supporter: Supporter, now: datetime) -> Known:
    return Known(donor=donor_status(supporter.id, now), subscriber=is_subscriber(supporter),
                 follows=follows_of(supporter.id))


class StatusSigner:
    """The status token: a reader's donor status and whether they subscribe, signed, with its
    date and nothing else (no address, no id), so the article site's storage can keep it."""

    def __init__(self, keys: list[str] | str):
        self._serializer = URLSafeTimedSerializer(keys, salt="prompt-status")

    def token(self, known: Known) -> str:
        return self._serializer.dumps(
            [known.donor.value if known.donor else "", 1 if known.subscriber else 0])

    def read(self, token: str | None) -> Known | None:
        if not token or len(token) > 200:
            return None
        try:
            value = self._serializer.loads(token,
                                           max_age=STATUS_TOKEN_MAX_AGE.total_seconds())
        except BadSignature:
            return None
        if not isinstance(value, list) or len(value) != 2 or value[1] not in (0, 1):
            return None
        try:
            donor = DonorStatus(value[0]) if value[0] else None
        except ValueError:
            return None
        return Known(donor=donor, subscriber=bool(value[1]))


def _int(value: str | None, low: int, high: int) -> int | None:
    try:
        number = int(value or "")
    except ValueError:
        return None
    return number if low <= number <= high else None


def _ids(value: str | None) -> frozenset[int]:
    found = (_int(v, 1, 2**31 - 1) for v in (value or "").split(",")[:MAX_LISTED])
    return frozenset(v for v in found if v is not None)


def _seen(value: str | None) -> dict[int, Seen]:
    """``<id>.<period>.<times>`` items, comma-separated."""
    seen: dict[int, Seen] = {}
    for item in (value or "").split(",")[:MAX_LISTED]:
        parts = item.split(".")
        if len(parts) != 3:
            continue
        prompt_id, times = _int(parts[0], 1, 2**31 - 1), _int(parts[2], 0, 10**6)
        if prompt_id is not None and times is not None and len(parts[1]) <= 10:
            seen[prompt_id] = Seen(parts[1], times)
    return seen


def reader_facts(args: Mapping[str, str], *, known: Known | None,
                 track: bool) -> ReaderFacts:
    """The facts of a decision request's parameters (what embed.js keeps in the article site's
    storage; README "Prompts" lists them). Malformed values count as absent. ``track`` False
    (Global Privacy Control, Do Not Track): no first-party id, so no split."""
    gave = _int(args.get("gave_until"), 0, 2**40)
    reader_id = (args.get("rid") or "")[:64] if track else ""
    known = known or Known()
    return ReaderFacts(
        views=_int(args.get("views"), 1, 10**7) or 1,
        from_email=args.get("email") == "1",
        seen=_seen(args.get("seen")),
        dismissed=_ids(args.get("dismissed")),
        gave_until=datetime.fromtimestamp(gave, UTC) if gave else None,
        reader_id=reader_id or None,
        donor=known.donor, subscriber=known.subscriber, follows=known.follows)


# -- counters ----------------------------------------------------------------------------------

def count_event(prompt: Prompt, variant: str, event: str, *, now: datetime) -> None:
    """One more impression, dismissal or click of the variant today (UTC): one upsert."""
    if event not in EVENTS or variant not in prompt.variants:
        raise PromptError("Unknown event or variant.")
    values = {"prompt_id": prompt.id, "variant": variant, "day": now.date(),
              **{name: int(name == event) for name in EVENTS}}
    stmt = insert(PromptCount).values(**values)
    db.session.execute(stmt.on_conflict_do_update(
        index_elements=["prompt_id", "variant", "day"],
        set_={event: getattr(PromptCount, event) + 1}))


# -- results -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class VariantResult:
    variant: str
    impressions: int
    dismissals: int
    clicks: int
    gifts: int
    raised: int  # net, from the ledger, in the campaign's currency

    @property
    def conversion(self) -> float | None:
        """Gifts per impression."""
        return self.gifts / self.impressions if self.impressions else None

    @property
    def click_rate(self) -> float | None:
        return self.clicks / self.impressions if self.impressions else None


@dataclass(frozen=True)
class Significance:
    """B against A, two-proportion z-test on gifts per impression (pooled, two-sided)."""

    z: float
    p_value: float

    @property
    def significant(self) -> bool:
        return self.p_value < 0.05


def attribution(prompt_id: int, variant: str) -> str:
    """The ``utm_content`` a prompt's give link carries, which its gifts keep."""
    return f"prompt-{prompt_id}-{variant}"


def two_proportion_z(successes_a: int, trials_a: int, successes_b: int,
                     trials_b: int) -> Significance | None:
    """The pooled two-proportion z-test; None when a side has no trials or the pooled rate is
    0 or 1 (no variance to test)."""
    if not trials_a or not trials_b:
        return None
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    if pooled in (0, 1):
        return None
    error = math.sqrt(pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b))
    z = (successes_b / trials_b - successes_a / trials_a) / error
    return Significance(z=z, p_value=math.erfc(abs(z) / math.sqrt(2)))


def prompt_results(prompt: Prompt) -> tuple[list[VariantResult], Significance | None]:
    """Per variant: the counters, and the counted gifts and net money attributed to it through
    ``utm_content`` (``attribution``) on the prompt's campaign."""
    counts = {row.variant: row for row in db.session.execute(
        select(PromptCount.variant, *(func.sum(getattr(PromptCount, e)).label(e)
                                      for e in EVENTS))
        .where(PromptCount.prompt_id == prompt.id).group_by(PromptCount.variant))}
    tags = {attribution(prompt.id, v): v for v in VARIANTS}
    gifts = dict(db.session.execute(
        select(Gift.utm_content, func.count())
        .where(Gift.campaign_id == prompt.campaign_id, Gift.status.in_(COUNTED),
               Gift.utm_content.in_(tags)).group_by(Gift.utm_content)).all())
    raised = dict(db.session.execute(
        select(Gift.utm_content, func.sum(signed_amount()))
        .join(Gift, Gift.id == Payment.gift_id)
        .where(Payment.campaign_id == prompt.campaign_id, Gift.utm_content.in_(tags))
        .group_by(Gift.utm_content)).all())
    results = []
    for variant in prompt.variants:
        row, tag = counts.get(variant), attribution(prompt.id, variant)
        results.append(VariantResult(
            variant=variant, **{e: int(getattr(row, e) or 0) if row else 0 for e in EVENTS},
            gifts=gifts.get(tag, 0), raised=int(raised.get(tag) or 0)))
    significance = None
    if len(results) == 2:
        a, b = results
        significance = two_proportion_z(a.gifts, a.impressions, b.gifts, b.impressions)
    return results, significance


# -- staff's changes ---------------------------------------------------------------------------

PROMPT_FIELDS = ("name", "placement", "segment", "priority", "min_views", "category_id",
                 "starts_at", "ends_at", "enabled", "start_at_view", "every_nth_view",
                 "max_times", "reset", "gave_hide_days", "headline_a", "body_a", "button_a",
                 "headline_b", "body_b", "button_b")


def _snapshot(prompt: Prompt) -> dict:
    return {"campaign_id": prompt.campaign_id,
            **{name: getattr(prompt, name) for name in PROMPT_FIELDS}}


def _check(fields: dict) -> None:
    from app.prompts.models import Segment

    if fields["ends_at"] <= fields["starts_at"]:
        raise PromptError("The end must come after the start.", "ends_at")
    if fields["segment"] is Segment.ENGAGED and not fields.get("min_views"):
        raise PromptError("Say how many article views make a reader engaged.", "min_views")
    if fields["segment"] is Segment.FOLLOWER and not fields.get("category_id"):
        raise PromptError("Choose the region or topic its readers follow.", "category_id")
    if fields.get("headline_b") and not fields.get("button_b"):
        raise PromptError("Variant B needs its button's words too.", "button_b")


def create_prompt(campaign: Campaign, fields: dict, *, actor: Actor) -> Prompt:
    _check(fields)
    prompt = Prompt(campaign_id=campaign.id, **fields)
    db.session.add(prompt)
    db.session.flush()
    audit.record_change(actor, "prompt.create", "prompt", prompt.id, after=_snapshot(prompt))
    return prompt


def update_prompt(prompt: Prompt, fields: dict, *, actor: Actor) -> bool:
    """Save the changes; False when nothing changed."""
    _check(fields)
    before = _snapshot(prompt)
    for name, value in fields.items():
        setattr(prompt, name, value)
    after = _snapshot(prompt)
    if after == before:
        return False
    db.session.flush()
    audit.record_change(actor, "prompt.update", "prompt", prompt.id, before=before, after=after)
    return True


# -- the daily email's appeal ------------------------------------------------------------------

def set_email_appeal(campaign: Campaign, on: bool, *, actor: Actor, now: datetime) -> bool:
    """Switch the campaign's appeal in the daily email on or off; False when it already was."""
    row = db.session.get(EmailAppeal, campaign.id)
    if (row is not None) == on:
        return False
    if on:
        db.session.add(EmailAppeal(campaign_id=campaign.id, switched_on_at=now))
    else:
        db.session.delete(row)
    db.session.flush()
    audit.record_change(actor, "campaign.email_appeal", "campaign", campaign.id,
                        before={"email_appeal": not on}, after={"email_appeal": on})
    return True


def email_appeal_on(campaign_id: int) -> bool:
    return db.session.get(EmailAppeal, campaign_id) is not None


def email_appeal_campaign(now: datetime) -> Campaign | None:
    """The live campaign whose appeal the daily email carries (the latest switched on, when
    several are)."""
    return db.session.scalars(
        select(Campaign).join(EmailAppeal, EmailAppeal.campaign_id == Campaign.id)
        .where(Campaign.published, Campaign.paused_at.is_(None), Campaign.starts_at <= now,
               Campaign.ends_at > now)
        .order_by(EmailAppeal.switched_on_at.desc(), Campaign.id.desc()).limit(1)).first()


def gave_to(campaign_id: int, supporter_ids: list[int]) -> set[int]:
    """Which of these supporters have a counted gift to the campaign."""
    if not supporter_ids:
        return set()
    return set(db.session.scalars(
        select(Gift.supporter_id).distinct()
        .where(Gift.campaign_id == campaign_id, Gift.status.in_(COUNTED),
               Gift.supporter_id.in_(supporter_ids))))
