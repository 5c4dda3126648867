"""Campaign management: the services (every change audited) and the staff pages."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.audit import Actor, AuditEntry
from app.campaigns.models import Campaign
from app.campaigns.services import (
    CampaignError,
    end_campaign,
    pause_campaign,
    publish_campaign,
    resume_campaign,
    schedule_campaign,
)
from app.db import utcnow
from app.extensions import db
from app.staff.models import Role
from tests.factories import make_campaign, paid_gift, refund
from tests.support.staff import csrf_token, make_person, sign_in_as

ACTOR = Actor(id=None, label="test")
CURRENCIES = ("USD", "EUR", "GBP", "ILS")


def actions(campaign_id: int) -> list[str]:
    return list(db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.target_type == "campaign", AuditEntry.target_id == str(campaign_id))
        .order_by(AuditEntry.id)))


def test_life_of_a_campaign_is_audited(app):
    now = utcnow()
    campaign = make_campaign("cycle", started_days_ago=-3, published=False)
    schedule_campaign(campaign, starts_at=now + timedelta(days=2),
                      ends_at=now + timedelta(days=20), actor=ACTOR, now=now,
                      currencies=CURRENCIES)
    assert campaign.published and not campaign.is_live(now)
    later = now + timedelta(days=3)
    assert campaign.is_live(later)
    pause_campaign(campaign, actor=ACTOR, now=later)
    assert campaign.is_paused and not campaign.is_live(later)
    with pytest.raises(CampaignError):
        pause_campaign(campaign, actor=ACTOR, now=later)
    resume_campaign(campaign, actor=ACTOR, now=later)
    assert campaign.is_live(later)
    end_campaign(campaign, actor=ACTOR, now=later)
    assert campaign.has_ended(later) and campaign.ends_at == later
    with pytest.raises(CampaignError):
        publish_campaign(campaign, actor=ACTOR, now=later)
    assert actions(campaign.id) == ["campaign.schedule", "campaign.pause", "campaign.resume",
                                    "campaign.end"]
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "campaign.pause"))
    assert json.loads(entry.before)["paused_at"] is None
    assert json.loads(entry.after)["paused_at"] is not None


def _year() -> int:
    """The year the form's campaign starts in: always ahead, so publishing schedules it."""
    return utcnow().year + 1


def _form(client, **changes) -> dict:
    year = _year()
    data = {"csrf_token": csrf_token(client), "title": "Year-end 2027", "slug": "year-end-2027",
            "kind": "year_end", "summary": "Our year-end appeal.",
            "appeal_markdown": "Dear friend,\n\nPlease give.", "signatory_name": "Miriam Haddad",
            "signatory_title": "Founder", "thank_you_message": "Thank you.",
            "starts_at": f"{year}-12-01T00:00", "ends_at": f"{year + 1}-01-01T00:00",
            "currency": "USD",
            "goal": "50,000", "default_frequency": "one_time",
            "suggested_amounts": "50 | a day of translation\n100\n25.50", "match_amount": "",
            "match_sponsor": "", "match_ends_at": "", "fund_code": "YE27"}
    data.update(changes)
    return data


def test_fundraiser_creates_edits_previews_publishes_and_pauses(client):
    sign_in_as(client, make_person("fr@levantwire.example", roles=(Role.FUNDRAISER,)))
    assert client.get("/staff/campaigns/new").status_code == 200
    response = client.post("/staff/campaigns/new", data=_form(client))
    assert response.status_code == 303, response.get_data(as_text=True)[:3000]
    campaign = db.session.scalar(select(Campaign).where(Campaign.slug == "year-end-2027"))
    assert not campaign.published and campaign.goal_amount == 5_000_000
    assert [(s.amount, s.impact) for s in campaign.suggested_amounts] == [
        (2550, ""), (5000, "a day of translation"), (10000, "")]
    # New York midnight
    assert campaign.starts_at.isoformat() == f"{_year()}-12-01T05:00:00+00:00"

    edit = client.get("/staff/campaigns/year-end-2027/edit").get_data(as_text=True)
    assert "50 | a day of translation" in edit and f"{_year()}-12-01T00:00" in edit
    response = client.post("/staff/campaigns/year-end-2027/edit", data=_form(
        client, signatory_name="Omar Nasser", match_amount="10000",
        match_sponsor="A Friend"))
    assert response.status_code == 303
    assert (campaign.signatory_name, campaign.match_amount) == ("Omar Nasser", 1_000_000)

    preview = client.get("/staff/campaigns/year-end-2027/preview").get_data(as_text=True)
    assert "Preview for staff" in preview and "Omar Nasser" in preview
    assert client.get("/campaigns/year-end-2027").status_code == 404  # not published yet

    token = csrf_token(client)
    assert client.post("/staff/campaigns/year-end-2027/publish",
                       data={"csrf_token": token}).status_code == 303
    assert campaign.published
    assert client.get("/campaigns/year-end-2027").status_code == 200
    assert actions(campaign.id) == ["campaign.create", "campaign.update", "campaign.schedule"]
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "campaign.update"))
    assert json.loads(entry.before)["signatory_name"] == "Miriam Haddad"
    assert json.loads(entry.after)["signatory_name"] == "Omar Nasser"


