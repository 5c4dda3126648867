"""The export and reconciliation pages: the download's sums equal the page's figures, every
figure links to the rows behind it, bad input is answered beside its field with no file."""

from __future__ import annotations

import io
import re
from datetime import datetime
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from app.finance.exports import HEADER
from app.staff.models import Role
from tests.factories import make_campaign, paid_gift
from tests.finance.support import COLUMN, at, column_sum, rows_of
from tests.support.staff import make_person, sign_in_as

MARCH = {"from": "2026-03-01", "to": "2026-03-31"}
# The March 2026 USD figures of ``ledger_rows`` (tests/finance/test_reconciliation.py derives
# them from the ledger): what the page must show and the downloads must add up to.
USD = {"gross": 23300, "fees": 753, "refunds": 11000, "disputes": 3000, "dispute_fees": 0,
       "net": 23300 - 753 - 11000 - 3000}


@pytest.fixture
def ils_gift(app, ledger_rows):
    """A shekel campaign beside the dollar ones: its money must never be added to theirs."""
    shekels = make_campaign("shekels", currency="ILS", title="Shekel appeal")
    paid_gift(shekels, amount=18000, when=at(2026, 3, 12, 15), fee=550)
    return shekels


@pytest.fixture
def march_gift(app):
    """One gift paid in March 2026: money a refused request would otherwise have exported (the
    bad-input cases need no more than that, and there are many of them)."""
    return paid_gift(make_campaign("appeal"), amount=5000, when=at(2026, 3, 2, 15), fee=175)[0]


def figures(html: str) -> list[dict]:
    """Every linked figure on the reconciliation page: its line, name, amount and link."""
    found = []
    for line, body in re.findall(r'<tr data-line="([^"]+)">(.*?)</tr>', html, re.S):
        for href, figure, minor, text in re.findall(
                r'<a href="([^"]+)" data-figure="(\w+)" data-minor="(-?\d+)"[^>]*>([^<]+)</a>',
                body):
            group, label, currency = line.split(":")
            found.append({"group": group, "label": label, "currency": currency,
                          "figure": figure, "minor": int(minor), "text": unescape(text),
                          "href": unescape(href)})
    return found


def value_of(html: str, name: str) -> str:
    match = re.search(rf'<input [^>]*name="{name}"[^>]*value="([^"]*)"', html)
    assert match, f"no input {name}"
    return match.group(1)


def field_error(html: str, field_id: str) -> str:
    """The message shown beside a field (the field's own error paragraph)."""
    match = re.search(rf'<p class="field-error" id="{field_id}-error">(.*?)</p>', html, re.S)
    assert match, f"no error beside {field_id}"
    return unescape(match.group(1))


# -- the export --------------------------------------------------------------------------------


# 31 January, late evening in New York: already 1 February in UTC.
CLOCK = datetime(2027, 1, 31, 23, 30, tzinfo=ZoneInfo("America/New_York"))


@pytest.fixture
def fixed_clock(monkeypatch):
    """The finance pages' "today", pinned: a default period must not depend on the day the
    suite runs."""
    from app.finance import views

    monkeypatch.setattr(views, "utcnow", lambda: CLOCK.astimezone(ZoneInfo("UTC")))
    return CLOCK.date()


def test_the_export_form_defaults_to_this_month_and_prefills_from_the_query(client, finance,
                                                                             ledger_rows,
                                                                             fixed_clock):
    today = fixed_clock
    html = client.get("/staff/finance/exports").get_data(as_text=True)
    assert value_of(html, "from") == today.replace(day=1).isoformat()
    assert value_of(html, "to") > today.isoformat() or value_of(html, "to")[8:] in (
        "28", "29", "30", "31")
    assert '<option value="appeal">' in html and '<option value="ramadan">' in html
    assert 'action="/staff/finance/exports/download"' in html

    html = client.get("/staff/finance/exports?from=2026-03-01&to=2026-03-31&campaign=ramadan"
                      "&currency=USD&method=sandbox&format=xlsx").get_data(as_text=True)
    assert value_of(html, "from") == "2026-03-01" and value_of(html, "to") == "2026-03-31"
    for value in ("ramadan", "USD", "sandbox", "xlsx"):
        assert f'<option selected value="{value}">' in html, value


