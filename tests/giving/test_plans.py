"""Managing monthly and annual gifts: cancel, change amount, card update (sandbox)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.db import utcnow
from app.extensions import db
from app.giving.models import PlanStatus, RecurringPlan
from app.giving.services import GiftError, GivingRules, cancel_plan, change_plan_amount
from app.payments.providers import current_provider
from tests.factories import make_campaign
from tests.support.flow import give, hidden_value, pay


@pytest.fixture
def plan(app, client):
    make_campaign("twenty")
    give(client, "twenty", frequency="monthly", amount="2500", cover_fee="y")
    return db.session.scalar(select(RecurringPlan))


def test_cancel_is_recorded_once_with_its_reason(app, plan):
    cancel_plan(plan, current_provider(), now=utcnow(), reason="  Moving abroad  ")
    first = plan.canceled_at
    cancel_plan(plan, current_provider(), now=utcnow(), reason="again")
    assert plan.status is PlanStatus.CANCELED
    assert (plan.canceled_at, plan.cancel_reason) == (first, "Moving abroad")


def test_cancelled_plan_is_not_renewed(app, plan):
    cancel_plan(plan, current_provider(), now=utcnow())
    db.session.commit()
    result = app.test_cli_runner().invoke(
        args=["sandbox", "renew", "--now", plan.next_charge_at.isoformat()])
    assert "renewed 0 plan period(s)" in result.output


def test_new_amount_applies_from_the_next_renewal(app, plan):
    rules = GivingRules.from_config(app.config)
    change_plan_amount(plan, current_provider(), amount=4000, rules=rules)
    assert (plan.amount, plan.fee_covered) == (4000, rules.fee_for(4000))
    db.session.commit()
    app.test_cli_runner().invoke(
        args=["sandbox", "renew", "--now", plan.next_charge_at.isoformat()])
    db.session.refresh(plan)
    assert [g.total for g in plan.gifts] == [2500 + rules.fee_for(2500),
                                             4000 + rules.fee_for(4000)]


@pytest.mark.parametrize("amount, message", [(50, "smallest gift"), (10**9, "cannot be made")])
def test_new_amount_out_of_range_is_refused(app, plan, amount, message):
    with pytest.raises(GiftError, match=message):
        change_plan_amount(plan, current_provider(), amount=amount,
                           rules=GivingRules.from_config(app.config))
    assert plan.amount == 2500


def test_cancelled_plan_amount_cannot_change(app, plan):
    cancel_plan(plan, current_provider(), now=utcnow())
    with pytest.raises(GiftError, match="cancelled"):
        change_plan_amount(plan, current_provider(), amount=4000,
                           rules=GivingRules.from_config(app.config))


def test_sandbox_card_update_page_returns_to_the_account(app, client, plan):
    url = current_provider().billing_portal_url(customer_id=plan.provider_customer_id,
                                                return_url="http://donate.test/account")
    page = client.get(url)
    assert page.status_code == 200
    token = hidden_value(page.get_data(as_text=True), "csrf_token")
    declined = client.post(url, data={"csrf_token": token, "name": "Noa",
                                      "number": "4000000000000002", "expiry": "12/34",
                                      "cvc": "123"})
    assert declined.status_code == 402 and "declined" in declined.get_data(as_text=True)
    saved = client.post(url, data={"csrf_token": token, "name": "Noa",
                                   "number": "4242424242424242", "expiry": "12/34",
                                   "cvc": "123"})
    assert saved.status_code == 303 and saved.headers["Location"] == "http://donate.test/account"
    assert client.get(url + "x").status_code == 404


def test_sandbox_refunds_are_idempotent(app):
    provider = current_provider()
    first = provider.refund(payment_intent_id="pi_1", charge_id=None, amount=500,
                            idempotency_key="refund-1")
    again = provider.refund(payment_intent_id="pi_1", charge_id=None, amount=500,
                            idempotency_key="refund-1")
    assert first == again and re.fullmatch(r"re_sbx_\w{24}", first.id)


def test_sandbox_card_update_page_sends_a_saved_card_to_its_own_address(app, client, plan):
    """Only a saved card goes to ``updated_url``: that is how the account knows to say so."""
    url = current_provider().billing_portal_url(
        customer_id=plan.provider_customer_id, return_url="http://donate.test/account",
        updated_url="http://donate.test/account?card=updated")
    html = client.get(url).get_data(as_text=True)
    assert 'href="http://donate.test/account">Cancel and go back' in html
    declined = pay(client, url, card="4000 0000 0000 0002")
    assert declined.status_code == 402
    saved = pay(client, url)
    assert saved.headers["Location"] == "http://donate.test/account?card=updated"


def test_the_emailed_card_link_ends_on_a_page_saying_the_card_is_updated(app, client, plan):
    with app.test_request_context():
        link = app.jinja_env.globals["card_update_url"](plan.id)
    path = link.replace("http://donate.test", "")
    portal = client.get(path)
    assert portal.status_code == 303
    html = client.get(portal.headers["Location"]).get_data(as_text=True)
    assert 'href="http://donate.test/">Cancel and go back' in html  # nothing claimed
    saved = pay(client, portal.headers["Location"])
    assert saved.headers["Location"] == f"{link}/updated"
    done = client.get(f"{path}/updated")
    assert done.status_code == 200
    html = done.get_data(as_text=True)
    assert "<h1>Your card is updated</h1>" in html
    assert "monthly gift of $25.00" in html
    assert client.get(f"{path}x/updated").status_code == 404
