"""Staff pages in a real browser on a phone-sized screen: a fundraiser signs in with the link
``flask users create`` prints, reads a campaign's dashboard (charts that fit the screen, the
numbers as a table), watches it refresh without a reload, and drafts a campaign from the
calendar."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from app.extensions import db
from tests.staff.support import paid_gift
from tests.support.browser import screenshot, staff_sign_in_link
from tests.support.browser import sign_in_with_link as sign_in


@pytest.fixture
def fundraiser(live_server) -> str:
    return staff_sign_in_link(live_server, "fundraiser")


def give(live_server, slug: str, amount: int, email: str) -> None:
    from app.campaigns.services import campaign_by_slug

    with live_server.app.app_context():
        paid_gift(live_server.app, campaign_by_slug(slug), amount=amount, email=email)
        db.session.commit()


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
        chart = page.get_by_role("img", name=re.compile("Money raised per day"))
        expect(chart).to_be_visible()
        box = chart.bounding_box()
        assert box and box["width"] <= 390 and box["x"] >= 0  # fits the phone's width
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
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
