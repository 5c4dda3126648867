"""Gift exports: CSV parsed back and summed, XLSX opened with openpyxl, filters, bad input."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from app.finance.common import FinanceError, make_period
from app.finance.exports import (
    COLUMNS,
    HEADER,
    export_filter,
    iter_csv,
    iter_rows,
    write_csv,
    write_xlsx,
)
from tests.factories import make_campaign
from tests.finance.support import MARCH, NY


def parse_csv(flt) -> list[dict]:
    text = "".join(iter_csv(flt))
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames) == HEADER
    return list(reader)


def test_csv_rows_parse_back_and_add_up(app, ledger_rows):
    rows = parse_csv(export_filter(MARCH))
    by_id = {int(r["gift_id"]): r for r in rows}
    expected = {g.id for k, g in ledger_rows.items() if k not in ("early", "april")}
    assert set(by_id) == expected
    assert [int(r["gift_id"]) for r in rows] == sorted(expected)

    plain = by_id[ledger_rows["plain"].id]
    assert (plain["gross"], plain["gross_minor"], plain["provider_fee"], plain["net"]) == (
        "50.00", "5000", "1.75", "48.25")
    assert plain["paid_at_utc"] == "2026-03-02T15:00:00Z" and plain["paid_date"] == "2026-03-02"
    assert plain["fund_code"] == "4100-ANNIV" and plain["campaign"] == "appeal"
    assert plain["method"] == "sandbox" and plain["provider_reference"].startswith("pi_")
    assert plain["receipt_number"].startswith("2026-") and plain["currency"] == "USD"
    assert by_id[ledger_rows["fee_unknown"].id]["provider_fee_unknown"] == "1"
    partly = by_id[ledger_rows["partly_refunded"].id]
    assert (partly["status"], partly["refunded"], partly["net"]) == (
        "partially_refunded", "40.00", "56.80")
    assert by_id[ledger_rows["disputed"].id]["disputed"] == "30.00"
    won = by_id[ledger_rows["dispute_won"].id]
    assert (won["disputed"], won["frequency"]) == ("0.00", "monthly")
    february = by_id[ledger_rows["february"].id]
    assert (february["gross"], february["refunded"], february["net"]) == (
        "0.00", "70.00", "-70.00")
    assert february["receipt_number"] == ""  # refunded in full: its receipt is void
    late = by_id[ledger_rows["late"].id]
    assert late["paid_date"] == "2026-03-31" and late["paid_at_utc"] == "2026-04-01T03:30:00Z"

    # Every money column: decimal text equals the minor units, and the sums are the ledger's.
    for row in rows:
        for name in ("gross", "provider_fee", "refunded", "disputed", "net", "dispute_fee"):
            assert Decimal(row[name]) * 100 == int(row[f"{name}_minor"])
        assert int(row["net_minor"]) == (int(row["gross_minor"]) - int(row["provider_fee_minor"])
                                         - int(row["refunded_minor"])
                                         - int(row["disputed_minor"])
                                         - int(row["dispute_fee_minor"]))
    total = {name: sum(Decimal(r[name]) for r in rows)
             for name in ("gross", "provider_fee", "refunded", "disputed", "net")}
    assert total == {"gross": Decimal("233.00"), "provider_fee": Decimal("7.53"),
                     "refunded": Decimal("110.00"), "disputed": Decimal("30.00"),
                     "net": Decimal("85.47")}


def test_xlsx_opens_with_the_same_rows_and_numbers(app, ledger_rows):
    flt = export_filter(MARCH)
    out = io.BytesIO()
    count = write_xlsx(flt, out)
    sheet = load_workbook(io.BytesIO(out.getvalue()), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == HEADER and count == 7 and len(rows) == 8
    csv_rows = parse_csv(flt)
    for xrow, crow in zip(rows[1:], csv_rows, strict=True):
        x = dict(zip(HEADER, xrow, strict=True))
        assert str(x["gift_id"]) == crow["gift_id"]
        for name in ("gross", "provider_fee", "refunded", "disputed", "net"):
            assert x[f"{name}_minor"] == int(crow[f"{name}_minor"])
            # A numeric cell, written from the exact decimal.
            assert Decimal(str(x[name])).quantize(Decimal("0.01")) == Decimal(crow[name])
        assert x["donor_email"] == crow["donor_email"]


def test_filters(app, ledger_rows):
    def ids(**kw):
        return {int(r[0]) for r in iter_rows(export_filter(MARCH, **kw))}

    ramadan = {ledger_rows["partly_refunded"].id, ledger_rows["disputed"].id}
    assert ids(campaign="ramadan") == ramadan
    assert ids(status="disputed") == {ledger_rows["disputed"].id}
    assert ids(frequency="monthly") == {ledger_rows["dispute_won"].id}
    assert ids(currency="EUR") == set()
    assert ids(method="sandbox") == ids()
    assert ids(method="cheque") == set()
    one_day = make_period(date(2026, 3, 2), date(2026, 3, 2), NY)
    assert {int(r[0]) for r in iter_rows(export_filter(one_day))} == {ledger_rows["plain"].id}


def test_bad_input_is_named(app):
    make_campaign("appeal")
    with pytest.raises(FinanceError, match="before the start date"):
        make_period("2026-03-31", "2026-03-01", NY)
    with pytest.raises(FinanceError, match="not a date"):
        make_period("31/03/2026", "2026-04-01", NY)
    with pytest.raises(FinanceError, match="no campaign 'nope'"):
        export_filter(MARCH, campaign="nope")
    with pytest.raises(FinanceError, match="Unknown status 'lost'"):
        export_filter(MARCH, status="lost")
    with pytest.raises(FinanceError, match="Unknown frequency"):
        export_filter(MARCH, frequency="weekly")


def test_csv_streams_in_chunks(app):
    from app.db import utcnow
    from app.demo import generate_gifts

    campaign = make_campaign("bulk", started_days_ago=3)
    generate_gifts([campaign], 2500, now=utcnow())
    today = utcnow().astimezone(NY).date()
    flt = export_filter(make_period(today - timedelta(days=10), today, NY))
    chunks = list(iter_csv(flt, rows_per_chunk=1000))
    assert len(chunks) >= 3
    rows = list(csv.reader(io.StringIO("".join(chunks))))
    assert len(rows) == 2501
    buffer = io.StringIO()
    assert write_csv(flt, buffer) == 2500
    assert buffer.getvalue() == "".join(chunks)


def test_columns_are_documented_in_the_readme():
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## Finance exports", 1)[1].split("\n## ", 1)[0]
    for column in COLUMNS:
        assert f"| `{column.name}` |" in section, column.name


def test_typed_text_cannot_become_a_spreadsheet_formula(app):
    from tests.factories import paid_gift
    from tests.finance.support import at

    campaign = make_campaign("appeal")
    paid_gift(campaign, name='=HYPERLINK("http://evil.example","click")',
              when=at(2026, 3, 2, 15), utm={"utm_source": "+cmd|' /C calc'!A0"})
    [row] = parse_csv(export_filter(MARCH))
    assert row["donor_name"] == '\'=HYPERLINK("http://evil.example","click")'
    assert row["utm_source"] == "'+cmd|' /C calc'!A0"
    out = io.BytesIO()
    write_xlsx(export_filter(MARCH), out)
    sheet = load_workbook(io.BytesIO(out.getvalue())).active
    cell = sheet.cell(row=2, column=HEADER.index("donor_name") + 1)
    assert cell.data_type == "s" and cell.value.startswith("'=")
