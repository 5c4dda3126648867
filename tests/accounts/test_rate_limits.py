"""Sign-in attempts and the forms that send mail are rate limited per client address and per
account (the email typed), and a limited answer says nothing about whether the account exists.
(How failed sign-ins are throttled without locking the owner out: tests/security/
test_signin_throttle.py.)

These tests build an app with limits switched on; the ``app`` fixture keeps whatever they write
inside the test's rolled-back transaction.
"""

from __future__ import annotations

import re

import pytest

from app.errors import wait_phrase
from tests.support.accounts import PASSWORD, make_account, post_form


@pytest.fixture
def limited(make_app, database_url, app):
    def build(**limits):
        settings = {"RATELIMIT_SIGNIN": "100 per minute",
                    "RATELIMIT_SIGNIN_FAILURES": "100 per minute",
                    "RATELIMIT_SIGNIN_ACCOUNT": "100 per minute",
                    "RATELIMIT_ACCOUNT_MAIL": "100 per minute",
                    "RATELIMIT_ACCOUNT_MAIL_PER_EMAIL": "100 per minute", **limits}
        return make_app(database_url, RATELIMIT_ENABLED=True, **settings).test_client()
    return build


def sign_in(client, email, password="a wrong passphrase"):
    return post_form(client, "/account/signin", email=email, password=password).status_code


def test_failed_sign_ins_are_limited_per_account_and_client(limited):
    client = limited(RATELIMIT_SIGNIN_FAILURES="3 per minute")
    assert [sign_in(client, "noa@example.org") for _ in range(4)] == [422, 422, 422, 429]
    # The same address however it is typed.
    assert sign_in(client, " NOA@example.org ") == 429
    # Another account from the same client is not held back by it.
    assert sign_in(client, "dana@example.org") == 422


def test_the_limit_holds_even_for_the_right_password(limited):
    """Otherwise a guesser would learn the password from which answer is not a 429."""
    make_account()
    client = limited(RATELIMIT_SIGNIN_FAILURES="2 per minute")
    assert [sign_in(client, "noa@example.org") for _ in range(2)] == [422, 422]
    assert sign_in(client, "noa@example.org", PASSWORD) == 429


def test_successful_sign_ins_do_not_use_up_the_accounts_limits(limited):
    make_account()
    client = limited(RATELIMIT_SIGNIN_FAILURES="2 per minute",
                     RATELIMIT_SIGNIN_ACCOUNT="2 per minute")
    assert [sign_in(client, "noa@example.org", PASSWORD) for _ in range(3)] == [303, 303, 303]


def test_sign_ins_are_limited_per_client_address(limited):
    client = limited(RATELIMIT_SIGNIN="3 per minute")
    codes = [sign_in(client, f"person{i}@example.org") for i in range(4)]
    assert codes == [422, 422, 422, 429]
    other = limited(RATELIMIT_SIGNIN="3 per minute")
    other.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert sign_in(other, "person9@example.org") == 422


def test_a_limited_answer_is_the_same_for_known_and_unknown_addresses(limited):
    make_account()
    client = limited(RATELIMIT_SIGNIN_FAILURES="1 per minute")
    sign_in(client, "noa@example.org")
    sign_in(client, "nobody@example.org")
    known = post_form(client, "/account/signin", email="noa@example.org", password="x" * 12)
    unknown = post_form(client, "/account/signin", email="nobody@example.org",
                        password="x" * 12)
    assert known.status_code == unknown.status_code == 429
    assert "Too many failed sign-ins" in known.get_data(as_text=True)

    def page(response, email):  # but for the address typed, and the form's token
        html = response.get_data(as_text=True).replace(email, "EMAIL")
        return re.sub(r'name="csrf_token" type="hidden" value="[^"]*"', "TOKEN",
                      re.sub(r'name="csrf_token" value="[^"]*"', "TOKEN", html))
    assert page(known, "noa@example.org") == page(unknown, "nobody@example.org")


