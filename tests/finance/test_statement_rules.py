"""Year-end statements: a year that has not ended in the organisation's zone is refused unless
forced (page and command line), and a donor whose receipted gifts of the year changed after
their statement went out gets a corrected one, once."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app import jobs
from app.audit import AuditEntry
from app.db import utcnow
from app.extensions import db
from app.finance.documents import DocumentSettings
from app.finance.statements import corrections_due, send_statements, year_ended
from app.mail import OutboundEmail, mailer_from_config
from app.staff.models import Role
from tests.factories import make_campaign, paid_gift, refund
from tests.finance.support import NY, at, text_of
from tests.support.accounts import RequestScopedClient
from tests.support.staff import csrf_token, make_person, sign_in_as


def this_year() -> int:
    return utcnow().astimezone(NY).year


@pytest.fixture
def client(app):
    app.test_client_class = RequestScopedClient
    client = app.test_client()
    sign_in_as(client, make_person("clerk@levantwire.example", roles=(Role.FINANCE,)))
    return client


def statement_keys(year: int) -> list[str]:
    return list(db.session.scalars(select(OutboundEmail.dedupe_key).where(
        OutboundEmail.dedupe_key.like(f"statement:{year}:%")).order_by(OutboundEmail.id)))


def corrected_mails(outbox, year: int) -> list:
    return [m for m in outbox() if m["Subject"].startswith(f"Your corrected {year} giving")]


def test_a_year_ends_at_midnight_in_the_organisations_zone():
    # 23:30 on 31 December in New York is 04:30 on 1 January in UTC.
    assert not year_ended(2026, zone=NY, now=datetime(2027, 1, 1, 4, 30, tzinfo=UTC))
    assert year_ended(2026, zone=NY, now=datetime(2027, 1, 1, 5, 0, tzinfo=UTC))
    assert not year_ended(2027, zone=NY, now=datetime(2027, 1, 1, 5, 0, tzinfo=UTC))


# -- the year not ended -------------------------------------------------------------------------

def test_the_page_refuses_a_year_not_ended_unless_forced(app, client, outbox):
    year = this_year()
    paid_gift(make_campaign(), amount=5000, when=utcnow() - timedelta(minutes=5))
    db.session.commit()
    page = client.get(f"/staff/finance/statements?year={year}").get_data(as_text=True)
    assert "data-not-ended" in page and 'name="force"' in page

    refused = client.post("/staff/finance/statements/send", data={
        "csrf_token": csrf_token(client), "year": str(year), "confirm": "y"})
    assert refused.status_code == 422
    assert re.search(rf'id="force-error">{year} has not ended yet in America/New_York',
                     refused.get_data(as_text=True))
    assert statement_keys(year) == []

    forced = client.post("/staff/finance/statements/send", data={
        "csrf_token": csrf_token(client), "year": str(year), "confirm": "y", "force": "y"})
    assert forced.status_code == 303
    assert len(statement_keys(year)) == 1
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "statements.send"))
    assert json.loads(entry.after)["forced"] is True


def test_a_year_that_has_ended_needs_no_force(app, client):
    last = this_year() - 1
    paid_gift(make_campaign(), amount=5000, when=datetime(last, 6, 1, 15, tzinfo=UTC))
    db.session.commit()
    page = client.get(f"/staff/finance/statements?year={last}").get_data(as_text=True)
    assert "data-not-ended" not in page and 'name="force"' not in page
    sent = client.post("/staff/finance/statements/send", data={
        "csrf_token": csrf_token(client), "year": str(last), "confirm": "y"})
    assert sent.status_code == 303 and len(statement_keys(last)) == 1


def test_the_command_refuses_a_year_not_ended_unless_forced(app, outbox):
    year = this_year()
    paid_gift(make_campaign(), amount=5000, when=utcnow() - timedelta(minutes=5))
    db.session.commit()
    runner = app.test_cli_runner()
    refused = runner.invoke(args=["finance", "statements", "--year", str(year), "--workers", "1"])
    assert refused.exit_code == 1 and f"{year} has not ended yet" in refused.output
    assert statement_keys(year) == []
    forced = runner.invoke(args=["finance", "statements", "--year", str(year), "--workers", "1",
                                 "--force"])
    assert forced.exit_code == 0, forced.output
    assert f"statements {year}: 1 emailed now" in forced.output


# -- corrected statements -----------------------------------------------------------------------

@pytest.fixture
def sent_last_year(app):
    """Three donors' statements of last year, sent; returns (year, their charges by name)."""
    year = this_year() - 1
    appeal = make_campaign("appeal", title="Twenty years")
    charges = {}
    for i, name in enumerate(("noa", "omar", "ruth")):
        _, charges[name] = paid_gift(appeal, amount=5000 + 1000 * i,
                                     email=f"{name}@example.org", name=name.title(),
                                     when=at(year, 3 + i, 2, 15))
    db.session.commit()
    run = send_statements(year, settings=DocumentSettings.from_config(app.config),
                          mailer=mailer_from_config(app.config), now=utcnow(), commit=jobs.commit,
                          zone=NY)
    assert run.report.queued == 3 and corrections_due(year) == []
    return year, charges


