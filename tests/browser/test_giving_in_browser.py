"""Giving in a real browser, on a phone-sized screen (and some of it on a desktop one too): the
campaign page, the donation form, the sandbox checkout, the thank-you page and the campaign's
progress."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.giving.models import Frequency, Gift, GiftStatus, PlanStatus, RecurringPlan
from app.money import cover_fee, format_money
from app.payments.models import Payment
from tests.browser.conftest import PHONE
from tests.support.browser import (
    CHECKOUT_URL,
    THANKS_URL,
    fill_donor,
    label_for,
    pay_by_card,
    read_progress,
    screenshot,
    tab_to,
)

pytestmark = pytest.mark.browser

GOAL = 100_000  # $1,000: small enough for one gift to move the bar by whole percents
SCREENS = {"phone": PHONE, "desktop": {"width": 1280, "height": 800}}


@pytest.fixture
def campaign(live_server) -> str:
    """A new live campaign for each test, so its figures start from nothing."""
    return live_server.create_campaign(goal=GOAL, title="Twenty years of reporting")


@pytest.fixture
def donor() -> dict[str, str]:
    """A new donor for each test, so that a gift adds exactly one donor."""
    return {"name": "Noa Levi", "email": f"noa-{uuid.uuid4().hex[:8]}@example.org"}


def bar_for(raised: int) -> int:
    return max(0, min(100, raised * 100 // GOAL))


@pytest.mark.postgresql_too("the progress bar: the sum raised, the count of donors and gifts")
def test_one_time_gift_thanks_the_donor_and_moves_the_progress_bar(page, campaign, donor):
    page.goto(f"/campaigns/{campaign}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Twenty years of reporting")
    before = read_progress(page)
    assert (before.raised, before.bar, before.donors, before.gifts) == (0, 0, 0, 0)
    screenshot(page, "campaign-phone")

    # $50 is preselected; the donor taps the $100 tile instead.
    hundred = page.locator("input[name=amount_choice][value='10000']")
    expect(hundred).not_to_be_checked()
    label_for(page, "input[name=amount_choice][value='10000']").click()
    expect(hundred).to_be_checked()
    expect(page.locator("input[name=frequency][value=one_time]")).to_be_checked()
    fill_donor(page, donor)
    page.locator("[data-submit]").click()

    expect(page).to_have_url(CHECKOUT_URL)
    expect(page.locator("[data-checkout-amount]")).to_have_text("$100.00")
    screenshot(page, "checkout-phone")
    pay_by_card(page, "4242 4242 4242 4242")

    expect(page).to_have_url(THANKS_URL)
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you, Noa.")
    expect(page.locator("[data-gift-amount]")).to_have_text("$100.00")
    expect(page.locator("main")).to_contain_text(donor["email"])
    screenshot(page, "thanks-phone")

    page.locator(f'main a[href$="/campaigns/{campaign}"]').click()
    expect(page).to_have_url(re.compile(rf"/campaigns/{campaign}$"))
    after = read_progress(page)
    assert after.raised - before.raised == 10_000
    assert (after.donors, after.gifts) == (before.donors + 1, before.gifts + 1)
    assert after.bar == bar_for(after.raised) == 10 > before.bar
    screenshot(page, "campaign-after-phone")


def test_monthly_gift_of_another_amount_with_the_fee_covered(page, live_server, campaign,
                                                             donor):
    config = live_server.app.config

    def fee(amount: int) -> str:
        return format_money(cover_fee(amount, percent_bp=config["FEE_PERCENT_BP"],
                                      fixed=config["FEE_FIXED_MINOR"]), "USD")

    page.goto(f"/campaigns/{campaign}")
    before = read_progress(page)
    fee_text = page.locator("[data-fee-amount]")
    expect(fee_text).to_have_text(fee(5000))  # for the preselected $50

    label_for(page, "input[name=frequency][value=monthly]").click()
    expect(page.locator("input[name=frequency][value=monthly]")).to_be_checked()
    label_for(page, "#amount_choice-other").click()
    expect(page.locator("#amount_choice-other")).to_be_checked()
    page.locator("#other_amount").fill("40")
    label_for(page, "#cover_fee").click()
    expect(page.locator("#cover_fee")).to_be_checked()
    # The page's script recomputes the fee as the donor types, with the server's formula.
    expect(fee_text).to_have_text(fee(4000))  # $1.51
    fill_donor(page, donor)
    page.locator("[data-submit]").click()

    total = 4000 + cover_fee(4000, percent_bp=config["FEE_PERCENT_BP"],
                             fixed=config["FEE_FIXED_MINOR"])
    expect(page).to_have_url(CHECKOUT_URL)
    expect(page.locator("[data-checkout-amount]")).to_have_text(
        f"{format_money(total, 'USD')} monthly")
    pay_by_card(page, "4242 4242 4242 4242")

    expect(page).to_have_url(THANKS_URL)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Thank you")
    expect(page.locator("[data-gift-amount]")).to_have_text("$40.00 monthly")
    expect(page.locator("main")).to_contain_text(fee(4000))
    expect(page.locator("main")).to_contain_text(re.compile(r"monthly gift will renew"))
    screenshot(page, "thanks-monthly-phone")

    with live_server.app.app_context():
        gift = db.session.scalar(select(Gift).where(Gift.public_id == page.url.rsplit("/", 1)[1]))
        assert gift is not None and gift.status is GiftStatus.PAID
        plan = db.session.get(RecurringPlan, gift.plan_id)
        assert plan is not None
        assert (plan.frequency, plan.status, plan.amount, plan.total, plan.periods_paid) == (
            Frequency.MONTHLY, PlanStatus.ACTIVE, 4000, total, 1)
        assert plan.supporter.email == donor["email"]

    page.goto(f"/campaigns/{campaign}")
    after = read_progress(page)
    assert after.raised - before.raised == total
    assert (after.donors, after.gifts) == (before.donors + 1, before.gifts + 1)
    assert after.bar == bar_for(after.raised) > before.bar


def test_declined_card_says_so_and_the_total_does_not_move(page, live_server, campaign, donor):
    page.goto(f"/campaigns/{campaign}")
    before = read_progress(page)
    fill_donor(page, donor)
    page.locator("[data-submit]").click()
    pay_by_card(page, "4000 0000 0000 0002")

    expect(page).to_have_url(CHECKOUT_URL)
    expect(page.get_by_role("alert")).to_have_text("Your card was declined.")
    expect(page.locator("#number")).to_have_value("")  # the number is not echoed back
    screenshot(page, "declined-phone")

    page.get_by_role("link", name="Cancel and go back").click()
    expect(page).to_have_url(re.compile(rf"/campaigns/{campaign}\?gift=[\w-]+$"))
    assert read_progress(page) == before

    with live_server.app.app_context():
        gift = db.session.scalar(select(Gift).where(
            Gift.campaign.has(slug=campaign)))
        assert gift is not None and gift.status is GiftStatus.PENDING
        assert db.session.scalar(select(Payment.id).where(Payment.gift_id == gift.id)) is None


def test_a_zero_other_amount_is_explained_beside_the_field(page, campaign, donor):
    page.goto(f"/campaigns/{campaign}")
    label_for(page, "#amount_choice-other").click()
    page.locator("#other_amount").fill("0")
    fill_donor(page, donor)
    page.locator("[data-submit]").click()

    other = page.locator("#other_amount")
    error = page.locator("fieldset").filter(has=other).locator("#other_amount-error")
    expect(error).to_be_visible()
    expect(error).to_have_text("The amount must be more than zero.")
    expect(other).to_have_attribute("aria-invalid", "true")
    expect(other).to_have_attribute("aria-describedby", re.compile(r"\bother_amount-error\b"))
    expect(other).to_have_value("0")
    expect(page.locator("#amount_choice-other")).to_be_checked()
    expect(page.get_by_role("alert")).to_contain_text("The amount must be more than zero.")
    expect(page.locator("#email")).to_have_value(donor["email"])
    screenshot(page, "amount-error-phone")

    # Corrected, the same form goes through.
    other.fill("40")
    page.locator("[data-submit]").click()
    expect(page).to_have_url(CHECKOUT_URL)
    expect(page.locator("[data-checkout-amount]")).to_have_text("$40.00")


def test_keyboard_users_reach_the_amounts_and_submit_the_form(page, campaign, donor):
    page.goto(f"/campaigns/{campaign}")
    # Tab enters the amounts' radio group on its chosen tile (the preselected $50).
    tab_to(page, "input[name=amount_choice]")
    expect(page.locator("input[name=amount_choice]:focus")).to_have_attribute("value", "5000")

    tab_to(page, "#name")
    page.keyboard.type(donor["name"])
    tab_to(page, "#email")
    page.keyboard.type(donor["email"])
    # Back to the amounts, still on $50; arrow keys move the choice within the group.
    tab_to(page, "input[name=amount_choice]", back=True)
    expect(page.locator("input[name=amount_choice]:focus")).to_have_attribute("value", "5000")
    page.keyboard.press("ArrowRight")
    hundred = page.locator("input[name=amount_choice][value='10000']")
    expect(hundred).to_be_checked()
    expect(hundred).to_be_focused()
    page.keyboard.press("Enter")  # submits the form the radio belongs to

    expect(page).to_have_url(CHECKOUT_URL)
    expect(page.locator("[data-checkout-amount]")).to_have_text("$100.00")


def test_tabbing_past_the_other_amount_box_keeps_the_chosen_amount(page, campaign, donor):
    page.goto(f"/campaigns/{campaign}")
    tab_to(page, "input[name=amount_choice]")
    page.keyboard.press("ArrowRight")  # $50 -> $100
    hundred = page.locator("input[name=amount_choice][value='10000']")
    expect(hundred).to_be_checked()

    # On the way, focus passes the other-amount box, left empty: the choice must survive it.
    tab_to(page, "#name")
    expect(hundred).to_be_checked()
    page.keyboard.type(donor["name"])
    tab_to(page, "#email")
    page.keyboard.type(donor["email"])
    tab_to(page, "[data-submit]")
    page.keyboard.press("Enter")

    expect(page).to_have_url(CHECKOUT_URL)
    expect(page.locator("[data-checkout-amount]")).to_have_text("$100.00")


# ---------------------------------------------------------------- on a phone and a desktop


@pytest.fixture(params=sorted(SCREENS))
def screen(request, page) -> str:
    """The test's page at 390 px wide ("phone") and at 1280 px ("desktop")."""
    page.set_viewport_size(SCREENS[request.param])
    return request.param


