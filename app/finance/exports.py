"""Gift exports for finance, as CSV or XLSX, streamed: memory stays flat however many rows.

One row per gift on which money moved in the period (a charge, refund or dispute whose ledger
time falls in it, in the organisation's zone). The money columns count only the movements in
the period, so the columns of an export add up to the reconciliation of the same period
(``app.finance.reconciliation``): a gift paid in March and refunded in April is a March row
with its gross, and an April row with its refund.

With the ``payout`` filter, only the ledger rows a payout paid out count (the provider's
``po_...`` id; ``app.payments.payouts`` links its balance transactions to them), so the columns
add up to that payout's line in the reconciliation.

The columns (``COLUMNS``) are a contract with finance's spreadsheets and accounting imports:
documented in README.md ("Finance exports"), only ever added to at the end.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import IO, NamedTuple

from sqlalchemy import Integer, Select, String, and_, case, func, select, type_coerce

from app.accounts.models import Supporter
from app.campaigns.models import Campaign
from app.extensions import db
from app.finance.common import FinanceError, Period, campaign_by_slug, decimal_text
from app.finance.models import Receipt, ReceiptStatus
from app.giving.models import Frequency, Gift, GiftStatus
from app.imports.reading import inert
from app.payments.models import Payment, PaymentKind
from app.payments.payouts import linked_payments, payout_by_id

#: Rows fetched from the database at a time (a server-side cursor on PostgreSQL).
BATCH = 2000
#: Rows an XLSX sheet holds below its header row.
XLSX_MAX_ROWS = 1_048_575
OFFLINE_METHODS = ("cheque", "wire", "cash")


class Column(NamedTuple):
    name: str
    meaning: str
    example: str


COLUMNS: tuple[Column, ...] = (
    Column("gift_id", "the gift's number in this system", "1042"),
    Column("gift_reference", "the gift's public reference (on its thank-you page and receipt)",
           "q7Rk2mXbV0aJ3c9LwE1s4g"),
    Column("paid_at_utc", "when it was paid (an offline gift: the day received, at noon in "
           "the organisation's zone), UTC, ISO 8601", "2026-11-25T14:03:12Z"),
    Column("paid_date", "the same moment's date in the organisation's zone (ORG_TIMEZONE)",
           "2026-11-25"),
    Column("status", "the gift's status now: paid, partially_refunded, refunded, disputed",
           "paid"),
    Column("frequency", "one_time, monthly or annual", "monthly"),
    Column("campaign", "the campaign's slug", "twenty-years"),
    Column("campaign_title", "the campaign's title", "Twenty years of independent reporting"),
    Column("fund_code", "the campaign's fund or ledger code; empty if it has none",
           "4100-ANNIV"),
    Column("donor_name", "the name the donor gave", "Noa Levi"),
    Column("donor_email", "the donor's email address", "noa@example.org"),
    Column("anonymous", "true when the donor asked not to be named publicly", "false"),
    Column("currency", "ISO 4217 code of every amount in the row", "USD"),
    Column("gift_amount", "the gift as chosen, before any fee the donor covered", "50.00"),
    Column("fee_covered", "the processing fee the donor chose to add", "1.80"),
    Column("gross", "charges in the period", "51.80"),
    Column("gross_minor", "the same in minor units (cents)", "5180"),
    Column("provider_fee", "the payment provider's fee on those charges, as far as it has "
           "reported it (an unreported fee counts as 0 here)", "1.80"),
    Column("provider_fee_minor", "the same in minor units", "180"),
    Column("provider_fee_unknown", "how many of those charges have a fee the provider has not "
           "reported yet", "0"),
    Column("refunded", "refunds in the period", "0.00"),
    Column("refunded_minor", "the same in minor units", "0"),
    Column("disputed", "money withheld by disputes opened in the period, less disputes won "
           "in it", "0.00"),
    Column("disputed_minor", "the same in minor units", "0"),
    Column("net", "gross - provider_fee - refunded - disputed - dispute_fee", "50.00"),
    Column("net_minor", "the same in minor units", "5000"),
    Column("method", "how it was paid: stripe, sandbox (test payments), cheque, wire, cash "
           "(demo: generated demo data)",
           "stripe"),
    Column("provider_reference", "the provider's payment id, or the cheque number, wire or "
           "cash reference", "pi_3QHk2mXbV0aJ3c9L"),
    Column("receipt_number", "the gift's current receipt (not void); empty if none",
           "2026-000042"),
    Column("goods_value", "fair-market value of goods or services the donor received in "
           "return; empty if none", "40.00"),
    Column("dedication", "honour or memory; empty if none", "memory"),
    Column("dedication_name", "whom the gift honours or remembers", "Nadia Khoury"),
    Column("recurring_plan_id", "the monthly or yearly plan the gift belongs to; empty for a "
           "one-time gift", "17"),
    Column("utm_source", "utm_source of the link the donor came by", "newsletter"),
    Column("utm_medium", "utm_medium of that link", "email"),
    Column("utm_campaign", "utm_campaign of that link", "giving-tuesday"),
    Column("dispute_fee", "the payment provider's fees on disputes opened in the period, less "
           "any it returned on disputes won in it", "0.00"),
    Column("dispute_fee_minor", "the same in minor units", "0"),
)
HEADER = tuple(c.name for c in COLUMNS)
#: The money columns of a row, as minor units, in this order: what sums are checked against.
MONEY = ("gross_minor", "provider_fee_minor", "refunded_minor", "disputed_minor", "net_minor",
         "dispute_fee_minor")


@dataclass(frozen=True)
class ExportFilter:
    period: Period
    campaign_id: int | None = None
    status: GiftStatus | None = None
    frequency: Frequency | None = None
    currency: str | None = None
    method: str | None = None
    payout_id: int | None = None  # Payout.id: only the rows this payout paid out


def export_filter(period: Period, *, campaign: str | None = None, status: str | None = None,
                  frequency: str | None = None, currency: str | None = None,
                  method: str | None = None, payout: str | None = None) -> ExportFilter:
    """Check what staff asked for and name what is wrong (an unknown campaign, say)."""
    campaign_id = campaign_by_slug(campaign).id if campaign else None
    payout_id = None
    if payout:
        found = payout_by_id(payout.strip())
        if found is None:
            raise FinanceError(f"There is no payout {payout.strip()!r}.", field="payout")
        payout_id = found.id
    return ExportFilter(
        period=period, campaign_id=campaign_id,
        status=_choice(GiftStatus, status, "status"),
        frequency=_choice(Frequency, frequency, "frequency"),
        currency=currency.strip().upper() if currency else None,
        method=method.strip().lower() if method else None,
        payout_id=payout_id,
    )


def _choice(enum_cls, value: str | None, name: str):
    if not value:
        return None
    try:
        return enum_cls(value.strip().lower())
    except ValueError:
        known = ", ".join(m.value for m in enum_cls)
        raise FinanceError(f"Unknown {name} {value!r}; use one of: {known}.",
                           field=name) from None


def _in_period(period: Period):
    return and_(Payment.occurred_at >= period.start, Payment.occurred_at < period.end)


def movements(flt: ExportFilter):
    """Per gift, the money that moved in the period: the one query exports and the
    reconciliation's drill-down share."""
    charge = Payment.kind == PaymentKind.CHARGE
    query = (
        select(
            Payment.gift_id.label("gift_id"),
            func.sum(case((charge, Payment.amount), else_=0)).label("gross"),
            func.sum(case((charge, func.coalesce(Payment.fee, 0)), else_=0)).label("fee"),
            func.sum(case((and_(charge, Payment.fee.is_(None)), 1), else_=0))
            .label("fee_unknown"),
            func.sum(case((Payment.kind == PaymentKind.REFUND, Payment.amount), else_=0))
            .label("refunded"),
            func.sum(case((Payment.kind == PaymentKind.DISPUTE, Payment.amount),
                          (Payment.kind == PaymentKind.DISPUTE_WON, -Payment.amount), else_=0))
            .label("disputed"),
            func.sum(case((Payment.kind.in_([PaymentKind.DISPUTE, PaymentKind.DISPUTE_WON]),
                           func.coalesce(Payment.fee, 0)), else_=0)).label("dispute_fee"),
        )
        .where(_in_period(flt.period))
        .group_by(Payment.gift_id)
    )
    if flt.campaign_id is not None:
        query = query.where(Payment.campaign_id == flt.campaign_id)
    if flt.currency:
        query = query.where(Payment.currency == flt.currency)
    if flt.payout_id is not None:
        linked = linked_payments([flt.payout_id])
        query = query.where(Payment.id.in_(select(linked.c.payment_id)))
    return query.subquery("m")


