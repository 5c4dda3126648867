"""Supporter accounts in a real browser on a phone-sized screen: sign-up with the emailed link,
sign-in by password and by link, a bad password, password reset, a broken link, the giving
history of a guest donor, downloading one's data and deleting the account."""

from __future__ import annotations

import json
import re
import time
import uuid
from email import message_from_bytes, policy
from urllib.parse import urlsplit

import pytest
from itsdangerous import TimestampSigner
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from app.accounts import tokens
from app.accounts.models import Supporter
from app.accounts.tokens import AccountLinks
from app.extensions import db
from tests.browser.conftest import PHONE, TIMEOUT_MS
from tests.support.accounts import make_account
from tests.support.browser import fill_card, fill_donor, laid_out_width, pay_by_card, screenshot

pytestmark = pytest.mark.browser

PASSWORD = "olive trees above the wadi"
ACCOUNT_URL = re.compile(r"/account$")


@pytest.fixture
def email() -> str:
    return f"noa-{uuid.uuid4().hex[:8]}@example.org"


@pytest.fixture
def account(live_server, email) -> str:
    """A confirmed account with a password, committed on the live server's database."""
    with live_server.app.app_context():
        make_account(email, password=PASSWORD, name="Noa Levi")
    return email


def link_for(live_server, email: str, prefix: str) -> str:
    """The path of the newest link starting with ``prefix`` in mail sent to ``email``."""
    live_server.in_flight.wait()  # account mail goes out once the response is sent
    for path in sorted(live_server.outbox.glob("*.eml"), reverse=True):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        if message["To"] != email:
            continue
        text = message.get_body(("plain",)).get_content()
        for url in re.findall(r"https?://\S+", text):
            if urlsplit(url).path.startswith(prefix):
                return urlsplit(url).path
    raise AssertionError(f"no {prefix} link mailed to {email}")


def fill_sign_in(page: Page, email: str, password: str) -> None:
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def no_sideways_scroll(page: Page) -> None:
    width = laid_out_width(page)
    assert width <= page.viewport_size["width"], f"page is {width}px wide on a phone"


