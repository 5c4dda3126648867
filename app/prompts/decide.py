"""Which prompt a reader sees: a pure function of the live prompts and the reader's facts.
static/js/embed.js makes the same decision in the reader's browser (``choose``), and
tests/browser/test_decide_in_browser.py holds the two to the same answers: change both.

Nothing here reads the database, the request or the clock: the caller passes the candidates
(``Candidate``, plain copies of live prompts), the facts (``ReaderFacts``) and ``now``. The rules:

- Segment: of the segments the reader matches (other than "everyone"), the one of the matching
  prompt with the lowest ``priority`` number (then the lowest id) is the reader's; the reader is
  eligible for that segment's prompts plus "everyone"'s. Unknown status (no signed-in reader, no
  status token) counts as "not a donor in the last 12 months" and "not subscribed"; the former,
  monthly, and subscriber segments need a known status.
- "I already gave" (``gave_until`` in the future) hides every prompt.
- A dismissed prompt stays hidden.
- Frequency: shown from the reader's ``start_at_view``-th article view, then every
  ``every_nth_view``-th, at most ``max_times`` per reset period (never, a UTC day, an ISO week,
  a month). The browser keeps, per prompt, the period it last saw it in and how many times
  (``Seen``); a count from an earlier period is a count of zero.
- At most one prompt per placement, so at most one overlay per page: the reader's own segment
  first, then by priority and id.
- The variant: A when the prompt has no B or the reader has no first-party id (Global Privacy
  Control, Do Not Track); else from a hash of the prompt and the id, so a reader always sees
  the same one and the split is even.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from app.prompts.models import Placement, Prompt, Reset, Segment


class DonorStatus(enum.StrEnum):
    """A reader's giving, as far as the prompts need it (``services.donor_status``)."""

    NEVER = "never"  # no counted gift ever
    LAPSED = "lapsed"  # gave before; nothing in the last 12 months, no plan running
    ENDED = "ended"  # gave in the last 12 months, but their plan ended: not giving now
    RECENT = "recent"  # gave in the last 12 months (or a yearly plan runs)
    MONTHLY = "monthly"  # a monthly plan runs


@dataclass(frozen=True)
class Candidate:
    id: int
    placement: Placement
    segment: Segment
    priority: int
    variants: tuple[str, ...] = ("a",)
    min_views: int | None = None
    category_id: int | None = None
    start_at_view: int = 1
    every_nth_view: int = 1
    max_times: int | None = None
    reset: Reset = Reset.NEVER

    @classmethod
    def of(cls, prompt: Prompt) -> Candidate:
        return cls(id=prompt.id, placement=prompt.placement, segment=prompt.segment,
                   priority=prompt.priority, variants=prompt.variants,
                   min_views=prompt.min_views, category_id=prompt.category_id,
                   start_at_view=prompt.start_at_view, every_nth_view=prompt.every_nth_view,
                   max_times=prompt.max_times, reset=prompt.reset)

    def rules(self) -> dict:
        """As embed.js reads it to decide in the reader's browser (``GET /embed/prompts/live``)."""
        return {"id": self.id, "placement": self.placement.value, "segment": self.segment.value,
                "priority": self.priority, "variants": list(self.variants),
                "min_views": self.min_views, "category_id": self.category_id,
                "start_at_view": self.start_at_view, "every_nth_view": self.every_nth_view,
                "max_times": self.max_times, "reset": self.reset.value}


@dataclass(frozen=True)
class Seen:
    period: str
    times: int


@dataclass(frozen=True)
class ReaderFacts:
    views: int = 1  # article views in this browser, this one included
    from_email: bool = False  # the article page's URL has utm_medium=email
    seen: Mapping[int, Seen] = field(default_factory=dict)
    dismissed: frozenset[int] = frozenset()
    gave_until: datetime | None = None
    reader_id: str | None = None  # None: no id (GPC or DNT)
    donor: DonorStatus | None = None  # None: unknown
    subscriber: bool | None = None  # None: unknown
    follows: frozenset[int] = frozenset()  # category ids (a signed-in reader's)


