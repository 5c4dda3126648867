"""Staff pages in a real browser on a phone-sized screen: a fundraiser signs in with the link
``flask users create`` prints, reads a campaign's dashboard (charts that fit the screen, the
numbers as a table), watches it refresh without a reload, and drafts a campaign from the
calendar."""

from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from app.db import utcnow
from app.extensions import db
from app.imports.kinds import KINDS
from app.imports.models import ImportRun
from tests.browser.conftest import page_of
from tests.factories import paid_gift
from tests.support.browser import laid_out_width, overflowing, screenshot, staff_sign_in_link
from tests.support.browser import sign_in_with_link as sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def fundraiser(live_server) -> str:
    return staff_sign_in_link(live_server, "fundraiser")


def give(live_server, slug: str, amount: int, email: str) -> None:
    from app.campaigns.services import campaign_by_slug

    with live_server.app.app_context():
        paid_gift(campaign_by_slug(slug), amount=amount, email=email)
        db.session.commit()


@pytest.mark.postgresql_too("the dashboard's figures and their table per day: sums, counts")
def test_dashboard_on_a_phone_refreshes_without_a_reload(page, live_server, fundraiser):
    slug = live_server.create_campaign(goal=100_000)
    give(live_server, slug, 5000, "a@example.org")
    live_server.app.config["STAFF_REFRESH_SECONDS"] = 1
    try:
        sign_in(page, fundraiser)
        page.goto(f"/staff/campaigns/{slug}")
        expect(page.get_by_role("heading", level=1)).to_have_text("A test appeal")
        expect(page.locator('[data-figure="raised"]')).to_have_text("$50")
        expect(page.locator('[data-figure="gifts"]')).to_have_text("1")
        chart = page.get_by_role("img", name=re.compile("Money raised each day"))
        expect(chart).to_be_visible()
        box = chart.bounding_box()
        assert box and box["width"] <= 390 and box["x"] >= 0  # fits the phone's width
        assert laid_out_width(page) <= 390
        page.get_by_text("The figures per day").click()
        expect(page.get_by_role("cell", name="$50.00").first).to_be_visible()
        screenshot(page, "staff-dashboard-phone")

        marker = page.evaluate("window.__notReloaded = true")
        assert marker is True
        give(live_server, slug, 2500, "b@example.org")
        expect(page.locator('[data-figure="gifts"]')).to_have_text("2", timeout=8000)
        expect(page.locator('[data-figure="raised"]')).to_have_text("$75")
        assert page.evaluate("window.__notReloaded") is True  # no full reload
    finally:
        live_server.app.config.pop("STAFF_REFRESH_SECONDS", None)


@contextmanager
def browser_page(browser, live_server, *, width: int, timezone_id: str | None = None):
    """A page in a context of its own (the ``page`` fixture's, at another width or in another
    time zone); uncaught JavaScript errors fail the test."""
    with page_of(browser.new_context(viewport={"width": width, "height": 900},
                                     base_url=live_server.url, locale="en-US",
                                     timezone_id=timezone_id)) as page:
        yield page


# Each <text> of each chart, where the browser drew it: inside its chart's viewBox (SVG units,
# getBBox) and inside the chart's box on the screen; and each daily bar's height on screen.
CHART_GEOMETRY = """() => Array.from(document.querySelectorAll("svg.chart")).map(svg => {
    const box = svg.getBoundingClientRect();
    const view = svg.viewBox.baseVal;
    return {
        id: svg.id,
        texts: Array.from(svg.querySelectorAll("text")).map(t => {
            const b = t.getBBox(), r = t.getBoundingClientRect();
            return {text: t.textContent, x: b.x, right: b.x + b.width, viewWidth: view.width,
                    left: r.left - box.left, screenRight: r.right - box.left,
                    width: box.width};
        }),
        bars: Array.from(svg.querySelectorAll("rect.bar-day"))
            .map(r => r.getBoundingClientRect().height),
    };
})"""