def test_sign_up_confirm_by_link_and_see_the_account(page, live_server, email):
    page.goto("/")
    page.get_by_role("link", name="Sign in").click()
    page.get_by_role("link", name="Create an account").click()
    page.locator("#name").fill("Noa Levi")
    page.locator("#email").fill(email)
    page.locator("#password").fill("password123")  # long enough, but too common
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("[data-error-summary]")).to_contain_text("one of the most common")
    expect(page.locator("[data-error-summary]")).to_be_focused()
    expect(page.locator("#password")).to_have_attribute("aria-invalid", "true")

    page.locator("#password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    expect(page.locator("main")).to_contain_text(email)
    screenshot(page, "account-check-email-phone")

    page.goto(link_for(live_server, email, "/account/verify/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your email address")
    page.get_by_role("button", name="Confirm and sign in").click()
    expect(page).to_have_url(ACCOUNT_URL)
    expect(page.get_by_role("status").first).to_contain_text("Your email address is confirmed")
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Noa")
    expect(page.get_by_role("banner")).to_contain_text("Your account")
    no_sideways_scroll(page)
    screenshot(page, "account-overview-phone")


def test_wrong_password_then_right_one(page, live_server, account):
    page.goto("/account/signin")
    fill_sign_in(page, account, "not the password")
    summary = page.locator("[data-error-summary]")
    expect(summary).to_contain_text("The email address or password is not right.")
    expect(summary).to_be_focused()
    expect(page.locator("#email")).to_have_value(account)
    expect(page.locator("#password")).to_have_value("")
    screenshot(page, "account-signin-error-phone")

    page.locator("#password").fill(PASSWORD)
    page.get_by_label("Keep me signed in on this device").check()
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(ACCOUNT_URL)
    cookies = {c["name"] for c in page.context.cookies()}
    assert {"session", "remember_token"} <= cookies

    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("status").first).to_have_text("You are signed out.")
    page.goto("/account")
    expect(page).to_have_url(re.compile(r"/account/signin\?next="))


def test_sign_in_with_an_emailed_link(page, live_server, account):
    page.goto("/account/signin")
    page.get_by_role("link", name="Email me a sign-in link instead").click()
    page.locator("#email").fill(account.upper())
    page.get_by_role("button", name="Email me a link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")

    link = link_for(live_server, account, "/account/link/")
    page.goto(link)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(ACCOUNT_URL)

    # The same link again, in a fresh browser: already used.
    page.context.clear_cookies()
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("This link was already used")
    page.get_by_role("link", name="Ask for a new link").click()
    expect(page).to_have_url(re.compile(r"/account/signin/link$"))


def test_a_broken_link_says_what_to_do(page, live_server):
    page.goto("/account/link/this-is-not-a-real-token")
    expect(page.get_by_role("heading", level=1)).to_have_text("This link does not work")
    expect(page.locator("main")).to_contain_text("open it straight from the email")


def test_an_expired_reset_link_offers_a_new_one(page, live_server, account, monkeypatch):
    with live_server.app.app_context():
        supporter = db.session.scalar(select(Supporter).where(Supporter.email == account))
        long_ago = int(time.time()) - 2 * 3600
        with monkeypatch.context() as m:
            m.setattr(TimestampSigner, "get_timestamp", lambda self: long_ago)
            token = AccountLinks.from_config(live_server.app.config).make(tokens.RESET,
                                                                          supporter)
    page.goto(f"/account/reset/{token}")
    expect(page.get_by_role("heading", level=1)).to_have_text("This link has expired")
    page.get_by_role("link", name="Ask for a new link").click()
    expect(page).to_have_url(re.compile(r"/account/reset$"))


def test_reset_the_password(page, live_server, account):
    page.goto("/account/signin")
    page.get_by_role("link", name="Forgotten your password?").click()
    page.locator("#email").fill(account)
    page.get_by_role("button", name="Email me a link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")

    page.goto(link_for(live_server, account, "/account/reset/"))
    page.locator("#password").fill("short")
    page.get_by_role("button", name="Save password and sign in").click()
    expect(page.locator("[data-error-summary]")).to_contain_text("Use at least 10 characters.")
    page.locator("#password").fill("a quiet harbour in Acre")
    page.get_by_role("button", name="Save password and sign in").click()
    expect(page).to_have_url(ACCOUNT_URL)
    expect(page.get_by_role("status").first).to_contain_text("Your new password is set")

    page.context.clear_cookies()
    page.goto("/account/signin")
    fill_sign_in(page, account, "a quiet harbour in Acre")
    expect(page).to_have_url(ACCOUNT_URL)


def give(page: Page, slug: str, email: str, *, monthly: bool = False) -> None:
    """Noa Levi's gift of the amount the form starts with (monthly: every month), paid by card
    through the sandbox checkout, up to the thank-you page."""
    page.goto(f"/campaigns/{slug}")
    if monthly:
        page.locator("label[for=frequency-1]").click()
    fill_donor(page, {"name": "Noa Levi", "email": email})
    page.locator("[data-submit]").click()
    pay_by_card(page, "4242 4242 4242 4242")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Thank you")


def test_a_guest_donors_gifts_appear_once_they_sign_in(page, live_server, email):
    slug = live_server.create_campaign(title="Twenty years of reporting")
    give(page, slug, email)

    page.locator("[data-account-hint]").get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"/account/signin/link$"))
    page.locator("#email").fill(email)
    page.get_by_role("button", name="Email me a link").click()
    page.goto(link_for(live_server, email, "/account/link/"))
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("main")).to_contain_text("Twenty years of reporting")
    expect(page.locator("[data-membership]")).to_have_attribute("data-membership", "friend")

    page.get_by_role("link", name="Gifts", exact=True).click()
    row = page.locator("tr[data-gift]").first
    expect(row).to_contain_text("$50.00")
    expect(row).to_contain_text("Paid")
    no_sideways_scroll(page)
    screenshot(page, "account-gifts-phone")
    row.get_by_role("link", name=re.compile("^Receipt")).click()
    expect(page.locator("[data-gift-amount]")).to_have_text("$50.00")