def covered_fee(live_server, amount: int) -> int:
    config = live_server.app.config
    return cover_fee(amount, percent_bp=config["FEE_PERCENT_BP"], fixed=config["FEE_FIXED_MINOR"])


def test_the_give_bar_is_on_phones_only_and_covers_nothing(page, screen, campaign):
    page.goto("/account/signin")
    header_give = page.locator("header a.site-give")
    expect(header_give).to_be_visible()
    expect(header_give).to_have_text("Give")
    bar = page.locator("[data-give-bar]")
    if screen == "desktop":
        expect(bar).to_be_hidden()
        header_give.click()
    else:
        expect(bar).to_be_visible()
        expect(bar).to_have_text("Give now")
        # At the very end of the page, its last line sits above the bar, not under it.
        page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        page.wait_for_function("window.scrollY + window.innerHeight >= "
                               "document.documentElement.scrollHeight - 1")
        bar_box = page.locator(".give-bar-inner").bounding_box()
        last_line = page.locator("footer .wrap p").last.bounding_box()
        assert bar_box is not None and last_line is not None
        assert last_line["y"] + last_line["height"] <= bar_box["y"]
        assert bar_box["y"] + bar_box["height"] == pytest.approx(PHONE["height"], abs=1)
        assert bar_box["width"] == pytest.approx(PHONE["width"], abs=1)
        screenshot(page, "give-bar-phone")
        bar.click()

    # Either way, to the main appeal: a live campaign, whose page is where to give.
    expect(page).to_have_url(re.compile(r"/campaigns/[\w-]+$"))
    expect(page.locator("form.donation-form")).to_be_visible()
    expect(page.locator("[data-give-bar]")).to_have_count(0)
    page.locator("header a.site-give").click()
    expect(page).to_have_url(re.compile(r"#give-heading$"))
    expect(page.locator("#give-heading")).to_be_in_viewport()


