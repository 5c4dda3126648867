"""Emailed links end when README says they do (issue 11 item 3).

The probe followed a sign-in link mailed before a password change or a reset, and it still
signed in; an older link still worked after a newer one was used. Every link purpose (sign-in,
address confirmation, reset, address change) is checked here against every change that ends
it, by following the link as a browser does (the page it opens, then its button with the page's
CSRF token): a stale link answers 410 with the "no longer works" message and changes nothing.
"""

from __future__ import annotations

import pytest
from itsdangerous import URLSafeTimedSerializer

from app.accounts import tokens
from app.accounts.models import Supporter
from app.accounts.services import AccountTools, change_password, confirm_email_change
from app.accounts.sessions import end_all_sessions
from app.db import utcnow
from app.extensions import db
from tests.support.accounts import (
    PASSWORD,
    RequestScopedClient,
    link_in,
    mail_to,
    make_account,
    post_form,
    sign_in,
)

EMAIL = "noa@example.org"
NEW_PASSWORD = "a fresh olive grove at dawn"
NEW_ADDRESS = "noa.levi@example.net"
STALE = "This link no longer works because a newer one was sent or your account changed since."
# Where each purpose's link opens, and what its form sends besides the CSRF token.
FOLLOW = {
    tokens.SIGNIN: ("/account/link/", {}),
    tokens.VERIFY: ("/account/verify/", {}),
    tokens.RESET: ("/account/reset/", {"password": "another quiet river at noon"}),
    tokens.EMAIL_CHANGE: ("/account/email/", {}),
}


@pytest.fixture
def browser(app):
    app.test_client_class = RequestScopedClient
    return app.test_client


@pytest.fixture
def tools(app):
    return AccountTools.from_config(app.config)


def account_for(purpose: str) -> Supporter:
    """A supporter a link of ``purpose`` is sent to (a confirmation link goes to an address
    not yet proven)."""
    return make_account(verified=purpose != tokens.VERIFY)


def send(purpose: str, supporter: Supporter, tools: AccountTools, *,
         new_email: str = NEW_ADDRESS) -> str:
    """A link of ``purpose`` made as the service sending it would; committed."""
    claims = {}
    if purpose == tokens.EMAIL_CHANGE:
        supporter.pending_email = new_email
        claims = {"new": new_email}
    token = tools.links.make(purpose, supporter, **claims)
    db.session.commit()
    return token


def follow(client, purpose: str, token: str):
    """Open the link, then press its button: the button's answer (or, when the page refused
    to open, the refusal, after checking that a POST is refused the same way)."""
    prefix, fields = FOLLOW[purpose]
    path = prefix + token
    opened = client.get(path)
    if opened.status_code != 200:
        pressed = post_form(client, path, page="/account/signin", **fields)
        assert pressed.status_code == opened.status_code
        return opened
    return post_form(client, path, **fields)


def assert_stale(response):
    assert response.status_code == 410, response.status_code
    assert STALE in response.get_data(as_text=True)


def signed_in(client) -> bool:
    return client.get("/account").status_code == 200


# -- every purpose, every change --------------------------------------------------------------

def change_the_password(supporter, tools):
    change_password(supporter, current=PASSWORD, new=NEW_PASSWORD, tools=tools)


def sign_out_everywhere(supporter, tools):
    end_all_sessions(supporter)


def change_the_address(supporter, tools):
    """Move the account to another address through its own (newest) confirmation link."""
    confirm_email_change(send(tokens.EMAIL_CHANGE, supporter, tools,
                              new_email="noa.moved@example.com"),
                         links=tools.links, now=utcnow())


CHANGES = {
    "password changed": change_the_password,
    "signed out everywhere": sign_out_everywhere,
    "address changed": change_the_address,
}


@pytest.mark.parametrize("purpose", tokens.PURPOSES)
def test_every_link_works_while_nothing_changed(app, browser, tools, purpose):
    """The control for the tests below: the same link, followed at once, does its work."""
    supporter = account_for(purpose)
    token = send(purpose, supporter, tools)
    client = browser()
    assert follow(client, purpose, token).status_code == 303
    assert signed_in(client)


@pytest.mark.parametrize("purpose, change", [
    (purpose, change) for purpose in tokens.PURPOSES for change in sorted(CHANGES)
    # Moving the address takes a newer link of the same purpose, tested on its own below.
    if (purpose, change) != (tokens.EMAIL_CHANGE, "address changed")])
def test_a_link_stops_working_when_the_account_changes(app, browser, tools, purpose, change):
    supporter = account_for(purpose)
    token = send(purpose, supporter, tools)
    CHANGES[change](supporter, tools)
    db.session.commit()
    client = browser()
    assert_stale(follow(client, purpose, token))
    assert not signed_in(client)


