"""Rotating SECRET_KEY and the Stripe webhook secret without signing anyone out or refusing
anything in flight (README "Deploy": rotating secrets).

SECRET_KEY: the new key goes in SECRET_KEY and the old one in SECRET_KEY_FALLBACKS; everything
the old key signed is still taken (sessions: tests/test_core.py; remember-me cookies, form
tokens, emailed links here), everything new is signed with the new key, and once the old key is
dropped what it signed is refused.

Stripe's webhook secret: rolled in Stripe's dashboard with the old secret kept for a while,
Stripe signs each event with both, so hosts still on the old secret and hosts on the new one
take the same event.
"""

from __future__ import annotations

import json
import time

import pytest
from flask import g
from flask_login.utils import decode_cookie
from itsdangerous import BadSignature

from app.accounts.tokens import SIGNIN, AccountLinks, LinkError
from app.config import load_settings
from app.news.services import Signer, email_fingerprint
from app.payments.base import InvalidEvent
from app.payments.stripe import StripeProvider
from app.payments.views import _card_links
from tests.support import stripe_objects as so
from tests.support.accounts import PASSWORD, make_account
from tests.support.flow import hidden_value

OLD, NEW = "the-old-secret-key", "the-new-secret-key"


def keys(app, key: str, *fallbacks: str) -> None:
    app.config["SECRET_KEY"] = key
    app.config["SECRET_KEY_FALLBACKS"] = list(fallbacks)


def test_the_fallbacks_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SECRET_KEY", NEW)
    monkeypatch.setenv("SECRET_KEY_FALLBACKS", f" {OLD} , older-still,")
    settings = load_settings(tmp_path)
    assert (settings["SECRET_KEY"], settings["SECRET_KEY_FALLBACKS"]) == (
        NEW, [OLD, "older-still"])
    monkeypatch.delenv("SECRET_KEY_FALLBACKS")
    assert load_settings(tmp_path)["SECRET_KEY_FALLBACKS"] == []


def test_a_form_opened_before_the_rotation_is_still_taken(make_app, database_url):
    def form_in(flask_app) -> tuple[str, str]:
        client = flask_app.test_client()
        page = client.get("/account/signin")
        return (client.get_cookie("session", domain="donate.test").value,
                hidden_value(page.get_data(as_text=True), "csrf_token"))

    def send(flask_app, session: str, token: str) -> int:
        client = flask_app.test_client()
        client.set_cookie("session", session, domain="donate.test")
        # Empty fields: the form is read (422, its errors shown) only past the token check,
        # which refuses with a 400.
        return client.post("/account/signin", data={"csrf_token": token}).status_code

    opened = form_in(make_app(database_url, SECRET_KEY=OLD))
    rotated = make_app(database_url, SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=[OLD])
    assert send(rotated, *opened) == 422
    assert send(rotated, *form_in(rotated)) == 422
    assert send(make_app(database_url, SECRET_KEY=NEW), *opened) == 400


def test_a_remember_me_cookie_survives_the_rotation(app, client):
    make_account()
    keys(app, OLD)
    client.post("/account/signin", data={
        "csrf_token": hidden_value(client.get("/account/signin").get_data(as_text=True),
                                   "csrf_token"),
        "email": "noa@example.org", "password": PASSWORD, "remember": "y"})
    remembered = client.get_cookie("remember_token", domain="donate.test").value
    assert decode_cookie(remembered, key=OLD) is not None

    def account_page_with_only(cookie: str) -> int:
        g.pop("_login_user", None)  # as in a new request's own context
        browser = app.test_client()
        browser.set_cookie("remember_token", cookie, domain="donate.test")
        return browser.get("/account").status_code

    keys(app, NEW, OLD)
    assert account_page_with_only(remembered) == 200
    keys(app, NEW)
    assert account_page_with_only(remembered) == 302  # to the sign-in page


def test_emailed_links_made_before_the_rotation_still_work(app):
    supporter = make_account()
    keys(app, OLD)
    signin = AccountLinks.from_config(app.config).make(SIGNIN, supporter)
    unsubscribe = Signer.from_config(app.config).unsubscribe_token(supporter.id, "n@example.org")
    card = _card_links().dumps(7)

    keys(app, NEW, OLD)
    assert AccountLinks.from_config(app.config).check(SIGNIN, signin).supporter == supporter
    assert Signer.from_config(app.config).read_unsubscribe(unsubscribe) == (
        supporter.id, email_fingerprint("n@example.org"))
    assert _card_links().loads(card) == 7
    # New links are signed with the new key only.
    fresh = _card_links().dumps(8)
    keys(app, NEW)
    assert _card_links().loads(fresh) == 8
    with pytest.raises(LinkError):
        AccountLinks.from_config(app.config).check(SIGNIN, signin)
    with pytest.raises(BadSignature):
        _card_links().loads(card)


def test_a_stripe_event_signed_with_both_secrets_is_taken_with_either(app):
    """During a roll Stripe sends one v1 signature per secret still active."""
    old_secret, new_secret = "whsec_old", "whsec_new"
    payload = json.dumps(so.event("charge.refunded", {"id": "ch_1"})).encode()
    now = int(time.time())
    both = ",".join([so.sign(payload, new_secret, now),
                     so.sign(payload, old_secret, now).partition(",")[2]])
    only_new = so.sign(payload, new_secret, now)

    def host(secret: str) -> StripeProvider:
        return StripeProvider(secret_key="sk_test_1", webhook_secret=secret)

    for secret in (old_secret, new_secret):
        event = host(secret).parse_event(payload, {"Stripe-Signature": both})
        assert event["type"] == "charge.refunded"
    assert host(new_secret).parse_event(payload, {"Stripe-Signature": only_new})
    with pytest.raises(InvalidEvent):  # once the old secret has expired at Stripe
        host(old_secret).parse_event(payload, {"Stripe-Signature": only_new})