def test_the_pay_button_names_the_total(page, screen, live_server, campaign, donor):
    page.goto(f"/campaigns/{campaign}")
    submit = page.locator("[data-submit]")
    expect(submit).to_have_text("Give $50.00")  # the preselected $50, once
    expect(page.locator(".secure-note")).to_contain_text(
        "Secure payment. You enter your card details on our payment provider's secure page; "
        "they never reach us.")
    expect(page.locator(".secure-note svg")).to_have_attribute("aria-hidden", "true")

    label_for(page, "#cover_fee").click()
    with_fee = 5000 + covered_fee(live_server, 5000)
    expect(submit).to_have_text(f"Give {format_money(with_fee, 'USD')}")  # Give $51.81
    label_for(page, "input[name=frequency][value=monthly]").click()
    expect(submit).to_have_text(f"Give {format_money(with_fee, 'USD')} monthly")
    label_for(page, "#cover_fee").click()
    expect(submit).to_have_text("Give $50.00 monthly")

    label_for(page, "#cover_fee").click()
    label_for(page, "input[name=frequency][value=annual]").click()
    label_for(page, "#amount_choice-other").click()
    page.locator("#other_amount").fill("123.45")
    total = 12345 + covered_fee(live_server, 12345)
    expect(submit).to_have_text(f"Give {format_money(total, 'USD')} yearly")
    page.locator("#other_amount").fill("12.345")  # not an amount: the button says only Give
    expect(submit).to_have_text("Give")
    page.locator("#other_amount").fill("123.45")
    screenshot(page, f"pay-button-{screen}")

    # What the button said is what the checkout charges: one rule in the page and the server.
    fill_donor(page, donor)
    submit.click()
    expect(page).to_have_url(CHECKOUT_URL)
    expect(page.locator("[data-checkout-amount]")).to_have_text(
        f"{format_money(total, 'USD')} yearly")