def test_the_csv_download_streams_every_row_of_the_period(client, finance, ledger_rows):
    response = client.get("/staff/finance/exports/download", query_string={
        **MARCH, "format": "csv"})
    assert response.is_streamed
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="gifts-2026-03-01-2026-03-31.csv"')
    assert response.headers["Cache-Control"] == "private, no-store"
    rows = rows_of(response)
    expected = {ledger_rows[k].id for k in ("plain", "fee_unknown", "partly_refunded",
                                             "disputed", "dispute_won", "february", "late")}
    assert {int(r["gift_id"]) for r in rows} == expected
    assert {r["currency"] for r in rows} == {"USD"}
    for figure, column in COLUMN.items():
        assert column_sum(rows, column) == USD[figure], figure


def test_filters_narrow_the_download(client, finance, ledger_rows):
    rows = rows_of(client.get("/staff/finance/exports/download", query_string={
        **MARCH, "campaign": "ramadan", "status": "disputed", "format": "csv"}))
    assert [int(r["gift_id"]) for r in rows] == [ledger_rows["disputed"].id]
    rows = rows_of(client.get("/staff/finance/exports/download", query_string={
        **MARCH, "frequency": "monthly"}))  # format defaults to CSV
    assert [int(r["gift_id"]) for r in rows] == [ledger_rows["dispute_won"].id]


def test_a_period_without_money_is_a_file_with_the_header_only(client, finance, ledger_rows):
    response = client.get("/staff/finance/exports/download", query_string={
        "from": "2025-01-01", "to": "2025-01-31", "format": "csv"})
    assert rows_of(response) == []
    assert response.get_data(as_text=True) == ",".join(HEADER) + "\r\n"


def test_the_xlsx_download_opens_and_adds_up(client, finance, ledger_rows):
    response = client.get("/staff/finance/exports/download", query_string={
        **MARCH, "format": "xlsx"})
    assert response.status_code == 200
    assert response.mimetype == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert 'filename="gifts-2026-03-01-2026-03-31.xlsx"' in response.headers[
        "Content-Disposition"]
    body = response.data
    response.close()  # what a WSGI server does once sent: the temporary file goes
    sheet = load_workbook(io.BytesIO(body), read_only=True)["Gifts"]
    header, *rows = list(sheet.iter_rows(values_only=True))
    assert list(header) == list(HEADER)
    assert len(rows) == 7
    for figure, column in COLUMN.items():
        assert sum(row[HEADER.index(column)] for row in rows) == USD[figure], figure


@pytest.mark.parametrize(("query", "field", "message"), [
    ({"from": "2026-03-31", "to": "2026-03-01"}, "to",
     "The end date 2026-03-01 is before the start date 2026-03-31."),
    ({"from": "31/03/2026", "to": "2026-03-31"}, "from",
     "“31/03/2026” is not a date: write it as YYYY-MM-DD, e.g. 2026-03-01."),
    ({"from": "2026-03-01", "to": "2026-02-30"}, "to",
     "“2026-02-30” is not a date: write it as YYYY-MM-DD, e.g. 2026-03-01."),
    ({"from": "", "to": "2026-03-31"}, "from", "Enter the first day."),
    ({"from": "2026-03-01"}, "to", "Enter the last day (included)."),
    ({**MARCH, "campaign": "no-such-appeal"}, "campaign", "There is no campaign 'no-such-appeal'."),
    ({**MARCH, "status": "lost"}, "status", "Unknown status 'lost'; use one of: pending, "
                                            "processing, failed, paid, partially_refunded, "
                                            "refunded, disputed."),
    ({**MARCH, "frequency": "weekly"}, "frequency", "Unknown frequency 'weekly'; use one of: "
                                                    "one_time, monthly, annual."),
    ({**MARCH, "currency": "dollars"}, "currency",
     "Choose a currency, or write its three-letter code (e.g. USD)."),
    ({**MARCH, "method": "<script>"}, "method", "Choose a payment method from the list."),
    ({**MARCH, "format": "pdf"}, "format", "Choose CSV or XLSX."),
])
def test_bad_input_is_answered_beside_its_field_and_nothing_is_downloaded(
        client, finance, march_gift, query, field, message):
    response = client.get("/staff/finance/exports/download", query_string=query)
    assert response.status_code == 422
    assert response.mimetype == "text/html"
    assert "Content-Disposition" not in response.headers
    html = response.get_data(as_text=True)
    assert field_error(html, field) == message
    assert "Nothing was exported" in html
    assert len(re.findall(r'class="field-error"', html)) == 1  # only that field


