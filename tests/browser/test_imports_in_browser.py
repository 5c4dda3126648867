"""The gift-history import in a real browser on a phone-sized screen: finance staff upload a
CSV from the nav's "Import gifts", read the dry run's report, download errors.csv, confirm."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.finance.support import csv_bytes, row
from tests.support.browser import laid_out_width, screenshot, staff_sign_in_link
from tests.support.browser import sign_in_with_link as sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def finance_staff(live_server) -> str:
    return staff_sign_in_link(live_server, "finance")


def test_upload_check_and_confirm(page: Page, live_server, finance_staff, tmp_path):
    run = uuid.uuid4().hex[:10]  # the browser database is shared
    good = row(gift_reference=f"ref-{run}", provider_reference=f"pi_{run}",
               campaign=f"old-{run}", receipt_number="")
    bad = row(gift_reference=f"bad-{run}", provider_reference=f"pi_bad_{run}",
              campaign=f"old-{run}", currency="XYZ", receipt_number="")
    path = tmp_path / "history.csv"
    path.write_bytes(csv_bytes(good, bad))

    sign_in(page, finance_staff)
    page.goto("/staff/")
    page.get_by_role("link", name="Import gifts").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Import gift history")
    page.get_by_label("CSV file").set_input_files(str(path))
    page.get_by_role("button", name="Check the file").click()

    expect(page.locator(".import-summary")).to_have_text(
        "1 to create, 0 to update, 0 unchanged, 1 refused.")
    expect(page.locator(".import-refused")).to_contain_text("unknown currency 'XYZ'")
    assert laid_out_width(page) <= page.viewport_size["width"]
    screenshot(page, "import-gifts-dry-run-phone")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download the refused rows (errors.csv)").click()
    with open(info.value.path(), encoding="utf-8") as download:
        errors = download.read().splitlines()
    assert info.value.suggested_filename == "history.errors.csv"
    assert len(errors) == 2 and errors[1].endswith("line 3: unknown currency 'XYZ'")

    page.get_by_role("button", name="Import 1 row now").click()
    expect(page.locator(".import-summary")).to_have_text(
        "1 created, 0 updated, 0 unchanged, 1 refused.")
    expect(page.get_by_role("button", name="Import 1 row now")).to_have_count(0)
