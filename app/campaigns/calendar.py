"""The occasions a newsroom appeals around, with their real dates: Jewish holidays from the
Hebrew calendar (pyluach), Ramadan and Eid al-Fitr from the Umm al-Qura calendar (hijridate),
Christmas, Giving Tuesday, the calendar year-end, and the organisation's founding anniversary.

Each occasion comes with a suggested campaign window, so one click can turn it into a draft.
Jewish and Islamic days begin at sunset; the dates here are the first full civil day, as
published calendars list them.

A suggested window can start before today (Rosh Hashanah's starts three weeks before the day):
a draft made then starts today instead (``draft_start``), and the calendar says so beforehand
(``CalendarEntry.late``), as it does for a draft whose start date has passed while it waited.
"""

from __future__ import annotations

import calendar as gregorian
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hijridate import Gregorian, Hijri
from pyluach import dates as hebrew

from app.campaigns.models import Campaign, CampaignKind

# pyluach numbers Hebrew months from Nisan.
NISAN, TISHREI, KISLEV = 1, 7, 9
RAMADAN, SHAWWAL = 9, 10


@dataclass(frozen=True)
class Occasion:
    key: str  # unique and stable, usable as a campaign slug
    name: str
    tradition: str
    day: date
    kind: CampaignKind
    starts: date  # the suggested campaign's first day
    ends: date  # and the day after its last

    @property
    def days_before(self) -> int:
        return (self.day - self.starts).days

    @property
    def last_day(self) -> date:
        """The suggested campaign's last day (``ends`` is the day after)."""
        return self.ends - timedelta(days=1)


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _jewish(year: int) -> list[Occasion]:
    """Occasions of the Hebrew years that touch Gregorian ``year``."""
    found = []
    for hy in (year + 3760, year + 3761):
        rosh = hebrew.HebrewDate(hy, TISHREI, 1).to_pydate()
        found.append(Occasion(f"rosh-hashanah-{hy}", f"Rosh Hashanah (Jewish New Year) {hy}",
                              "Jewish", rosh, CampaignKind.HOLIDAY,
                              rosh - timedelta(days=21), rosh + timedelta(days=10)))
        hanukkah = hebrew.HebrewDate(hy, KISLEV, 25).to_pydate()
        found.append(Occasion(f"hanukkah-{hy}", f"Hanukkah {hy}", "Jewish", hanukkah,
                              CampaignKind.HOLIDAY, hanukkah - timedelta(days=14),
                              hanukkah + timedelta(days=8)))
        pesach = hebrew.HebrewDate(hy, NISAN, 15).to_pydate()
        found.append(Occasion(f"passover-{hy}", f"Passover {hy}", "Jewish", pesach,
                              CampaignKind.HOLIDAY, pesach - timedelta(days=14),
                              pesach + timedelta(days=8)))
    return found


def _civil(day) -> date:
    return date(day.year, day.month, day.day)


def _islamic(year: int) -> list[Occasion]:
    found = []
    first = Gregorian(year, 1, 1).to_hijri().year
    for hy in (first, first + 1):
        ramadan = _civil(Hijri(hy, RAMADAN, 1).to_gregorian())
        eid = _civil(Hijri(hy, SHAWWAL, 1).to_gregorian())
        found.append(Occasion(f"ramadan-{hy}", f"Ramadan {hy} AH", "Muslim", ramadan,
                              CampaignKind.HOLIDAY, ramadan - timedelta(days=7),
                              eid + timedelta(days=3)))
        found.append(Occasion(f"eid-al-fitr-{hy}", f"Eid al-Fitr {hy} AH", "Muslim", eid,
                              CampaignKind.HOLIDAY, eid - timedelta(days=10),
                              eid + timedelta(days=3)))
    return found


def giving_tuesday(year: int) -> date:
    """The Tuesday after US Thanksgiving (the fourth Thursday of November)."""
    thursdays = [d for d in range(1, 31)
                 if gregorian.weekday(year, 11, d) == gregorian.THURSDAY]
    return date(year, 11, thursdays[3]) + timedelta(days=5)