def test_an_export_too_big_for_a_sheet_is_refused_with_no_file(client, finance, ledger_rows,
                                                                monkeypatch):
    from app.finance import exports

    monkeypatch.setattr(exports, "XLSX_MAX_ROWS", 6)
    response = client.get("/staff/finance/exports/download", query_string={
        **MARCH, "format": "xlsx"})
    assert response.status_code == 422 and "Content-Disposition" not in response.headers
    html = unescape(response.get_data(as_text=True))
    assert "More than 6 gifts: too many for one XLSX sheet. Export CSV, or a shorter period." \
        in html
    assert len(rows_of(client.get("/staff/finance/exports/download", query_string={
        **MARCH, "format": "csv"}))) == 7  # CSV has no such limit


def test_the_pages_are_for_finance_and_admin_staff(client, ledger_rows):
    """The route walk (tests/staff/test_route_access.py) covers every role on empty input;
    here the same with real data, and what each gets."""
    download = "/staff/finance/exports/download?from=2026-03-01&to=2026-03-31"
    pages = ("/staff/finance/exports", download, "/staff/finance/reconciliation")
    for path in pages:
        response = client.get(path)
        assert response.status_code == 302 and "/account/signin?next=" in response.location
    for role in (None, "fundraiser"):
        roles = (Role(role),) if role else ()
        sign_in_as(client, make_person(f"{role or 'reader'}@levantwire.example", roles=roles))
        for path in pages:
            assert client.get(path).status_code == 403, (role, path)
    for role in ("finance", "admin"):
        sign_in_as(client, make_person(f"{role}@levantwire.example", roles=(Role(role),)))
        assert len(rows_of(client.get(download))) == 7
        assert client.get("/staff/finance/reconciliation").status_code == 200
        index = client.get("/staff/").get_data(as_text=True)
        assert 'href="/staff/finance/reconciliation"' in index
        assert 'href="/staff/finance/exports"' in index
        assert "listed here as they arrive" not in index


# -- the reconciliation ------------------------------------------------------------------------


def test_reconciliation_shows_each_currency_apart_formatted_by_babel(client, finance, ils_gift):
    response = client.get("/staff/finance/reconciliation", query_string=MARCH)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    shown = {(f["group"], f["label"], f["figure"]): (f["minor"], f["text"])
             for f in figures(html)}
    assert shown[("currency", "USD", "gross")] == (23300, "$233.00")
    assert shown[("currency", "USD", "fees")] == (753, "$7.53")
    assert shown[("currency", "USD", "refunds")] == (11000, "$110.00")
    assert shown[("currency", "USD", "disputes")] == (3000, "$30.00")
    assert shown[("currency", "USD", "net")] == (USD["net"], "$85.47")
    assert shown[("currency", "ILS", "gross")] == (18000, "₪180.00")
    assert shown[("currency", "ILS", "net")] == (17450, "₪174.50")
    assert shown[("campaign", "ramadan", "gross")] == (13000, "$130.00")
    assert shown[("campaign", "shekels", "net")] == (17450, "₪174.50")
    assert shown[("method", "sandbox", "net")][0] == USD["net"]
    assert {f["currency"] for f in figures(html) if f["label"] == "sandbox"} == {"USD", "ILS"}
    # No figure anywhere adds the two currencies together.
    assert "41,300" not in html and "413.00" not in html
    assert "1 charge has a fee the payment provider has not reported yet" in html
    assert "1 not yet known" in html
    assert "No payout arrives in this period. The sandbox provider makes none" in html
    assert "Ramadan Kareem" in html  # campaigns by title


