"""Importing gift history: ``flask finance import`` and the finance import page.

The file is this platform's own export (``app.finance.exports.COLUMNS``, README "Finance
exports"), so that one instance's export imports into another with the same money. Export the
whole history as one period (from the first gift to today): a row then holds all of its gift's
money, and each row becomes

- a gift (its public reference kept, so its thank-you link and the donor's history follow it),
  for the supporter with that email (created when new, matched without regard to case);
- its ledger rows: the charge (the provider's id kept, so the provider's later events about it,
  a refund or a dispute, find it) with its fee, then at most one refund, and one dispute (with
  its fee; a dispute won is a dispute and its reversal), all dated when the gift was paid, since
  the export does not say when the money went back;
- its receipt, when the row names one: the number that platform gave it, marked as issued
  elsewhere (no receipt is made or mailed here), on the year's statements like any other. A
  number in this platform's own form (2026-000042) also moves that year's counter past it, so
  receipts issued here later do not take it again.

A campaign the file names and this database lacks is created ended, unpublished and marked
imported. Nothing is sent: no receipt, no thank-you, no dedication notice.

A gift already here (by reference, or by its payment's provider id) with the same money is
"unchanged": a rerun of a file, or of one stopped half way, adds nothing. With other money it is
refused, and left as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, or_, select, update

from app.accounts.models import Supporter
from app.audit import Actor, record_change
from app.campaigns.models import Campaign, CampaignKind, Frequency
from app.db import GrowingTables, among, insert, insert_many, utcnow
from app.extensions import db
from app.finance.exports import HEADER
from app.finance.models import Receipt, ReceiptCounter, ReceiptStatus
from app.finance.receipts import receipt_year, reserve_sequences
from app.giving.models import Dedication, Gift, GiftStatus
from app.giving.models import _public_id as _new_public_id  # the column's own default
from app.imports import ImportReport, Outcome, Row, RowRefused, open_csv, run_import
from app.imports.runner import BATCH
from app.imports.values import parse_bool, parse_moment
from app.money import KNOWN_CURRENCIES, AmountError, parse_exact
from app.payments.models import Payment, PaymentKind, gift_status

#: Columns a file must have; the others may be missing (an export from before they were added).
REQUIRED = ("gift_reference", "paid_at_utc", "status", "campaign", "donor_email", "currency",
            "gift_amount", "gross", "method", "provider_reference")
#: errors.csv's own column, read and ignored, so that file imports once fixed.
COLUMNS = (*HEADER, "error")
METHODS = frozenset({"stripe", "sandbox", "cheque", "wire", "cash", "demo"})
_OUR_RECEIPT = re.compile(r"(\d{4})-(\d{6,9})")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_WHOLE = re.compile(r"-?\d{1,15}")
# (decimal column, its minor-units column)
_MONEY = (("gross", "gross_minor"), ("provider_fee", "provider_fee_minor"),
          ("refunded", "refunded_minor"), ("disputed", "disputed_minor"),
          ("net", "net_minor"), ("dispute_fee", "dispute_fee_minor"))


@dataclass(frozen=True)
class _Money:
    gross: int
    fee: int | None  # None: the provider had not reported it
    refunded: int
    disputed: int
    dispute_fee: int

    @property
    def given(self) -> int:
        """What the donor gave and kept given: what a receipt is for."""
        return self.gross - self.refunded - self.disputed


def gift_key(row: Row) -> str | None:
    """What makes a row one gift: its reference, else its method and provider reference."""
    reference = row.get("gift_reference")
    if reference:
        return reference
    if row.get("provider_reference"):
        return f"{row.get('method').lower()}:{row.get('provider_reference')}"
    return None


def _exact(row: Row, column: str, currency: str, *, default: int | None = None) -> int | None:
    text = row.get(column)
    if not text:
        return default
    try:
        return parse_exact(text, currency)
    except AmountError as exc:
        raise RowRefused(f"{column}: {exc}") from None


def _money(row: Row, currency: str) -> _Money:
    values = {}
    for name, minor_name in _MONEY:
        decimal = _exact(row, name, currency)
        minor = row.get(minor_name)
        if minor:
            if not _WHOLE.fullmatch(minor):
                raise RowRefused(f"{minor_name} {minor!r} is not a whole number")
            if decimal is not None and int(minor) != decimal:
                raise RowRefused(f"{name} ({row.get(name)}) and {minor_name} ({minor}) differ")
            decimal = int(minor)
        if decimal is not None and decimal < 0 and name != "net":
            raise RowRefused(f"{name} is negative: export the gift's whole history as one "
                             "period (from its first day to today)")
        values[name] = decimal or 0
    if values["gross"] <= 0:
        raise RowRefused("no charge in this row (gross is 0): export the gift's whole history "
                         "as one period, from its first day to today")
    unknown = row.get("provider_fee_unknown") or "0"
    if unknown not in ("0", "1"):
        raise RowRefused(f"provider_fee_unknown {unknown!r} is neither 0 nor 1")
    money = _Money(gross=values["gross"], fee=None if unknown == "1" else values["provider_fee"],
                   refunded=values["refunded"], disputed=values["disputed"],
                   dispute_fee=values["dispute_fee"])
    if row.get("net") or row.get("net_minor"):
        net = money.gross - (money.fee or 0) - money.refunded - money.disputed \
            - money.dispute_fee
        if net != values["net"]:
            raise RowRefused("net is not gross - provider_fee - refunded - disputed - "
                             "dispute_fee")
    return money


def _ledger(money: _Money) -> dict[PaymentKind, int]:
    disputed_and_won = money.disputed == 0 and money.dispute_fee > 0
    totals = {PaymentKind.CHARGE: money.gross}
    if money.refunded:
        totals[PaymentKind.REFUND] = money.refunded
    if money.disputed or disputed_and_won:
        totals[PaymentKind.DISPUTE] = money.disputed or money.gross
    if disputed_and_won:
        totals[PaymentKind.DISPUTE_WON] = money.gross
    return totals


def _choice(enum_cls, text: str, column: str):
    try:
        return enum_cls(text.strip().lower())
    except ValueError:
        known = ", ".join(m.value for m in enum_cls)
        raise RowRefused(f"{column} {text!r} is not one of {known}") from None


class GiftImporter:
    """The row handler, a batch at a time: :meth:`prepare` looks up what is here of the
    batch's rows (the gifts by reference or payment, their ledgers, the receipt numbers, the
    donors, a query each); each row is then checked whole against it in Python and waits
    (:meth:`__call__`: no query; a refused row has written nothing, so it needs no
    savepoint); :meth:`before_commit` writes the batch: the new donors, the gifts, their
    ledger rows and receipts, each in one statement run for all of them, and moves the
    receipt counters past the imported numbers. The rows waiting are checked against each
    other too (a payment or a receipt number twice in one batch). Campaigns are remembered by
    id as they are found or made (there are few)."""

    def __init__(self, *, zone: ZoneInfo, now: datetime):
        self.zone, self.now = zone, now
        self._campaigns: dict[str, tuple[int, datetime | None]] = {}
        self._counters: dict[int, int] = {}  # year -> highest imported sequence not yet applied
        self._pending: list[dict] = []
        self._pending_charges: set[tuple[str, str]] = set()
        self._pending_receipts: set[str | tuple[int, int]] = set()
        # What is here of the batch's rows (prepare()).
        self._by_reference: dict[str, tuple[int, str]] = {}
        self._by_charge: dict[tuple[str, str], tuple[int, str]] = {}
        self._ledgers: dict[int, dict[PaymentKind, int]] = {}
        self._receipts_taken: set[str | tuple[int, int]] = set()
        self._supporter_ids: dict[str, int] = {}
        self._growing = GrowingTables(Supporter.__table__, Gift.__table__, Payment.__table__,
                                      Receipt.__table__)

    def prepare(self, rows: list[Row]) -> None:
        """Look up, for the whole batch, the gifts here by reference or by their charge's
        provider id, the ledger of each found, the receipt numbers taken, and the donors."""
        connection = db.session.connection()
        references = {r for row in rows if (r := row.get("gift_reference"))}
        payment_ids = {p for row in rows if (p := row.get("provider_reference"))}
        methods = {row.get("method").lower() for row in rows}
        self._by_reference = {
            public_id: (gift_id, public_id) for gift_id, public_id in connection.execute(
                select(Gift.id, Gift.public_id).where(among(Gift.public_id, references)))
        } if references else {}
        self._by_charge = {
            (provider, provider_id): (gift_id, public_id)
            for provider, provider_id, gift_id, public_id in connection.execute(
                select(Payment.provider, Payment.provider_id, Gift.id, Gift.public_id)
                .join(Gift, Payment.gift_id == Gift.id)
                # The provider too: the index is on (provider, provider_id).
                .where(among(Payment.provider, methods), among(Payment.provider_id, payment_ids),
                       Payment.kind == PaymentKind.CHARGE))
        } if payment_ids else {}
        found = {gift_id for gift_id, _ in (*self._by_reference.values(),
                                            *self._by_charge.values())}
        self._ledgers = {}
        if found:
            for gift_id, kind, total in connection.execute(
                    select(Payment.gift_id, Payment.kind, func.sum(Payment.amount))
                    .where(among(Payment.gift_id, found))
                    .group_by(Payment.gift_id, Payment.kind)):
                self._ledgers.setdefault(gift_id, {})[PaymentKind(kind)] = total
        numbers = {n for row in rows if (n := row.get("receipt_number"))}
        ours = [(int(m[1]), int(m[2])) for n in numbers if (m := _OUR_RECEIPT.fullmatch(n))]
        self._receipts_taken = set()
        if numbers:
            where = among(Receipt.number, numbers)
            if ours:
                # The years and sequences each among the file's: a few more than the pairs,
                # sorted out below.
                where = or_(where, among(Receipt.year, {y for y, _ in ours})
                            & among(Receipt.sequence, {q for _, q in ours}))
            for number, year, sequence in connection.execute(
                    select(Receipt.number, Receipt.year, Receipt.sequence).where(where)):
                self._receipts_taken.update((number, (year, sequence)))
        emails = {e for row in rows if (e := row.get("donor_email").lower())}
        self._supporter_ids = dict(connection.execute(select(Supporter.email, Supporter.id)
                                                      .where(among(Supporter.email, emails)))
                                   .all()) if emails else {}

    def __call__(self, row: Row) -> Outcome:
        currency = row.get("currency").upper()
        if currency not in KNOWN_CURRENCIES:
            raise RowRefused(f"unknown currency {row.get('currency')!r}")
        money = _money(row, currency)
        ledger = _ledger(money)
        status = _choice(GiftStatus, row.get("status"), "status")
        if status != gift_status(ledger):
            raise RowRefused(f"status {status.value} does not fit its amounts (they make it "
                             f"{gift_status(ledger).value})")
        method = row.get("method").lower()
        if method not in METHODS:
            raise RowRefused(f"method {row.get('method')!r} is not one of "
                             f"{', '.join(sorted(METHODS))}")
        reference = row.get("gift_reference")
        provider_reference = row.get("provider_reference")
        if not provider_reference:
            raise RowRefused("no provider_reference (the payment's id at the provider, or the "
                             "cheque or wire reference)")
        if len(reference) > 32 or len(provider_reference) > 255:
            raise RowRefused("gift_reference or provider_reference is too long")

        existing = self._existing(reference, method, provider_reference)
        if existing is not None:
            return self._compare(*existing, ledger)
        if (method, provider_reference) in self._pending_charges:
            raise RowRefused(f"a duplicate: the same {method} payment {provider_reference} as "
                             "an earlier row")

        paid_at = parse_moment(row.get("paid_at_utc") or row.get("paid_date"), self.zone,
                               "paid_at_utc")
        amount = _exact(row, "gift_amount", currency)
        if not amount or amount <= 0:
            raise RowRefused("gift_amount must be more than 0")
        fee_covered = _exact(row, "fee_covered", currency, default=0)
        goods = _exact(row, "goods_value", currency)
        if fee_covered < 0 or (goods is not None and goods < 0):
            raise RowRefused("fee_covered and goods_value cannot be negative")
        frequency = _choice(Frequency, row.get("frequency") or "one_time", "frequency")
        dedication = _choice(Dedication, row.get("dedication"), "dedication") \
            if row.get("dedication") else None
        anonymous = parse_bool(row.get("anonymous"), "anonymous")
        email = row.get("donor_email").lower()
        if not _EMAIL.fullmatch(email) or len(email) > 254:
            raise RowRefused(f"donor_email {row.get('donor_email')!r} is not an email address")
        slug = row.get("campaign")
        if not slug or len(slug) > 80:
            raise RowRefused("campaign (its slug) is empty or longer than 80 characters")
        texts = {name: row.get(name) for name in ("donor_name", "dedication_name", "utm_source",
                                                  "utm_medium", "utm_campaign")}
        for name, limit in (("donor_name", 200), ("dedication_name", 200), ("utm_source", 100),
                            ("utm_medium", 100), ("utm_campaign", 100)):
            if len(texts[name]) > limit:
                raise RowRefused(f"{name} is longer than {limit} characters")
        receipt = self._receipt_number(row.get("receipt_number"), money, paid_at)

        # Everything is checked: the gift waits for the batch's INSERT.
        self._pending.append({
            "gift": {
                "public_id": reference or _new_public_id(),
                "campaign_id": self._campaign(row, slug, currency, paid_at),
                "supporter_id": self._supporter_ids.get(email),
                "frequency": frequency, "amount": amount, "fee_covered": fee_covered,
                "currency": currency, "status": status,
                "donor_name": texts["donor_name"] or email, "anonymous": anonymous,
                "dedication": dedication, "dedication_name": texts["dedication_name"] or None,
                "utm_source": texts["utm_source"] or None,
                "utm_medium": texts["utm_medium"] or None,
                "utm_campaign": texts["utm_campaign"] or None, "provider": method,
                "created_at": paid_at, "paid_at": paid_at, "goods_value": goods or None},
            "ledger": ledger, "money": money, "receipt": receipt,
            "provider_reference": provider_reference, "email": email,
            "name": texts["donor_name"]})
        self._pending_charges.add((method, provider_reference))
        if receipt is not None:
            self._pending_receipts.add(receipt[2])
            if receipt[1] is not None:
                self._pending_receipts.add(receipt[:2])
        return Outcome.CREATE

    def _write_pending(self) -> None:
        connection = db.session.connection()
        pending, self._pending = self._pending, []
        self._pending_charges.clear()
        self._pending_receipts.clear()
        # The donors met first in this batch, each with its first row's name and time.
        donors = {}
        for p in pending:
            if p["gift"]["supporter_id"] is None and p["email"] not in donors:
                donors[p["email"]] = {"email": p["email"], "name": p["name"],
                                      "created_at": p["gift"]["paid_at"]}
        if donors:
            insert_many(Supporter.__table__, list(donors.values()))
            made = dict(connection.execute(select(Supporter.email, Supporter.id)
                                           .where(among(Supporter.email, donors))).all())
            for p in pending:
                if p["gift"]["supporter_id"] is None:
                    p["gift"]["supporter_id"] = made[p["email"]]
        insert_many(Gift.__table__, [p["gift"] for p in pending])
        by_public_id = dict(connection.execute(select(Gift.public_id, Gift.id).where(
            among(Gift.public_id, (p["gift"]["public_id"] for p in pending)))).all())
        ids = [by_public_id[p["gift"]["public_id"]] for p in pending]
        payments, receipts = [], []
        for gift_id, p in zip(ids, pending, strict=True):
            gift = p["gift"]
            payments += self._payments(gift_id, gift, p["provider_reference"], p["ledger"],
                                       p["money"])
            if p["receipt"] is not None:
                year, sequence, number = p["receipt"]
                if sequence is not None:
                    self._counters[year] = max(self._counters.get(year, 0), sequence)
                receipts.append({
                    "gift_id": gift_id, "year": year, "sequence": sequence, "number": number,
                    "amount": p["money"].given, "currency": gift["currency"],
                    "issued_at": gift["paid_at"], "status": ReceiptStatus.ISSUED,
                    "issued_elsewhere": True})
        if payments:
            insert_many(Payment.__table__, payments)
        if receipts:
            self._apply_counters()
            # Another platform's numbers take the next places of their year, after ours.
            others: dict[int, list[dict]] = {}
            for receipt in receipts:
                if receipt["sequence"] is None:
                    others.setdefault(receipt["year"], []).append(receipt)
            for year, group in others.items():
                first = reserve_sequences(year, len(group))
                for i, receipt in enumerate(group):
                    receipt["sequence"] = first + i
            insert_many(Receipt.__table__, receipts)
        self._growing.wrote(len(donors) + len(pending) + len(payments) + len(receipts))

    def before_commit(self) -> None:
        """Write the batch's gifts, then move each year's receipt counter past the numbers
        imported."""
        if self._pending:
            self._write_pending()
        self._apply_counters()

    def _apply_counters(self) -> None:
        for year, sequence in self._counters.items():
            db.session.execute(insert(ReceiptCounter).values(year=year, last_sequence=0)
                               .on_conflict_do_nothing(index_elements=["year"]))
            db.session.execute(
                update(ReceiptCounter).where(ReceiptCounter.year == year)
                .values(last_sequence=case((ReceiptCounter.last_sequence < sequence, sequence),
                                           else_=ReceiptCounter.last_sequence)))
        self._counters.clear()

    def _existing(self, reference: str, method: str,
                  provider_reference: str) -> tuple[int, str] | None:
        """The gift here with this reference, or with a charge under this provider id."""
        return ((self._by_reference.get(reference) if reference else None)
                or self._by_charge.get((method, provider_reference)))

    def _compare(self, gift_id: int, public_id: str,
                 ledger: dict[PaymentKind, int]) -> Outcome:
        if self._ledgers.get(gift_id, {}) == ledger:
            return Outcome.UNCHANGED
        raise RowRefused(f"gift {public_id} is already here with other amounts; it was left "
                         "as it is")

    def _receipt_number(self, number: str, money: _Money, paid_at: datetime):
        """(year, sequence, number) for the receipt that platform issued (sequence None: the
        year's next, for a number in another platform's form), or None. Writes nothing."""
        if not number:
            return None
        if money.given <= 0:
            raise RowRefused(f"receipt {number} is for a gift whose money all went back")
        if len(number) > 20:
            raise RowRefused(f"receipt_number {number!r} is longer than 20 characters")
        ours = _OUR_RECEIPT.fullmatch(number)
        if ours is None:
            year, sequence = receipt_year(paid_at, self.zone), None
        else:
            year, sequence = int(ours[1]), int(ours[2])
        # Another platform's number (its place in the year not given yet) by its text alone.
        if number in self._receipts_taken or number in self._pending_receipts or (
                sequence is not None and ((year, sequence) in self._receipts_taken
                                          or (year, sequence) in self._pending_receipts)):
            raise RowRefused(f"receipt number {number} is already used here")
        return year, sequence, number

    def _campaign(self, row: Row, slug: str, currency: str, paid_at: datetime) -> int:
        found = self._campaigns.get(slug)
        if found is None:
            campaign = db.session.scalar(select(Campaign).where(Campaign.slug == slug))
            if campaign is None:
                campaign = Campaign(
                    slug=slug, title=(row.get("campaign_title") or slug)[:200],
                    kind=CampaignKind.GENERAL, signatory_name="", starts_at=paid_at,
                    ends_at=max(self.now, paid_at + timedelta(seconds=1)), goal_amount=1,
                    currency=currency, published=False,
                    fund_code=row.get("fund_code")[:40] or None, imported_at=self.now)
                db.session.add(campaign)
                db.session.flush()
            found = self._campaigns[slug] = (
                campaign.id, campaign.starts_at if campaign.imported_at else None)
        campaign_id, starts_at = found
        if starts_at is not None and paid_at < starts_at:
            # An imported campaign runs from its earliest gift.
            db.session.execute(update(Campaign).where(Campaign.id == campaign_id)
                               .values(starts_at=paid_at))
            self._campaigns[slug] = (campaign_id, paid_at)
        return campaign_id

    def _payments(self, gift_id: int, gift: dict, reference: str,
                  ledger: dict[PaymentKind, int], money: _Money) -> list[dict]:
        """The ledger rows of a gift: the charge under the provider's id, the others under
        ids made from it."""
        ids = {"charge_id": reference if reference.startswith(("ch_", "py_")) else None,
               "payment_intent_id": reference if reference.startswith("pi_") else None}
        fees = {PaymentKind.CHARGE: money.fee, PaymentKind.DISPUTE: money.dispute_fee or None}
        suffix = {PaymentKind.CHARGE: "", PaymentKind.REFUND: ":import-refund",
                  PaymentKind.DISPUTE: ":import-dispute",
                  PaymentKind.DISPUTE_WON: ":import-dispute-won"}
        rows = []
        for kind, amount in ledger.items():
            fee = fees.get(kind)
            rows.append({
                "gift_id": gift_id, "campaign_id": gift["campaign_id"], "kind": kind,
                "amount": amount, "currency": gift["currency"], "provider": gift["provider"],
                "provider_id": reference + suffix[kind], **ids, "fee": fee,
                "net": amount - fee if kind is PaymentKind.CHARGE and fee is not None else None,
                "occurred_at": gift["paid_at"], "created_at": self.now})
        return rows


def import_gifts(source: str | IO[bytes], *, dry_run: bool, zone: ZoneInfo, now: datetime,
                 actor: Actor, max_bytes: int, commit: Callable[[], None], name: str = "",
                 progress: Callable[[ImportReport, int, int], None] | None = None,
                 batch: int = BATCH) -> ImportReport:
    """Import a gift-history CSV (a path or a binary file); see the module's docstring.
    Raises :class:`app.imports.ImportFileError` for a file that cannot be imported at all.
    A real import ends with an audit entry (``finance.import``) naming the file and counts."""
    with open_csv(source, columns=COLUMNS, required=REQUIRED, max_bytes=max_bytes) as csv_file:
        importer = GiftImporter(zone=zone, now=now)
        report = run_import(csv_file, importer, dry_run=dry_run, commit=commit, key=gift_key,
                            key_name="gift reference", progress=progress, batch=batch,
                            before_commit=importer.before_commit, savepoints=False,
                            prepare=importer.prepare)
    if not dry_run:
        record_change(actor, "finance.import", "import", name or "gifts",
                      after={"file": name, **{str(k): v for k, v in report.counts.items()}})
        commit()
    return report


def run_gift_import(source: IO[bytes], *, dry_run: bool, actor: Actor, config: Mapping,
                    options: Mapping[str, bool], commit: Callable[[], None], name: str,
                    progress: Callable[[ImportReport, int, int], None] | None = None
                    ) -> ImportReport:
    """:func:`import_gifts` as the staff pages' job runs it (``app.imports.kinds``): with the
    organisation's zone and the size limit from the app's settings. It has no options."""
    return import_gifts(source, dry_run=dry_run, zone=ZoneInfo(config["ORG_TIMEZONE"]),
                        now=utcnow(), actor=actor, max_bytes=config["IMPORT_MAX_BYTES"],
                        commit=commit, name=name, progress=progress)