@dataclass(frozen=True)
class Choice:
    prompt_id: int
    placement: Placement
    variant: str
    period: str  # what the browser stores with its count of times shown


def matches(candidate: Candidate, facts: ReaderFacts) -> bool:
    """Whether the reader is in the candidate's segment."""
    segment = candidate.segment
    if segment is Segment.EVERYONE:
        return True
    if segment is Segment.NON_DONOR:
        return facts.donor in (None, DonorStatus.NEVER, DonorStatus.LAPSED)
    if segment is Segment.FORMER_DONOR:
        return facts.donor in (DonorStatus.LAPSED, DonorStatus.ENDED)
    if segment is Segment.MONTHLY_DONOR:
        return facts.donor is DonorStatus.MONTHLY
    if segment is Segment.SUBSCRIBER:
        return facts.subscriber is True
    if segment is Segment.NOT_SUBSCRIBER:
        return facts.subscriber is not True
    if segment is Segment.FROM_EMAIL:
        return facts.from_email
    if segment is Segment.ENGAGED:
        return facts.views >= (candidate.min_views or 1)
    if segment is Segment.FOLLOWER:
        return candidate.category_id is not None and candidate.category_id in facts.follows
    raise ValueError(segment)


def _rank(candidate: Candidate) -> tuple[int, int]:
    return candidate.priority, candidate.id


def reader_segment(candidates: Iterable[Candidate], facts: ReaderFacts) -> Segment | None:
    """The reader's one segment besides "everyone": that of the matching prompt ranked first."""
    matching = sorted((c for c in candidates
                       if c.segment is not Segment.EVERYONE and matches(c, facts)), key=_rank)
    return matching[0].segment if matching else None


def period_key(reset: Reset, now: datetime) -> str:
    """The reset period ``now`` (UTC) falls in."""
    day = now.date()
    if reset is Reset.DAILY:
        return day.isoformat()
    if reset is Reset.WEEKLY:
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if reset is Reset.MONTHLY:
        return f"{day.year}-{day.month:02d}"
    return "all"


def is_due(candidate: Candidate, facts: ReaderFacts, now: datetime) -> bool:
    """The frequency rules: from the Nth view, every nth, at most M times this period."""
    views = facts.views
    if views < candidate.start_at_view:
        return False
    if (views - candidate.start_at_view) % candidate.every_nth_view:
        return False
    if candidate.max_times is None:
        return True
    seen = facts.seen.get(candidate.id)
    times = seen.times if seen and seen.period == period_key(candidate.reset, now) else 0
    return times < candidate.max_times


def variant_for(candidate: Candidate, reader_id: str | None) -> str:
    if len(candidate.variants) == 1 or not reader_id:
        return candidate.variants[0]
    digest = hashlib.sha256(f"{candidate.id}:{reader_id}".encode()).digest()
    return candidate.variants[int.from_bytes(digest[:8], "big") % len(candidate.variants)]


def decide(candidates: Iterable[Candidate], facts: ReaderFacts, now: datetime) -> list[Choice]:
    """At most one prompt per placement for this reader on this page view."""
    if facts.gave_until is not None and now < facts.gave_until:
        return []
    candidates = list(candidates)
    segment = reader_segment(candidates, facts)
    eligible = sorted(
        (c for c in candidates
         if (c.segment is Segment.EVERYONE or c.segment is segment)
         and c.id not in facts.dismissed and matches(c, facts) and is_due(c, facts, now)),
        key=lambda c: (c.segment is Segment.EVERYONE, *_rank(c)))
    chosen: dict[Placement, Choice] = {}
    for c in eligible:
        if c.placement not in chosen:
            chosen[c.placement] = Choice(prompt_id=c.id, placement=c.placement,
                                         variant=variant_for(c, facts.reader_id),
                                         period=period_key(c.reset, now))
    return [chosen[p] for p in Placement if p in chosen]
