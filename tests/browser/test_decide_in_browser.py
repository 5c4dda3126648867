"""embed.js decides in the reader's browser (``choose``) what app/prompts/decide.py decides on
the server: the two are held to the same answers here, in Chromium, over 1,500 random
prompts and readers (segments, priorities, frequencies, periods at the turn of a year, A/B
splits), and embed.js reads the status token as ``StatusSigner.read`` does. The functions are
the ones embed.js ships: its source between ``/* choose: begin`` and ``/* choose: end */``."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from itsdangerous import TimestampSigner
from playwright.sync_api import Browser, Page

from app.prompts.decide import Candidate, DonorStatus, ReaderFacts, Seen, decide, period_key
from app.prompts.models import Placement, Reset, Segment
from app.prompts.services import STATUS_TOKEN_MAX_AGE, Known, StatusSigner
from tests.browser.conftest import page_of

pytestmark = pytest.mark.browser

EMBED_JS = Path(__file__).parents[2] / "static" / "js" / "embed.js"
#: A page of its own (no server: Playwright answers it) on https, where Web Crypto is.
HERE = "https://newsroom.test/article"
SCENARIOS = 1500


def shipped_functions() -> str:
    source = EMBED_JS.read_text()
    found = re.search(r"/\* choose: begin.*?\*/(.*)/\* choose: end \*/", source, re.S)
    assert found, "embed.js lost its choose: begin/end markers"
    return found.group(1)


@pytest.fixture(scope="module")
def page(browser: Browser) -> Iterator[Page]:
    with page_of(browser.new_context()) as page:
        page.route(HERE, lambda route: route.fulfill(content_type="text/html",
                                                     body="<!doctype html><title>t</title>"))
        page.goto(HERE)
        page.evaluate("source => { window.choosing = new Function(source + "
                      "'; return {choose: choose, variants: variants, statusOf: statusOf, "
                      "period: period};')(); }", shipped_functions())
        yield page


def random_now(rng: random.Random) -> datetime:
    """Any moment of 2024-2031, often the last and first days of a year (ISO weeks turn)."""
    if rng.random() < 0.4:
        year = rng.randint(2024, 2031)
        day = datetime(year, 1, 1, tzinfo=UTC) + timedelta(days=rng.randint(-4, 4))
        return day + timedelta(seconds=rng.randint(0, 86399))
    start = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    return datetime.fromtimestamp(rng.uniform(start, start + 8 * 365 * 86400), UTC)


def random_case(rng: random.Random) -> tuple[list[Candidate], ReaderFacts, datetime]:
    now = random_now(rng)
    candidates = []
    for prompt_id in rng.sample(range(1, 40), rng.randint(0, 7)):
        candidates.append(Candidate(
            id=prompt_id, placement=rng.choice(list(Placement)),
            segment=rng.choice(list(Segment)), priority=rng.choice((1, 5, 5, 100)),
            variants=rng.choice((("a",), ("a", "b"))),
            min_views=rng.choice((None, 1, 3, 6)), category_id=rng.choice((None, 1, 2)),
            start_at_view=rng.randint(1, 4), every_nth_view=rng.randint(1, 3),
            max_times=rng.choice((None, 1, 2, 3)), reset=rng.choice(list(Reset))))
    seen = {}
    for c in candidates:
        if rng.random() < 0.5:
            period = (period_key(c.reset, now) if rng.random() < 0.6
                      else period_key(c.reset, now - timedelta(days=rng.choice((1, 8, 40)))))
            seen[c.id] = Seen(period, rng.randint(0, 3))
    # "I already gave" until: none, past, ahead, and its last second (to the second, as kept).
    gave = rng.choice((None, None, None, now - timedelta(minutes=5), now + timedelta(days=3),
                       now, now + timedelta(seconds=1)))
    facts = ReaderFacts(
        views=rng.randint(1, 12), from_email=rng.random() < 0.3, seen=seen,
        dismissed=frozenset(c.id for c in candidates if rng.random() < 0.15),
        gave_until=gave.replace(microsecond=0) if gave else None,
        reader_id=rng.choice((None, f"{rng.getrandbits(128):032x}")),
        donor=rng.choice((None, *DonorStatus)), subscriber=rng.choice((None, True, False)),
        follows=frozenset(rng.sample((1, 2, 3), rng.randint(0, 2))))
    return candidates, facts, now


def as_js(candidates: list[Candidate], facts: ReaderFacts, now: datetime) -> dict:
    """The case as embed.js holds it: the rules as ``/embed/prompts/live`` answers, the facts
    as it keeps them, the clock in milliseconds."""
    return {
        "live": [{**c.rules(), "height": 1} for c in candidates],
        "facts": {"views": facts.views, "email": facts.from_email,
                  "seen": {str(i): [s.period, s.times] for i, s in facts.seen.items()},
                  "dismissed": sorted(facts.dismissed),
                  "gave_until": int(facts.gave_until.timestamp()) if facts.gave_until else 0,
                  "rid": facts.reader_id or "", "donor": facts.donor and facts.donor.value,
                  "subscriber": facts.subscriber, "follows": sorted(facts.follows)},
        "now": now.timestamp() * 1000,
    }


def test_embed_js_decides_as_the_server_does(page: Page):
    rng = random.Random(20261204)
    cases = [random_case(rng) for _ in range(SCENARIOS)]
    in_browser = page.evaluate("""cases => Promise.all(cases.map(c =>
        choosing.variants(c.live, c.facts.rid).then(picked =>
            choosing.choose(c.live, c.facts, c.now, picked)
                .map(p => [p.id, p.placement, p.variant, p.period]))))""",
                               [as_js(*case) for case in cases])
    shown = 0
    for case, theirs in zip(cases, in_browser, strict=True):
        ours = [[c.prompt_id, c.placement.value, c.variant, c.period] for c in decide(*case)]
        assert theirs == ours, case
        shown += len(ours)
    # Positive controls: the cases reach every outcome the rules have.
    decided = [decide(*case) for case in cases]
    assert shown > SCENARIOS // 4
    assert any(not d for d in decided) and any(len(d) == 3 for d in decided)
    assert {c.variant for d in decided for c in d} == {"a", "b"}
    assert {len(c.period) for d in decided for c in d} == {3, 7, 8, 10}  # all, month, week, day


def test_the_iso_week_at_the_turn_of_each_year(page: Page):
    """Every day from late December to early January of 2024-2040: ``period`` as Python's."""
    days = [datetime(year, 12, 24, 12, tzinfo=UTC) + timedelta(days=n)
            for year in range(2024, 2041) for n in range(16)]
    theirs = page.evaluate("moments => moments.map(m => choosing.period('weekly', m))",
                           [d.timestamp() * 1000 for d in days])
    assert theirs == [period_key(Reset.WEEKLY, d) for d in days]