def test_cancel_from_the_checkout_returns_to_the_filled_form(page, screen, live_server,
                                                             campaign, donor):
    page.goto(f"/campaigns/{campaign}")
    label_for(page, "input[name=frequency][value=monthly]").click()
    label_for(page, "#amount_choice-other").click()
    page.locator("#other_amount").fill("40.50")
    label_for(page, "#cover_fee").click()
    fill_donor(page, donor)
    page.locator("details.dedication > summary").click()
    page.locator("#dedication").select_option("memory")
    page.locator("#dedication_name").fill("Yosef Levi")
    label_for(page, "#anonymous").click()
    page.locator("#comment").fill("For Yosef, who read you every morning.")
    total = format_money(4050 + covered_fee(live_server, 4050), "USD")
    expect(page.locator("[data-submit]")).to_have_text(f"Give {total} monthly")
    page.locator("[data-submit]").click()

    expect(page).to_have_url(CHECKOUT_URL)
    page.get_by_role("link", name="Cancel and go back").click()

    expect(page).to_have_url(re.compile(rf"/campaigns/{campaign}\?gift=[\w-]+$"))
    expect(page.get_by_role("status").filter(has_text="You left the payment page")).to_be_visible()
    expect(page.locator("input[name=frequency][value=monthly]")).to_be_checked()
    expect(page.locator("#amount_choice-other")).to_be_checked()
    expect(page.locator("#other_amount")).to_have_value("40.50")
    expect(page.locator("#cover_fee")).to_be_checked()
    expect(page.locator("#name")).to_have_value(donor["name"])
    expect(page.locator("#email")).to_have_value(donor["email"])
    expect(page.locator("details.dedication")).to_have_attribute("open", "")
    expect(page.locator("#dedication")).to_have_value("memory")
    expect(page.locator("#dedication_name")).to_have_value("Yosef Levi")
    expect(page.locator("#anonymous")).to_be_checked()
    expect(page.locator("#comment")).to_have_value("For Yosef, who read you every morning.")
    expect(page.locator("[data-submit]")).to_have_text(f"Give {total} monthly")
    screenshot(page, f"resumed-form-{screen}")

    # Sent again as it is, it goes to the checkout again, for the same amount.
    page.locator("[data-submit]").click()
    expect(page).to_have_url(CHECKOUT_URL)
    expect(page.locator("[data-checkout-amount]")).to_have_text(f"{total} monthly")