def test_a_refund_after_the_statement_makes_it_due_for_a_correction(app, client, outbox,
                                                                     sent_last_year):
    year, charges = sent_last_year
    refund(charges["noa"], 2000, utcnow())  # $50 becomes $30
    refund(charges["ruth"], 7000, utcnow())  # nothing left to state
    db.session.commit()
    assert corrections_due(year) == [charges["noa"].gift.supporter_id]
    page = client.get(f"/staff/finance/statements?year={year}").get_data(as_text=True)
    assert 'data-corrections="1"' in page

    answer = client.post(f"/staff/finance/statements/{year}/corrections",
                         data={"csrf_token": csrf_token(client)})
    assert answer.status_code == 303
    [mail] = corrected_mails(outbox, year)
    assert mail["To"] == "noa@example.org"
    assert mail["Subject"] == f"Your corrected {year} giving statement from Levant Wire"
    assert "It replaces the statement we sent before" in mail.get_body(("plain",)).get_content()
    [pdf] = list(mail.iter_attachments())
    assert pdf.get_filename() == f"giving-statement-{year}-corrected.pdf"
    text = text_of(pdf.get_content())
    assert "corrected" in text and "$30.00" in text and "$50.00" not in text
    supporter = charges["noa"].gift.supporter_id
    assert statement_keys(year)[-1] == f"statement:{year}:{supporter}:c1"
    assert corrections_due(year) == []
    assert 'data-corrections="0"' in client.get(
        f"/staff/finance/statements?year={year}").get_data(as_text=True)
    entry = db.session.scalar(select(AuditEntry).where(
        AuditEntry.action == "statements.correct"))
    assert json.loads(entry.after)["queued"] == 1

    # Sending again emails nobody; a later change makes a second correction.
    client.post(f"/staff/finance/statements/{year}/corrections",
                data={"csrf_token": csrf_token(client)})
    assert len(corrected_mails(outbox, year)) == 1
    refund(charges["noa"], 1000, utcnow())
    db.session.commit()
    assert corrections_due(year) == [supporter]
    result = app.test_cli_runner().invoke(
        args=["finance", "statements", "--year", str(year), "--corrections"])
    assert result.exit_code == 0 and "1 corrected statements emailed now" in result.output
    assert statement_keys(year)[-1] == f"statement:{year}:{supporter}:c2"


def test_changes_before_the_statement_need_no_correction(app, sent_last_year):
    year, _ = sent_last_year
    other_year = year - 1
    paid_gift(make_campaign("older"), amount=2500, email="noa@example.org",
              when=at(other_year, 6, 1, 15))  # a gift of another year changes nothing here
    db.session.commit()
    assert corrections_due(year) == []


def test_a_correction_needs_its_token(app, client, sent_last_year):
    year, charges = sent_last_year
    refund(charges["noa"], 2000, utcnow())
    db.session.commit()
    assert client.post(f"/staff/finance/statements/{year}/corrections").status_code == 400
    assert corrections_due(year) == [charges["noa"].gift.supporter_id]


def test_gifts_are_not_kept_waiting_while_a_batch_of_statements_is_built(make_app, request):
    """On SQLite a statements run (a writing command, a job) takes the write lock up front;
    while a batch's PDFs are made (seconds for 500) it must not hold it, or every gift posted
    meanwhile waits, and fails after the busy timeout."""
    from sqlalchemy import make_url

    from app.db import expect_writes
    from app.finance.statements import build_statement_email
    from tests.conftest import migrated_url
    from tests.support.concurrency import sqlite_write_lock

    url = migrated_url(request, "sqlite", "statements_lock")
    path = make_url(url).database
    app = make_app(url)
    year = this_year() - 1
    found = []

    def build_many(emails):
        found.append(sqlite_write_lock(path))  # could a gift's POST write, without waiting?
        return [build_statement_email(email) for email in emails]

    with app.app_context():
        paid_gift(make_campaign("appeal"), when=at(year, 3, 2, 15))
        db.session.commit()
        expect_writes()  # as the command and the job are marked
        run = send_statements(year, settings=DocumentSettings.from_config(app.config),
                              mailer=mailer_from_config(app.config), now=utcnow(),
                              commit=jobs.commit, zone=NY, build_many=build_many)
        db.session.remove()
    assert run.report.queued == 1 and found == ["free"]
