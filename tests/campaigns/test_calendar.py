"""The occasions calendar against published dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.campaigns.calendar import (
    calendar_entries,
    draft_start,
    giving_tuesday,
    occasions_between,
    ordinal,
    start_passed,
    upcoming_occasions,
)
from app.campaigns.models import Campaign, CampaignKind
from app.campaigns.services import draft_from_occasion

FOUNDED = date(2006, 12, 10)
NY = ZoneInfo("America/New_York")


ALL = occasions_between(date(2023, 1, 1), date(2029, 12, 31), founded=FOUNDED)


def day_of(key: str) -> date:
    return next(o.day for o in ALL if o.key == key)


# Published dates (first full day): Hebrew calendar tables, the Umm al-Qura calendar.
@pytest.mark.parametrize("key, published", [
    ("rosh-hashanah-5785", date(2024, 10, 3)), ("rosh-hashanah-5786", date(2025, 9, 23)),
    ("rosh-hashanah-5787", date(2026, 9, 12)), ("rosh-hashanah-5788", date(2027, 10, 2)),
    ("hanukkah-5785", date(2024, 12, 26)), ("hanukkah-5786", date(2025, 12, 15)),
    ("hanukkah-5787", date(2026, 12, 5)), ("passover-5785", date(2025, 4, 13)),
    ("passover-5786", date(2026, 4, 2)), ("passover-5787", date(2027, 4, 22)),
    ("ramadan-1445", date(2024, 3, 11)), ("ramadan-1446", date(2025, 3, 1)),
    ("ramadan-1447", date(2026, 2, 18)), ("eid-al-fitr-1445", date(2024, 4, 10)),
    ("eid-al-fitr-1446", date(2025, 3, 30)), ("eid-al-fitr-1447", date(2026, 3, 20)),
])
def test_religious_dates_match_published_calendars(key, published):
    assert day_of(key) == published


@pytest.mark.parametrize("year, published", [(2024, date(2024, 12, 3)),
                                             (2025, date(2025, 12, 2)),
                                             (2026, date(2026, 12, 1)),
                                             (2027, date(2027, 11, 30))])
def test_giving_tuesday(year, published):
    assert giving_tuesday(year) == published


def test_the_next_24_months_hold_every_kind_of_occasion():
    found = upcoming_occasions(date(2026, 11, 25), founded=FOUNDED)
    names = {o.key.rsplit("-", 1)[0] for o in found}
    assert {"rosh-hashanah", "hanukkah", "passover", "ramadan", "eid-al-fitr", "christmas",
            "giving-tuesday", "year-end", "anniversary"} <= names
    assert all(date(2026, 11, 25) <= o.day <= date(2028, 11, 30) for o in found)
    assert [o.day for o in found] == sorted(o.day for o in found)
    anniversaries = [(o.key, o.name) for o in found if o.kind is CampaignKind.ANNIVERSARY]
    assert anniversaries == [("anniversary-20", "Our 20th anniversary"),
                             ("anniversary-21", "Our 21st anniversary")]
    assert all(o.starts <= o.day < o.ends for o in found)


def test_the_founding_date_is_configurable():
    found = upcoming_occasions(date(2026, 1, 1), founded=date(2001, 3, 4), months=12)
    [anniversary] = [o for o in found if o.kind is CampaignKind.ANNIVERSARY]
    assert (anniversary.day, anniversary.name) == (date(2026, 3, 4), "Our 25th anniversary")


@pytest.mark.parametrize("n, text", [(1, "1st"), (2, "2nd"), (3, "3rd"), (11, "11th"),
                                     (20, "20th"), (21, "21st"), (112, "112th")])
def test_ordinals(n, text):
    assert ordinal(n) == text


def test_a_suggestion_becomes_an_unpublished_draft_with_its_dates(app):
    [rosh] = [o for o in upcoming_occasions(date(2027, 8, 1), founded=FOUNDED, months=3)
              if o.key.startswith("rosh-hashanah")]
    zone = ZoneInfo("America/New_York")
    draft = draft_from_occasion(rosh, zone=zone, today=date(2027, 8, 1), currency="USD",
                                goal=5_000_000, signatory_name="Miriam Haddad",
                                signatory_title="Founder")
    assert draft.published is False and draft.slug == "rosh-hashanah-5788"
    assert draft.starts_at == datetime(2027, 9, 11, 4, 0, tzinfo=UTC)  # midnight in New York
    assert draft.ends_at == datetime(2027, 10, 12, 4, 0, tzinfo=UTC)
    assert [s.amount for s in draft.suggested_amounts] == [1800, 3600, 7200, 18000]
    again = draft_from_occasion(rosh, zone=zone, today=date(2027, 8, 1), currency="USD",
                                goal=1, signatory_name="x", signatory_title="y")
    assert again.id == draft.id


def test_a_draft_whose_suggested_start_has_passed_starts_today(app):
    """Rosh Hashanah 5788 (2 October 2027) suggests a campaign from 11 September; drafted on
    20 September, it starts that day (midnight in New York), not in the past."""
    [rosh] = [o for o in upcoming_occasions(date(2027, 9, 20), founded=FOUNDED, months=3)
              if o.key.startswith("rosh-hashanah")]
    assert rosh.starts == date(2027, 9, 11) and start_passed(rosh, date(2027, 9, 20))
    assert draft_start(rosh, date(2027, 9, 20)) == date(2027, 9, 20)
    assert draft_start(rosh, date(2027, 9, 11)) == date(2027, 9, 11)  # on the day: on time
    assert not start_passed(rosh, date(2027, 9, 11))
    draft = draft_from_occasion(rosh, zone=NY, today=date(2027, 9, 20), currency="USD",
                                goal=5_000_000, signatory_name="Miriam Haddad",
                                signatory_title="Founder")
    assert draft.starts_at == datetime(2027, 9, 20, 4, 0, tzinfo=UTC)
    assert draft.ends_at == datetime(2027, 10, 12, 4, 0, tzinfo=UTC)  # the end is kept


def campaign_for(key: str, *, starts: datetime, ends: datetime, published: bool = True,
                 paused: datetime | None = None) -> Campaign:
    """A campaign made from an occasion (its slug is the occasion's key); not stored."""
    return Campaign(slug=key, title=key, kind=CampaignKind.HOLIDAY, signatory_name="M",
                    starts_at=starts, ends_at=ends, goal_amount=100, currency="USD",
                    published=published, paused_at=paused)


def test_calendar_entries_know_each_campaigns_state_and_what_is_late():
    now = datetime(2027, 9, 20, 16, 0, tzinfo=UTC)  # noon in New York
    occasions = upcoming_occasions(date(2027, 9, 20), founded=FOUNDED, months=9)
    keys = {o.key for o in occasions}
    assert {"rosh-hashanah-5788", "giving-tuesday-2027", "year-end-2027", "christmas-2027",
            "anniversary-21", "hanukkah-5788", "passover-5788"} <= keys
    day = timedelta(days=1)
    made = {c.slug: c for c in [
        campaign_for("giving-tuesday-2027", starts=now + 60 * day, ends=now + 70 * day,
                     published=False),
        campaign_for("year-end-2027", starts=now - day, ends=now + 100 * day, published=False),
        campaign_for("christmas-2027", starts=now + 70 * day, ends=now + 90 * day),
        campaign_for("anniversary-21", starts=now - 2 * day, ends=now + 90 * day),
        campaign_for("hanukkah-5788", starts=now - 9 * day, ends=now - day),
        campaign_for("passover-5788", starts=now - 3 * day, ends=now + 200 * day,
                     paused=now - day),
    ]}
    entries = {e.occasion.key: e for e in calendar_entries(occasions, made, now=now, zone=NY)}
    assert {key: (e.state, e.late) for key, e in entries.items() if e.campaign} == {
        "giving-tuesday-2027": ("draft", False),
        "year-end-2027": ("draft", True),  # a draft whose start date has passed
        "christmas-2027": ("scheduled", False),
        "anniversary-21": ("live", False),
        "hanukkah-5788": ("ended", False),
        "passover-5788": ("paused", False),
    }
    rosh = entries["rosh-hashanah-5788"]
    assert (rosh.campaign, rosh.state, rosh.late, rosh.starts) == (
        None, None, True, date(2027, 9, 20))
    on_time = [e for e in entries.values() if e.campaign is None and not e.late]
    assert on_time and all(e.starts == e.occasion.starts > date(2027, 9, 20) for e in on_time)
