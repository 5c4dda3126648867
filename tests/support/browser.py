"""Helpers for the browser tests: reading a campaign page, moving through forms by keyboard,
giving through the sandbox checkout, signing staff and readers in, a box's frame on an article."""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from playwright.sync_api import Frame, Locator, Page, expect

from tests.support.accounts import open_sign_in
from tests.support.news import verified_supporter

CHECKOUT_URL = re.compile(r"/sandbox/checkout/")
THANKS_URL = re.compile(r"/thanks/[\w-]+$")


@dataclass(frozen=True)
class PageProgress:
    """The progress figures a reader sees on a campaign page."""

    raised: int  # minor units, parsed from the "raised" figure
    bar: int  # the progress bar's value (whole percent, 0-100)
    donors: int
    gifts: int


def dollars_to_cents(text: str) -> int:
    """"$1,234.50" -> 123450. Only for the USD figures these tests produce."""
    cleaned = text.strip().replace("$", "").replace(",", "").replace("\u00a0", "")
    assert re.fullmatch(r"\d+(\.\d{2})?", cleaned), f"not a dollar amount: {text!r}"
    return int(Decimal(cleaned) * 100)


def read_progress(page: Page) -> PageProgress:
    progress = page.locator("[data-progress]").first
    raised = progress.locator(".raised strong").text_content() or ""
    bar = progress.locator("progress.bar").get_attribute("value")
    text = " ".join((progress.text_content() or "").split())
    donors = re.search(r"([\d,]+)\s+donors?\b", text, re.I)
    gifts = re.search(r"([\d,]+)\s+gifts?\b", text, re.I)
    assert bar is not None and donors and gifts, f"progress figures not found in {text!r}"
    return PageProgress(raised=dollars_to_cents(raised), bar=int(bar),
                        donors=int(donors.group(1).replace(",", "")),
                        gifts=int(gifts.group(1).replace(",", "")))


def label_for(page: Page, control: str) -> Locator:
    """The <label> wrapping or naming the control matched by the CSS selector ``control``:
    what a person taps, whatever the styling does to the input itself."""
    wrapping = page.locator("label").filter(has=page.locator(control))
    control_id = page.locator(control).get_attribute("id")
    if control_id:
        return wrapping.or_(page.locator(f'label[for="{control_id}"]')).first
    return wrapping.first


def focused(page: Page) -> str:
    """A short description of the focused element, such as ``input[name=email]``."""
    return page.evaluate("""() => {
        const el = document.activeElement;
        if (!el || el === document.body) return "body";
        const name = el.getAttribute("name");
        return el.tagName.toLowerCase() + (name ? `[name=${name}]` : "")
            + (el.id ? `#${el.id}` : "");
    }""")


def tab_to(page: Page, selector: str, *, back: bool = False, limit: int = 40) -> list[str]:
    """Press Tab (Shift+Tab when ``back``) until the element matching ``selector`` has focus;
    returns the elements passed on the way. Fails when not reached within ``limit`` presses."""
    passed: list[str] = []
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if back else "Tab")
        if page.evaluate("s => document.activeElement?.matches(s) ?? false", selector):
            return passed
        passed.append(focused(page))
    raise AssertionError(f"{selector} not reached by Tab; focus went through {passed}")


def screenshot(page: Page, name: str) -> None:
    """Save a full-page screenshot as ``$BROWSER_SCREENSHOTS/<name>.png`` when that variable
    names a folder (to look at the pages while developing); otherwise do nothing."""
    folder = os.environ.get("BROWSER_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=Path(folder) / f"{name}.png", full_page=True)


def laid_out_width(page: Page) -> int:
    """The page's width once it has loaded: after a click that navigates, the new page's text
    can be there before its stylesheets apply (they hold back painting, not the DOM)."""
    page.wait_for_load_state("load")
    return page.evaluate("document.documentElement.scrollWidth")


def overflowing(page: Page) -> list[str]:
    """The elements that reach past the right edge of the viewport (tag, class, right edge,
    the start of their text), innermost last: what to look at when a page is wider than the
    screen."""
    return page.evaluate("""() => Array.from(document.querySelectorAll("body *"))
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
        .map(e => `${e.tagName.toLowerCase()}.${e.className} ${Math.round(
            e.getBoundingClientRect().right)}px ${(e.textContent || "").trim().slice(0, 60)}`)""")


def staff_sign_in_link(live_server, role: str) -> str:
    """A new staff member with ``role``, made with the CLI; the path of their one-time sign-in
    link."""
    email = f"{role}-{uuid.uuid4().hex[:8]}@levantwire.example"
    result = live_server.app.test_cli_runner().invoke(
        args=["users", "create", "--email", email, "--role", role])
    assert result.exit_code == 0, result.output
    return "/account/link/" + result.output.split("/account/link/")[1].split()[0]


def sign_in_with_link(page: Page, link: str) -> None:
    page.goto(link)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/account/link/"))


def sign_in_reader(context, live_server, email: str) -> None:
    """A verified supporter with ``email``, signed in in ``context``: the session cookie
    Flask-Login would set after signing in (the sign-in pages themselves
    are the accounts tests' business)."""
    app = live_server.app
    with app.app_context():
        supporter = verified_supporter(email)
        cookie = app.session_interface.get_signing_serializer(app).dumps(
            {"_user_id": open_sign_in(supporter), "_fresh": True})
    context.add_cookies([{"name": app.config["SESSION_COOKIE_NAME"], "value": cookie,
                          "url": live_server.url}])


def fill_donor(page: Page, donor: dict[str, str]) -> None:
    page.locator("#name").fill(donor["name"])
    page.locator("#email").fill(donor["email"])


def pay_by_card(page: Page, number: str, name: str = "Noa Levi") -> None:
    """Fill the sandbox checkout's card form and press Pay."""
    expect(page).to_have_url(CHECKOUT_URL)
    fill_card(page, number, name)
    page.get_by_role("button", name=re.compile(r"^Pay\b")).click()


def fill_card(page: Page, number: str, name: str = "Noa Levi") -> None:
    """Fill a sandbox card form (the checkout's, or the portal's that replaces a card)."""
    page.locator("#name").fill(name)
    page.locator("#number").fill(number)
    page.locator("#expiry").fill("12 / 34")
    page.locator("#cvc").fill("123")


def box_frame(page: Page, path: str) -> Frame:
    iframe = page.locator(f'iframe[src*="{path}"]')
    expect(iframe).to_be_attached()
    frame = iframe.element_handle().content_frame()
    frame.wait_for_load_state()
    return frame