@pytest.mark.postgresql_too("the charts' bars: sums per day of gifts made days apart")
@pytest.mark.parametrize("width", [390, 1280])
def test_dashboard_charts_fit_the_screen_with_every_label_whole(browser, live_server, fundraiser,
                                                                width):
    """A $250,000 goal and days of a few hundred dollars: every axis label whole ("$250,000"
    with its "$"), long source names wrapped or cut inside the chart, daily bars tall enough to
    see, and nothing wider than the screen."""
    slug = live_server.create_campaign(goal=25_000_000)
    with live_server.app.app_context():
        from app.campaigns.services import campaign_by_slug

        campaign = campaign_by_slug(slug)
        now = utcnow()
        for i, amount in enumerate([40_000, 15_000, 22_500]):
            paid_gift(campaign, amount=amount, email=f"d{i}@example.org",
                      when=now - timedelta(days=3 - i), utm={
                          "utm_source": "newsletter-of-the-jerusalem-bureau-weekly-edition"})
        db.session.commit()
    with browser_page(browser, live_server, width=width) as page:
        sign_in(page, fundraiser)
        page.goto(f"/staff/campaigns/{slug}")
        expect(page.get_by_role("img", name=re.compile("Money raised each day"))).to_be_visible()
        expect(page.get_by_role("img", name=re.compile("Running total"))).to_be_visible()
        assert laid_out_width(page) <= width
        charts = {c["id"]: c for c in page.evaluate(CHART_GEOMETRY)}
        assert {"daily-chart", "total-chart", "source-chart"} <= set(charts)
        for chart in charts.values():
            for t in chart["texts"]:
                assert t["x"] >= 0 and t["right"] <= t["viewWidth"], (chart["id"], t)
                assert t["left"] >= 0 and t["screenRight"] <= t["width"] + 0.5, (chart["id"], t)
        labels = [t["text"] for t in charts["total-chart"]["texts"]]
        assert "$300,000" in labels and "Goal $250,000" in labels
        bars = charts["daily-chart"]["bars"]
        assert len(bars) >= 3 and min(bars) >= 20, bars  # visible, not slivers of the goal
        source = page.locator("#source-chart g.bar-row").first
        assert "newsletter-of-the-jerusalem-bureau-weekly-edition" in (
            source.locator("title").text_content())
        screenshot(page, f"staff-dashboard-{width}")


@pytest.mark.postgresql_too("the refreshed time: a timestamp as each database returns it")
def test_refreshed_time_keeps_the_organisations_zone_and_date(browser, live_server,
                                                             fundraiser):
    """A staff member in Tokyo watching a New York organisation's dashboard: after the live
    refresh the time still reads in New York, with its date and zone, to the minute."""
    from app.templating import format_moment

    slug = live_server.create_campaign(goal=100_000)
    give(live_server, slug, 5000, "a@example.org")
    zone = ZoneInfo(live_server.app.config["ORG_TIMEZONE"])
    locale = live_server.app.config["ORG_LOCALE"]
    live_server.app.config["STAFF_REFRESH_SECONDS"] = 1
    try:
        with browser_page(browser, live_server, width=390, timezone_id="Asia/Tokyo") as page:
            assert page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == \
                "Asia/Tokyo"
            sign_in(page, fundraiser)
            page.goto(f"/staff/campaigns/{slug}")
            stamp = page.locator('[data-refresh-status] time')
            first = stamp.get_attribute("datetime")
            give(live_server, slug, 2500, "b@example.org")
            expect(page.locator('[data-figure="gifts"]')).to_have_text("2", timeout=8000)
            expect(stamp).not_to_have_attribute("datetime", first)
            refreshed = datetime.fromisoformat(stamp.get_attribute("datetime"))
            expected = format_moment(refreshed, zone=zone, locale=locale)
            expect(stamp).to_have_text(expected)
            ny = refreshed.astimezone(zone)
            text = stamp.text_content()
            assert str(ny.year) in text and ny.strftime("%b") in text  # the date is kept
            assert re.search(r"\b(EST|EDT)$", text), text  # and the zone named
            assert re.search(r"\d:\d\d\s[AP]M", text) and not re.search(r":\d\d:\d\d", text)
            tokyo = refreshed.astimezone(ZoneInfo("Asia/Tokyo"))
            if tokyo.hour % 12 != ny.hour % 12:  # Tokyo's clock is not shown
                assert not re.search(rf"(?<!\d){tokyo:%-I:%M}", text), text
            expect(page.locator("[data-refresh-status]")).to_contain_text(
                "they refresh every 1 second while the campaign is live")
    finally:
        live_server.app.config.pop("STAFF_REFRESH_SECONDS", None)


@pytest.mark.postgresql_too("today's money: sums over the organisation's day")
def test_staff_home_on_a_phone_shows_todays_money_and_live_campaigns(page, live_server):
    """An admin sees it all on a phone: today's card per currency (fees too), each live
    campaign's progress linking to its dashboard, the pages; nothing wider than the screen."""
    slug = live_server.create_campaign(goal=100_000, title="A home-page appeal")
    give(live_server, slug, 4200, "home@example.org")
    sign_in(page, staff_sign_in_link(live_server, "admin"))
    page.goto("/staff/")
    expect(page.get_by_role("heading", name=re.compile(r"^Today, "))).to_be_visible()
    usd = page.locator('.currency-day[data-currency="USD"]')
    expect(usd.get_by_role("heading", name="USD")).to_be_visible()
    expect(usd.locator('[data-figure="net"]')).to_be_visible()
    item = page.locator(f'.live-campaign[data-campaign="{slug}"]')
    expect(item.get_by_role("link", name="A home-page appeal")).to_be_visible()
    expect(item.locator(".raised")).to_contain_text("$42 raised of $1,000")
    assert laid_out_width(page) <= 390
    for box in (usd.bounding_box(), item.bounding_box()):
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390
    screenshot(page, "staff-home-phone")
    item.get_by_role("link", name="A home-page appeal").click()
    expect(page).to_have_url(re.compile(f"/staff/campaigns/{slug}$"))


