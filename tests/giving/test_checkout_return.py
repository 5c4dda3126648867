"""Back from the checkout page ("Cancel and go back"): the donation form as the donor filled it
in, for the browser that filled it in only; and links that choose on the form."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import g
from sqlalchemy import select

from app.extensions import db
from app.giving.models import Dedication, Frequency, Gift, GiftStatus
from app.giving.started import KEEP, STARTED_KEY, remember_started_gift, started_gifts
from app.payments.models import Payment
from tests.factories import make_campaign
from tests.support.flow import form_values, pay, submit_gift

RESUME_NOTE = "You left the payment page, so nothing was charged."


@pytest.fixture
def campaign(app):
    return make_campaign("twenty")


def cancel_link(client, checkout_url: str) -> str:
    """The checkout page's "Cancel and go back" link, as the donor would follow it."""
    page = client.get(urlsplit(checkout_url).path).get_data(as_text=True)
    match = re.search(r'<a href="([^"]+)">Cancel and go back</a>', page)
    assert match, "no cancel link on the checkout page"
    url = urlsplit(match.group(1).replace("&amp;", "&"))
    return f"{url.path}?{url.query}" if url.query else url.path


def open_page(client, url: str):
    g.pop("csrf_token", None)  # a new request (the tests' app context outlives requests)
    return client.get(url)


def start_filled_gift(client, **fields) -> tuple[Gift, str]:
    """Submit a fully filled form; returns the pending gift and its checkout URL."""
    values = dict(amount="other", other="40.50", frequency="monthly", cover_fee="y",
                  dedication="memory", dedication_name="Yosef Levi",
                  dedication_email="dina@example.org", anonymous="y",
                  comment="For Yosef, who read you every morning.",
                  query="?utm_source=newsletter&utm_medium=email&utm_campaign=nov")
    values.update(fields)
    g.pop("csrf_token", None)
    response = submit_gift(client, "twenty", **values)
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    gift = db.session.scalars(select(Gift).order_by(Gift.id.desc())).first()
    return gift, response.headers["Location"]


