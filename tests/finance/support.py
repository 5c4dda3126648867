"""The finance tests' period and clock (March 2026 in New York), the finance commands,
reading what the finance pages answer (CSV exports and PDFs), and export rows to import.
Gifts, refunds and disputes come from ``tests.factories``."""

from __future__ import annotations

import csv
import io
import re
import zlib
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from app.finance.common import make_period
from app.finance.exports import HEADER

NY = ZoneInfo("America/New_York")
MARCH = make_period("2026-03-01", "2026-03-31", NY)


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


#: A figure on the page -> the export column that sums to it.
COLUMN = {"gross": "gross_minor", "fees": "provider_fee_minor", "refunds": "refunded_minor",
          "disputes": "disputed_minor", "dispute_fees": "dispute_fee_minor", "net": "net_minor"}


def invoke(app, *args):
    return app.test_cli_runner().invoke(args=["finance", *args])


def rows_of(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.get_data(as_text=True)[:1000]
    assert response.mimetype == "text/csv"
    text = response.get_data(as_text=True)
    response.close()
    reader = csv.reader(io.StringIO(text, newline=""))
    assert next(reader) == list(HEADER)
    return [dict(zip(HEADER, row, strict=True)) for row in reader]


def column_sum(rows, column: str) -> int:
    return sum(int(row[column]) for row in rows)


def text_of(pdf: bytes) -> str:
    """The page content streams, inflated: core-font text shows as (literal) strings."""
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    out = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            out.append(zlib.decompress(stream).decode("latin-1"))
        except zlib.error:
            out.append(stream.decode("latin-1"))
    return "\n".join(out)


def row(**cells) -> dict:
    """A valid export row of a 50.00 USD gift with a 1.75 fee; ``cells`` change it."""
    base = dict.fromkeys(HEADER, "")
    base.update(gift_reference="ref-1", paid_at_utc="2026-03-02T15:00:00Z",
                paid_date="2026-03-02", status="paid", frequency="one_time",
                campaign="old-appeal", campaign_title="The old appeal", donor_name="Noa Levi",
                donor_email="noa@example.org", anonymous="false", currency="USD",
                gift_amount="50.00", fee_covered="0.00", gross="50.00", gross_minor="5000",
                provider_fee="1.75", provider_fee_minor="175", provider_fee_unknown="0",
                refunded="0.00", refunded_minor="0", disputed="0.00", disputed_minor="0",
                net="48.25", net_minor="4825", method="stripe", provider_reference="pi_1",
                receipt_number="2026-000007", dispute_fee="0.00", dispute_fee_minor="0")
    base.update(cells)
    return base


def csv_bytes(*rows: dict, header=HEADER) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()