def test_manage_a_monthly_gift(page, live_server, account):
    slug = live_server.create_campaign(title="Twenty years of reporting")
    give(page, slug, account, monthly=True)
    page.goto("/account/signin")
    fill_sign_in(page, account, PASSWORD)
    expect(page.locator("[data-plan]")).to_contain_text("$50.00 monthly")
    page.locator("[data-plan]").get_by_role("link", name=re.compile("^Manage")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your monthly gift")

    page.locator("#amount").fill("0.50")
    page.get_by_role("button", name="Change amount").click()
    expect(page.locator("[data-error-summary]")).to_contain_text(
        "The smallest gift we can take is $1.00.")
    page.locator("#amount").fill("35")
    page.get_by_role("button", name="Change amount").click()
    expect(page.get_by_role("status").first).to_contain_text("The new amount applies")
    expect(page.locator("[data-plan-amount]")).to_have_text("$35.00 monthly")
    no_sideways_scroll(page)
    screenshot(page, "account-plan-phone")

    page.get_by_role("button", name="Update card").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Update the card for your gifts")
    page.get_by_role("link", name="Cancel and go back").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your monthly gift")
    expect(page.locator(".flash")).to_have_count(0)  # no card saved, nothing claimed
    page.get_by_role("button", name="Update card").click()
    fill_card(page, "5555 5555 5555 4444")
    page.get_by_role("button", name="Save card").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your monthly gift")
    expect(page.get_by_role("status").first).to_contain_text("Your card is updated")

    page.get_by_role("link", name="Cancel my monthly gift").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Cancel your monthly gift?")
    page.locator("#reason").fill("Moving abroad")
    page.get_by_role("button", name="Yes, cancel my monthly gift").click()
    expect(page.locator("[data-plan-status]")).to_have_text("Cancelled")
    expect(page.get_by_role("button", name="Restart my monthly gift")).to_be_visible()
    page.get_by_role("button", name="Restart my monthly gift").click()
    expect(page).to_have_url(re.compile(r"/sandbox/checkout/"))
    expect(page.locator("[data-checkout-amount]")).to_have_text("$35.00 monthly")


def test_cancelling_a_monthly_gift_asks_first_without_javascript(
        browser: Browser, page, live_server, account):
    """The cancel button leads to a question, answered by a button or a link: no script."""
    slug = live_server.create_campaign(title="Twenty years of reporting")
    give(page, slug, account, monthly=True)
    context = browser.new_context(viewport=PHONE, base_url=live_server.url, locale="en-US",
                                  java_script_enabled=False)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        plain = context.new_page()
        plain.goto("/account/signin")
        fill_sign_in(plain, account, PASSWORD)
        plain.locator("[data-plan]").get_by_role("link", name=re.compile("^Manage")).click()
        plain.get_by_role("link", name="Cancel my monthly gift").click()
        expect(plain.get_by_role("heading", level=1)).to_have_text("Cancel your monthly gift?")
        yes = plain.get_by_role("button", name="Yes, cancel my monthly gift")
        keep = plain.get_by_role("link", name="Keep my gift")
        # On a phone both answers are full width, one above the other, and within reach.
        yes_box, keep_box = yes.bounding_box(), keep.bounding_box()
        assert keep_box["y"] >= yes_box["y"] + yes_box["height"]
        assert yes_box["width"] == keep_box["width"] and min(
            yes_box["height"], keep_box["height"]) >= 44
        no_sideways_scroll(plain)
        screenshot(plain, "account-cancel-question-phone")

        keep.click()
        expect(plain.get_by_role("heading", level=1)).to_have_text("Your monthly gift")
        expect(plain.locator("[data-plan-status]")).to_have_text("Active")

        plain.get_by_role("link", name="Cancel my monthly gift").click()
        plain.locator("#reason").fill("Moving abroad")
        plain.get_by_role("button", name="Yes, cancel my monthly gift").click()
        expect(plain.locator("[data-plan-status]")).to_have_text("Cancelled")
        expect(plain.get_by_role("status").first).to_contain_text("Your gift is cancelled")
    finally:
        context.close()


def test_profile_on_a_phone(page, live_server, account):
    page.goto("/account/signin")
    fill_sign_in(page, account, PASSWORD)
    page.get_by_role("link", name="Profile").click()
    page.locator("#address_line1").fill("12 Jaffa Road")
    page.locator("#city").fill("Jerusalem")
    page.locator("#country").select_option("IL")
    page.get_by_role("button", name="Save details").click()
    expect(page.get_by_role("status").first).to_have_text("Your details are saved.")
    expect(page.locator("#country")).to_have_value("IL")
    no_sideways_scroll(page)
    screenshot(page, "account-profile-phone")


def test_download_my_data_then_delete_the_account(page, live_server, account):
    page.goto("/account/signin")
    fill_sign_in(page, account, PASSWORD)
    page.get_by_role("link", name="Your data").click()
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download my data").click()
    download = download_info.value
    assert download.suggested_filename.startswith("levant-wire-my-data-")
    data = json.loads(download.path().read_text(encoding="utf-8"))
    assert data["account"]["email"] == account

    page.locator("#confirm_email").fill("someone.else@example.org")
    page.get_by_role("button", name="Delete my account").click()
    expect(page.locator("[data-error-summary]")).to_contain_text(
        "That is not the email address of this account.")
    page.locator("#confirm_email").fill(account)
    page.get_by_role("button", name="Delete my account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your account is deleted")
    screenshot(page, "account-deleted-phone")

    with live_server.app.app_context():
        assert db.session.scalar(select(Supporter).where(Supporter.email == account)) is None
    page.goto("/account/signin")
    fill_sign_in(page, account, PASSWORD)
    expect(page.locator("[data-error-summary]")).to_contain_text(
        "The email address or password is not right.")
