"""``flask finance import`` with bad input: each row refused with its line and reason, whole
files refused with a message and nothing written, errors.csv imported again once fixed, a file
stopped half way run again."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from app.audit import Actor
from app.extensions import db
from app.finance.exports import HEADER
from app.finance.imports import import_gifts
from app.finance.models import Receipt
from app.giving.models import Gift
from app.imports import ImportFileError, Outcome
from app.mail import OutboundEmail
from app.payments.models import Payment
from tests.finance.support import NY, at, csv_bytes, row

NOW = at(2026, 12, 1, 12)


def run(data: bytes, *, dry_run: bool = False, **options):
    options.setdefault("max_bytes", 10_000_000)
    options.setdefault("commit", db.session.commit)
    return import_gifts(io.BytesIO(data), dry_run=dry_run, zone=NY, now=NOW,
                        actor=Actor(id=None, label="test"), name="gifts.csv", **options)


def written() -> dict:
    return {m.__tablename__: db.session.scalar(select(func.count()).select_from(m))
            for m in (Gift, Payment, Receipt, OutboundEmail)}


NOTHING = {"gift": 0, "payment": 0, "receipt": 0, "outbound_email": 0}


def test_each_bad_row_is_refused_with_its_line_and_the_good_ones_go_in(app):
    rows = [
        row(),
        row(gift_reference="ref-2", provider_reference="pi_2", currency="XYZ"),
        row(gift_reference="ref-3", provider_reference="pi_3", gift_amount="50.001"),
        row(gift_reference="ref-4", provider_reference="pi_4", gross="50.00",
            gross_minor="5001"),
        row(gift_reference="ref-5", provider_reference="pi_5", status="refunded"),
        row(gift_reference="ref-6", provider_reference="pi_6", paid_at_utc="yesterday"),
        row(provider_reference="pi_7"),  # the same reference as line 2
        row(gift_reference="ref-8", provider_reference="pi_8", net="40.00", net_minor=""),
        row(gift_reference="ref-9", provider_reference="pi_9", method="paypal"),
        row(gift_reference="ref-10", provider_reference="pi_10", donor_email="not-an-email"),
        row(gift_reference="ref-11", provider_reference="pi_11", receipt_number="2026-000007"),
        row(gift_reference="ref-12", provider_reference="pi_12", gross="0", gross_minor="0",
            net="-1.75", net_minor="-175"),
        row(gift_reference="ref-13", provider_reference="pi_13", currency="JPY",
            gross="5000.5", gross_minor=""),
    ]
    report = run(csv_bytes(*rows))
    assert report.counts[Outcome.CREATE] == 1
    assert [(r.line, r.reason) for r in report.refused] == [
        (3, "unknown currency 'XYZ'"),
        (4, "gift_amount: '50.001' has more decimal places than USD has (2)."),
        (5, "gross (50.00) and gross_minor (5001) differ"),
        (6, "status refunded does not fit its amounts (they make it paid)"),
        (7, "paid_at_utc 'yesterday' is not a date and time (write it as ISO 8601: "
            "2026-11-25T14:03:12Z)"),
        (8, "a duplicate: the same gift reference as line 2"),
        (9, "net is not gross - provider_fee - refunded - disputed - dispute_fee"),
        (10, "method 'paypal' is not one of cash, cheque, demo, sandbox, stripe, wire"),
        (11, "donor_email 'not-an-email' is not an email address"),
        (12, "receipt number 2026-000007 is already used here"),
        (13, "no charge in this row (gross is 0): export the gift's whole history as one "
             "period, from its first day to today"),
        (14, "gross: '5000.5' has more decimal places than JPY has (0)."),
    ]
    assert written() == {"gift": 1, "payment": 1, "receipt": 1, "outbound_email": 0}


def test_dates_with_a_zone_or_in_the_organisations(app):
    rows = [row(paid_at_utc="2026-03-02T10:00:00+02:00"),
            row(gift_reference="ref-2", provider_reference="pi_2",
                paid_at_utc="2026-03-02 10:00", receipt_number=""),
            row(gift_reference="ref-3", provider_reference="pi_3", paid_at_utc="",
                paid_date="2026-03-02", receipt_number="")]
    assert run(csv_bytes(*rows)).counts[Outcome.CREATE] == 3
    paid = db.session.scalars(select(Gift.paid_at).order_by(Gift.public_id)).all()
    # ref-1: 08:00 UTC; ref-2: 10:00 in New York; ref-3: a bare day is noon in New York.
    assert [p.astimezone(NY).strftime("%H:%M") for p in paid] == ["03:00", "10:00", "12:00"]


def test_a_formula_looking_cell_is_kept_as_text(app):
    run(csv_bytes(row(donor_name="'=HYPERLINK(\"http://evil\")", utm_source="=1+1")))
    gift = db.session.scalars(select(Gift)).one()
    assert gift.donor_name == '=HYPERLINK("http://evil")' and gift.utm_source == "=1+1"


@pytest.mark.parametrize(("data", "message"), [
    (b"", "The file is empty"),
    (csv_bytes(header=HEADER[:5]), "missing columns campaign, donor_email, currency, "
                                   "gift_amount, gross, method, provider_reference"),
    (csv_bytes(row(), header=(*HEADER, "colour")), "unknown column colour"),
    (csv_bytes(header=HEADER), "no rows to import"),
    (csv_bytes(row()).replace(b"Noa Levi", "Noa L\u00e9vi".encode("latin-1")),
     "Line 2 is not UTF-8 text"),
    (csv_bytes(row(), row(gift_reference="r2", provider_reference="p2")).decode()
     .encode("utf-16"), "UTF-16"),
])
def test_a_file_that_cannot_be_imported_writes_nothing(app, data, message):
    with pytest.raises(ImportFileError) as caught:
        run(data)
    assert message in caught.value.message
    assert written() == NOTHING


def test_a_bom_and_an_older_export_without_the_newest_columns(app):
    older = [name for name in HEADER if not name.startswith("dispute_fee")]
    report = run(b"\xef\xbb\xbf" + csv_bytes(row(), header=older))
    assert report.counts[Outcome.CREATE] == 1


def test_a_one_gigabyte_file_is_refused_before_it_is_read(app, tmp_path):
    path = tmp_path / "huge.csv"
    path.write_bytes(csv_bytes(row()))
    with path.open("r+b") as f:
        f.truncate(1024 ** 3)  # sparse: nothing is written to disk
    with pytest.raises(ImportFileError, match="1,073.7 MB: more than the 536.9 MB"):
        import_gifts(str(path), dry_run=False, zone=NY, now=NOW, actor=Actor(None, "t"),
                     max_bytes=app.config["IMPORT_MAX_BYTES"], commit=db.session.commit)
    assert written() == NOTHING


def test_errors_csv_fixed_imports_the_rest(app):
    report = run(csv_bytes(row(), row(gift_reference="ref-2", provider_reference="pi_2",
                                      currency="XYZ", receipt_number="")))
    errors = report.errors_csv()
    assert errors.splitlines()[1].endswith(",line 3: unknown currency 'XYZ'")
    again = run(errors.replace(",XYZ,", ",USD,").encode())
    assert again.counts == {Outcome.CREATE: 1, Outcome.UPDATE: 0, Outcome.UNCHANGED: 0,
                            Outcome.REFUSED: 0}
    assert written()["gift"] == 2


def test_a_file_stopped_half_way_runs_again_and_a_dry_run_writes_nothing(app):
    rows = [row(gift_reference=f"ref-{i}", provider_reference=f"pi_{i}",
                receipt_number=f"2026-{i:06d}") for i in range(1, 8)]
    data = csv_bytes(*rows)
    dry = run(data, dry_run=True, batch=2)
    assert dry.counts[Outcome.CREATE] == 7 and written() == NOTHING

    commits = []

    def crash_on_the_third_batch():
        if len(commits) == 2:
            raise KeyboardInterrupt  # the process stopped
        commits.append(1)
        db.session.commit()

    with pytest.raises(KeyboardInterrupt):
        run(data, batch=2, commit=crash_on_the_third_batch)
    assert written()["gift"] == 4  # two whole batches
    report = run(data, batch=2)
    assert (report.counts[Outcome.UNCHANGED], report.counts[Outcome.CREATE]) == (4, 3)
    assert written() == {"gift": 7, "payment": 7, "receipt": 7, "outbound_email": 0}


def test_a_gift_here_with_other_money_is_refused_and_left_alone(app):
    run(csv_bytes(row()))
    changed = row(refunded="10.00", refunded_minor="1000", net="38.25", net_minor="3825",
                  status="partially_refunded", receipt_number="")
    report = run(csv_bytes(changed))
    assert [r.reason for r in report.refused] == [
        "gift ref-1 is already here with other amounts; it was left as it is"]
    # Found by its provider id too, under another reference.
    report = run(csv_bytes(row(gift_reference="other")))
    assert report.counts[Outcome.UNCHANGED] == 1
    assert written()["payment"] == 1


def test_the_command_line_reports_and_writes_errors_csv(app, tmp_path):
    path = tmp_path / "gifts.csv"
    path.write_bytes(csv_bytes(row(), row(gift_reference="ref-2", provider_reference="pi_2",
                                          currency="XYZ")))
    result = app.test_cli_runner().invoke(args=["finance", "import", str(path), "--dry-run"])
    assert result.exit_code == 1
    assert "dry run, nothing written: 1 to create, 0 to update, 0 unchanged, 1 refused" \
        in result.output
    assert "line 3: unknown currency 'XYZ'" in result.output
    errors = tmp_path / "gifts.errors.csv"
    assert errors.read_text().splitlines()[0] == ",".join((*HEADER, "error"))
    assert written() == NOTHING
    bad = app.test_cli_runner().invoke(args=["finance", "import", str(tmp_path / "none.csv")])
    assert bad.exit_code == 1 and "There is no file" in bad.output


def test_receipt_numbers_ours_and_another_platforms_and_a_payment_twice(app):
    from app.finance.receipts import reserve_sequences

    rows = [row(receipt_number="2026-000042"),
            row(gift_reference="ref-2", provider_reference="pi_2", receipt_number="R-1001"),
            row(gift_reference="ref-3", provider_reference="pi_2", receipt_number="")]
    report = run(csv_bytes(*rows))
    assert [(r.line, r.reason) for r in report.refused] == [
        (4, "a duplicate: the same stripe payment pi_2 as an earlier row")]
    receipts = {r.number: (r.year, r.sequence, r.issued_elsewhere)
                for r in db.session.scalars(select(Receipt))}
    # Another platform's number keeps its text and takes the year's next place, after ours.
    assert receipts == {"2026-000042": (2026, 42, True), "R-1001": (2026, 43, True)}
    assert reserve_sequences(2026, 1) == 44


@pytest.mark.parametrize("batch", [1, 3, 500])
def test_a_batch_of_new_existing_duplicate_and_refused_rows_reports_as_row_by_row(app, batch):
    """However the rows fall into batches (a batch is looked up and written at once), the
    report and what is written are those of rows taken one by one; so is a rerun's."""
    from app.accounts.models import Supporter

    run(csv_bytes(row()))  # ref-1, receipt 2026-000007
    sam = {"donor_email": "sam@example.org", "donor_name": "Sam"}
    rows = [
        row(),  # 2: unchanged
        row(gift_reference="ref-2", provider_reference="pi_2", currency="XYZ"),  # 3
        row(gift_reference="ref-2", provider_reference="pi_2", receipt_number=""),  # 4
        row(gift_reference="ref-3", provider_reference="pi_3", receipt_number="2026-000050",
            paid_at_utc="2026-03-03T15:00:00Z", **sam),  # 5: a new donor
        row(gift_reference="ref-2", provider_reference="pi_2b", receipt_number=""),  # 6
        row(gift_reference="ref-4", provider_reference="pi_4", receipt_number="2026-000050",
            **sam),  # 7: the receipt number of line 5
        row(gift_reference="ref-5", provider_reference="pi_5", receipt_number="",
            donor_email="SAM@example.org", donor_name="Samuel"),  # 8: the same donor
        row(gift_reference="ref-9", refunded="10.00", refunded_minor="1000", net="38.25",
            net_minor="3825", status="partially_refunded",
            receipt_number=""),  # 9: ref-1's payment (pi_1) with other money
        row(gift_reference="ref-6", provider_reference="pi_6"),  # 10: receipt of ref-1
        row(gift_reference="ref-7", provider_reference="pi_7", receipt_number="R-9"),  # 11
    ]
    refused = [
        (3, "unknown currency 'XYZ'"),
        (6, "a duplicate: the same gift reference as line 4"),
        (7, "receipt number 2026-000050 is already used here"),
        (9, "gift ref-1 is already here with other amounts; it was left as it is"),
        (10, "receipt number 2026-000007 is already used here"),
    ]
    dry = run(csv_bytes(*rows), dry_run=True, batch=batch)
    assert dry.summary() == "4 to create, 0 to update, 1 unchanged, 5 refused"
    assert [(r.line, r.reason) for r in dry.refused] == refused
    assert written() == {"gift": 1, "payment": 1, "receipt": 1, "outbound_email": 0}

    report = run(csv_bytes(*rows), batch=batch)
    assert report.summary() == "4 created, 0 updated, 1 unchanged, 5 refused"
    assert [(r.line, r.reason) for r in report.refused] == refused
    assert written() == {"gift": 5, "payment": 5, "receipt": 3, "outbound_email": 0}
    donors = {s.email: (s.name, s.created_at) for s in db.session.scalars(select(Supporter))}
    assert donors == {"noa@example.org": ("Noa Levi", at(2026, 3, 2, 15)),
                      "sam@example.org": ("Sam", at(2026, 3, 3, 15))}
    gifts = {g.public_id: g.supporter_id for g in db.session.scalars(select(Gift))}
    assert gifts["ref-3"] == gifts["ref-5"] != gifts["ref-1"] == gifts["ref-2"]
    receipts = {r.number: (r.year, r.sequence) for r in db.session.scalars(select(Receipt))}
    assert receipts == {"2026-000007": (2026, 7), "2026-000050": (2026, 50),
                        "R-9": (2026, 51)}

    again = run(csv_bytes(*rows), batch=batch)
    assert again.summary() == "0 created, 0 updated, 5 unchanged, 5 refused"
    assert [(r.line, r.reason) for r in again.refused] == [
        (3, "unknown currency 'XYZ'"),
        (6, "a duplicate: the same gift reference as line 4"),
        (7, "receipt number 2026-000050 is already used here"),
        (9, "gift ref-1 is already here with other amounts; it was left as it is"),
        (10, "receipt number 2026-000007 is already used here")]
    assert written() == {"gift": 5, "payment": 5, "receipt": 3, "outbound_email": 0}