@pytest.mark.parametrize("purpose", tokens.PURPOSES)
def test_only_the_newest_link_of_a_purpose_works(app, browser, tools, purpose):
    """Sent twice: the older link is stale as soon as the newer one is sent, and stays stale
    once the newer one has been used."""
    supporter = account_for(purpose)
    older = send(purpose, supporter, tools)
    newer = send(purpose, supporter, tools)
    client = browser()
    assert_stale(follow(client, purpose, older))
    assert not signed_in(client)

    assert follow(client, purpose, newer).status_code == 303
    assert signed_in(client)

    late = browser()
    assert_stale(follow(late, purpose, older))
    assert not signed_in(late)


@pytest.mark.parametrize("purpose", tokens.PURPOSES)
def test_a_newer_link_of_another_purpose_leaves_the_link_working(app, browser, tools, purpose):
    supporter = account_for(purpose)
    token = send(purpose, supporter, tools)
    for other in tokens.PURPOSES:
        if other not in (purpose, tokens.EMAIL_CHANGE):  # asking another address ends the one
            send(other, supporter, tools)
    client = browser()
    assert follow(client, purpose, token).status_code == 303
    assert signed_in(client)


def test_a_link_made_before_links_carried_the_account_state_is_stale(app, browser, tools):
    """Links mailed by the previous release name only the supporter, an id and the address."""
    supporter = make_account()
    old_style = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="account-link-signin")
    token = old_style.dumps({"sid": supporter.id, "jti": "legacy-link-id-0001",
                             "email": supporter.email})
    assert_stale(follow(browser(), tokens.SIGNIN, token))


# -- through the mail, as the probe did -------------------------------------------------------

def test_a_sign_in_link_mailed_before_a_password_change_no_longer_signs_in(app, browser,
                                                                           outbox):
    make_account()
    post_form(browser(), "/account/signin/link", email=EMAIL)
    link = link_in(mail_to(outbox, EMAIL)[-1], "/account/link/")
    owner = browser()
    sign_in(owner)
    changed = post_form(owner, "/account/profile/password", page="/account/profile",
                        current_password=PASSWORD, new_password=NEW_PASSWORD)
    assert changed.status_code == 303

    thief = browser()
    assert_stale(follow(thief, tokens.SIGNIN, link.removeprefix("/account/link/")))
    assert not signed_in(thief)


def test_a_reset_ends_every_sign_in_link_mailed_before_it(app, browser, outbox):
    make_account()
    post_form(browser(), "/account/signin/link", email=EMAIL)
    signin_link = link_in(mail_to(outbox, EMAIL)[-1], "/account/link/")
    owner = browser()
    post_form(owner, "/account/reset", email=EMAIL)
    reset_link = link_in(mail_to(outbox, EMAIL)[-1], "/account/reset/")
    assert post_form(owner, reset_link, password=NEW_PASSWORD).status_code == 303

    thief = browser()
    assert_stale(thief.get(signin_link))
    assert not signed_in(thief)


def test_an_older_sign_in_link_fails_once_a_newer_one_was_used(app, browser, outbox):
    make_account()
    for _ in range(2):
        post_form(browser(), "/account/signin/link", email=EMAIL)
    older, newer = (link_in(m, "/account/link/") for m in mail_to(outbox, EMAIL))
    owner = browser()
    assert post_form(owner, newer).status_code == 303

    thief = browser()
    assert_stale(thief.get(older))
    assert not signed_in(thief)


def test_sign_out_everywhere_ends_a_mailed_reset_link(app, browser, outbox):
    make_account()
    post_form(browser(), "/account/reset", email=EMAIL)
    reset_link = link_in(mail_to(outbox, EMAIL)[-1], "/account/reset/")
    owner = browser()
    sign_in(owner)
    assert post_form(owner, "/account/signout/everywhere", page="/account").status_code == 303

    thief = browser()
    assert_stale(thief.get(reset_link))
    assert not signed_in(thief)
    sign_in(browser(), password=PASSWORD)  # nothing was reset


def test_the_command_line_prints_the_one_link_it_mails(app, browser, outbox):
    """``flask users create --mail`` prints a link and mails one: the same link, since an
    older one would be stale."""
    result = app.test_cli_runner().invoke(args=[
        "users", "create", "--email", "ops@levantwire.example", "--role", "fundraiser", "--mail"])
    assert result.exit_code == 0, result.output
    printed = "/account/link/" + result.output.split("/account/link/")[1].split()[0]
    assert link_in(mail_to(outbox, "ops@levantwire.example")[-1], "/account/link/") == printed
    client = browser()
    assert follow(client, tokens.SIGNIN, printed.removeprefix("/account/link/")).status_code \
        == 303
    assert client.get("/staff/campaigns").status_code == 200
