"""The account: giving history and receipts (one's own only), profile, email change with
re-verification, password change, and sessions that need a fresh sign-in."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from app.accounts.models import Supporter
from app.db import utcnow
from app.extensions import db
from app.giving.models import Dedication
from app.giving.services import GivingRules, start_gift
from tests.factories import gift_request, make_campaign, paid_gift
from tests.support.accounts import (
    PASSWORD,
    csrf_token,
    flashes,
    link_in,
    mail_to,
    make_account,
    post_form,
    sign_in,
)


@pytest.fixture
def campaign(app):
    return make_campaign("twenty", title="Twenty years of reporting")


def test_history_lists_each_gift_with_campaign_amount_status_and_receipt(app, client,
                                                                         campaign):
    make_account()
    gift, _ = paid_gift(campaign, amount=5000, dedication=Dedication.MEMORY,
                     dedication_name="Sami Haddad")
    other = make_campaign("ramadan", title="Ramadan appeal")
    paid_gift(other, amount=1800)
    sign_in(client)
    html = client.get("/account/gifts").get_data(as_text=True)
    assert html.index("Ramadan appeal") < html.index("Twenty years of reporting")  # newest first
    assert "$50.00" in html and "$18.00" in html and "Paid" in html and "One time" in html
    receipt = client.get(f"/account/gifts/{gift.public_id}/receipt")
    assert receipt.status_code == 200
    text = receipt.get_data(as_text=True)
    assert "$50.00" in text and "In memory of" in text and "Sami Haddad" in text
    assert "501(c)(3)" in text and gift.public_id in text


def test_no_one_sees_another_persons_gifts(app, client, campaign):
    make_account()
    paid_gift(campaign, amount=1800)
    theirs, _ = paid_gift(campaign, "dana@example.org", amount=9900)
    sign_in(client)
    html = client.get("/account/gifts").get_data(as_text=True)
    assert "$18.00" in html  # signed in, on the list of one's own gifts
    assert "$99.00" not in html
    assert client.get(f"/account/gifts/{theirs.public_id}/receipt").status_code == 404


def test_an_unconfirmed_sign_up_cannot_see_a_guests_gifts(app, client, campaign, outbox):
    """Typing someone's email at sign-up shows nothing: the link goes to their inbox."""
    paid_gift(campaign, "victim@example.org", amount=25000)
    post_form(client, "/account/signup", email="victim@example.org", password=PASSWORD,
              name="Mallory")
    assert post_form(client, "/account/signin", email="victim@example.org",
                     password=PASSWORD).headers["Location"] == "/account/check-email"
    assert client.get("/account/gifts").status_code == 302
    assert {m["To"] for m in outbox()} == {"victim@example.org"}
    # The guest's name is not replaced by the one typed at sign-up.
    assert db.session.scalar(select(Supporter.name)) == "Noa Levi"


def test_pending_checkouts_are_not_gifts(app, client, campaign):
    make_account()
    paid_gift(campaign, amount=1800)
    start_gift(campaign, gift_request(amount=4200), rules=GivingRules.from_config(app.config),
               now=utcnow())
    db.session.commit()
    sign_in(client)
    html = client.get("/account/gifts").get_data(as_text=True)
    assert "$18.00" in html  # signed in, on the list of one's own gifts
    assert "$42.00" not in html


def test_overview_shows_membership_plans_and_recent_gifts(app, client, campaign):
    make_account()
    paid_gift(campaign, amount=2500)
    sign_in(client)
    html = client.get("/account").get_data(as_text=True)
    assert 'data-membership="friend"' in html and "The supporters&#39; letter" in html
    assert "$25.00" in html and "All your gifts (1)" in html
    assert "You have no monthly or yearly gift." in html


def test_profile_saves_name_and_postal_address(app, client):
    supporter = make_account()
    sign_in(client)
    response = post_form(client, "/account/profile", name=" Noa Katz ",
                         address_line1="12 Jaffa Road", address_line2="", city="Jerusalem",
                         region="", postal_code="9434112", country="IL")
    assert response.status_code == 303
    assert "Your details are saved." in flashes(client.get("/account/profile"))
    db.session.refresh(supporter)
    assert (supporter.name, supporter.city, supporter.country) == ("Noa Katz", "Jerusalem", "IL")
    assert supporter.address_line2 is None
    assert supporter.postal_address == ["12 Jaffa Road", "Jerusalem 9434112", "IL"]


@pytest.mark.parametrize("field, value, message", [
    ("name", "", "Enter your name."),
    ("country", "XX", "Not a valid choice"),
    ("postal_code", "1" * 21, "A postal code has at most 20 characters."),
])
def test_profile_bad_input(app, client, field, value, message):
    make_account()
    sign_in(client)
    data = {"name": "Noa", "country": "", field: value}
    response = post_form(client, "/account/profile", **data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)


