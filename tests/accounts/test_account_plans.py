"""Monthly and yearly gifts from the account: change the amount from the next period, cancel
with an optional reason, update the card at the provider, restart through the checkout."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.db import utcnow
from app.extensions import db
from app.giving.models import Gift, GiftStatus, PlanStatus, RecurringPlan
from app.giving.services import GivingRules
from tests.factories import make_campaign
from tests.support.accounts import flashes, make_account, post_form, sign_in
from tests.support.flow import give, hidden_value, pay


@pytest.fixture
def plan(app, client):
    make_account()
    make_campaign("twenty", title="Twenty years of reporting")
    give(app.test_client(), "twenty", frequency="monthly", amount="2500")
    sign_in(client)
    return db.session.scalar(select(RecurringPlan))


def page(plan):
    return f"/account/plans/{plan.id}"


def restart_form(client, plan) -> dict:
    html = client.get(page(plan)).get_data(as_text=True)
    return {"csrf_token": hidden_value(html, "csrf_token"),
            "submission_key": hidden_value(html, "submission_key")}


def restart(client, plan):
    return client.post(page(plan) + "/restart", data=restart_form(client, plan))


def test_the_account_lists_the_plan_and_its_page_manages_it(client, plan):
    overview = client.get("/account").get_data(as_text=True)
    assert "$25.00</strong> monthly · Twenty years of reporting" in overview
    assert f'href="{page(plan)}"' in overview
    html = client.get(page(plan)).get_data(as_text=True)
    assert "Change the amount" in html and "Update card" in html and "Cancel this gift" in html
    assert 'value="25.00"' in html


def test_change_amount_from_the_next_period(app, client, plan):
    response = post_form(client, page(plan) + "/amount", page=page(plan), amount="40")
    assert response.status_code == 303
    assert "applies from your next payment" in flashes(client.get(page(plan)))
    db.session.refresh(plan)
    assert plan.amount == 4000
    # The period already paid keeps its amount; the next renewal charges the new one.
    assert [g.amount for g in plan.gifts] == [2500]
    db.session.commit()
    app.test_cli_runner().invoke(args=["sandbox", "renew", "--now",
                                       plan.next_charge_at.isoformat()])
    db.session.refresh(plan)
    assert [g.amount for g in plan.gifts] == [2500, 4000]


@pytest.mark.parametrize("typed, message", [
    ("", "Enter an amount."),
    ("ten", "Enter the amount as a number"),
    ("-5", "The amount must be more than zero."),
    ("0.5", "The smallest gift we can take is $1.00."),
    ("10.001", "Use at most 2 decimal places."),
    ("999999", "cannot be made online"),
])
def test_bad_amounts_are_refused_beside_the_field(client, plan, typed, message):
    response = post_form(client, page(plan) + "/amount", page=page(plan), amount=typed)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="amount-error"' in html and message in html
    db.session.refresh(plan)
    assert plan.amount == 2500


def test_cancel_with_a_reason(client, plan):
    response = post_form(client, page(plan) + "/cancel", page=page(plan),
                         reason="Moving abroad for a while")
    assert response.status_code == 303
    html = client.get(page(plan)).get_data(as_text=True)
    assert "Your gift is cancelled" in html and "Restart my monthly gift" in html
    db.session.refresh(plan)
    assert (plan.status, plan.cancel_reason) == (PlanStatus.CANCELED, "Moving abroad for a while")


def test_cancel_without_a_reason(client, plan):
    post_form(client, page(plan) + "/cancel", page=page(plan), reason="")
    db.session.refresh(plan)
    assert (plan.status, plan.cancel_reason) == (PlanStatus.CANCELED, None)


def test_a_reason_that_is_too_long_is_refused(client, plan):
    response = post_form(client, page(plan) + "/cancel", reason="x" * 501)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Keep the reason under 500 characters." in html
    assert "Yes, cancel my monthly gift</button>" in html  # the question, asked again
    db.session.refresh(plan)
    assert plan.status is PlanStatus.ACTIVE


def test_update_card_goes_to_the_providers_page_and_back(app, client, plan):
    response = post_form(client, page(plan) + "/card", page=page(plan))
    assert response.status_code == 303
    portal = response.headers["Location"]
    assert portal.startswith("/sandbox/portal/")
    # Leaving the card page without saving one: back to the plan, and nothing claimed.
    html = client.get(portal).get_data(as_text=True)
    assert f'href="http://donate.test{page(plan)}">Cancel and go back' in html
    assert flashes(client.get(page(plan))) == ""
    saved = pay(client, portal)  # the portal takes a card like the checkout
    assert saved.headers["Location"] == f"http://donate.test{page(plan)}?card=updated"
    back = client.get(saved.headers["Location"])
    assert (back.status_code, back.headers["Location"]) == (303, page(plan))
    assert "Your card is updated" in flashes(client.get(page(plan)))
    # Said once: a reload of the plan page does not say it again.
    assert flashes(client.get(page(plan))) == ""


def test_cancelling_asks_first(client, plan):
    html = client.get(page(plan)).get_data(as_text=True)
    # The plan page's button only leads to the question; no form there cancels.
    assert f'href="{page(plan)}/cancel">Cancel my monthly gift</a>' in html
    assert f'action="{page(plan)}/cancel"' not in html
    question = client.get(page(plan) + "/cancel")
    assert question.status_code == 200
    html = question.get_data(as_text=True)
    assert "<h1>Cancel your monthly gift?</h1>" in html
    assert f'href="{page(plan)}">Keep my gift</a>' in html
    assert "Yes, cancel my monthly gift</button>" in html
    db.session.refresh(plan)
    assert plan.status is PlanStatus.ACTIVE

    yes = post_form(client, page(plan) + "/cancel", reason="Moving abroad")
    assert (yes.status_code, yes.headers["Location"]) == (303, page(plan))
    db.session.refresh(plan)
    assert (plan.status, plan.cancel_reason) == (PlanStatus.CANCELED, "Moving abroad")
    # Asking again about a cancelled gift goes back to it.
    again = client.get(page(plan) + "/cancel")
    assert (again.status_code, again.headers["Location"]) == (303, page(plan))


def test_restart_a_cancelled_plan_through_the_checkout(app, client, plan):
    post_form(client, page(plan) + "/cancel", page=page(plan))
    response = restart(client, plan)
    assert response.status_code == 303
    checkout = response.headers["Location"]
    assert checkout.startswith("/sandbox/checkout/")
    paid = pay(client, checkout)
    assert paid.status_code == 303
    plans = db.session.scalars(select(RecurringPlan).order_by(RecurringPlan.id)).all()
    assert [(p.status, p.amount) for p in plans] == [(PlanStatus.CANCELED, 2500),
                                                     (PlanStatus.ACTIVE, 2500)]
    assert plans[1].supporter_id == plans[0].supporter_id


def test_restart_twice_with_the_same_form_starts_one_gift(app, client, plan):
    post_form(client, page(plan) + "/cancel", page=page(plan))
    data = restart_form(client, plan)
    first = client.post(page(plan) + "/restart", data=data)
    second = client.post(page(plan) + "/restart", data=data)
    assert first.headers["Location"] == second.headers["Location"]
    assert db.session.scalar(select(func.count()).select_from(Gift).where(
        Gift.status == GiftStatus.PENDING)) == 1


def test_restart_goes_to_an_open_appeal_when_the_plans_campaign_has_ended(app, client, plan):
    post_form(client, page(plan) + "/cancel", page=page(plan))
    plan.campaign.ends_at = utcnow() - timedelta(days=1)
    make_campaign("year-end", title="Year-end appeal")
    db.session.commit()
    restart(client, plan)
    pending = db.session.scalar(select(Gift).where(Gift.status == GiftStatus.PENDING))
    assert pending.campaign.slug == "year-end"
    assert (pending.amount, pending.frequency.value) == (2500, "monthly")


def test_restart_with_no_open_appeal_says_so(app, client, plan):
    post_form(client, page(plan) + "/cancel", page=page(plan))
    plan.campaign.ends_at = utcnow() - timedelta(days=1)
    db.session.commit()
    response = restart(client, plan)
    assert response.status_code == 422
    assert "No appeal is taking gifts in USD right now." in response.get_data(as_text=True)


def test_a_running_plan_cannot_be_restarted(client, plan):
    response = post_form(client, page(plan) + "/restart", page=page(plan),
                         submission_key="k" * 32)
    assert response.status_code == 422
    assert "still running" in response.get_data(as_text=True)


def test_someone_elses_plan_is_not_found(app, client, plan):
    make_account("dana@example.org")
    other = app.test_client()
    sign_in(other, "dana@example.org")
    assert other.get(page(plan)).status_code == 404
    assert post_form(other, page(plan) + "/cancel", page="/account").status_code == 404
    db.session.refresh(plan)
    assert plan.status is PlanStatus.ACTIVE


def test_plan_pages_need_a_sign_in(app, plan):
    anonymous = app.test_client()
    assert anonymous.get(page(plan)).status_code == 302


def test_rules_come_from_the_settings(app, client, plan):
    app.config["GIFT_MAX_MINOR"] = 3000
    assert GivingRules.from_config(app.config).max_amount == 3000
    response = post_form(client, page(plan) + "/amount", page=page(plan), amount="31")
    assert "Gifts above $30.00 cannot be made online" in response.get_data(as_text=True)