def _civic(year: int, founded: date) -> list[Occasion]:
    christmas = date(year, 12, 25)
    tuesday = giving_tuesday(year)
    year_end = date(year, 12, 31)
    found = [
        Occasion(f"christmas-{year}", f"Christmas {year}", "Christian", christmas,
                 CampaignKind.HOLIDAY, date(year, 12, 1), date(year, 12, 27)),
        Occasion(f"giving-tuesday-{year}", f"Giving Tuesday {year}", "Civic", tuesday,
                 CampaignKind.GENERAL, tuesday - timedelta(days=7), tuesday + timedelta(days=1)),
        Occasion(f"year-end-{year}", f"Year-end {year}", "Civic", year_end,
                 CampaignKind.YEAR_END, date(year, 12, 1), date(year + 1, 1, 1)),
    ]
    years = year - founded.year
    if years > 0:
        # A 29 February founding is celebrated on 1 March in common years.
        leap_day = (founded.month, founded.day) == (2, 29) and not gregorian.isleap(year)
        day = date(year, 3, 1) if leap_day else founded.replace(year=year)
        found.append(Occasion(f"anniversary-{years}", f"Our {ordinal(years)} anniversary",
                              "Organisation", day, CampaignKind.ANNIVERSARY,
                              day - timedelta(days=30), day + timedelta(days=31)))
    return found


def occasions_between(first: date, last: date, *, founded: date) -> list[Occasion]:
    """Every occasion whose day falls in [first, last], by date."""
    found: dict[str, Occasion] = {}
    for year in range(first.year - 1, last.year + 1):
        for occasion in _jewish(year) + _islamic(year) + _civic(year, founded):
            if first <= occasion.day <= last:
                found[occasion.key] = occasion
    return sorted(found.values(), key=lambda o: (o.day, o.key))


def upcoming_occasions(today: date, *, founded: date, months: int = 24) -> list[Occasion]:
    month_index = today.month - 1 + months
    until = date(today.year + month_index // 12, month_index % 12 + 1, 1) - timedelta(days=1)
    return occasions_between(today, until, founded=founded)


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The start of ``day`` in the organisation's zone, as an aware datetime."""
    return datetime.combine(day, time(0), tzinfo=zone)


def start_passed(occasion: Occasion, today: date) -> bool:
    """Whether the suggested campaign should have started before ``today``."""
    return occasion.starts < today


def draft_start(occasion: Occasion, today: date) -> date:
    """The first day of a draft made ``today`` for ``occasion``: the suggested one, or today
    when that has passed (a draft is not made to open in the past)."""
    return today if start_passed(occasion, today) else occasion.starts


@dataclass(frozen=True)
class CalendarEntry:
    """An occasion on the staff calendar, with the campaign made from it (its slug is the
    occasion's key) if there is one."""

    occasion: Occasion
    campaign: Campaign | None
    state: str | None  # the campaign's (``Campaign.state``); None without a campaign
    starts: date  # the first day of a draft made today (``draft_start``)
    # Without a campaign: the suggested start has passed, so a draft made now starts today.
    # A draft: its start date has passed, so publishing it opens it at once.
    late: bool


def calendar_entries(occasions: Sequence[Occasion], campaigns: Mapping[str, Campaign], *,
                     now: datetime, zone: ZoneInfo) -> list[CalendarEntry]:
    """Each occasion with its campaign (``campaigns`` by slug) and what the calendar must warn
    about, as of ``now`` in the organisation's ``zone``."""
    today = now.astimezone(zone).date()
    entries = []
    for occasion in occasions:
        campaign = campaigns.get(occasion.key)
        state = campaign.state(now) if campaign is not None else None
        if campaign is None:
            late = start_passed(occasion, today)
        else:
            late = state == "draft" and campaign.starts_at <= now
        entries.append(CalendarEntry(occasion=occasion, campaign=campaign, state=state,
                                     starts=draft_start(occasion, today), late=late))
    return entries
