"""Year-end statements: one PDF per donor of the year's receipted gifts, emailed once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app import jobs
from app.db import utcnow
from app.extensions import db
from app.finance.common import FinanceError
from app.finance.documents import DocumentSettings
from app.finance.statements import queue_statements, statement_pdf
from app.mail import OutboundEmail, deliver_batch, transport_from_config
from tests.factories import make_campaign, paid_gift, refund
from tests.finance.support import at, text_of


@pytest.fixture
def year_2026(app):
    appeal = make_campaign("appeal", title="Twenty years")
    ramadan = make_campaign("ramadan", title="Ramadan Kareem")
    shekels = make_campaign("shekels", title="Shana tova", currency="ILS")
    noa = [paid_gift(appeal, amount=5000, when=at(2026, 3, 2, 15))[0],
           paid_gift(ramadan, amount=3600, when=at(2026, 6, 2, 15))[0],
           paid_gift(shekels, amount=18000, when=at(2026, 9, 20, 15))[0]]
    _, charge = paid_gift(appeal, amount=2000, when=at(2026, 4, 2, 15))
    refund(charge, 500, at(2026, 4, 3, 15))  # partly refunded: 15.00 stays
    _, charge = paid_gift(appeal, amount=9000, when=at(2026, 5, 2, 15))
    refund(charge, 9000, at(2026, 5, 3, 15))  # refunded in full: not on the statement
    paid_gift(appeal, amount=7000, when=at(2025, 12, 31, 15))  # last year
    omar = paid_gift(appeal, amount=2500, when=at(2027, 1, 1, 3), email="omar@example.org",
                     name="عمر الخطيب")[0]  # 31 December in New York
    paid_gift(appeal, amount=4000, when=at(2025, 6, 1, 15), email="ruth@example.org")
    return {"noa": noa[0].supporter_id, "omar": omar.supporter_id}


def run(app, year: int, batch: int = 500):
    settings = DocumentSettings.from_config(app.config)
    reports = []
    for report in queue_statements(year, settings=settings, sender=app.config["MAIL_FROM"],
                                   now=utcnow(), batch=batch):
        jobs.commit()
        assert deliver_batch(report.email_ids, transport=transport_from_config(app.config)) \
            == (len(report.email_ids), 0)
        reports.append(report)
    return reports[-1]


def statements(outbox, year=2026):
    return {m["To"]: m for m in outbox() if m["Subject"].startswith(f"Your {year} giving")}


def test_each_donor_gets_one_statement_with_the_years_gifts(app, year_2026, outbox):
    report = run(app, 2026, batch=1)
    assert (report.donors, report.queued, report.already_sent) == (2, 2, 0)
    mails = statements(outbox)
    assert set(mails) == {"noa@example.org", "omar@example.org"}
    noa = mails["noa@example.org"]
    [attachment] = list(noa.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "giving-statement-2026.pdf"
    text = text_of(attachment.get_content())
    for part in ("Your giving in 2026", "Twenty years", "Ramadan Kareem", "$50.00", "$36.00",
                 "$15.00", "$101.00"):
        assert part in text, part
    assert "$90.00" not in text and "$70.00" not in text  # refunded; last year
    body = noa.get_body(("plain",)).get_content()
    assert "4 receipted gifts" in body and "$101.00" in body and "₪180.00" in body
    omar = mails["omar@example.org"]
    assert b"/FontFile2" in list(omar.iter_attachments())[0].get_content()


def test_running_again_emails_nobody_twice(app, year_2026, outbox):
    run(app, 2026)
    again = run(app, 2026, batch=1)
    assert (again.queued, again.already_sent, again.done) == (0, 2, 2)
    assert len(statements(outbox)) == 2
    assert db.session.scalar(select(func.count()).select_from(OutboundEmail).where(
        OutboundEmail.dedupe_key.like("statement:2026:%"))) == 2


def test_a_year_with_no_gifts_is_an_error(app, year_2026, outbox):
    with pytest.raises(FinanceError, match="No receipted gifts in 2019"):
        run(app, 2019)
    assert statements(outbox, 2019) == {}


def test_one_donors_statement_for_download(app, year_2026):
    settings = DocumentSettings.from_config(app.config)
    pdf = statement_pdf(2025, year_2026["noa"], settings, utcnow())
    assert "$70.00" in text_of(pdf)
    with pytest.raises(FinanceError):
        statement_pdf(2024, year_2026["noa"], settings, utcnow() - timedelta(days=1))


def test_mail_down_leaves_statements_queued_for_send_pending(app, year_2026, outbox):
    from tests.support.pgcluster import free_port

    app.config["MAIL_URL"] = f"smtp://127.0.0.1:{free_port()}"  # nothing listens there
    # --force: 2026 may not have ended yet. --workers 1: PDFs built here, without starting
    # a pool of fresh interpreters; the pool has its own test (tests/finance/test_cli.py).
    result = app.test_cli_runner().invoke(args=["finance", "statements", "--year", "2026",
                                                "--force", "--workers", "1"])
    assert result.exit_code == 1
    assert "2 could not be delivered now and stay queued" in result.output
    rows = db.session.scalars(select(OutboundEmail).where(
        OutboundEmail.dedupe_key.like("statement:2026:%"))).all()
    assert len(rows) == 2 and all(r.sent_at is None and r.last_error for r in rows)
    assert all(r.attempts == 1 for r in rows)
    app.config["MAIL_URL"] = ""
    assert app.test_cli_runner().invoke(args=["mail", "send-pending"]).exit_code == 0
    assert set(statements(outbox)) == {"noa@example.org", "omar@example.org"}


def test_erased_donors_get_no_statement(app, year_2026, outbox):
    from app.accounts.models import Supporter

    omar = db.session.get(Supporter, year_2026["omar"])
    omar.erased_at, omar.email = utcnow(), f"erased-{omar.id}@invalid"
    db.session.flush()
    report = run(app, 2026)
    assert (report.donors, report.queued) == (1, 1)
    assert set(statements(outbox)) == {"noa@example.org"}
