"""``flask finance``: thin wrappers over the services; bad input exits non-zero, writes nothing."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from openpyxl import load_workbook
from sqlalchemy import select

from app.audit import AuditEntry
from app.extensions import db
from app.finance.exports import HEADER
from app.finance.models import Receipt, ReceiptStatus
from app.giving.models import Gift
from tests.factories import make_campaign
from tests.finance.support import invoke


def test_export_csv_and_xlsx_to_files(app, ledger_rows, tmp_path):
    out = tmp_path / "march.csv"
    result = invoke(app, "export", "--from", "2026-03-01", "--to", "2026-03-31", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "7 gifts exported" in result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) == 7 and sum(Decimal(r["net"]) for r in rows) == Decimal("85.47")

    xlsx = tmp_path / "march.xlsx"
    result = invoke(app, "export", "--from", "2026-03-01", "--to", "2026-03-31",
                    "--campaign", "ramadan", "-o", str(xlsx))
    assert result.exit_code == 0, result.output
    book = load_workbook(xlsx, read_only=True)
    data = list(book.active.iter_rows(values_only=True))
    book.close()  # a read-only workbook keeps its file open until closed
    assert data[0] == HEADER and len(data) == 3
    assert set(tmp_path.iterdir()) == {out, xlsx}  # no temporary files left


def test_export_to_standard_output(app, ledger_rows):
    result = invoke(app, "export", "--from", "2026-03-02", "--to", "2026-03-02", "-o", "-")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == ",".join(HEADER)


def test_bad_export_input_writes_nothing(app, ledger_rows, tmp_path):
    out = tmp_path / "x.csv"
    for args, message in (
        (("--from", "2026-03-31", "--to", "2026-03-01"), "before the start date"),
        (("--from", "2026-03-01", "--to", "2026-03-31", "--campaign", "nope"),
         "no campaign 'nope'"),
        (("--from", "2026-03-01", "--to", "2026-03-31", "--status", "lost"), "Unknown status"),
        (("--from", "March", "--to", "2026-03-31"), "not a date"),
    ):
        result = invoke(app, "export", *args, "-o", str(out))
        assert result.exit_code == 1 and message in result.output, (args, result.output)
    assert list(tmp_path.iterdir()) == []


def test_reconcile_prints_the_figures(app, ledger_rows):
    result = invoke(app, "reconcile", "--from", "2026-03-01", "--to", "2026-03-31")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Totals by currency" in out and "By campaign" in out and "By payment method" in out
    usd = next(line for line in out.splitlines() if line.strip().startswith("USD"))
    assert usd.split()[-6:] == ["233.00", "7.53", "110.00", "30.00", "0.00", "85.47"]
    assert "1 charge(s) have a fee the provider has not reported yet" in out
    assert "No payout arrives in this period. The sandbox provider makes none" in out
    bad = invoke(app, "reconcile", "--from", "2026-03-31", "--to", "2026-03-01")
    assert bad.exit_code == 1 and "before the start date" in bad.output
    empty = invoke(app, "reconcile", "--from", "2020-01-01", "--to", "2020-01-31")
    assert empty.exit_code == 0 and "No money moved in this period." in empty.output


def test_offline_gift_record_correct_reverse(app, outbox):
    make_campaign("appeal")
    result = invoke(app, "offline-gift", "record", "--date", "2026-03-05", "--method", "cheque",
                    "--reference", "4471", "--name", "רות כהן", "--email", "ruth@example.org",
                    "--campaign", "appeal", "--amount", "180.00", "--by", "clerk@example.org")
    assert result.exit_code == 0, result.output
    gift = db.session.scalar(select(Gift).where(Gift.provider == "offline"))
    assert gift.amount == 18000 and gift.donor_name == "רות כהן"
    assert f"recorded gift {gift.id}: cheque 4471, receipt 2026-" in result.output
    assert len(outbox()) == 1

    again = invoke(app, "offline-gift", "record", "--date", "2026-03-06", "--method", "cheque",
                   "--reference", "4471", "--name", "X", "--email", "x@example.org",
                   "--campaign", "appeal", "--amount", "5")
    assert again.exit_code == 1 and "already recorded" in again.output
    bad = invoke(app, "offline-gift", "record", "--date", "2026-03-06", "--method", "wire",
                 "--reference", "W1", "--name", "X", "--email", "x@example.org",
                 "--campaign", "appeal", "--amount", "five")
    assert bad.exit_code == 2 and "Enter the amount as a number" in bad.output
    too_much = invoke(app, "offline-gift", "record", "--date", "2026-03-06", "--method", "wire",
                      "--reference", "W2", "--name", "X", "--email", "x@example.org",
                      "--campaign", "appeal", "--amount", "50", "--goods-value", "60",
                      "--goods-description", "a dinner")
    assert too_much.exit_code == 1
    assert "cannot be worth more than the gift" in too_much.output

    fixed = invoke(app, "offline-gift", "correct", str(gift.id), "--amount", "150",
                   "--reason", "misread the cheque")
    assert fixed.exit_code == 0, fixed.output
    receipts = db.session.scalars(select(Receipt).where(Receipt.gift_id == gift.id)
                                  .order_by(Receipt.id)).all()
    assert [r.status for r in receipts] == [ReceiptStatus.VOID, ReceiptStatus.ISSUED]
    assert receipts[1].amount == 15000 and receipts[1].number in fixed.output

    gone = invoke(app, "offline-gift", "reverse", str(gift.id), "--reason", "bounced")
    assert gone.exit_code == 0, gone.output
    actions = db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.target_id == str(gift.id)).order_by(AuditEntry.id)).all()
    assert actions == ["offline_gift.record", "offline_gift.correct", "offline_gift.reverse"]
    labels = set(db.session.scalars(select(AuditEntry.actor_label).where(
        AuditEntry.target_id == str(gift.id))))
    assert "clerk@example.org" in labels and any(x.startswith("cli:") for x in labels)


def test_receipt_pdf(app, ledger_rows, tmp_path):
    number = db.session.scalar(select(Receipt.number).limit(1))
    out = tmp_path / "r.pdf"
    result = invoke(app, "receipt", number, "-o", str(out))
    assert result.exit_code == 0 and out.read_bytes().startswith(b"%PDF-")
    missing = invoke(app, "receipt", "1999-000001", "-o", str(tmp_path / "m.pdf"))
    assert missing.exit_code == 1 and "no receipt" in missing.output


def test_statements_show_progress_and_never_email_twice(app, ledger_rows, outbox):
    from tests.factories import paid_gift
    from tests.finance.support import at

    paid_gift(make_campaign("other"), email="omar@example.org", name="عمر الخطيب",
              when=at(2026, 5, 1, 15))
    # --force: 2026 may not have ended yet in New York when this runs. A pool of two worker
    # processes builds the PDFs on SQLite only: they take no app and no database
    # (StatementEmail), so on PostgreSQL they would prove nothing more for two interpreters
    # started again.
    workers = "2" if db.session.get_bind().dialect.name == "sqlite" else "1"
    result = invoke(app, "statements", "--year", "2026", "--batch", "1", "--progress-every", "1",
                    "--workers", workers, "--force")
    assert result.exit_code == 0, result.output
    assert "  1/2 donors (1 emailed, 0 already emailed earlier" in result.output
    assert "statements 2026: 2 emailed now, 0 already emailed earlier, 2 donors" in result.output
    again = invoke(app, "statements", "--year", "2026", "--workers", "1", "--force")
    assert "0 emailed now, 2 already emailed earlier" in again.output
    none = invoke(app, "statements", "--year", "2019")
    assert none.exit_code == 1 and "No receipted gifts in 2019" in none.output
    mails = {m["To"]: m for m in outbox() if "giving statement" in m["Subject"]}
    assert set(mails) == {"noa@example.org", "omar@example.org"}
    [pdf] = [a.get_content() for a in mails["omar@example.org"].iter_attachments()]
    assert pdf.startswith(b"%PDF-") and b"/FontFile2" in pdf  # SQLite: by a worker process
