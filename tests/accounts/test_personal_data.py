"""'Download my data' and 'delete my account': everything held about the person comes out as
JSON; erasure cancels plans first, then anonymises, keeping the financial records."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from app.accounts import personal_data
from app.accounts.models import Supporter, UsedAccountLink
from app.accounts.personal_data import erase_supporter, eraser, export_personal_data, exporter
from app.db import utcnow
from app.extensions import db
from app.giving.models import Dedication, Gift, PlanStatus, RecurringPlan
from app.mail import OutboundEmail
from app.payments.base import ProviderError
from app.payments.models import Payment, ProviderEvent
from app.payments.providers import current_provider
from tests.factories import make_campaign
from tests.support.accounts import (
    PASSWORD,
    link_in,
    mail_to,
    make_account,
    post_form,
    sign_in,
)
from tests.support.flow import give


@pytest.fixture
def donor(app, client):
    """A supporter with a one-time dedicated gift with a note, and a monthly gift."""
    supporter = make_account()
    supporter.city, supporter.country = "Haifa", "IL"
    db.session.commit()
    make_campaign("twenty", title="Twenty years of reporting")
    giver = app.test_client()
    give(giver, "twenty", amount="5000", comment="For the Gaza desk", dedication="memory",
         dedication_name="Sami Haddad", dedication_email="layla@example.org")
    give(giver, "twenty", frequency="monthly", amount="2500")
    sign_in(client)
    return supporter


def test_export_holds_everything_about_the_person(app, client, donor):
    response = post_form(client, "/account/export", page="/account/data")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Content-Disposition"].startswith(
        'attachment; filename="levant-wire-my-data-')
    data = json.loads(response.get_data(as_text=True))
    assert data["account"]["email"] == "noa@example.org"
    assert data["account"]["postal_address"]["city"] == "Haifa"
    assert data["account"]["has_password"] is True
    assert "password_hash" not in json.dumps(data) and "$argon2" not in json.dumps(data)
    one_time = next(g for g in data["gifts"] if g["frequency"] == "one_time")
    assert (one_time["amount"], one_time["currency"], one_time["campaign"]) == (
        5000, "USD", "Twenty years of reporting")
    assert one_time["comment"] == "For the Gaza desk"
    assert one_time["dedication_name"] == "Sami Haddad"
    assert one_time["payments"][0]["kind"] == "charge"
    [plan] = data["plans"]
    assert (plan["amount"], plan["frequency"], plan["status"]) == (2500, "monthly", "active")
    assert any("Thank you for your gift" in e["subject"] for e in data["emails"])


def test_export_needs_its_token(client, donor):
    assert client.post("/account/export").status_code == 400
    assert client.get("/account/export").status_code == 405


def test_other_packages_add_to_the_export_and_the_erasure(app, donor, monkeypatch):
    monkeypatch.setattr(personal_data, "EXPORTERS", {})
    monkeypatch.setattr(personal_data, "ERASERS", {})
    erased = []
    exporter("news")(lambda s: {"follows": ["syria", "iraq"]})
    eraser("news")(lambda s: erased.append(s.email))
    assert export_personal_data(donor, now=utcnow())["news"] == {"follows": ["syria", "iraq"]}
    erase_supporter(donor, current_provider(), now=utcnow())
    assert erased == ["noa@example.org"]


def test_delete_cancels_plans_then_erases_the_person_but_keeps_the_ledger(app, client, donor,
                                                                          outbox):
    payments_before = db.session.scalar(select(func.sum(Payment.amount)))
    gifts_before = db.session.scalar(select(func.count()).select_from(Gift))
    assert db.session.scalar(select(func.count()).select_from(ProviderEvent).where(
        ProviderEvent.payload.contains("noa@example.org"))) > 0

    response = post_form(client, "/account/delete", page="/account/data",
                         confirm_email="Noa@Example.org")
    assert (response.status_code, response.headers["Location"]) == (303, "/account/deleted")
    assert "Your account is deleted" in client.get("/account/deleted").get_data(as_text=True)
    assert client.get("/account").status_code == 302

    supporter = db.session.get(Supporter, donor.id)
    db.session.refresh(supporter)
    assert supporter.email == f"erased-{supporter.id}@invalid"
    assert (supporter.name, supporter.password_hash, supporter.city, supporter.country) == (
        "", None, None, None)
    assert supporter.erased_at is not None and supporter.email_verified_at is None

    plan = db.session.scalar(select(RecurringPlan))
    assert plan.status is PlanStatus.CANCELED and plan.cancel_reason is None
    gifts = db.session.scalars(select(Gift)).all()
    assert len(gifts) == gifts_before
    assert all(g.donor_name == "" and g.comment is None and g.dedication_name is None
               and g.dedication_email is None and g.dedication is None for g in gifts)
    assert {g.amount for g in gifts} == {5000, 2500}  # what finance must keep
    assert db.session.scalar(select(func.sum(Payment.amount))) == payments_before

    # No trace of the address or the name in mail kept or in raw provider events.
    assert db.session.scalar(select(func.count()).select_from(OutboundEmail).where(
        OutboundEmail.recipient.in_(["noa@example.org", "layla@example.org"]))) == 0
    for event in db.session.scalars(select(ProviderEvent)):
        assert "noa@example.org" not in event.payload and "Noa Levi" not in event.payload
    assert db.session.scalar(select(func.count()).select_from(UsedAccountLink)) == 0


def test_a_deleted_supporter_cannot_sign_in_again_by_any_means(app, client, donor, outbox):
    post_form(client, "/account/delete", page="/account/data", confirm_email="noa@example.org")
    other = app.test_client()
    assert post_form(other, "/account/signin", email="noa@example.org",
                     password=PASSWORD).status_code == 422
    count = len(outbox())
    post_form(other, "/account/signin/link", email="noa@example.org")
    post_form(other, "/account/reset", email="noa@example.org")
    assert len(outbox()) == count


def test_giving_again_after_deletion_starts_afresh(app, client, donor):
    post_form(client, "/account/delete", page="/account/data", confirm_email="noa@example.org")
    give(app.test_client(), "twenty", amount="2500")
    fresh = db.session.scalar(select(Supporter).where(Supporter.email == "noa@example.org"))
    assert fresh is not None and fresh.id != donor.id


@pytest.mark.parametrize("typed, message", [
    ("", "Type your email address to confirm."),
    ("dana@example.org", "That is not the email address of this account."),
])
def test_delete_needs_the_address_typed(app, client, donor, typed, message):
    response = post_form(client, "/account/delete", page="/account/data", confirm_email=typed)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    db.session.refresh(donor)
    assert donor.erased_at is None


def test_delete_without_its_token_is_refused(client, donor):
    assert client.post("/account/delete",
                       data={"confirm_email": "noa@example.org"}).status_code == 400
    db.session.refresh(donor)
    assert donor.erased_at is None


def test_when_the_provider_cannot_cancel_nothing_is_erased(app, client, donor, monkeypatch):
    def refuse(*args, **kwargs):
        raise ProviderError("The payment provider did not answer. Please try again.")

    monkeypatch.setattr(current_provider(), "cancel_subscription", refuse)
    response = post_form(client, "/account/delete", page="/account/data",
                         confirm_email="noa@example.org")
    assert response.status_code == 422
    assert "nothing was deleted" in response.get_data(as_text=True)
    db.session.refresh(donor)
    assert donor.erased_at is None and donor.email == "noa@example.org"
    assert db.session.scalar(select(RecurringPlan)).status is PlanStatus.ACTIVE


def test_the_data_page_warns_that_plans_will_be_cancelled(client, donor):
    html = client.get("/account/data").get_data(as_text=True)
    assert "Your 1 monthly or yearly gift is cancelled first" in html


def test_dedication_enum_is_blanked_too(app, donor):
    erase_supporter(donor, current_provider(), now=utcnow())
    assert db.session.scalar(select(func.count()).select_from(Gift).where(
        Gift.dedication == Dedication.MEMORY)) == 0


def test_a_link_sent_before_deletion_does_not_work_after(app, client, donor, outbox):
    post_form(app.test_client(), "/account/signin/link", email="noa@example.org")
    link = link_in(mail_to(outbox, "noa@example.org")[-1], "/account/link/")
    post_form(client, "/account/delete", page="/account/data", confirm_email="noa@example.org")
    assert app.test_client().get(link).status_code == 400
