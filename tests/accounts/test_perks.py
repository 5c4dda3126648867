"""Every perk of the default MEMBERSHIP_PERKS does what it says: its feature is given to the
level that brings it (and the levels above) and refused below it.

| perk | level | what the app does |
| --- | --- | --- |
| ``supporter_letter`` | Friend | ``flask members list`` names who the quarterly letter goes to |
| ``briefings`` | Sustainer | ``/account/briefings``: how to join the monthly briefing |
| ``daily_digest_plus`` | Sustainer | the analysis section of the daily email |
| ``founder_call`` | Patron | ``flask members list`` names who is owed the yearly call |
| ``annual_report_credit`` | Patron | ``flask members list`` names who may be thanked in print |

The letter, the call and the report are the newsroom's to make; what the app owes them is who
has the perk today, the same answer as every other check (``has_perk``). Not built yet: sending
the letter from the app, booking the call, and asking a Patron whether they wish to be named.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.config import MEMBERSHIP_LEVELS, MEMBERSHIP_PERKS
from app.db import utcnow
from app.extensions import db
from app.news.demo import seed_categories
from app.news.ingest import SAMPLE_FEED, ingest_feed
from app.news.models import Category, Follow
from tests.factories import make_campaign, paid_gift
from tests.support.accounts import make_account, sign_in
from tests.support.news import DIGEST_NOW, Recorder, body, confirmed_subscriber, digest

# The advertised level of each default perk (the lowest level whose perks name it).
ADVERTISED = {
    "supporter_letter": "friend",
    "briefings": "sustainer",
    "daily_digest_plus": "sustainer",
    "founder_call": "patron",
    "annual_report_credit": "patron",
}
LEVELS = [None, "friend", "sustainer", "patron"]
# A year's giving that reaches each level in USD (the defaults' minimums), and one that falls
# a cent short of the next.
GIVES = {None: 0, "friend": 11999, "sustainer": 12000, "patron": 100000}


def test_every_default_perk_is_listed_here_at_its_advertised_level(app):
    assert set(MEMBERSHIP_PERKS) == set(ADVERTISED)
    first_level = {}
    for level in MEMBERSHIP_LEVELS:
        for perk in level["perks"]:
            first_level.setdefault(perk, level["key"])
    assert first_level == ADVERTISED
    assert app.config["MEMBERSHIP_PERKS"] == MEMBERSHIP_PERKS


def granted(perk: str, level: str | None) -> bool:
    return level is not None and LEVELS.index(level) >= LEVELS.index(ADVERTISED[perk])


@pytest.fixture
def members(app):
    """One supporter at each level (and one who gave nothing), from gifts of a month ago."""
    campaign = make_campaign("twenty")

    def make(when):
        people = {}
        for level in LEVELS:
            email = f"{level or 'nobody'}@example.org"
            people[level] = make_account(email, name=f"{(level or 'nobody').title()} Reader")
            if GIVES[level]:
                paid_gift(campaign, email, amount=GIVES[level], when=when - timedelta(days=30))
        return people

    return make


# -- the supporters' letter, the founder's call, the annual report: who is owed them ----------

def listed(app, perk: str) -> dict[str, dict[str, str]]:
    result = app.test_cli_runner().invoke(args=["members", "list", "--perk", perk])
    assert result.exit_code == 0, result.output
    return {row["email"]: row for row in csv.DictReader(io.StringIO(result.stdout))}


@pytest.mark.parametrize("perk", ["supporter_letter", "founder_call", "annual_report_credit"])
def test_the_perks_delivered_by_hand_list_exactly_their_levels(app, members, perk):
    people = members(utcnow())
    rows = listed(app, perk)
    expected = {people[level].email for level in LEVELS if granted(perk, level)}
    assert set(rows) == expected
    for level in LEVELS:
        if granted(perk, level):
            assert rows[people[level].email]["level"] == level.title()


def test_the_members_list_carries_the_postal_address_and_counts_only_the_last_year(app, members):
    people = members(utcnow())
    friend = people["friend"]
    friend.address_line1, friend.city, friend.country = "=1+2 Rue Gouraud", "Beirut", "LB"
    db.session.commit()
    lapsed = make_account("lapsed@example.org")
    paid_gift(make_campaign("old"), lapsed.email, amount=100000,
              when=utcnow() - timedelta(days=366))
    rows = listed(app, "supporter_letter")
    assert "lapsed@example.org" not in rows
    row = rows["friend@example.org"]
    # Typed text that a spreadsheet would run as a formula is kept as text.
    assert (row["address_line1"], row["city"], row["country"]) == (
        "'=1+2 Rue Gouraud", "Beirut", "LB")


def test_the_members_list_refuses_a_perk_no_level_grants(app):
    result = app.test_cli_runner().invoke(args=["members", "list", "--perk", "free_lunch"])
    assert result.exit_code == 1
    assert "no level grants the perk 'free_lunch'" in result.output
    assert "supporter_letter" in result.output  # the perks there are


# -- live briefings ---------------------------------------------------------------------------

@pytest.mark.parametrize("level", LEVELS)
def test_the_briefings_page_opens_from_sustainer_up(app, client, members, level):
    people = members(utcnow())
    sign_in(client, people[level].email)
    page = client.get("/account/briefings")
    html = page.get_data(as_text=True)
    if granted("briefings", level):
        assert page.status_code == 200 and "Live briefings" in html
        assert "The invitation, with the date and the link to join" in html
    else:
        assert page.status_code == 403 and "This is a Sustainer perk" in html
    overview = client.get("/account").get_data(as_text=True)
    assert ('href="/account/briefings"' in overview) == granted("briefings", level)


# -- the daily email, extended ----------------------------------------------------------------

def test_the_daily_emails_analysis_goes_to_sustainers_and_up(app, members):
    seed_categories()
    ingest_feed(str(SAMPLE_FEED), now=DIGEST_NOW)
    db.session.commit()
    people = members(DIGEST_NOW)
    syria = db.session.scalar(select(Category).where(Category.slug == "syria"))
    for supporter in people.values():
        db.session.add(Follow(supporter_id=supporter.id, category_id=syria.id))
        confirmed_subscriber(supporter.email, supporter)
    transport = Recorder()
    digest(transport=transport)
    got = {m["To"]: body(m) for m in transport.messages()}
    for level in LEVELS:
        text = got[people[level].email]
        has_section = "ANALYSIS FROM OUR CORRESPONDENTS" in text
        assert has_section == granted("daily_digest_plus", level), level
        assert ("Why the second stage of the Cairo plan is the hard one" in text) == has_section