def test_the_thank_you_page_shares_and_offers_a_monthly_gift(page, screen, live_server,
                                                             campaign, donor):
    outside: list[str] = []
    page.on("request", lambda request: outside.append(request.url)
            if not request.url.startswith(live_server.url) else None)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"],
                                   origin=live_server.url)
    page.goto(f"/campaigns/{campaign}")
    fill_donor(page, donor)
    page.locator("[data-submit]").click()  # $50, once
    pay_by_card(page, "4242 4242 4242 4242")
    expect(page).to_have_url(THANKS_URL)
    expect(page.locator("[data-give-bar]")).to_have_count(0)

    # Sharing: plain links to the campaign's page, and its link to copy.
    campaign_url = f"{live_server.url}/campaigns/{campaign}"
    for name in ("Share on X", "Share on Facebook", "Share on WhatsApp", "Share by email"):
        expect(page.get_by_role("link", name=re.compile(rf"^{name}"))).to_be_visible()
    expect(page.locator("#share-url")).to_have_value(campaign_url)
    page.get_by_role("button", name="Copy link").click()
    expect(page.locator("[data-copy-status]")).to_have_text("Link copied.")
    assert page.evaluate("navigator.clipboard.readText()") == campaign_url
    screenshot(page, f"thanks-share-{screen}")

    # The offer: the form again, filled in for a monthly gift of the same $50.
    offer = page.get_by_role("link", name="Give $50.00 monthly")
    expect(offer).to_be_visible()
    offer.click()
    expect(page).to_have_url(re.compile(rf"/campaigns/{campaign}\?"))
    expect(page.locator("input[name=frequency][value=monthly]")).to_be_checked()
    expect(page.locator("input[name=amount_choice][value='5000']")).to_be_checked()
    expect(page.locator("#name")).to_have_value(donor["name"])
    expect(page.locator("#email")).to_have_value(donor["email"])
    expect(page.locator("[data-submit]")).to_have_text("Give $50.00 monthly")
    page.locator("[data-submit]").click()

    # Nothing is charged until the donor pays at the checkout, as for any gift.
    expect(page).to_have_url(CHECKOUT_URL)
    expect(page.locator("[data-checkout-amount]")).to_have_text("$50.00 monthly")
    with live_server.app.app_context():
        monthly = db.session.scalar(select(Gift).where(Gift.campaign.has(slug=campaign),
                                                       Gift.frequency == Frequency.MONTHLY))
        assert monthly is not None and monthly.status is GiftStatus.PENDING
        assert (monthly.amount, monthly.utm_source) == (5000, "thank-you")
    assert outside == []  # no third-party script, image or font on any of these pages