def test_mail_to_one_address_is_limited_across_the_forms_that_send_it(limited, outbox):
    make_account()
    client = limited(RATELIMIT_ACCOUNT_MAIL_PER_EMAIL="2 per minute")
    assert post_form(client, "/account/signin/link", email="noa@example.org").status_code == 303
    assert post_form(client, "/account/reset", email="noa@example.org").status_code == 303
    third = post_form(client, "/account/signup", email="noa@example.org", password=PASSWORD,
                      name="Noa")
    assert third.status_code == 429
    assert post_form(client, "/account/reset", email="Noa@Example.org").status_code == 429
    # Other addresses are not affected.
    assert post_form(client, "/account/reset", email="dana@example.org").status_code == 303


def test_mail_forms_are_limited_per_client_address(limited):
    client = limited(RATELIMIT_ACCOUNT_MAIL="2 per minute")
    codes = [post_form(client, "/account/reset", email=f"p{i}@example.org").status_code
             for i in range(3)]
    assert codes == [303, 303, 429]
    assert post_form(client, "/account/signin/link", email="q@example.org").status_code == 429


def test_looking_at_the_forms_is_never_limited(limited):
    client = limited(RATELIMIT_SIGNIN="1 per minute", RATELIMIT_ACCOUNT_MAIL="1 per minute")
    for _ in range(3):
        assert client.get("/account/signin").status_code == 200
        assert client.get("/account/reset").status_code == 200


def test_refused_sign_ups_do_not_use_up_the_mail_limit(limited, outbox):
    """A donor who fumbles the sign-up password (refused: nothing is mailed) can still have a
    sign-in link sent to the same address."""
    make_account(password=None)  # a guest donor's account
    client = limited(RATELIMIT_ACCOUNT_MAIL_PER_EMAIL="3 per 15 minutes")
    refused = [post_form(client, "/account/signup", email="noa@example.org", password=weak,
                         name="Noa").status_code
               for weak in ("password", "short", "123456789")]
    assert refused == [422, 422, 422]
    assert outbox() == []
    assert post_form(client, "/account/signin/link", email="noa@example.org").status_code == 303
    assert [m["Subject"] for m in outbox()] == ["Your sign-in link"]


def test_refused_forms_still_count_per_client_address(limited):
    client = limited(RATELIMIT_ACCOUNT_MAIL="2 per minute")
    for _ in range(2):
        assert post_form(client, "/account/signup", email="noa@example.org",
                         password="password", name="Noa").status_code == 422
    assert post_form(client, "/account/signin/link",
                     email="dana@example.org").status_code == 429


def test_the_mail_limit_bites_once_mails_were_sent_and_says_how_long(limited, outbox):
    make_account()
    client = limited(RATELIMIT_ACCOUNT_MAIL_PER_EMAIL="3 per 15 minutes")
    sent = [post_form(client, "/account/signin/link", email="noa@example.org").status_code
            for _ in range(3)]
    assert sent == [303, 303, 303] and len(outbox()) == 3
    limited_answer = post_form(client, "/account/signup", email="noa@example.org",
                               password=PASSWORD, name="Noa")
    assert limited_answer.status_code == 429
    assert "Try again in 15 minutes." in limited_answer.get_data(as_text=True)
    assert 14 * 60 < int(limited_answer.headers["Retry-After"]) <= 15 * 60
    assert len(outbox()) == 3
    # Unknown addresses count like known ones: the limit does not tell them apart.
    for _ in range(3):
        post_form(client, "/account/signin/link", email="nobody@example.org")
    unknown = post_form(client, "/account/signin/link", email="nobody@example.org")
    assert unknown.status_code == 429


def test_the_limited_page_names_the_longest_wait(limited):
    client = limited(RATELIMIT_ACCOUNT_MAIL="1 per day")
    assert post_form(client, "/account/reset", email="noa@example.org").status_code == 303
    answer = post_form(client, "/account/reset", email="noa@example.org")
    assert answer.status_code == 429
    assert "Try again in 24 hours." in answer.get_data(as_text=True)
    assert 23 * 3600 < int(answer.headers["Retry-After"]) <= 24 * 3600


@pytest.mark.parametrize(("seconds", "phrase"), [
    (0.2, "1 minute"), (60, "1 minute"), (61, "2 minutes"), (14 * 60 + 5, "15 minutes"),
    (90 * 60, "90 minutes"), (90 * 60 + 1, "2 hours"), (86399, "24 hours")])
def test_the_wait_is_rounded_up(seconds, phrase):
    assert wait_phrase(seconds) == phrase