def test_every_figures_link_downloads_the_rows_that_sum_to_it(client, finance, ils_gift):
    html = client.get("/staff/finance/reconciliation", query_string=MARCH).get_data(
        as_text=True)
    found = figures(html)
    # Every line shows its six figures: three currency lines... and every one is followed.
    assert len(found) == 6 * (2 + 3 + 2)  # USD, ILS; appeal, ramadan, shekels; sandbox x2
    downloads: dict[str, list] = {}
    for figure in found:
        href = figure["href"]
        assert href.startswith("/staff/finance/exports/download?")
        assert "from=2026-03-01" in href and "to=2026-03-31" in href and "format=csv" in href
        if href not in downloads:
            downloads[href] = rows_of(client.get(href))
        rows = downloads[href]
        assert rows, figure
        assert {r["currency"] for r in rows} == {figure["currency"]}
        if figure["group"] == "campaign":
            assert {r["campaign"] for r in rows} == {figure["label"]}
        assert column_sum(rows, COLUMN[figure["figure"]]) == figure["minor"], figure
    by_key = {(f["group"], f["label"], f["currency"], f["figure"]): f["minor"] for f in found}
    assert by_key[("currency", "USD", "USD", "gross")] == USD["gross"]
    assert by_key[("currency", "USD", "USD", "refunds")] == USD["refunds"]
    assert by_key[("currency", "USD", "USD", "net")] == USD["net"]
    assert by_key[("currency", "ILS", "ILS", "net")] == 17450
    assert by_key[("campaign", "ramadan", "USD", "refunds")] == 4000


def test_a_campaigns_reconciliation_links_to_that_campaigns_rows(client, finance, ils_gift):
    html = client.get("/staff/finance/reconciliation", query_string={
        **MARCH, "campaign": "ramadan"}).get_data(as_text=True)
    found = figures(html)
    assert {f["label"] for f in found} == {"USD", "ramadan", "sandbox"}
    usd_net = next(f for f in found if f["group"] == "currency" and f["figure"] == "net")
    assert usd_net["minor"] == 13000 - 320 - 117 - 4000 - 3000
    assert "campaign=ramadan" in usd_net["href"]
    rows = rows_of(client.get(usd_net["href"]))
    assert {r["campaign"] for r in rows} == {"ramadan"}
    assert column_sum(rows, "net_minor") == usd_net["minor"]


def test_each_line_links_to_the_export_form_prefilled(client, finance, ledger_rows):
    html = client.get("/staff/finance/reconciliation", query_string=MARCH).get_data(
        as_text=True)
    link = re.search(r'<a href="([^"]+)">Export form</a>', html)
    assert link
    form = client.get(unescape(link.group(1))).get_data(as_text=True)
    assert value_of(form, "from") == "2026-03-01"
    assert '<option selected value="USD">' in form
    xlsx = re.search(r'<a href="([^"]+)">XLSX</a>', html)
    with client.get(unescape(xlsx.group(1))) as response:
        assert response.status_code == 200 and response.data[:2] == b"PK"


def test_reconciliation_defaults_to_this_month(client, finance, ledger_rows, fixed_clock):
    today = fixed_clock
    html = client.get("/staff/finance/reconciliation").get_data(as_text=True)
    assert value_of(html, "from") == today.replace(day=1).isoformat()
    assert "No money moved in this period." in html  # the ledger rows are in 2026
    assert "No payout arrives in this period. The sandbox provider makes none" in html


@pytest.mark.parametrize(("query", "field", "message"), [
    ({"from": "2026-03-31", "to": "2026-03-01"}, "to",
     "The end date 2026-03-01 is before the start date 2026-03-31."),
    ({"from": "March", "to": "2026-03-31"}, "from",
     "“March” is not a date: write it as YYYY-MM-DD, e.g. 2026-03-01."),
    ({"from": "2026-03-01", "to": ""}, "to", "Enter the last day (included)."),
    ({**MARCH, "campaign": "no-such-appeal"}, "campaign", "There is no campaign 'no-such-appeal'."),
])
def test_reconciliation_answers_bad_input_beside_its_field(client, finance, march_gift, query,
                                                          field, message):
    response = client.get("/staff/finance/reconciliation", query_string=query)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_error(html, field) == message
    assert "data-figure" not in html and "Payouts" not in html
