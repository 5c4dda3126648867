"""Password reset by email: the link sets a new password once, signs every other session
out, and tells the owner; the request never reveals whether the address has an account."""

from __future__ import annotations

import pytest

from app.accounts import tokens
from app.accounts.tokens import AccountLinks
from tests.support.accounts import (
    PASSWORD,
    link_in,
    mail_to,
    make_account,
    post_form,
    sign_in,
)

NEW = "a fresh olive grove at dawn"


def request_reset(client, email="noa@example.org"):
    return post_form(client, "/account/reset", email=email)


def test_reset_by_email_sets_the_password_and_signs_in(app, client, outbox):
    make_account()
    response = request_reset(client, " NOA@example.org")
    assert (response.status_code, response.headers["Location"]) == (303, "/account/check-email")
    assert "a link to choose a new password" in client.get("/account/check-email").get_data(
        as_text=True)
    [message] = mail_to(outbox, "noa@example.org")
    assert message["Subject"] == "Reset your password"
    link = link_in(message, "/account/reset/")
    page = client.get(link)
    assert page.status_code == 200 and "Choose a new password" in page.get_data(as_text=True)

    done = post_form(client, link, password=NEW)
    assert (done.status_code, done.headers["Location"]) == (303, "/account")
    assert client.get("/account").status_code == 200
    notice = mail_to(outbox, "noa@example.org")[-1]
    assert notice["Subject"] == "Your password was changed"

    other = app.test_client()
    assert post_form(other, "/account/signin", email="noa@example.org",
                     password=PASSWORD).status_code == 422
    sign_in(other, password=NEW)


def test_a_reset_signs_out_every_other_session(app, client, outbox):
    make_account()
    elsewhere = app.test_client()
    sign_in(elsewhere, remember="y")
    assert elsewhere.get("/account").status_code == 200
    request_reset(client)
    post_form(client, link_in(mail_to(outbox, "noa@example.org")[-1], "/account/reset/"),
              password=NEW)
    assert elsewhere.get("/account").status_code == 302
    # The remember cookie is dead too.
    elsewhere.delete_cookie("session", domain="donate.test")
    assert elsewhere.get("/account").status_code == 302


def test_an_unknown_address_gets_the_same_answer_and_no_mail(app, client, outbox):
    response = request_reset(client, "nobody@example.org")
    assert (response.status_code, response.headers["Location"]) == (303, "/account/check-email")
    assert outbox() == []


def test_a_guest_donor_sets_a_first_password_by_reset(app, client, outbox):
    make_account("guest@example.org", password=None, verified=False)
    request_reset(client, "guest@example.org")
    message = mail_to(outbox, "guest@example.org")[0]
    assert "To choose a password" in message.as_string()
    post_form(client, link_in(message, "/account/reset/"), password=NEW)
    assert mail_to(outbox, "guest@example.org")[-1]["Subject"] == "Your password was set"
    sign_in(app.test_client(), "guest@example.org", NEW)


@pytest.mark.parametrize("password, message", [
    ("", "Choose a password."),
    ("short", "Use at least 10 characters."),
    ("1234567890", "one of the most common"),
    ("noa@example.org", "name or email address"),
])
def test_a_weak_new_password_is_refused_and_the_link_still_works(app, client, outbox,
                                                                 password, message):
    make_account()
    request_reset(client)
    link = link_in(mail_to(outbox, "noa@example.org")[0], "/account/reset/")
    response = post_form(client, link, password=password)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="password-error"' in html and message in html
    assert client.get("/account").status_code == 302
    assert post_form(client, link, password=NEW).status_code == 303


def test_a_reset_link_works_once(app, client, outbox):
    make_account()
    request_reset(client)
    link = link_in(mail_to(outbox, "noa@example.org")[0], "/account/reset/")
    post_form(client, link, password=NEW)
    again = app.test_client().get(link)
    assert again.status_code == 410
    assert "already been used" in again.get_data(as_text=True)


def test_an_older_reset_link_dies_when_the_password_changes(app, client, outbox):
    make_account()
    request_reset(client)
    request_reset(client)
    first, second = (link_in(m, "/account/reset/") for m in mail_to(outbox, "noa@example.org"))
    post_form(client, second, password=NEW)
    stale = app.test_client().get(first)
    assert stale.status_code == 410 and "no longer works" in stale.get_data(as_text=True)


def test_a_tampered_reset_link_is_refused(app, client):
    supporter = make_account()
    token = AccountLinks.from_config(app.config).make(tokens.RESET, supporter)
    page = client.get(f"/account/reset/{token[:-3]}xyz")
    assert page.status_code == 400 and "This link is not valid." in page.get_data(as_text=True)
    assert 'href="/account/reset"' in page.get_data(as_text=True)
