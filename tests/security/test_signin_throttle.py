"""Anyone could lock a user out (issue 11 item 5): after 10 failed sign-ins from anywhere the
right password was refused for 15 minutes. Now failures are counted per account and client
(``app/accounts/throttle.py``): the client that keeps failing waits longer and longer, told how
long, while the owner signs in from theirs; past a soft limit per account, clients that failed on
it are asked to use an emailed link, and clients that did not fail sign in as always.

Clients are told apart by their address (``REMOTE_ADDR`` here; the real one behind
``TRUSTED_PROXIES``). Limits are on, as in production; the app fixture keeps what the tests
write inside their rolled-back transaction.
"""

from __future__ import annotations

import re
import time

import pytest
from redis import Redis

from app.accounts.throttle import client_key
from tests.support.accounts import PASSWORD, mail_to, make_account, post_form

OWNER = "198.51.100.20"
ATTACKER = "203.0.113.66"
WRONG = "a wrong passphrase"


@pytest.fixture
def throttled(make_app, database_url, app):
    """An app with sign-in limits on (production's unless overridden) and a client per
    address."""
    def build(**settings):
        limited_app = make_app(database_url, RATELIMIT_ENABLED=True, **{
            "RATELIMIT_SIGNIN": "1000 per minute", **settings})

        def client(address: str):
            made = limited_app.test_client()
            made.environ_base["REMOTE_ADDR"] = address
            return made
        return client
    return build


def sign_in(client, email="noa@example.org", password=WRONG):
    return post_form(client, "/account/signin", email=email, password=password)


def summary(response) -> str:
    match = re.search(r'data-error-summary>(.*?)</div>', response.get_data(as_text=True), re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split()) if match else ""


def test_fifty_failures_from_one_client_do_not_stop_the_owner_on_another(throttled):
    make_account()
    client_for = throttled()  # production's limits: 5 a minute, 10 in 15 minutes, 20 a day
    attacker = client_for(ATTACKER)
    answers = [sign_in(attacker).status_code for _ in range(50)]
    assert answers == [422] * 5 + [429] * 45
    # The owner, from their own connection, is not held back by any of it.
    assert sign_in(client_for(OWNER), password=PASSWORD).status_code == 303


def test_past_the_accounts_soft_limit_the_owner_still_signs_in(throttled):
    """With the per-client limit wide enough for 50 guesses, the account's soft limit (10
    failures in 15 minutes from anywhere) stops the guesser after 10, and not the owner."""
    make_account()
    client_for = throttled(RATELIMIT_SIGNIN_FAILURES="50 per day")
    attacker = client_for(ATTACKER)
    assert [sign_in(attacker).status_code for _ in range(50)] == [422] * 10 + [429] * 40
    assert sign_in(client_for(OWNER), password=PASSWORD).status_code == 303


def test_fifty_counted_failures_do_not_stop_the_owner_either(throttled):
    """Both limits wide enough for 50 real guesses from one client: the owner, from another,
    signs in with the right password."""
    make_account()
    client_for = throttled(RATELIMIT_SIGNIN_FAILURES="50 per day",
                           RATELIMIT_SIGNIN_ACCOUNT="100 per 15 minutes")
    attacker = client_for(ATTACKER)
    assert [sign_in(attacker).status_code for _ in range(50)] == [422] * 50
    refused = sign_in(attacker, password=PASSWORD)
    assert refused.status_code == 429
    assert "Try again in 24 hours" in summary(refused)
    assert sign_in(client_for(OWNER), password=PASSWORD).status_code == 303


def test_the_attackers_client_is_told_how_long_to_wait(throttled, outbox):
    make_account()
    attacker = throttled()(ATTACKER)
    for _ in range(5):
        assert sign_in(attacker).status_code == 422
    refused = sign_in(attacker)
    assert refused.status_code == 429
    assert summary(refused) == (
        "Your password was not checked Too many failed sign-ins to this account from your "
        "connection. Try again in 1 minute, or sign in with a link we email you.")
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    # The right password gets the same answer: a throttled guesser learns nothing from it.
    right = sign_in(attacker, password=PASSWORD)
    assert right.status_code == 429 and summary(right) == summary(refused)
    # The page offers the emailed link, for this address, on a form that works.
    html = refused.get_data(as_text=True)
    assert 'action="/account/signin/link"' in html
    assert 'name="email" value="noa@example.org"' in html
    token = re.search(r'name="csrf_token" value="([^"]*)"', html).group(1)
    sent = attacker.post("/account/signin/link", data={"csrf_token": token,
                                                        "email": "noa@example.org"},
                         buffered=True)
    assert sent.status_code == 303
    assert [m["Subject"] for m in mail_to(outbox, "noa@example.org")] == ["Your sign-in link"]


