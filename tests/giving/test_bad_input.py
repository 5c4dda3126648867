"""Every bad input gets a clear message beside its field and writes nothing."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app.accounts.models import Supporter
from app.extensions import db
from app.giving.models import Gift
from tests.factories import make_campaign
from tests.support.flow import donation_form, submit_gift


@pytest.fixture(autouse=True)
def campaign(app):
    return make_campaign("twenty")


def nothing_written():
    return (db.session.scalar(select(func.count()).select_from(Gift)) == 0
            and db.session.scalar(select(func.count()).select_from(Supporter)) == 0)


def error_beside(html: str, field: str) -> str:
    match = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', html)
    assert match, f"no error beside {field}"
    return match.group(1)


@pytest.mark.parametrize("typed, message", [
    ("0", "The amount must be more than zero."),
    ("-5", "The amount must be more than zero."),
    ("10.005", "Use at most 2 decimal places."),
    ("ten dollars", "Enter the amount as a number"),
    ("1e3", "Enter the amount as a number"),
    ("", "Enter an amount."),
    ("0.50", "The smallest gift we can take is $1.00."),
    ("50000.01", "Gifts above $50,000.00 cannot be made online"),
])
def test_bad_amounts(client, typed, message):
    response = submit_gift(client, "twenty", amount="other", other=typed)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in error_beside(html, "other_amount")
    assert 'aria-invalid="true"' in html
    assert nothing_written()


def test_amount_not_among_the_choices(client):
    response = submit_gift(client, "twenty", amount="1")
    assert response.status_code == 422
    assert nothing_written()


def test_unsupported_currency(client):
    response = submit_gift(client, "twenty", currency="XYZ", amount="other", other="25")
    assert response.status_code == 422
    assert "This campaign takes gifts in USD only." in response.get_data(as_text=True)
    assert nothing_written()


def test_currency_other_than_the_campaigns(client):
    response = submit_gift(client, "twenty", currency="EUR")
    assert response.status_code == 422
    assert "This campaign takes gifts in USD only." in response.get_data(as_text=True)
    assert nothing_written()


@pytest.mark.parametrize("email", ["not-an-email", "noa@", "@example.org", "noa example@x.org"])
def test_invalid_email(client, email):
    response = submit_gift(client, "twenty", email=email)
    assert response.status_code == 422
    assert "Enter an email address like name@example.com." in error_beside(
        response.get_data(as_text=True), "email")
    assert nothing_written()


def test_missing_name(client):
    response = submit_gift(client, "twenty", name="  ")
    assert "Enter your name." in error_beside(response.get_data(as_text=True), "name")
    assert nothing_written()


def test_dedication_needs_a_name(client):
    response = submit_gift(client, "twenty", dedication="honour")
    assert response.status_code == 422
    assert "Tell us who the gift honours or remembers." in error_beside(
        response.get_data(as_text=True), "dedication_name")
    assert nothing_written()


def test_unknown_frequency(client):
    response = submit_gift(client, "twenty", frequency="weekly")
    assert response.status_code == 422
    assert nothing_written()


def test_ended_campaign_refuses_gifts_and_shows_no_form(client):
    make_campaign("past", started_days_ago=60, days_left=-1)
    data = donation_form(client, "twenty")  # a valid token from a live page
    data.update(amount_choice="2500", frequency="one_time", name="Noa", email="noa@example.org")
    response = client.post("/campaigns/past/give", data=data)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "This campaign has ended" in html
    assert nothing_written()
    page = client.get("/campaigns/past").get_data(as_text=True)
    assert "This campaign has ended" in page
    assert 'action="/campaigns/past/give"' not in page
    assert 'href="/campaigns/twenty"' in page  # points to a live campaign instead


def test_campaign_that_does_not_exist(client):
    data = donation_form(client, "twenty")
    data.update(amount_choice="2500", frequency="one_time", name="Noa", email="noa@example.org")
    assert client.post("/campaigns/nowhere/give", data=data).status_code == 404
    assert nothing_written()


def test_missing_csrf_token(client):
    data = donation_form(client, "twenty")
    del data["csrf_token"]
    data.update(amount_choice="2500", frequency="one_time", name="Noa", email="noa@example.org")
    response = client.post("/campaigns/twenty/give", data=data)
    assert response.status_code == 400
    assert "Go back, reload the page and submit it again" in response.get_data(as_text=True)
    assert nothing_written()


def test_overlong_comment(client):
    response = submit_gift(client, "twenty", comment="x" * 1001)
    assert "Keep the note under 1,000 characters." in error_beside(
        response.get_data(as_text=True), "comment")
    assert nothing_written()


def test_giving_is_rate_limited(make_app, database_url):
    app = make_app(database_url, RATELIMIT_ENABLED=True, RATELIMIT_GIVE="2 per minute")
    client = app.test_client()
    data = donation_form(client, "twenty")
    data.update(amount_choice="other", other_amount="0", frequency="one_time", name="Noa",
                email="noa@example.org")
    codes = [client.post("/campaigns/twenty/give", data=data).status_code for _ in range(3)]
    assert codes == [422, 422, 429]
    assert "Too many requests" in client.post("/campaigns/twenty/give", data=data).get_data(
        as_text=True)


def test_only_limited_routes_pay_for_the_limiter(make_app, database_url):
    """No limiter pass before every request; the checkout page's own limit still holds."""
    from app.extensions import limiter

    app = make_app(database_url, RATELIMIT_ENABLED=True, RATELIMIT_CHECKOUT="2 per minute")
    assert limiter._check_request_limit not in app.before_request_funcs[None]
    client = app.test_client()
    response = submit_gift(client, "twenty", amount="5000")
    checkout = response.headers["Location"]
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                      client.get(checkout).get_data(as_text=True)).group(1)
    card = {"csrf_token": token, "name": "Noa", "number": "4000 0000 0000 0002",
            "expiry": "12/34", "cvc": "123"}
    codes = [client.post(checkout, data=card).status_code for _ in range(3)]
    assert codes == [402, 402, 429]
    assert client.get("/healthz").status_code == 200
