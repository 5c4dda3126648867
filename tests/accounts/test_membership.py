"""Membership levels from the last 12 months of giving and from active plans; perks checked in
one place (``has_perk`` / ``requires_perk``)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from app.accounts.membership import (
    MembershipConfigError,
    giving_totals,
    has_perk,
    levels_from_config,
    membership_for,
)
from app.db import utcnow
from app.extensions import db
from app.giving.models import Frequency
from app.giving.services import (
    GivingRules,
    cancel_plan,
    ensure_plan,
    record_gift_payment,
    start_gift,
)
from app.payments.providers import current_provider
from app.templating import org_zone
from tests.factories import gift_request, make_campaign, paid_gift, refund_gift
from tests.support.accounts import make_account, sign_in


@pytest.fixture
def campaign(app):
    return make_campaign("twenty")


@pytest.fixture
def supporter(app):
    return make_account()


def level_of(app, supporter):
    membership = membership_for(supporter, levels=levels_from_config(app.config), now=utcnow())
    return membership.level.key if membership.level else None


def plan_for(app, campaign, *, amount: int, frequency=Frequency.MONTHLY):
    gift = start_gift(campaign, gift_request(amount=amount, frequency=frequency),
                      rules=GivingRules.from_config(app.config), now=utcnow())
    db.session.flush()
    plan = ensure_plan(gift, provider="sandbox", subscription_id=f"sub_{uuid.uuid4().hex}",
                       customer_id="cus_test", started_at=utcnow())
    record_gift_payment(gift, provider="sandbox", provider_id=f"in_{uuid.uuid4().hex}",
                        amount=gift.total, currency=gift.currency, occurred_at=utcnow(),
                        zone=org_zone())
    db.session.commit()
    return plan


def test_no_gifts_no_level(app, supporter):
    assert level_of(app, supporter) is None
    assert giving_totals(supporter.id, now=utcnow()) == {}


@pytest.mark.parametrize("amounts, level", [
    ([100], "friend"),
    ([5000, 6999], "friend"),
    ([5000, 7000], "sustainer"),
    ([100000], "patron"),
])
def test_one_time_gifts_of_the_last_year_add_up(app, campaign, supporter, amounts, level):
    for amount in amounts:
        paid_gift(campaign, amount=amount)
    assert level_of(app, supporter) == level


def test_gifts_older_than_a_year_do_not_count(app, campaign, supporter):
    paid_gift(campaign, amount=150000, when=utcnow() - timedelta(days=366))
    paid_gift(campaign, amount=2500, when=utcnow() - timedelta(days=364))
    assert giving_totals(supporter.id, now=utcnow()) == {"USD": 2500}
    assert level_of(app, supporter) == "friend"


def test_refunds_take_a_gift_back_out(app, campaign, supporter):
    gift, _ = paid_gift(campaign, amount=12000)
    assert level_of(app, supporter) == "sustainer"
    refund_gift(gift, current_provider(), now=utcnow(), amount=2000)
    assert giving_totals(supporter.id, now=utcnow()) == {"USD": 10000}
    assert level_of(app, supporter) == "friend"
    refund_gift(gift, current_provider(), now=utcnow())
    assert level_of(app, supporter) is None


def test_an_active_monthly_plan_counts_as_a_full_year(app, campaign, supporter):
    plan_for(app, campaign, amount=1000)  # $10 a month: $120 a year
    assert giving_totals(supporter.id, now=utcnow()) == {"USD": 12000}
    assert level_of(app, supporter) == "sustainer"


def test_an_annual_plan_counts_once(app, campaign, supporter):
    plan_for(app, campaign, amount=10000, frequency=Frequency.ANNUAL)
    assert giving_totals(supporter.id, now=utcnow()) == {"USD": 10000}
    assert level_of(app, supporter) == "friend"


def test_a_cancelled_plan_counts_only_what_it_paid(app, campaign, supporter):
    plan = plan_for(app, campaign, amount=1000)
    cancel_plan(plan, current_provider(), now=utcnow())
    assert giving_totals(supporter.id, now=utcnow()) == {"USD": 1000}
    assert level_of(app, supporter) == "friend"


def test_plan_and_one_time_gifts_add_up(app, campaign, supporter):
    plan_for(app, campaign, amount=5000)  # $600 a year
    paid_gift(campaign, amount=40000)
    assert giving_totals(supporter.id, now=utcnow()) == {"USD": 100000}
    assert level_of(app, supporter) == "patron"


def test_currencies_are_never_added_together(app, supporter):
    usd = make_campaign("usd-appeal")
    eur = make_campaign("eur-appeal", currency="EUR")
    paid_gift(usd, amount=7000)
    paid_gift(eur, amount=7000)
    assert giving_totals(supporter.id, now=utcnow()) == {"USD": 7000, "EUR": 7000}
    assert level_of(app, supporter) == "friend"  # neither reaches 120 on its own


def test_someone_elses_gifts_do_not_count(app, campaign, supporter):
    paid_gift(campaign, "dana@example.org", amount=200000)
    assert level_of(app, supporter) is None


def test_levels_and_names_are_configurable(app, campaign, supporter):
    app.config["MEMBERSHIP_PERKS"] = {"tote": {"name": "A tote bag"}}
    app.config["MEMBERSHIP_LEVELS"] = [
        {"key": "reader", "name": "Reader", "minimum": {"usd": 500}, "perks": []},
        {"key": "insider", "name": "Insider", "minimum": {"USD": 2000}, "perks": ["tote"]},
    ]
    paid_gift(campaign, amount=2500)
    assert level_of(app, supporter) == "insider"
    levels = levels_from_config(app.config)
    assert has_perk(supporter, "tote", levels=levels, now=utcnow())


def test_perks_accumulate_up_the_levels(app):
    levels = levels_from_config(app.config)
    keys = {level.key: [p.key for p in level.perks] for level in levels}
    assert keys["friend"] == ["supporter_letter"]
    assert set(keys["friend"]) < set(keys["sustainer"]) < set(keys["patron"])


def test_has_perk(app, campaign, supporter):
    levels = levels_from_config(app.config)
    paid_gift(campaign, amount=2500)
    assert has_perk(supporter, "supporter_letter", levels=levels, now=utcnow())
    assert not has_perk(supporter, "briefings", levels=levels, now=utcnow())
    assert not has_perk(None, "supporter_letter", levels=levels, now=utcnow())


def test_asking_for_a_perk_no_level_grants_is_an_error(app, supporter):
    with pytest.raises(MembershipConfigError, match="no level grants"):
        has_perk(supporter, "free_lunch", levels=levels_from_config(app.config), now=utcnow())


def test_a_level_naming_an_unknown_perk_is_an_error(app):
    app.config["MEMBERSHIP_LEVELS"] = [{"key": "x", "name": "X", "minimum": {"USD": 1},
                                        "perks": ["nope"]}]
    with pytest.raises(MembershipConfigError, match="unknown perks"):
        levels_from_config(app.config)


def test_a_perk_page_is_open_only_to_levels_with_that_perk(app, client, campaign, supporter):
    sign_in(client)
    locked = client.get("/account/briefings")
    assert locked.status_code == 403
    assert "This is a Sustainer perk" in locked.get_data(as_text=True)
    paid_gift(campaign, amount=12000)
    opened = client.get("/account/briefings")
    assert opened.status_code == 200 and "Live briefings" in opened.get_data(as_text=True)


def test_a_perk_page_asks_strangers_to_sign_in(app):
    assert app.test_client().get("/account/briefings").status_code == 302


def test_the_account_page_shows_the_level_its_perks_and_the_next_step(app, client, campaign,
                                                                      supporter):
    paid_gift(campaign, amount=5000)
    sign_in(client)
    html = client.get("/account").get_data(as_text=True)
    assert 'data-membership="friend"' in html and "You are a <strong>Friend</strong>" in html
    assert 'data-perk="supporter_letter"' in html and 'data-perk="briefings"' not in html
    assert "$70.00 more a year would make you a <strong>Sustainer</strong>" in html
