"""The year-end statements page: how many donors, how many emailed, one donor's PDF to
preview, and sending in time-boxed batches that never email anyone twice."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from app.audit import AuditEntry
from app.db import utcnow
from app.extensions import db
from app.mail import OutboundEmail
from app.staff.models import Role
from tests.factories import make_campaign, paid_gift, refund
from tests.finance.support import NY, at, text_of
from tests.support.staff import csrf_token, make_person, sign_in_as

YEAR = 2025


@pytest.fixture
def donors(app):
    """Five donors with 2025 gifts (one of them refunded in full), one with a 2024 gift only."""
    appeal = make_campaign("appeal", title="Twenty years")
    people = {}
    for i, name in enumerate(["Noa Levi", "Omar Khoury", "Ruth Stein", "Karim Aziz",
                              "Dana Cohen"]):
        email = f"{name.split()[0].lower()}@example.org"
        gift, _ = paid_gift(appeal, amount=5000 + 100 * i, email=email, name=name,
                            when=at(YEAR, 3 + i, 2, 15))
        people[name] = gift.supporter_id
    paid_gift(appeal, amount=1800, email="noa@example.org", name="Noa Levi",
              when=at(YEAR, 11, 2, 15))
    _, charge = paid_gift(appeal, amount=9000, email="gone@example.org", name="Refunded",
                          when=at(YEAR, 5, 2, 15))
    refund(charge, 9000, at(YEAR, 5, 3, 15))
    paid_gift(appeal, amount=7000, email="old@example.org", name="Last Year",
              when=at(YEAR - 1, 6, 1, 15))
    db.session.commit()
    return people


@pytest.fixture
def clerk(client):
    person = make_person("clerk@levantwire.example", roles=(Role.FINANCE,))
    sign_in_as(client, person)
    return person


def statement_mails() -> list[OutboundEmail]:
    return list(db.session.scalars(select(OutboundEmail).where(
        OutboundEmail.dedupe_key.like(f"statement:{YEAR}:%")).order_by(OutboundEmail.id)))


def figure(html: str, name: str) -> str:
    match = re.search(rf"<dd data-{name}>([^<]*)</dd>", html)
    assert match, html[:3000]
    return match.group(1)


def send(client, **fields):
    data = {"csrf_token": csrf_token(client), "year": str(YEAR), "confirm": "y"}
    data.update(fields)
    return client.post("/staff/finance/statements/send",
                       data={k: v for k, v in data.items() if v is not None})


def test_the_page_counts_donors_and_defaults_to_last_year(client, clerk, donors):
    html = client.get(f"/staff/finance/statements?year={YEAR}").get_data(as_text=True)
    assert figure(html, "donors") == "5"  # the refunded gift's donor has nothing left
    assert figure(html, "sent") == "0 of 5"
    assert figure(html, "remaining") == "5"
    default = client.get("/staff/finance/statements")
    assert default.status_code == 200
    last_year = utcnow().astimezone(NY).year - 1
    assert f'<h2 id="status-heading">{last_year}</h2>' in default.get_data(as_text=True)


def test_a_year_with_no_gifts_is_answered_clearly(client, clerk, donors):
    html = client.get("/staff/finance/statements?year=2019").get_data(as_text=True)
    assert "No receipted gifts in 2019: there is no statement to make." in html
    assert "data-send-form" not in html
    bad = client.get("/staff/finance/statements?year=twenty")
    assert bad.status_code == 422
    assert 'id="year-error"' in bad.get_data(as_text=True)


def test_preview_one_donors_statement_by_email_or_number(client, clerk, donors):
    response = client.get(f"/staff/finance/statements/preview?year={YEAR}"
                          "&donor=NOA@example.org")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")
    text = text_of(response.data)
    assert "Noa Levi" in text and "$50.00" in text and "$18.00" in text and "$68.00" in text
    by_id = client.get(f"/staff/finance/statements/preview?year={YEAR}"
                       f"&donor={donors['Omar Khoury']}")
    assert by_id.status_code == 200 and "Omar Khoury" in text_of(by_id.data)
    assert statement_mails() == []  # a preview emails nobody


@pytest.mark.parametrize("query, field, message", [
    ("donor=nobody@example.org", "donor", "No supporter with the id or email"),
    # Beyond any id column: SQLite's driver overflowed (a 500), and PostgreSQL's from 2^31.
    (f"donor={2**63}", "donor", "No supporter with the id or email"),
    (f"donor={2**31}", "donor", "No supporter with the id or email"),
    ("donor=old@example.org", "year", f"No receipted gifts in {YEAR} for this donor."),
    ("donor=", "donor", "Enter the donor&#39;s email address or supporter number."),
])
def test_preview_errors_are_shown_beside_the_field(client, clerk, donors, query, field,
                                                   message):
    response = client.get(f"/staff/finance/statements/preview?year={YEAR}&{query}")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in html[html.find(f'id="{field}-error"'):][:400]


def test_sending_in_batches_shows_progress_and_emails_nobody_twice(client, clerk, donors, app,
                                                                  monkeypatch, outbox):
    monkeypatch.setattr("app.finance.views.STATEMENT_BATCH", 2)
    app.config["STATEMENTS_SECONDS_PER_REQUEST"] = 0  # one batch per request
    first = send(client)
    assert first.status_code == 303
    assert first.headers["Location"].endswith(f"/staff/finance/statements?year={YEAR}&continue=1")
    assert len(statement_mails()) == 2
    page = client.get(first.headers["Location"]).get_data(as_text=True)
    assert "2 statements emailed just now; 2 of 5 donors have theirs. Continuing" in page
    assert figure(page, "sent") == "2 of 5"
    assert "data-auto-continue" in page and "Continue sending" in page

    # The continue button posts the same form; the last request finishes.
    assert send(client).status_code == 303
    last = send(client)
    assert last.headers["Location"].endswith(f"/staff/finance/statements?year={YEAR}")
    page = client.get(last.headers["Location"]).get_data(as_text=True)
    assert figure(page, "sent") == "5 of 5" and "data-auto-continue" not in page
    assert "Every donor has their 2025 statement" in page
    mails = statement_mails()
    assert len(mails) == 5 and all(m.sent_at is not None for m in mails)
    assert sorted(m.recipient for m in mails) == [
        "dana@example.org", "karim@example.org", "noa@example.org", "omar@example.org",
        "ruth@example.org"]
    assert len([m for m in outbox() if m["Subject"].startswith("Your 2025 giving")]) == 5

    # Queued again: nobody gets a second one.
    again = send(client)
    assert again.status_code == 303
    assert len(statement_mails()) == 5
    assert len([m for m in outbox() if m["Subject"].startswith("Your 2025 giving")]) == 5
    page = client.get(again.headers["Location"]).get_data(as_text=True)
    assert "0 statements emailed just now; 5 of 5 donors have theirs." in page

    audits = list(db.session.scalars(select(AuditEntry).where(
        AuditEntry.action == "statements.send").order_by(AuditEntry.id)))
    assert [json.loads(a.after)["queued"] for a in audits] == [2, 2, 1, 0]
    assert {a.actor_id for a in audits} == {clerk.id} and audits[0].target_id == str(YEAR)


def test_one_request_sends_them_all_when_it_has_time(client, clerk, donors, outbox):
    response = send(client)
    assert response.headers["Location"].endswith(f"?year={YEAR}")
    assert len(statement_mails()) == 5


@pytest.mark.parametrize("fields, message", [
    ({"confirm": None}, "Tick the box to confirm sending."),
    ({"csrf_token": "forged"}, None),
    ({"year": "2019"}, "No receipted gifts in 2019"),
    ({"year": "soon"}, "Choose the year again"),
])
def test_sending_needs_a_confirmation_a_token_and_a_year_with_gifts(client, clerk, donors,
                                                                    fields, message):
    response = send(client, **fields)
    if message is None:
        assert response.status_code == 400
    else:
        assert response.status_code == 422
        assert message in response.get_data(as_text=True)
    assert statement_mails() == []
    assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "statements.send")) == 0


def test_only_finance_and_admin_staff_get_in(client, donors):
    sign_in_as(client, make_person("fund@levantwire.example", roles=(Role.FUNDRAISER,)))
    assert client.get("/staff/finance/statements").status_code == 403
    assert client.get(f"/staff/finance/statements/preview?year={YEAR}"
                      "&donor=noa@example.org").status_code == 403
    assert send(client).status_code == 403
    assert statement_mails() == []