def test_cancel_from_checkout_returns_to_the_form_as_it_was_filled_in(client, campaign):
    gift, checkout = start_filled_gift(client)
    back = cancel_link(client, checkout)
    assert urlsplit(back).path == "/campaigns/twenty"
    assert parse_qs(urlsplit(back).query) == {"gift": [gift.public_id]}

    response = open_page(client, back)
    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]
    page = response.get_data(as_text=True)
    assert RESUME_NOTE in page
    values = form_values(page)
    assert {name: values.get(name) for name in (
        "frequency", "amount_choice", "other_amount", "cover_fee", "name", "email",
        "dedication", "dedication_name", "dedication_email", "anonymous", "comment",
        "utm_source", "utm_medium", "utm_campaign")} == {
        "frequency": "monthly", "amount_choice": "other", "other_amount": "40.50",
        "cover_fee": "y", "name": "Noa Levi", "email": "noa@example.org",
        "dedication": "memory", "dedication_name": "Yosef Levi",
        "dedication_email": "dina@example.org", "anonymous": "y",
        "comment": "For Yosef, who read you every morning.",
        "utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "nov"}
    # The dedication's disclosure is open, and the fee is shown for the amount typed in.
    assert re.search(r'<details class="dedication" open>', page)
    assert "<strong data-fee-amount>$1.52</strong>" in page
    # A new submission key: sent again, the form makes a new gift, with what it now says.
    assert values["submission_key"] != gift.submission_key

    values["other_amount"] = "45"
    response = client.post("/campaigns/twenty/give", data=values)
    assert response.status_code == 303
    again = db.session.scalars(select(Gift).order_by(Gift.id.desc())).first()
    assert again.id != gift.id
    assert (again.amount, again.frequency, again.fee_covered > 0, again.dedication,
            again.dedication_name, again.anonymous, again.comment, again.utm_source) == (
        4500, Frequency.MONTHLY, True, Dedication.MEMORY, "Yosef Levi", True,
        "For Yosef, who read you every morning.", "newsletter")


def test_a_suggested_amount_comes_back_on_its_tile(client, campaign):
    gift, checkout = start_filled_gift(client, amount="10000", other="", cover_fee="",
                                       dedication="", anonymous="", comment="",
                                       frequency="one_time", query="")
    values = form_values(open_page(client, cancel_link(client, checkout)).get_data(as_text=True))
    assert (values["amount_choice"], values["other_amount"], values["frequency"]) == (
        "10000", "", "one_time")
    assert "cover_fee" not in values and "anonymous" not in values
    assert (values["dedication"], values["comment"]) == ("", "")


def test_the_cancel_link_fills_nothing_in_another_browser(app, client, campaign):
    gift, checkout = start_filled_gift(client)
    back = cancel_link(client, checkout)

    stranger = app.test_client()
    response = open_page(stranger, back)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert RESUME_NOTE not in page
    assert "noa@example.org" not in page and "Noa Levi" not in page and "Yosef" not in page
    values = form_values(page)
    assert (values["name"], values["email"], values["amount_choice"]) == ("", "", "5000")


def test_a_browser_with_gifts_of_its_own_gets_none_of_another_donors(app, campaign):
    """The session proves the browser: the gift a link names must be one it started."""
    donor = app.test_client()
    gift, _ = start_filled_gift(donor)
    other = app.test_client()
    start_filled_gift(other, name="Dina Haddad", email="dina@example.org")
    page = open_page(other, f"/campaigns/twenty?gift={gift.public_id}").get_data(as_text=True)
    assert "noa@example.org" not in page
    assert form_values(page)["email"] == ""


def test_a_paid_gift_fills_in_only_who_gave(client, campaign):
    gift, checkout = start_filled_gift(client)
    back = cancel_link(client, checkout)
    assert pay(client, checkout).status_code == 303
    db.session.refresh(gift)
    assert gift.status is GiftStatus.PAID

    page = open_page(client, back).get_data(as_text=True)
    assert RESUME_NOTE not in page
    values = form_values(page)
    assert (values["name"], values["email"], values.get("cover_fee"),
            values.get("anonymous")) == ("Noa Levi", "noa@example.org", "y", "y")
    # The gift itself is not offered again: the campaign's defaults.
    assert (values["amount_choice"], values["frequency"], values["dedication"],
            values["comment"], values["utm_source"]) == ("5000", "one_time", "", "", "")


def test_only_this_campaigns_recent_gifts_fill_the_form(client, campaign):
    make_campaign("ramadan", title="Ramadan appeal")
    gift, _ = start_filled_gift(client)

    elsewhere = open_page(client, f"/campaigns/ramadan?gift={gift.public_id}")
    assert elsewhere.status_code == 200
    assert form_values(elsewhere.get_data(as_text=True))["email"] == ""

    unknown = open_page(client, "/campaigns/twenty?gift=no-such-gift")
    assert unknown.status_code == 200
    assert form_values(unknown.get_data(as_text=True))["email"] == ""

    gift.created_at -= timedelta(hours=25)
    db.session.commit()
    stale = open_page(client, f"/campaigns/twenty?gift={gift.public_id}").get_data(as_text=True)
    assert RESUME_NOTE not in stale
    assert form_values(stale)["email"] == ""


def test_nothing_is_charged_by_going_back(client, campaign):
    gift, checkout = start_filled_gift(client)
    open_page(client, cancel_link(client, checkout))
    db.session.refresh(gift)
    assert gift.status is GiftStatus.PENDING
    assert db.session.scalar(select(Payment.id).where(Payment.gift_id == gift.id)) is None


def test_the_session_keeps_the_latest_gifts_only(app):
    with app.test_request_context():
        for n in range(KEEP + 2):
            remember_started_gift(f"gift-{n}")
        remember_started_gift("gift-3")  # started again (a double-clicked form): moves last
        assert started_gifts() == ("gift-2", "gift-4", "gift-5", "gift-6", "gift-3")
    with app.test_request_context() as ctx:
        ctx.session[STARTED_KEY] = "not a list"
        assert started_gifts() == ()


def test_a_donor_who_started_a_gift_still_gets_the_shared_page(client, campaign, renders):
    """The gifts a session started change nothing on a page without a ``gift`` link."""
    open_page(client, "/campaigns/twenty")
    start_filled_gift(client)
    with client.session_transaction() as session:
        assert session[STARTED_KEY]
    page = open_page(client, "/campaigns/twenty").get_data(as_text=True)
    assert renders == ["twenty"]  # the shared copy, rendered once
    assert "noa@example.org" not in page


@pytest.mark.parametrize(("query", "choice", "other", "frequency"), [
    ("?amount=100&frequency=monthly", "10000", "", "monthly"),
    ("?amount=40", "other", "40.00", "one_time"),
    ("?amount=%2412.5&frequency=annual", "other", "12.50", "annual"),
    ("?amount=abc&frequency=weekly", "5000", "", "one_time"),  # ignored: not what the form takes
    ("?amount=0", "5000", "", "one_time"),
])
def test_a_link_may_choose_the_amount_and_frequency(client, campaign, query, choice, other,
                                                    frequency, renders):
    response = open_page(client, f"/campaigns/twenty{query}")
    assert response.status_code == 200
    values = form_values(response.get_data(as_text=True))
    assert (values["amount_choice"], values["other_amount"], values["frequency"]) == (
        choice, other, frequency)
    assert "Cache-Control" not in response.headers  # nothing personal in it
    open_page(client, f"/campaigns/twenty{query}")
    assert len(renders) == 2  # a page of its own each time, never the shared copy