def export_query(flt: ExportFilter) -> Select:
    """The rows of an export, ordered by gift."""
    m = movements(flt)

    def first_charge(column):
        # Per row, an index lookup on payment.gift_id. (A join on a correlated subquery made
        # PostgreSQL loop over every gift for every payment: minutes for a few thousand gifts.)
        return (select(column)
                .where(Payment.gift_id == Gift.id, Payment.kind == PaymentKind.CHARGE)
                .order_by(Payment.id).limit(1).correlate(Gift).scalar_subquery())

    method = func.coalesce(first_charge(Payment.provider), Gift.provider)
    query = (
        select(
            Gift.id, Gift.public_id, Gift.paid_at, Gift.status, Gift.frequency, Campaign.slug,
            Campaign.title, Campaign.fund_code, Gift.donor_name, Supporter.email,
            Gift.anonymous, Gift.currency, Gift.amount, Gift.fee_covered,
            m.c.gross, m.c.fee, m.c.fee_unknown, m.c.refunded, m.c.disputed,
            method.label("method"), first_charge(Payment.provider_id), Receipt.number,
            Gift.goods_value, Gift.dedication, Gift.dedication_name, Gift.plan_id,
            Gift.utm_source, Gift.utm_medium, Gift.utm_campaign, m.c.dispute_fee,
        )
        .select_from(m)
        .join(Gift, Gift.id == m.c.gift_id)
        .join(Campaign, Campaign.id == Gift.campaign_id)
        .join(Supporter, Supporter.id == Gift.supporter_id)
        .outerjoin(Receipt, and_(Receipt.gift_id == Gift.id,
                                 Receipt.status == ReceiptStatus.ISSUED))
        .order_by(Gift.id)
    )
    if flt.status is not None:
        query = query.where(Gift.status == flt.status)
    if flt.frequency is not None:
        query = query.where(Gift.frequency == flt.frequency)
    if flt.method:
        query = query.where(method == flt.method)
    return query


