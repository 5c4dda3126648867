"""Finance pages in a real browser on a phone-sized screen.

Reconciliation and exports: finance staff sign in with the link ``flask users create`` prints,
open the reconciliation of a period, follow a figure to the CSV of the rows behind it, and use
the export form (a bad period is answered beside its field; a good one downloads).
"""

from __future__ import annotations

import csv
import io
import uuid

import pytest
from playwright.sync_api import Page, expect

from app.extensions import db
from tests.factories import paid_gift, refund
from tests.finance.support import at
from tests.support.browser import laid_out_width, overflowing, screenshot, staff_sign_in_link
from tests.support.browser import sign_in_with_link as sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def finance_staff(live_server) -> str:
    return staff_sign_in_link(live_server, "finance")


@pytest.fixture
def march_ledger(live_server) -> str:
    """A campaign of its own (the browser database is shared) with March 2026 money: two
    charges with fees and a partial refund. Returns its slug."""
    from app.campaigns.services import campaign_by_slug

    slug = live_server.create_campaign()
    with live_server.app.app_context():
        campaign = campaign_by_slug(slug)
        _, charge = paid_gift(campaign, amount=10000, when=at(2026, 3, 4, 15),
                              fee=320, email="a@example.org")
        charge_id = charge.id
        paid_gift(campaign, amount=2500, when=at(2026, 3, 9, 15), fee=103,
                  email="b@example.org")
        db.session.commit()
        from app.payments.models import Payment

        refund(db.session.get(Payment, charge_id), 4000, at(2026, 3, 20, 12))
        db.session.commit()
    return slug


def no_horizontal_overflow(page: Page) -> None:
    width = page.viewport_size["width"]
    assert laid_out_width(page) <= width, overflowing(page)


def csv_rows(download) -> list[dict[str, str]]:
    with open(download.path(), encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(io.StringIO(handle.read())))


@pytest.mark.postgresql_too("the reconciliation: sums over a period of dates")
def test_reconciliation_figure_downloads_its_rows(page, live_server, finance_staff,
                                                  march_ledger):
    sign_in(page, finance_staff)
    page.goto("/staff/")
    page.get_by_role("link", name="Reconciliation").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Reconciliation")
    no_horizontal_overflow(page)

    page.get_by_label("From", exact=True).fill("2026-03-01")
    page.get_by_label("To", exact=True).fill("2026-03-31")
    page.get_by_label("Campaign").select_option(march_ledger)
    page.get_by_role("button", name="Show").click()
    net = page.locator('tr[data-line="currency:USD:USD"] [data-figure="net"]')
    expected = 12500 - 423 - 4000
    expect(net).to_have_text("$80.77")
    assert int(net.get_attribute("data-minor")) == expected
    no_horizontal_overflow(page)
    screenshot(page, "finance-reconciliation-phone")

    with page.expect_download() as info:
        net.click()
    download = info.value
    assert download.suggested_filename == "gifts-2026-03-01-2026-03-31.csv"
    rows = csv_rows(download)
    assert len(rows) == 2 and {r["campaign"] for r in rows} == {march_ledger}
    assert sum(int(r["net_minor"]) for r in rows) == expected
    assert sum(int(r["refunded_minor"]) for r in rows) == 4000

    page.set_viewport_size({"width": 1280, "height": 900})
    no_horizontal_overflow(page)
    screenshot(page, "finance-reconciliation-desktop")


def test_export_form_answers_a_bad_period_then_downloads(page, live_server, finance_staff,
                                                         march_ledger):
    sign_in(page, finance_staff)
    page.goto("/staff/finance/exports")
    no_horizontal_overflow(page)
    page.get_by_label("From", exact=True).fill("2026-03-31")
    page.get_by_label("To", exact=True).fill("2026-03-01")
    page.get_by_label("Campaign").select_option(march_ledger)
    page.get_by_role("button", name="Download").click()
    expect(page.locator("#to-error")).to_have_text(
        "The end date 2026-03-01 is before the start date 2026-03-31.")
    expect(page.get_by_label("To", exact=True)).to_have_attribute("aria-invalid", "true")
    no_horizontal_overflow(page)
    screenshot(page, "finance-export-error-phone")

    page.get_by_label("From", exact=True).fill("2026-03-01")
    page.get_by_label("To", exact=True).fill("2026-03-31")
    with page.expect_download() as info:
        page.get_by_role("button", name="Download").click()
    rows = csv_rows(info.value)
    assert sorted(int(r["gross_minor"]) for r in rows) == [2500, 10000]


# -- offline gifts (a cheque through the form, on a phone) and the statements page -----------------

def test_an_offline_cheque_recorded_on_a_phone_shows_in_the_list(page, live_server,
                                                                 finance_staff):
    slug = live_server.create_campaign(title="Cheques by post")
    reference = f"CHQ-{uuid.uuid4().hex[:8].upper()}"
    sign_in(page, finance_staff)
    page.goto("/staff/")
    page.get_by_role("link", name="Offline gifts").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Offline gifts")
    no_horizontal_overflow(page)
    page.get_by_role("link", name="Record a cheque, wire or cash gift").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Record an offline gift")
    no_horizontal_overflow(page)

    page.get_by_label("Method").select_option("cheque")
    page.get_by_label("Reference").fill(reference)
    page.get_by_label("Campaign").select_option(slug)
    page.get_by_label("Amount", exact=True).fill("250.505")
    page.get_by_label("Donor's name").fill("Yusuf Haddad")
    page.get_by_label("Donor's email").fill("yusuf.browser@example.org")
    page.get_by_role("button", name="Record the gift").click()
    expect(page.locator("#amount-error")).to_have_text("Use at most 2 decimal places.")
    expect(page.get_by_label("Amount", exact=True)).to_have_attribute("aria-invalid", "true")
    no_horizontal_overflow(page)
    screenshot(page, "finance-offline-error-phone")

    page.get_by_label("Amount", exact=True).fill("250.50")
    page.get_by_role("button", name="Record the gift").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Cheque {reference}")
    expect(page.locator(".flash-success")).to_contain_text("Gift recorded with receipt")
    expect(page.locator("[data-receipts]")).to_contain_text("Current")
    no_horizontal_overflow(page)
    screenshot(page, "finance-offline-gift-phone")

    page.get_by_role("link", name="Offline gifts").first.click()
    row = page.locator("[data-offline-gifts] tbody tr", has_text=reference)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Yusuf Haddad")
    expect(row).to_contain_text("$250.50")
    expect(row).to_contain_text("Cheques by post")
    no_horizontal_overflow(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    no_horizontal_overflow(page)
    screenshot(page, "finance-offline-list-desktop")


def test_the_statements_page_fits_a_phone(page, live_server, finance_staff):
    sign_in(page, finance_staff)
    page.goto("/staff/")
    page.get_by_role("link", name="Year-end statements").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Year-end statements")
    no_horizontal_overflow(page)
    page.get_by_label("Year", exact=True).first.fill("1999")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("[data-no-statements]")).to_contain_text("No receipted gifts in 1999")
    no_horizontal_overflow(page)
    screenshot(page, "finance-statements-phone")
