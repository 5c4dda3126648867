"""The decision (app.prompts.decide): pure, so these tests need no app or database and pass on
any date (the dates are their own)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from app.prompts.decide import (
    Candidate,
    DonorStatus,
    ReaderFacts,
    Seen,
    decide,
    period_key,
    reader_segment,
    variant_for,
)
from app.prompts.models import Placement, Reset, Segment

NOW = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
ANONYMOUS = ReaderFacts()


def prompt(id_: int, segment: Segment = Segment.EVERYONE, placement: Placement = Placement.INLINE,
           priority: int = 100, **fields) -> Candidate:
    return Candidate(id=id_, placement=placement, segment=segment, priority=priority, **fields)


def shown(candidates, facts=ANONYMOUS, now=NOW) -> list[tuple[int, str]]:
    return [(c.prompt_id, c.variant) for c in decide(candidates, facts, now)]


def ids(candidates, facts=ANONYMOUS, now=NOW) -> list[int]:
    return [c.prompt_id for c in decide(candidates, facts, now)]


# -- segments -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("segment", "facts", "expected"), [
    (Segment.NON_DONOR, ReaderFacts(), True),  # unknown: not known to have given
    (Segment.NON_DONOR, ReaderFacts(donor=DonorStatus.NEVER), True),
    (Segment.NON_DONOR, ReaderFacts(donor=DonorStatus.LAPSED), True),
    (Segment.NON_DONOR, ReaderFacts(donor=DonorStatus.RECENT), False),
    (Segment.NON_DONOR, ReaderFacts(donor=DonorStatus.MONTHLY), False),
    (Segment.FORMER_DONOR, ReaderFacts(), False),
    (Segment.FORMER_DONOR, ReaderFacts(donor=DonorStatus.LAPSED), True),
    (Segment.FORMER_DONOR, ReaderFacts(donor=DonorStatus.ENDED), True),
    (Segment.FORMER_DONOR, ReaderFacts(donor=DonorStatus.NEVER), False),
    (Segment.MONTHLY_DONOR, ReaderFacts(donor=DonorStatus.MONTHLY), True),
    (Segment.MONTHLY_DONOR, ReaderFacts(donor=DonorStatus.RECENT), False),
    (Segment.SUBSCRIBER, ReaderFacts(subscriber=True), True),
    (Segment.SUBSCRIBER, ReaderFacts(), False),
    (Segment.NOT_SUBSCRIBER, ReaderFacts(), True),
    (Segment.NOT_SUBSCRIBER, ReaderFacts(subscriber=False), True),
    (Segment.NOT_SUBSCRIBER, ReaderFacts(subscriber=True), False),
    (Segment.FROM_EMAIL, ReaderFacts(from_email=True), True),
    (Segment.FROM_EMAIL, ReaderFacts(), False),
    (Segment.ENGAGED, ReaderFacts(views=5), True),
    (Segment.ENGAGED, ReaderFacts(views=4), False),
    (Segment.FOLLOWER, ReaderFacts(follows=frozenset({7, 9})), True),
    (Segment.FOLLOWER, ReaderFacts(follows=frozenset({8})), False),
])
def test_each_segment(segment, facts, expected):
    candidate = prompt(1, segment, min_views=5, category_id=7)
    assert ids([candidate], facts) == ([1] if expected else [])


def test_the_reader_has_one_segment_the_first_by_priority_plus_everyone():
    lapsed_subscriber = ReaderFacts(donor=DonorStatus.LAPSED, subscriber=True)
    former = prompt(1, Segment.FORMER_DONOR, Placement.INLINE, priority=20)
    subscriber = prompt(2, Segment.SUBSCRIBER, Placement.BOTTOM_BAR, priority=10)
    everyone = prompt(3, Segment.EVERYONE, Placement.OVERLAY, priority=50)
    candidates = [former, subscriber, everyone]
    assert reader_segment(candidates, lapsed_subscriber) is Segment.SUBSCRIBER
    # The former-donor prompt is for a segment the reader matches, but not theirs.
    assert ids(candidates, lapsed_subscriber) == [3, 2]  # overlay, bottom bar
    # Staff change the priorities: the former-donor segment wins.
    former = prompt(1, Segment.FORMER_DONOR, Placement.INLINE, priority=5)
    assert ids([former, subscriber, everyone], lapsed_subscriber) == [1, 3]


def test_own_segment_before_everyone_in_a_placement_then_priority_then_id():
    everyone = prompt(1, Segment.EVERYONE, priority=1)
    mine = prompt(2, Segment.FROM_EMAIL, priority=90)
    assert ids([everyone, mine], ReaderFacts(from_email=True)) == [2]
    assert ids([everyone, mine], ReaderFacts()) == [1]
    assert ids([prompt(5, priority=3), prompt(4, priority=3), prompt(6, priority=2)]) == [6]
    assert ids([prompt(5, priority=3), prompt(4, priority=3)]) == [4]


def test_at_most_one_prompt_per_placement_so_one_overlay_per_page():
    candidates = [prompt(i, placement=Placement.OVERLAY, priority=i) for i in range(1, 4)]
    candidates += [prompt(9, placement=Placement.BOTTOM_BAR), prompt(8, placement=Placement.INLINE)]
    choices = decide(candidates, ReaderFacts(), NOW)
    assert [(c.placement, c.prompt_id) for c in choices] == [
        (Placement.INLINE, 8), (Placement.OVERLAY, 1), (Placement.BOTTOM_BAR, 9)]


# -- dismissals and "I already gave" --------------------------------------------------------

def test_a_dismissed_prompt_stays_hidden_and_the_next_one_takes_its_place():
    candidates = [prompt(1, priority=1), prompt(2, priority=2)]
    assert ids(candidates, ReaderFacts(dismissed=frozenset({1}))) == [2]
    assert ids(candidates, ReaderFacts(dismissed=frozenset({1, 2}))) == []


def test_i_already_gave_hides_every_prompt_until_its_time():
    candidates = [prompt(1), prompt(2, placement=Placement.OVERLAY)]
    until = NOW + timedelta(days=30)
    assert ids(candidates, ReaderFacts(gave_until=until)) == []
    assert ids(candidates, ReaderFacts(gave_until=until), now=until - timedelta(seconds=1)) == []
    assert ids(candidates, ReaderFacts(gave_until=until), now=until) == [1, 2]


# -- frequency ------------------------------------------------------------------------------

def test_start_at_the_nth_view_then_every_nth():
    candidate = prompt(1, start_at_view=3, every_nth_view=2)
    due = [views for views in range(1, 12) if ids([candidate], ReaderFacts(views=views))]
    assert due == [3, 5, 7, 9, 11]


def test_at_most_m_times_per_period_and_the_count_resets_with_the_period():
    daily = prompt(1, max_times=2, reset=Reset.DAILY)
    today = period_key(Reset.DAILY, NOW)
    assert today == "2026-12-31"
    assert ids([daily], ReaderFacts(seen={1: Seen(today, 1)})) == [1]
    assert ids([daily], ReaderFacts(seen={1: Seen(today, 2)})) == []
    # Seen twice yesterday: a new day, a new count.
    assert ids([daily], ReaderFacts(seen={1: Seen("2026-12-30", 2)})) == [1]
    # Never reset: twice is all.
    once_ever = prompt(2, max_times=2)
    assert ids([once_ever], ReaderFacts(seen={2: Seen("all", 2)})) == []
    assert decide([once_ever], ReaderFacts(), NOW)[0].period == "all"


def test_periods_across_the_turn_of_the_year():
    new_year = NOW + timedelta(hours=1)  # 2027-01-01 00:30 UTC
    assert period_key(Reset.DAILY, new_year) == "2027-01-01"
    assert period_key(Reset.MONTHLY, NOW) == "2026-12"
    assert period_key(Reset.MONTHLY, new_year) == "2027-01"
    # ISO weeks: 1 January 2027 is a Friday of 2026's week 53.
    assert period_key(Reset.WEEKLY, NOW) == period_key(Reset.WEEKLY, new_year) == "2026-W53"
    assert period_key(Reset.WEEKLY, new_year + timedelta(days=3)) == "2027-W01"


# -- variants -------------------------------------------------------------------------------

def test_the_variant_is_the_same_for_a_reader_every_time_and_readers_split_evenly():
    candidate = prompt(1, variants=("a", "b"))
    first = [variant_for(candidate, f"reader-{n}") for n in range(2000)]
    assert first == [variant_for(candidate, f"reader-{n}") for n in range(2000)]
    split = Counter(first)
    assert 900 < split["a"] < 1100 and split["a"] + split["b"] == 2000
    # Another prompt splits the same readers independently.
    other = [variant_for(prompt(2, variants=("a", "b")), f"reader-{n}") for n in range(2000)]
    assert other != first


def test_no_id_no_split_and_one_variant_no_split():
    assert shown([prompt(1, variants=("a", "b"))], ReaderFacts(reader_id=None)) == [(1, "a")]
    readers = {variant_for(prompt(1), f"reader-{n}") for n in range(50)}
    assert readers == {"a"}