def test_the_wait_grows_with_the_failures(throttled):
    attacker = throttled(RATELIMIT_SIGNIN_FAILURES="2 per 1 second;4 per 2 hours")(ATTACKER)
    assert [sign_in(attacker).status_code for _ in range(3)] == [422, 422, 429]
    time.sleep(1.1)  # the short limit frees up; the long one is half used
    assert [sign_in(attacker).status_code for _ in range(3)] == [422, 422, 429]
    refused = sign_in(attacker)
    assert "Try again in 2 hours" in summary(refused)
    assert 7000 < int(refused.headers["Retry-After"]) <= 7200


def test_the_owners_typos_are_tolerated(throttled):
    make_account()
    owner = throttled()(OWNER)
    for _ in range(4):
        assert sign_in(owner).status_code == 422
    assert sign_in(owner, password=PASSWORD).status_code == 303
    # Signing in forgets those typos: as many again are tolerated.
    post_form(owner, "/account/signout", page="/account")
    for _ in range(4):
        assert sign_in(owner).status_code == 422
    assert sign_in(owner, password=PASSWORD).status_code == 303


def test_a_spread_out_guesser_meets_the_accounts_soft_limit(throttled):
    """Ten addresses failing once each use up the account's 10 failures in 15 minutes: each
    of them is then asked for an emailed link, right password or not, while a client that has
    not failed signs in."""
    make_account()
    client_for = throttled()
    guessers = [client_for(f"192.0.2.{n}") for n in range(1, 11)]
    for guesser in guessers:
        assert sign_in(guesser).status_code == 422
    asked = sign_in(guessers[0], password=PASSWORD)
    assert asked.status_code == 429
    assert "many failed sign-ins lately. To keep it safe, sign in with a link we email you, " \
           "or try your password again in 15 minutes." in summary(asked)
    assert 'action="/account/signin/link"' in asked.get_data(as_text=True)
    assert sign_in(guessers[5]).status_code == 429
    # A new client gets one guess, then is asked for a link too.
    newcomer = client_for("192.0.2.99")
    assert sign_in(newcomer).status_code == 422
    assert sign_in(newcomer, password=PASSWORD).status_code == 429
    # The owner's client has not failed: the right password signs in.
    owner = client_for(OWNER)
    response = sign_in(owner, password=PASSWORD)
    assert response.status_code == 303, summary(response)
    assert owner.get("/account").status_code == 200


def test_one_client_trying_many_accounts_is_limited(throttled):
    """Credential stuffing: every attempt from a client counts, whatever the account."""
    client_for = throttled(RATELIMIT_SIGNIN="3 per minute")
    stuffer = client_for(ATTACKER)
    codes = [sign_in(stuffer, f"person{n}@example.org").status_code for n in range(4)]
    assert codes == [422, 422, 422, 429]
    assert sign_in(client_for(OWNER), "person9@example.org").status_code == 422


def test_an_ipv6_client_is_counted_by_its_slash_64():
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::9") == \
        "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:192.0.2.7") == client_key("192.0.2.7") == "192.0.2.7"


def test_addresses_in_one_ipv6_slash_64_share_their_failures(throttled):
    client_for = throttled(RATELIMIT_SIGNIN_FAILURES="2 per minute")
    assert sign_in(client_for("2001:db8:1:2::1")).status_code == 422
    assert sign_in(client_for("2001:db8:1:2::2")).status_code == 422
    assert sign_in(client_for("2001:db8:1:2:ffff::3")).status_code == 429
    assert sign_in(client_for("2001:db8:1:3::1")).status_code == 422


def test_the_counts_are_shared_by_every_process_through_redis(make_app, database_url, app,
                                                             redis_url):
    make_account()
    first, second = (make_app(database_url, REDIS_URL=redis_url, RATELIMIT_ENABLED=True,
                              RATELIMIT_SIGNIN_FAILURES="3 per minute") for _ in range(2))
    clients = []
    for process in (first, second, first, second):
        client = process.test_client()
        client.environ_base["REMOTE_ADDR"] = ATTACKER
        clients.append(client)
    assert [sign_in(client).status_code for client in clients] == [422, 422, 422, 429]
    owner = second.test_client()
    owner.environ_base["REMOTE_ADDR"] = OWNER
    assert sign_in(owner, password=PASSWORD).status_code == 303
    with Redis.from_url(redis_url) as connection:
        keys = [key.decode() for key in connection.keys("LIMITS*")]
    assert any("signin-failures" in key for key in keys)
    assert not any("noa@example.org" in key for key in keys)  # a keyed hash names the account


def test_without_redis_each_process_counts_in_memory(make_app, database_url, app, caplog):
    """Redis down: sign-in still answers, and still throttles, in this process's memory."""
    make_account()
    down = make_app(database_url, REDIS_URL="redis://127.0.0.1:9/0", RATELIMIT_ENABLED=True,
                    RATELIMIT_SIGNIN_FAILURES="2 per minute")
    attacker, owner = down.test_client(), down.test_client()
    attacker.environ_base["REMOTE_ADDR"] = ATTACKER
    owner.environ_base["REMOTE_ADDR"] = OWNER
    assert [sign_in(attacker).status_code for _ in range(3)] == [422, 422, 429]
    assert sign_in(owner, password=PASSWORD).status_code == 303
    assert "falling back" in caplog.text