def test_form_errors_are_shown_not_saved(client):
    sign_in_as(client, make_person("fr@levantwire.example", roles=(Role.FUNDRAISER,)))
    make_campaign("taken")
    response = client.post("/staff/campaigns/new", data=_form(
        client, slug="taken", goal="-5", suggested_amounts="abc"))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "more than zero" in page and "abc" in page
    response = client.post("/staff/campaigns/new", data=_form(client, slug="taken"))
    assert response.status_code == 422
    assert "Another campaign already has this address" in response.get_data(as_text=True)
    response = client.post("/staff/campaigns/new", data=_form(
        client, ends_at=f"{_year()}-11-01T00:00"))
    assert response.status_code == 422
    assert "must end after it starts" in response.get_data(as_text=True)


@pytest.mark.parametrize("changes, message", [
    # The edited row was flushed by the slug check's query before the dates were compared: the
    # database's constraint answered, a 500.
    ({"ends_at": "2000-11-01T00:00"}, "must end after it starts"),
    # Year 1 in New York is before year 1 in UTC: a 500 converting it.
    ({"starts_at": "0001-01-01T00:00"}, "Enter a date between the years 1900 and 2999."),
    ({"match_ends_at": "9999-12-31T23:59"}, "Enter a date between the years 1900 and 2999."),
    # No currency sent (a browser always sends the select's): the amounts could not be read
    # in no currency, a 500.
    ({"currency": None}, "Not a valid choice"),
])
def test_an_edit_that_breaks_a_rule_is_shown_not_saved(client, changes, message):
    sign_in_as(client, make_person("fr@levantwire.example", roles=(Role.FUNDRAISER,)))
    campaign = make_campaign("walk-appeal")
    before = (campaign.starts_at, campaign.ends_at)
    data = {k: v for k, v in _form(client, slug="walk-appeal", **changes).items()
            if v is not None}
    response = client.post("/staff/campaigns/walk-appeal/edit", data=data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    db.session.refresh(campaign)
    assert (campaign.starts_at, campaign.ends_at) == before


def test_pausing_a_live_campaign_stops_gifts_and_says_so(client):
    sign_in_as(client, make_person("fr@levantwire.example", roles=(Role.FUNDRAISER,)))
    make_campaign("live-one")
    client.post("/staff/campaigns/live-one/pause", data={"csrf_token": csrf_token(client)})
    page = client.get("/campaigns/live-one").get_data(as_text=True)
    assert "Gifts to this campaign are paused" in page
    assert 'class="donation-form"' not in page


def test_calendar_turns_an_occasion_into_a_draft_once(client):
    sign_in_as(client, make_person("fr@levantwire.example", roles=(Role.FUNDRAISER,)))
    page = client.get("/staff/calendar").get_data(as_text=True)
    assert "Rosh Hashanah" in page and "Ramadan" in page and "Giving Tuesday" in page
    key = page.split('name="occasion" value="')[1].split('"')[0]
    response = client.post("/staff/calendar/draft", data={"csrf_token": csrf_token(client),
                                                          "occasion": key})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/staff/campaigns/{key}/edit")
    campaign = db.session.scalar(select(Campaign).where(Campaign.slug == key))
    assert not campaign.published and campaign.suggested_amounts
    assert campaign.starts_at < campaign.ends_at
    assert (campaign.goal_amount, campaign.signatory_name, campaign.signatory_title) == (
        2_500_000, "Miriam Haddad", "Founder and Editor-in-Chief")
    client.post("/staff/calendar/draft", data={"csrf_token": csrf_token(client),
                                               "occasion": key})
    assert actions(campaign.id) == ["campaign.create"]
    assert "Open the draft" in client.get("/staff/calendar").get_data(as_text=True)
    assert client.post("/staff/calendar/draft", data={"csrf_token": csrf_token(client),
                                                      "occasion": "nope"}).status_code == 404


def test_drafts_and_new_campaigns_start_from_the_configured_signatory_and_goal(app, client):
    app.config.update(CAMPAIGN_SIGNATORY_NAME="Dana Azar", CAMPAIGN_SIGNATORY_TITLE="Publisher",
                      CAMPAIGN_DRAFT_GOAL_MINOR=4_000_000)
    sign_in_as(client, make_person("fr@levantwire.example", roles=(Role.FUNDRAISER,)))
    form = client.get("/staff/campaigns/new").get_data(as_text=True)
    assert 'value="Dana Azar"' in form and 'value="Publisher"' in form
    page = client.get("/staff/calendar").get_data(as_text=True)
    key = page.split('name="occasion" value="')[1].split('"')[0]
    client.post("/staff/calendar/draft", data={"csrf_token": csrf_token(client), "occasion": key})
    campaign = db.session.scalar(select(Campaign).where(Campaign.slug == key))
    assert (campaign.goal_amount, campaign.signatory_name, campaign.signatory_title) == (
        4_000_000, "Dana Azar", "Publisher")


def test_dashboard_page_and_figures(client, app):
    sign_in_as(client, make_person("fr@levantwire.example", roles=(Role.FUNDRAISER,)))
    campaign = make_campaign("watched", goal=100_000)
    _, charge = paid_gift(campaign, amount=10_000, email="a@example.org", name="Noa Levi",
                          anonymous=True)
    paid_gift(campaign, amount=2_500, email="b@example.org", name="Omar Haddad")
    refund(charge, 2_000, utcnow())
    db.session.commit()
    page = client.get("/staff/campaigns/watched").get_data(as_text=True)
    assert "$105" in page  # 100 + 25 - 20
    assert "<svg" in page and "<title" in page and "<desc" in page
    assert "Anonymous" in page and "Noa Levi" not in page
    assert "Running total" in page  # the chart's numbers as a table
    figures = client.get("/staff/campaigns/watched/figures.json").get_json()
    assert (figures["raised"], figures["refunded"], figures["gifts"]) == (10_500, 2_000, 2)
    assert figures["text"]["raised"] == "$105"
    overview = client.get("/staff/campaigns").get_data(as_text=True)
    assert "watched" in overview and "$105" in overview


# -- the calendar and the preview under a fixed clock -----------------------------------------

CALENDAR_NOW = datetime(2027, 9, 20, 16, 0, tzinfo=UTC)  # noon in New York


@pytest.fixture
def calendar_clock(monkeypatch):
    """The staff pages' clock at ``CALENDAR_NOW``: Rosh Hashanah 5788 (2 October 2027) is 12
    days away and its suggested campaign began on 11 September."""
    import app.staff.views as staff_views

    monkeypatch.setattr(staff_views, "utcnow", lambda: CALENDAR_NOW)
    return CALENDAR_NOW


def occasion_campaign(slug: str, *, starts: datetime, ends: datetime, published: bool = True,
                      paused: datetime | None = None) -> Campaign:
    campaign = make_campaign(slug, title=slug.replace("-", " ").title(), published=published)
    campaign.starts_at, campaign.ends_at, campaign.paused_at = starts, ends, paused
    db.session.commit()
    return campaign


def calendar_item(page: str, key: str) -> str:
    """The calendar's list item for one occasion."""
    return page.split(f'data-occasion="{key}"', 1)[1].split("</li>", 1)[0]


def form_token(page: str) -> str:
    """The CSRF token the page's form carries, as a browser would send it back."""
    return page.split('name="csrf_token" type="hidden" value="', 1)[1].split('"', 1)[0]


def test_calendar_labels_each_campaign_by_its_state_with_the_right_link(client, calendar_clock):
    sign_in_as(client, make_person("fr@levantwire.example", roles=(Role.FUNDRAISER,)))
    now, day = calendar_clock, timedelta(days=1)
    occasion_campaign("giving-tuesday-2027", starts=now + 60 * day, ends=now + 70 * day,
                      published=False)
    occasion_campaign("year-end-2027", starts=now - day, ends=now + 100 * day, published=False)
    occasion_campaign("christmas-2027", starts=now + 70 * day, ends=now + 90 * day)
    occasion_campaign("anniversary-21", starts=now - 2 * day, ends=now + 90 * day)
    occasion_campaign("hanukkah-5788", starts=now - 9 * day, ends=now - day)
    page = client.get("/staff/calendar").get_data(as_text=True)

    draft = calendar_item(page, "giving-tuesday-2027")
    assert 'data-campaign-state="draft"' in draft and ">Draft<" in draft
    assert 'href="/staff/campaigns/giving-tuesday-2027/edit">Open the draft' in draft
    assert "data-late" not in draft
    late = calendar_item(page, "year-end-2027")
    assert "Open the draft" in late
    assert "This draft's start date, September 19, 2027, has passed" in late
    for key, state in [("christmas-2027", "scheduled"), ("anniversary-21", "live"),
                       ("hanukkah-5788", "ended")]:
        item = calendar_item(page, key)
        assert f'data-campaign-state="{state}"' in item and f">{state.title()}<" in item
        assert f'href="/staff/campaigns/{key}">Open the {state} campaign' in item, item
        assert "Open the draft" not in item and "Draft a campaign" not in item
        assert "data-late" not in item

    rosh = calendar_item(page, "rosh-hashanah-5788")
    assert "Draft a campaign" in rosh and "data-campaign-state" not in rosh
    assert ("The suggested start, September 11, 2027, has passed: a draft made now starts "
            "today, September 20, 2027") in rosh
    passover = calendar_item(page, "passover-5788")  # suggested for March 2028: on time
    assert "Draft a campaign" in passover and "data-late" not in passover


def test_drafting_an_occasion_whose_start_has_passed_warns_and_starts_today(client,
                                                                            calendar_clock):
    sign_in_as(client, make_person("fr@levantwire.example", roles=(Role.FUNDRAISER,)))
    page = client.get("/staff/calendar").get_data(as_text=True)
    response = client.post("/staff/calendar/draft", data={
        "csrf_token": form_token(page), "occasion": "rosh-hashanah-5788"})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/staff/campaigns/rosh-hashanah-5788/edit")
    campaign = db.session.scalar(select(Campaign).where(Campaign.slug == "rosh-hashanah-5788"))
    assert campaign.starts_at == datetime(2027, 9, 20, 4, 0, tzinfo=UTC)  # today, New York
    assert not campaign.published
    edit = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'class="flash flash-warning"' in edit
    assert ("Its suggested start, September 11, 2027, has passed, so it starts today, "
            "September 20, 2027") in edit
    assert 'value="2027-09-20T00:00"' in edit  # the form shows the new start

    # On time: no warning, the suggested dates.
    page = client.get("/staff/calendar").get_data(as_text=True)
    response = client.post("/staff/calendar/draft", data={
        "csrf_token": form_token(page), "occasion": "passover-5788"})
    edit = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "flash-warning" not in edit and "Draft created" in edit
    # The calendar now offers the draft, and warns about the late one.
    page = client.get("/staff/calendar").get_data(as_text=True)
    assert "This draft's start date, September 20, 2027, has passed" in calendar_item(
        page, "rosh-hashanah-5788")
    # Asking again for a published campaign leads to its dashboard.
    campaign.published = True
    db.session.commit()
    response = client.post("/staff/calendar/draft", data={
        "csrf_token": form_token(page), "occasion": "rosh-hashanah-5788"})
    assert response.headers["Location"].endswith("/staff/campaigns/rosh-hashanah-5788")


@pytest.mark.parametrize("starts, ends, published, paused, says, never", [
    (10, 40, False, False, "It opens on September 30, 2027 if published by then.", "has passed"),
    (-3, 40, False, False, "Its start date, September 17, 2027, has passed: it opens to gifts "
     "as soon as it is published.", "opens on"),
    (10, 40, True, False, "It opens on September 30, 2027.", "Live since"),
    (-3, 40, True, False, "Live since September 17, 2027.", "opens on"),
    (-3, 40, True, True, "It opened on September 17, 2027; gifts are paused.", "opens on"),
    (-30, -2, True, False, "It ended on September 18, 2027.", "opens on"),
])
def test_the_preview_says_opens_on_only_for_a_date_to_come(client, calendar_clock, starts, ends,
                                                           published, paused, says, never):
    sign_in_as(client, make_person("fr@levantwire.example", roles=(Role.FUNDRAISER,)))
    now, day = calendar_clock, timedelta(days=1)
    occasion_campaign("previewed", starts=now + starts * day, ends=now + ends * day,
                      published=published, paused=now - day if paused else None)
    page = client.get("/staff/campaigns/previewed/preview").get_data(as_text=True)
    banner = " ".join(page.split("data-preview-dates>", 1)[1].split("</p>", 1)[0].split())
    assert says in banner, banner
    assert never not in page
    if starts < 0 and not published:
        assert "This campaign is not open yet" in page
        dashboard = client.get("/staff/campaigns/previewed").get_data(as_text=True)
        assert "This draft's start date, September 17, 2027, has passed" in dashboard
