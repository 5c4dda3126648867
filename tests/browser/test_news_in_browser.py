"""News in a real browser: following categories on My news (with JavaScript, without a reload;
and without JavaScript), and the daily email's subscribe, confirm and one-click unsubscribe."""

from __future__ import annotations

import re
import uuid
from email import message_from_bytes, policy
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from app.extensions import db
from app.news.demo import seed_categories
from app.news.ingest import SAMPLE_FEED, ingest_feed
from tests.browser.conftest import PHONE, TIMEOUT_MS
from tests.support.browser import screenshot, sign_in_reader, tab_to
from tests.support.news import DIGEST_NOW

pytestmark = pytest.mark.browser


@pytest.fixture
def news(live_server):
    """The categories and the sample feed, committed (both steps are idempotent)."""
    with live_server.app.app_context():
        seed_categories()
        ingest_feed(str(SAMPLE_FEED), now=DIGEST_NOW)
        db.session.commit()
    return live_server


@pytest.fixture
def reader_email() -> str:
    return f"reader-{uuid.uuid4().hex[:10]}@example.org"


def toggle(page: Page, name: str):
    return page.get_by_role("button", name=re.compile(rf"^{re.escape(name)}\b"))


def test_follow_without_a_reload(page: Page, news, reader_email):
    sign_in_reader(page.context, news, reader_email)
    page.goto("/news/my")
    expect(page.get_by_role("heading", level=1)).to_have_text("My news")
    syria = toggle(page, "Syria")
    expect(syria).to_have_attribute("aria-pressed", "false")
    page.evaluate("window.__sameDocument = true")
    syria.click()
    expect(syria).to_have_attribute("aria-pressed", "true")
    expect(syria).to_contain_text("Following")
    expect(page.locator("[data-follow-status]")).to_have_text("You follow Syria.")
    stories = page.locator("[data-news-articles]")
    expect(stories).to_contain_text("Displaced families in north-west Syria")
    expect(stories).not_to_contain_text("Tehran caps the price of bread")
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    screenshot(page, "news-my-following-syria")

    # By keyboard: Tab to Iran, Space to follow, Enter to stop.
    page.locator("#follow-heading").click()
    tab_to(page, '#category-iran button')
    page.keyboard.press("Space")
    iran = toggle(page, "Iran")
    expect(iran).to_have_attribute("aria-pressed", "true")
    expect(stories).to_contain_text("Tehran caps the price of bread")
    page.keyboard.press("Enter")
    expect(iran).to_have_attribute("aria-pressed", "false")
    expect(page.locator("[data-follow-status]")).to_have_text("You no longer follow Iran.")
    assert page.evaluate("window.__sameDocument") is True

    page.reload()  # it was saved
    expect(toggle(page, "Syria")).to_have_attribute("aria-pressed", "true")
    expect(toggle(page, "Iran")).to_have_attribute("aria-pressed", "false")


def test_follow_without_javascript(browser: Browser, news, reader_email):
    context = browser.new_context(viewport=PHONE, base_url=news.url, java_script_enabled=False)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        sign_in_reader(context, news, reader_email)
        page = context.new_page()
        page.goto("/news/my")
        toggle(page, "Economy").click()
        page.wait_for_url(re.compile(r"/news/my#category-economy$"))
        expect(toggle(page, "Economy")).to_have_attribute("aria-pressed", "true")
        expect(page.locator("[data-news-articles]")).to_contain_text(
            "Turkey's central bank holds rates")
        toggle(page, "Economy").click()
        page.wait_for_url(re.compile(r"/news/my#category-economy$"))
        expect(toggle(page, "Economy")).to_have_attribute("aria-pressed", "false")
    finally:
        context.close()


def test_signed_out_readers_are_sent_to_sign_in(page: Page, news):
    page.goto("/news/my")
    expect(page).to_have_url(re.compile(r"/signin"))


def mail_to(live_server, address: str, subject: str):
    for path in sorted(live_server.outbox.glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        if message["To"] == address and message["Subject"] == subject:
            return message
    raise AssertionError(f"no {subject!r} mail to {address}")


def local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path


def test_subscribe_confirm_and_unsubscribe(page: Page, news, reader_email):
    page.goto("/news/subscribe")
    page.get_by_label("Email address").fill("not an address")
    page.get_by_role("button", name="Subscribe").click()
    summary = page.locator("[data-error-summary]")
    expect(summary).to_contain_text("Enter an email address like name@example.com.")
    expect(summary).to_contain_text("agree to the terms of use and the privacy policy")
    expect(page.get_by_label("Email address")).to_have_attribute("aria-invalid", "true")
    screenshot(page, "news-subscribe-errors")

    page.get_by_label("Email address").fill(reader_email)
    page.get_by_label(re.compile("I agree to the Terms of Use")).check()
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your inbox")

    mail = mail_to(news, reader_email, "Confirm your daily news email")
    link = re.search(r"http\S+/news/confirm/[\w.-]+", mail.get_body(("plain",)).get_content())
    page.goto(local(link.group(0)))
    expect(page.get_by_role("heading", level=1)).to_have_text("You are subscribed")
    page.goto(local(link.group(0)))
    expect(page.get_by_role("heading", level=1)).to_have_text("Already confirmed")
    page.goto(local(link.group(0))[:-3] + "xyz")
    expect(page.get_by_role("heading", level=1)).to_have_text("This link is not valid")

    unsubscribe = local(mail["List-Unsubscribe"][1:-1])
    page.goto(unsubscribe)
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Unsubscribe from the daily news email?")
    screenshot(page, "news-unsubscribe")
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are unsubscribed")
    page.goto(unsubscribe)
    expect(page.locator("main")).to_contain_text("already unsubscribed")