def _converter(zone, *, decimals: Callable[[int, str], object]):
    """A function from a database row to an export row (cells in ``COLUMNS`` order)."""
    dates: dict = {}
    amounts: dict = {}

    def money(minor: int, currency: str):
        # Gifts repeat a few amounts (and zero) endlessly: format each once.
        key = (minor, currency)
        text = amounts.get(key)
        if text is None:
            text = decimals(minor, currency)
            if len(amounts) < 100_000:
                amounts[key] = text
        return text

    def convert(row) -> tuple:
        (gift_id, public_id, paid_at, status, frequency, slug, title, fund_code, donor_name,
         email, anonymous, currency, amount, fee_covered, gross, fee, fee_unknown, refunded,
         disputed, method, reference, receipt, goods, dedication, dedication_name, plan_id,
         utm_source, utm_medium, utm_campaign, dispute_fee) = row
        if paid_at is not None:
            # UTC as text: SQLite gives it already ("2026-11-25 14:03:12.000000"), PostgreSQL a
            # datetime. Slicing text is ten times cheaper than strftime, over a million rows.
            if not isinstance(paid_at, str):
                paid_at = paid_at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
            paid_utc = paid_at[:10] + "T" + paid_at[11:19] + "Z"
            # Every zone's offset is a whole number of quarter hours, so the local date is the
            # same throughout a UTC quarter hour: convert once per quarter hour.
            key = (paid_at[:13], int(paid_at[14:16]) // 15)
            local = dates.get(key)
            if local is None:
                moment = datetime.fromisoformat(paid_at[:19]).replace(tzinfo=UTC)
                local = dates[key] = moment.astimezone(zone).date().isoformat()
        else:
            paid_utc = local = ""
        net = gross - fee - refunded - disputed - dispute_fee
        return (
            gift_id, public_id, paid_utc, local, status, frequency, slug, inert(title),
            inert(fund_code), inert(donor_name), inert(email),
            "true" if anonymous else "false", currency,
            money(amount, currency), money(fee_covered, currency),
            money(gross, currency), gross, money(fee, currency), fee, fee_unknown,
            money(refunded, currency), refunded, money(disputed, currency), disputed,
            money(net, currency), net, method or "", inert(reference), receipt or "",
            money(goods, currency) if goods else "", dedication or "",
            inert(dedication_name), plan_id or "", inert(utm_source), inert(utm_medium),
            inert(utm_campaign), money(dispute_fee, currency), dispute_fee,
        )

    return convert


def _as_driver_returns(query: Select) -> Select:
    """The same query with every column taken as the database driver returns it: SQLAlchemy's
    per-value conversions (enums, booleans, UTC datetimes) cost more, over a million rows, than
    the database's own work, and the converter below needs none of them."""
    return query.with_only_columns(*(
        type_coerce(column, Integer() if isinstance(column.type, Integer) else String())
        .label(f"c{i}") for i, column in enumerate(query.selected_columns)))


def iter_rows(flt: ExportFilter, *, decimals: Callable[[int, str], object] = decimal_text,
              batch: int = BATCH) -> Iterator[tuple]:
    """The export's rows, fetched ``batch`` at a time through a server-side cursor."""
    convert = _converter(flt.period.zone, decimals=decimals)
    query = _as_driver_returns(export_query(flt))
    result = db.session.connection().execute(
        query.execution_options(stream_results=True, yield_per=batch))
    try:
        for partition in result.partitions():
            for row in partition:
                yield convert(row)
    finally:
        result.close()


def iter_csv(flt: ExportFilter, *, rows_per_chunk: int = 1000) -> Iterator[str]:
    """The export as CSV text in chunks, header first: what a streamed Flask response or a
    file writer consumes."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    pending = []
    for row in iter_rows(flt):
        pending.append(row)
        if len(pending) >= rows_per_chunk:
            writer.writerows(pending)
            pending.clear()
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    writer.writerows(pending)
    yield buffer.getvalue()


def write_csv(flt: ExportFilter, out: IO[str]) -> int:
    """Write the export to a text file; returns the number of rows."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    count = 0
    rows = iter_rows(flt)
    while chunk := [row for _, row in zip(range(BATCH), rows, strict=False)]:
        writer.writerows(chunk)
        count += len(chunk)
    return count


def _decimal(minor: int, currency: str) -> Decimal:
    return Decimal(decimal_text(minor, currency))


_NUMERIC = frozenset({"gift_amount", "fee_covered", "gross", "provider_fee", "refunded",
                      "disputed", "net", "goods_value", "dispute_fee"})


def write_xlsx(flt: ExportFilter, out: IO[bytes]) -> int:
    """Write the export as an XLSX workbook (openpyxl's write-only mode: rows go to a temporary
    file as they come). Amounts are numeric cells written from exact decimals, so the sheet
    can sum them; the ``_minor`` columns keep the exact integers. Returns the number of rows.

    Raises FinanceError, before anything is written to ``out``, when the rows exceed what a
    sheet holds.
    """
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Gifts")
    sheet.freeze_panes = "A2"
    sheet.append(HEADER)
    numeric = [name in _NUMERIC for name in HEADER]
    fmt = {}
    count = 0
    try:
        for row in iter_rows(flt, decimals=_decimal):
            count += 1
            if count > XLSX_MAX_ROWS:
                raise FinanceError(f"More than {XLSX_MAX_ROWS:,} gifts: too many for one XLSX "
                                   "sheet. Export CSV, or a shorter period.")
            currency = row[12]
            number_format = fmt.get(currency)
            if number_format is None:
                digits = len(decimal_text(1, currency).partition(".")[2])
                number_format = fmt[currency] = "0." + "0" * digits if digits else "0"
            cells = []
            for value, is_money in zip(row, numeric, strict=True):
                if is_money and value != "":
                    cell = WriteOnlyCell(sheet, value=value)
                    cell.number_format = number_format
                    cells.append(cell)
                else:
                    cells.append(value)
            sheet.append(cells)
    except BaseException:
        _discard(sheet)
        raise
    workbook.save(out)
    return count


def _discard(sheet) -> None:
    """Close and remove a write-only sheet's temporary file now, after an error: left to the
    garbage collector, its generators close in any order and raise "I/O operation on closed
    file" (and the file stays on disk until the process ends)."""
    with contextlib.suppress(Exception):
        sheet.close()
        sheet._writer.cleanup()


def totals(rows) -> dict[str, dict[str, int]]:
    """Sum the money columns of export rows per currency (what the tests and the
    reconciliation compare)."""
    index = {name: HEADER.index(name) for name in MONEY}
    currency_at = HEADER.index("currency")
    sums: dict[str, dict[str, int]] = {}
    for row in rows:
        bucket = sums.setdefault(row[currency_at], dict.fromkeys(MONEY, 0))
        for name, i in index.items():
            bucket[name] += int(row[i])
    return sums