def test_embed_js_reads_the_status_token_as_the_server_does(page: Page, monkeypatch):
    # The server's clock (itsdangerous dates and checks its tokens with it) fixed, whatever day
    # the suite runs; embed.js is handed the same moment.
    now = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(now.timestamp()))
    signer = StatusSigner("browser-test-secret-key")
    tokens = [signer.token(Known(donor=donor, subscriber=subscriber))
              for donor in (None, *DonorStatus) for subscriber in (False, True)]
    now_ms = now.timestamp() * 1000

    def read(token: str, at_ms: float) -> dict:
        return page.evaluate("([t, now]) => choosing.statusOf(t, now)", [token, at_ms])

    for token in tokens:
        known = signer.read(token)
        assert read(token, now_ms) == {"donor": known.donor and known.donor.value,
                                       "subscriber": known.subscriber}
    # Out of its 90 days (or dated ahead of the clock), or not a token: unknown, both sides.
    expired = now_ms + (STATUS_TOKEN_MAX_AGE + timedelta(minutes=1)).total_seconds() * 1000
    assert read(tokens[-1], expired) == {}
    assert read(tokens[-1], now_ms - 60_000) == {}
    for junk in ("", "abc", "a.b.c", "e30.AAAA.x", tokens[-1][:-1] + "." + "x" * 300):
        assert read(junk, now_ms) == {}
        assert signer.read(junk) is None
    # A token signed with another key: the server refuses it; embed.js reads it all the same
    # (it only decides what its own reader is shown: README, "Prompts").
    forged = StatusSigner("another-key").token(Known(donor=DonorStatus.MONTHLY,
                                                      subscriber=True))
    assert signer.read(forged) is None
    assert read(forged, now_ms) == {"donor": "monthly", "subscriber": True}
