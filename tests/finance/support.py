"""The finance tests' period and clock (March 2026 in New York), the finance commands, and
reading what the finance pages answer: CSV exports and PDFs. Gifts, refunds and disputes
come from ``tests.factories``."""

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
