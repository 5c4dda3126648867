"""Signing in with a password, "remember me", signing out, and pages that need a sign-in."""

from __future__ import annotations

import pytest

from app.accounts.passwords import Hasher
from app.extensions import db
from tests.support.accounts import (
    PASSWORD,
    csrf_token,
    flashes,
    link_in,
    mail_to,
    make_account,
    post_form,
    sign_in,
    sign_out,
)

WRONG = "The email address or password is not right."


def attempt(client, email="noa@example.org", password=PASSWORD, **extra):
    return post_form(client, "/account/signin", email=email, password=password, **extra)


def test_sign_in_with_password(app, client):
    supporter = make_account()
    response = attempt(client, email=" NOA@example.org")
    assert (response.status_code, response.headers["Location"]) == (303, "/account")
    page = client.get("/account").get_data(as_text=True)
    assert "Hello, Noa" in page and "Your account" in page
    assert supporter.last_login_at is not None
    # A session cookie only: "remember me" was not ticked.
    assert "remember_token" not in response.headers.get("Set-Cookie", "")


@pytest.mark.parametrize("email, password", [
    ("noa@example.org", "wrong passphrase!"),
    ("noa@example.org", PASSWORD.upper()),
    ("nobody@example.org", PASSWORD),  # no such account: the same answer
    ("guest@example.org", PASSWORD),  # a guest donor, who has no password: the same answer
])
def test_wrong_email_or_password_gets_one_message(app, client, email, password, outbox):
    make_account()
    make_account("guest@example.org", password=None, verified=False)
    response = attempt(client, email=email, password=password)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert WRONG in html
    assert 'value="' + email + '"' in html  # the address is kept, the password is not
    assert password not in html
    assert client.get("/account").status_code == 302
    assert outbox() == []


@pytest.mark.parametrize("email, message", [
    ("", "Enter your email address."),
    ("noa", "Enter an email address like name@example.com."),
    ("noa@@example.org", "Enter an email address like name@example.com."),
])
def test_malformed_email(client, email, message):
    response = attempt(client, email=email)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)


def test_empty_password(client):
    response = attempt(client, password="")
    assert response.status_code == 422
    assert "Enter your password." in response.get_data(as_text=True)


def test_unconfirmed_address_gets_a_new_link_not_a_session(app, client, outbox):
    make_account(verified=False)
    response = attempt(client)
    assert (response.status_code, response.headers["Location"]) == (303, "/account/check-email")
    assert "not confirmed yet" in client.get("/account/check-email").get_data(as_text=True)
    assert client.get("/account").status_code == 302
    [message] = mail_to(outbox, "noa@example.org")
    assert post_form(client, link_in(message, "/account/verify/")).status_code == 303
    assert client.get("/account").status_code == 200


def test_an_unconfirmed_address_with_a_wrong_password_says_only_wrong(app, client, outbox):
    make_account(verified=False)
    assert WRONG in attempt(client, password="not the one at all").get_data(as_text=True)
    assert outbox() == []


def test_remember_me_keeps_the_supporter_signed_in_after_the_session_ends(app, client):
    make_account()
    response = attempt(client, remember="y")
    assert "remember_token=" in " ".join(response.headers.get_all("Set-Cookie"))
    client.delete_cookie("session", domain="donate.test")
    page = client.get("/account")
    assert page.status_code == 200  # restored from the remember cookie


def test_without_remember_me_closing_the_browser_signs_out(app, client):
    make_account()
    attempt(client)
    client.delete_cookie("session", domain="donate.test")
    assert client.get("/account").status_code == 302


def test_sign_out_forgets_the_session_and_the_remember_cookie(app, client):
    make_account()
    attempt(client, remember="y")
    response = sign_out(client)
    assert response.headers["Location"] == "/"
    assert any(c.startswith("remember_token=;") for c in response.headers.get_all("Set-Cookie"))
    assert "You are signed out." in flashes(client.get("/"))
    assert client.get("/account").status_code == 302


def test_sign_out_needs_a_post_with_its_token(app, client):
    make_account()
    attempt(client)
    assert client.get("/account/signout").status_code == 405
    assert client.post("/account/signout").status_code == 400
    assert client.get("/account").status_code == 200


def test_pages_need_a_sign_in_and_come_back_after_it(app, client):
    make_account()
    response = client.get("/account/gifts")
    assert response.status_code == 302
    assert response.headers["Location"] == "/account/signin?next=%2Faccount%2Fgifts"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'name="next" type="hidden" value="/account/gifts"' in page
    token = csrf_token(client, "/account/signin?next=/account/gifts")
    signed_in = client.post("/account/signin", data={
        "csrf_token": token, "email": "noa@example.org", "password": PASSWORD,
        "next": "/account/gifts"})
    assert signed_in.headers["Location"] == "/account/gifts"


@pytest.mark.parametrize("target", ["https://evil.example/phish", "//evil.example/x",
                                    "/\\evil.example", "javascript:alert(1)", "account"])
def test_next_never_leads_off_the_site(app, client, target):
    make_account()
    response = attempt(client, next=target)
    assert response.headers["Location"] == "/account"


def test_a_password_hash_with_old_costs_is_upgraded_at_sign_in(app, client):
    supporter = make_account()
    old = Hasher(time_cost=1, memory_kib=8, parallelism=1).hash(PASSWORD)
    supporter.password_hash = old
    db.session.commit()
    app.config["ARGON2_MEMORY_KIB"] = 16
    attempt(client)
    db.session.refresh(supporter)
    assert supporter.password_hash != old and "m=16," in supporter.password_hash


def test_the_header_links_to_sign_in_or_to_the_account(app, client):
    make_account()
    assert 'href="/account/signin">Sign in<' in client.get("/").get_data(as_text=True)
    sign_in(client)
    assert 'href="/account">Your account<' in client.get("/").get_data(as_text=True)


def test_account_pages_are_not_cached(app, client):
    make_account()
    sign_in(client)
    assert client.get("/account").headers["Cache-Control"] == "no-store"


def test_signing_in_again_and_again_to_an_unconfirmed_account_sends_one_link(app, client,
                                                                           outbox):
    make_account(verified=False)
    for _ in range(3):
        assert attempt(client).headers["Location"] == "/account/check-email"
    assert len(mail_to(outbox, "noa@example.org")) == 1