def test_email_change_takes_effect_only_when_the_new_address_is_confirmed(app, client,
                                                                          outbox):
    supporter = make_account()
    sign_in(client)
    response = post_form(client, "/account/profile/email", page="/account/profile",
                         new_email="Noa.New@Example.org", password=PASSWORD)
    assert response.status_code == 303
    assert "We sent a link to noa.new@example.org" in flashes(client.get("/account/profile"))
    db.session.refresh(supporter)
    assert (supporter.email, supporter.pending_email) == ("noa@example.org",
                                                          "noa.new@example.org")
    [message] = mail_to(outbox, "noa.new@example.org")
    link = link_in(message, "/account/email/")
    assert "noa@example.org" in client.get(link).get_data(as_text=True)
    confirmed = post_form(client, link)
    assert confirmed.status_code == 303
    db.session.refresh(supporter)
    assert (supporter.email, supporter.pending_email) == ("noa.new@example.org", None)
    assert mail_to(outbox, "noa@example.org")[-1]["Subject"] == \
        "Your account's email address was changed"
    assert client.get("/account").status_code == 200
    sign_in(app.test_client(), "noa.new@example.org")


def test_email_change_needs_the_password(app, client, outbox):
    make_account()
    sign_in(client)
    response = post_form(client, "/account/profile/email", page="/account/profile",
                         new_email="noa.new@example.org", password="not my password")
    assert response.status_code == 422
    assert "Your password is not right." in response.get_data(as_text=True)
    assert mail_to(outbox, "noa.new@example.org") == []


@pytest.mark.parametrize("new_email, message", [
    ("noa@example.org", "That is already your email address."),
    ("not an email", "Enter an email address like name@example.com."),
    ("", "Enter your email address."),
])
def test_email_change_bad_input(app, client, new_email, message):
    make_account()
    sign_in(client)
    response = post_form(client, "/account/profile/email", page="/account/profile",
                         new_email=new_email, password=PASSWORD)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)


def test_moving_to_an_address_already_known_says_so_only_to_that_inbox(app, client, outbox,
                                                                       campaign):
    supporter = make_account()
    paid_gift(campaign, "dana@example.org", amount=2500)
    sign_in(client)
    response = post_form(client, "/account/profile/email", page="/account/profile",
                         new_email="dana@example.org", password=PASSWORD)
    assert response.status_code == 303  # the same answer as for a free address
    db.session.refresh(supporter)
    assert supporter.pending_email is None
    assert mail_to(outbox, "dana@example.org")[-1]["Subject"] == \
        "Someone asked to use this address for an account"


def test_an_older_email_change_link_dies_when_another_change_is_asked(app, client, outbox):
    make_account()
    sign_in(client)
    for new in ("first@example.org", "second@example.org"):
        post_form(client, "/account/profile/email", page="/account/profile", new_email=new,
                  password=PASSWORD)
    old_link = link_in(mail_to(outbox, "first@example.org")[0], "/account/email/")
    assert client.get(old_link).status_code == 410


def test_an_email_change_can_be_called_off(app, client, outbox):
    supporter = make_account()
    sign_in(client)
    post_form(client, "/account/profile/email", page="/account/profile",
              new_email="noa.new@example.org", password=PASSWORD)
    assert post_form(client, "/account/profile/email/cancel",
                     page="/account/profile").status_code == 303
    db.session.refresh(supporter)
    assert supporter.pending_email is None
    link = link_in(mail_to(outbox, "noa.new@example.org")[0], "/account/email/")
    assert client.get(link).status_code == 410


def test_password_change_signs_out_other_devices_but_not_this_one(app, client, outbox):
    make_account()
    sign_in(client)
    elsewhere = app.test_client()
    sign_in(elsewhere)
    response = post_form(client, "/account/profile/password", page="/account/profile",
                         current_password=PASSWORD, new_password="the sea at Jaffa in May")
    assert response.status_code == 303
    assert client.get("/account").status_code == 200
    assert elsewhere.get("/account").status_code == 302
    assert mail_to(outbox, "noa@example.org")[-1]["Subject"] == "Your password was changed"


@pytest.mark.parametrize("current, new, message", [
    ("wrong one entirely", "the sea at Jaffa in May", "Your current password is not right."),
    (PASSWORD, "short", "Use at least 10 characters."),
    (PASSWORD, "qwertyuiop", "one of the most common"),
])
def test_password_change_bad_input(app, client, current, new, message):
    make_account()
    sign_in(client)
    response = post_form(client, "/account/profile/password", page="/account/profile",
                         current_password=current, new_password=new)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)


def test_a_remembered_session_must_sign_in_again_for_sensitive_changes(app, client):
    make_account()
    sign_in(client, remember="y")
    client.delete_cookie("session", domain="donate.test")
    assert client.get("/account").status_code == 200  # remembered: not fresh
    for page in ("/account/data",):
        response = client.get(page)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/account/signin?next=")
    token_page = client.get("/account/profile").get_data(as_text=True)
    assert "Change email address" in token_page
    token = csrf_token(client, "/account/profile")
    response = client.post("/account/profile/email", data={
        "csrf_token": token, "new_email": "x@example.org", "password": PASSWORD},
        headers={"Referer": "http://donate.test/account/profile"})
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/account/signin"
    assert parse_qs(location.query) == {"next": ["/account/profile"]}
    assert "please sign in again" in flashes(client.get(response.headers["Location"]))
    # Signing in again makes the session fresh.
    sign_in(client, next="/account/profile")
    assert client.get("/account/data").status_code == 200