def test_calendar_to_draft_to_preview(page, live_server, fundraiser):
    sign_in(page, fundraiser)
    page.goto("/staff/calendar")
    first = page.locator(".occasion").first
    name = first.locator("h2").text_content()
    first.get_by_role("button", name=re.compile("Draft a campaign")).click()
    expect(page).to_have_url(re.compile(r"/staff/campaigns/[a-z0-9-]+/edit$"))
    expect(page.get_by_label("Title", exact=True)).to_have_value(name)
    page.get_by_label("Appeal letter (Markdown)").fill("Dear friend,\n\nA letter for the day.")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text("Changes saved.")).to_be_visible()
    page.get_by_role("link", name="Preview").click()
    expect(page.get_by_text("Preview for staff")).to_be_visible()
    expect(page.get_by_text("A letter for the day.")).to_be_visible()


def test_a_reader_cannot_open_staff_pages(page, live_server):
    page.goto("/staff/campaigns")
    expect(page).to_have_url(re.compile(r"/account/signin\?next="))


@pytest.mark.parametrize(("starts_in_days", "first", "first_flash", "first_state"), [
    (-10, "Publish", "Published.", "Live"),
    (5, "Schedule", "Scheduled: it goes live on its start date.", "Scheduled"),
])
def test_state_buttons_change_the_campaign(page, live_server, fundraiser, starts_in_days, first,
                                           first_flash, first_state):
    """Publish (or Schedule), Pause, Resume and End, clicked on the dashboard with CSRF checked
    as in production: each answers with its message and the campaign's new state, never the
    400 page (the buttons once posted no token: their macro hid the form it was given). A
    campaign ended before its start is taken off the site: a draft again."""
    assert live_server.app.config.get("WTF_CSRF_ENABLED", True) is True
    slug = live_server.create_campaign(published=False, started_days_ago=-starts_in_days)
    started = starts_in_days < 0
    sign_in(page, fundraiser)
    page.goto(f"/staff/campaigns/{slug}")
    state = page.locator(".staff-header [data-state]")
    expect(state).to_have_text("Draft")
    expect(page.get_by_role("button", name="Pause")).to_have_count(0)
    for button, flash, new_state in [
        (first, first_flash, first_state),
        ("Pause", "Paused: the page says gifts are paused.", "Paused"),
        ("Resume", "Gifts are open again.", first_state),
        ("End now", "The campaign has ended." if started
         else "It had not started, so it is a draft again, off the site.",
         "Ended" if started else "Draft"),
    ]:
        page.get_by_role("button", name=button, exact=True).click()
        expect(page).to_have_url(f"{live_server.url}/staff/campaigns/{slug}")
        expect(page.locator(".flash")).to_have_text(flash)
        expect(state).to_have_text(new_state)
    if started:
        expect(page.locator(".staff-header form")).to_have_count(0)  # nothing left to press
        page.goto(f"/campaigns/{slug}")
        expect(page.get_by_role("heading", name="This campaign has ended")).to_be_visible()
    else:
        expect(page.get_by_role("button", name="Schedule", exact=True)).to_be_visible()


def test_every_staff_page_fits_a_phone(page, live_server):
    """Every staff page an admin can open without naming a record (the lists, the finance and
    operations pages, roles, audit) fits a 390 px screen: wide tables scroll in their box,
    never the page."""
    slug = live_server.create_campaign(goal=100_000, title="A phone-width appeal")
    give(live_server, slug, 4200, "a-rather-long-address-for-a-narrow-screen@example.org")
    with live_server.app.app_context():
        # An import of each kind, under a long file name, so the imports' lists have a row.
        for kind in KINDS:
            db.session.add(ImportRun(kind=kind, size=10, status="checked",
                                     filename=f"{kind}-export-from-the-old-platform-2026.csv",
                                     actor_label="a-rather-long-label-for-a-narrow-screen@"
                                                 "levantwire.example"))
        db.session.commit()
        paths = sorted({rule.rule for rule in live_server.app.url_map.iter_rules()
                        if rule.rule.startswith("/staff/") and not rule.arguments
                        and "GET" in rule.methods
                        # files, not pages: a CSV, an export, a statement's PDF
                        and not rule.rule.endswith((".csv", "/download", "/preview"))})
    assert "/staff/roles" in paths and "/staff/operations/" in paths  # the walk reaches them
    sign_in(page, staff_sign_in_link(live_server, "admin"))
    wide = {}
    for path in paths:
        answer = page.goto(path)
        if answer.headers.get("content-type", "").startswith("text/html"):
            width = laid_out_width(page)
            if width > 390:
                wide[path] = (width, overflowing(page))
    assert wide == {}
