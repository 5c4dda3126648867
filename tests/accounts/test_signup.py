"""Signing up and confirming the address: the account exists only once its owner follows the
link, and the page never tells whether an address already has an account."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.accounts.models import Supporter
from app.extensions import db
from tests.factories import make_campaign, paid_gift
from tests.support.accounts import (
    PASSWORD,
    link_in,
    mail_to,
    make_account,
    post_form,
    sign_in,
    sign_out,
)


def sign_up(client, email="noa@example.org", password=PASSWORD, name="Noa Levi"):
    return post_form(client, "/account/signup", email=email, password=password, name=name)


def test_sign_up_sends_a_link_that_confirms_and_signs_in(app, client, outbox):
    response = sign_up(client, email="  Noa@Example.ORG ")
    assert response.status_code == 303
    assert response.headers["Location"] == "/account/check-email"
    page = client.get("/account/check-email").get_data(as_text=True)
    assert "Check your email" in page and "noa@example.org" in page

    supporter = db.session.scalar(select(Supporter))
    assert supporter.email == "noa@example.org" and supporter.name == "Noa Levi"
    assert supporter.password_hash.startswith("$argon2id$") and PASSWORD not in \
        supporter.password_hash
    assert supporter.email_verified_at is None
    # Not signed in until the address is proven.
    assert client.get("/account").status_code == 302

    [message] = mail_to(outbox, "noa@example.org")
    assert message["Subject"] == "Confirm your email address to finish your account"
    link = link_in(message, "/account/verify/")
    page = client.get(link)
    assert page.status_code == 200 and "Confirm and sign in" in page.get_data(as_text=True)
    assert supporter.email_verified_at is None  # opening the page (a mail scanner) uses nothing

    confirmed = post_form(client, link)
    assert confirmed.status_code == 303 and confirmed.headers["Location"] == "/account"
    assert "Your email address is confirmed" in client.get("/account").get_data(as_text=True)
    db.session.refresh(supporter)
    assert supporter.email_verified_at is not None and supporter.last_login_at is not None


def test_the_password_works_once_the_address_is_confirmed(app, client, outbox):
    sign_up(client)
    post_form(client, link_in(outbox()[0], "/account/verify/"))
    sign_out(client)
    assert client.get("/account").status_code == 302
    sign_in(client)
    assert client.get("/account").status_code == 200


def test_signing_up_with_an_existing_account_changes_nothing_and_says_the_same(app, client,
                                                                               outbox):
    supporter = make_account(password="an older passphrase")
    before = supporter.password_hash
    response = sign_up(client, password="a brand new passphrase")
    assert (response.status_code, response.headers["Location"]) == (303, "/account/check-email")
    db.session.refresh(supporter)
    assert supporter.password_hash == before
    [message] = mail_to(outbox, "noa@example.org")
    assert message["Subject"] == "You already have an account"
    assert "/account/verify/" not in message.as_string()


def test_a_guest_donor_signs_up_and_sees_their_past_gifts_once_confirmed(app, client, outbox):
    campaign = make_campaign("twenty")
    paid_gift(campaign, "noa@example.org", amount=5000)
    sign_up(client)
    assert db.session.scalar(select(func.count()).select_from(Supporter)) == 1
    post_form(client, link_in(mail_to(outbox, "noa@example.org")[-1], "/account/verify/"))
    gifts = client.get("/account/gifts").get_data(as_text=True)
    assert "$50.00" in gifts and "A test appeal" in gifts


def test_a_newer_sign_up_for_an_unconfirmed_address_replaces_the_older_link(app, client,
                                                                            outbox):
    sign_up(client, password="first passphrase here")
    sign_up(client, password="second passphrase here")
    first, second = (link_in(m, "/account/verify/") for m in mail_to(outbox, "noa@example.org"))
    stale = client.get(first)
    assert stale.status_code == 410 and "no longer works" in stale.get_data(as_text=True)
    assert post_form(client, second).status_code == 303


@pytest.mark.parametrize("email", ["not-an-email", "noa@", "@example.org", "noa example@x.org",
                                   "noa@example", "a" * 250 + "@example.org"])
def test_malformed_email_is_refused_beside_the_field(client, email, outbox):
    response = sign_up(client, email=email)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="email-error"' in html
    assert ("Enter an email address like name@example.com." in html
            or "at most 254 characters" in html)
    assert db.session.scalar(select(func.count()).select_from(Supporter)) == 0
    assert outbox() == []


@pytest.mark.parametrize("password, message", [
    ("", "Choose a password."),
    ("short", "Use at least 10 characters."),
    ("password123", "one of the most common"),
    ("noa@example.org", "name or email address"),
])
def test_weak_password_is_refused_beside_the_field(client, password, message, outbox):
    response = sign_up(client, password=password)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="password-error"' in html and message in html
    assert db.session.scalar(select(func.count()).select_from(Supporter)) == 0
    assert outbox() == []


def test_a_weak_password_is_refused_even_for_an_existing_account(app, client, outbox):
    """Otherwise the answer would differ for registered addresses."""
    make_account()
    assert sign_up(client, password="short").status_code == 422
    assert outbox() == []


def test_name_is_required(client):
    response = sign_up(client, name="  ")
    assert response.status_code == 422
    assert "Enter your name." in response.get_data(as_text=True)


def test_sign_up_without_csrf_token_is_refused(client):
    response = client.post("/account/signup", data={"email": "noa@example.org",
                                                    "password": PASSWORD, "name": "Noa"})
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Supporter)) == 0
