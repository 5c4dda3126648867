"""Links by email: sign-in without a password, and every way a link can be bad (malformed,
tampered, expired, replayed, superseded, meant for another purpose)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import func, select

from app.accounts import tokens
from app.accounts.models import UsedAccountLink
from app.accounts.tokens import AccountLinks, LinkError
from app.db import utcnow
from app.extensions import db
from tests.factories import make_campaign, paid_gift
from tests.support.accounts import (
    link_in,
    mail_to,
    make_account,
    post_form,
    sign_in,
)


def request_link(client, email="noa@example.org"):
    return post_form(client, "/account/signin/link", email=email)


def test_sign_in_with_an_emailed_link(app, client, outbox):
    make_account()
    response = request_link(client, email="Noa@Example.org ")
    assert (response.status_code, response.headers["Location"]) == (303, "/account/check-email")
    page = client.get("/account/check-email").get_data(as_text=True)
    assert "If <strong>noa@example.org</strong> belongs to one of our supporters" in page
    [message] = mail_to(outbox, "noa@example.org")
    assert message["Subject"] == "Your sign-in link"
    assert "15 minutes" in message.as_string()
    link = link_in(message, "/account/link/")
    opened = client.get(link)
    assert opened.status_code == 200
    assert "Sign in to Levant Wire as <strong>noa@example.org</strong>" in opened.get_data(
        as_text=True)
    assert client.get("/account").status_code == 302  # opening is not following
    followed = post_form(client, link, remember="y")
    assert followed.headers["Location"] == "/account"
    assert "remember_token=" in " ".join(followed.headers.get_all("Set-Cookie"))
    assert client.get("/account").status_code == 200


def test_a_guest_donor_signs_in_by_link_and_sees_their_gifts(app, client, outbox):
    campaign = make_campaign("twenty")
    paid_gift(campaign, "guest@example.org", amount=7500)
    request_link(client, "guest@example.org")
    post_form(client, link_in(mail_to(outbox, "guest@example.org")[-1], "/account/link/"))
    assert "$75.00" in client.get("/account/gifts").get_data(as_text=True)


def test_an_unknown_address_gets_the_same_page_and_no_mail(app, client, outbox):
    response = request_link(client, "nobody@example.org")
    assert (response.status_code, response.headers["Location"]) == (303, "/account/check-email")
    assert "nobody@example.org" in client.get("/account/check-email").get_data(as_text=True)
    assert outbox() == []


@pytest.mark.parametrize("email", ["", "noa", "noa@", "noa@@example.org"])
def test_a_malformed_address_is_refused(client, email, outbox):
    response = request_link(client, email)
    assert response.status_code == 422
    assert 'id="email-error"' in response.get_data(as_text=True)
    assert outbox() == []


def test_a_replayed_link_is_refused(app, client, outbox):
    make_account()
    request_link(client)
    link = link_in(outbox()[0], "/account/link/")
    assert post_form(client, link).status_code == 303
    other = app.test_client()
    again = other.get(link)
    assert again.status_code == 410
    assert "This link has already been used." in again.get_data(as_text=True)
    assert other.get("/account").status_code == 302


def test_a_link_followed_twice_at_once_signs_in_once(app, outbox):
    """The unique key on the link's id decides; the second request's form is already open."""
    supporter = make_account()
    links = AccountLinks.from_config(app.config)
    token = links.make(tokens.SIGNIN, supporter)
    first, second = links.check(tokens.SIGNIN, token), links.check(tokens.SIGNIN, token)
    links.spend(first, now=utcnow())
    with pytest.raises(LinkError) as error:
        links.spend(second, now=utcnow())
    assert error.value.kind == "used"
    assert db.session.scalar(select(func.count()).select_from(UsedAccountLink)) == 1


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature altered
    lambda t: t[: len(t) // 2],  # cut short when copied
    lambda t: "not-a-token",
    lambda t: t.replace(".", "", 1),
])
def test_a_tampered_link_is_refused(app, client, outbox, mangle):
    make_account()
    request_link(client)
    link = link_in(outbox()[0], "/account/link/")
    bad = "/account/link/" + mangle(link.removeprefix("/account/link/"))
    for response in (client.get(bad), post_form(client, bad, page="/account/signin")):
        assert response.status_code == 400
        assert "This link is not valid." in response.get_data(as_text=True)
    assert client.get("/account").status_code == 302


def test_an_expired_link_is_refused(app, client, monkeypatch):
    supporter = make_account()
    links = AccountLinks.from_config(app.config)
    an_hour_ago = int(time.time()) - 3600
    with monkeypatch.context() as m:
        m.setattr(TimestampSigner, "get_timestamp", lambda self: an_hour_ago)
        token = links.make(tokens.SIGNIN, supporter)
    page = client.get(f"/account/link/{token}")
    assert page.status_code == 410
    html = page.get_data(as_text=True)
    assert "This link has expired" in html and 'href="/account/signin/link"' in html
    followed = post_form(client, f"/account/link/{token}", page="/account/signin")
    assert followed.status_code == 410
    assert client.get("/account").status_code == 302


def test_a_link_for_another_purpose_does_not_work_here(app, client):
    supporter = make_account()
    reset_token = AccountLinks.from_config(app.config).make(tokens.RESET, supporter)
    assert client.get(f"/account/link/{reset_token}").status_code == 400
    assert client.get(f"/account/verify/{reset_token}").status_code == 400


def test_a_link_signed_with_another_key_is_refused(app, client):
    supporter = make_account()
    token = AccountLinks("some other secret", {}).make(tokens.SIGNIN, supporter)
    assert client.get(f"/account/link/{token}").status_code == 400


def test_a_link_stops_working_once_the_address_changes(app, client):
    supporter = make_account()
    token = AccountLinks.from_config(app.config).make(tokens.SIGNIN, supporter)
    supporter.email = "noa.new@example.org"
    db.session.commit()
    page = client.get(f"/account/link/{token}")
    assert page.status_code == 410 and "no longer works" in page.get_data(as_text=True)


def test_an_erased_supporters_link_is_refused(app, client):
    supporter = make_account()
    token = AccountLinks.from_config(app.config).make(tokens.SIGNIN, supporter)
    supporter.erased_at = utcnow()
    db.session.commit()
    assert client.get(f"/account/link/{token}").status_code == 400


def test_a_signed_in_supporter_following_anothers_link_becomes_that_supporter(app, client,
                                                                              outbox):
    """Whoever holds the link proves the inbox; the browser's earlier session is replaced."""
    make_account()
    other = make_account("dana@example.org", name="Dana Cohen")
    sign_in(client)
    token = AccountLinks.from_config(app.config).make(tokens.SIGNIN, other)
    post_form(client, f"/account/link/{token}")
    assert "Hello, Dana" in client.get("/account").get_data(as_text=True)


def test_used_links_are_forgotten_once_too_old_to_be_replayed(app):
    supporter = make_account()
    links = AccountLinks.from_config(app.config)
    max_age = app.config["SIGNIN_LINK_MAX_AGE"]
    now = utcnow()
    old, recent = (links.check(tokens.SIGNIN, links.make(tokens.SIGNIN, supporter))
                   for _ in range(2))
    links.spend(old, now=now - timedelta(seconds=max_age + 1))
    links.spend(recent, now=now - timedelta(seconds=max_age - 60))
    reset = links.check(tokens.RESET, links.make(tokens.RESET, supporter))
    links.spend(reset, now=now - timedelta(days=400))  # another purpose: not this one's to prune
    latest = links.check(tokens.SIGNIN, links.make(tokens.SIGNIN, supporter))
    links.spend(latest, now=now)
    kept = set(db.session.scalars(select(UsedAccountLink.jti)))
    assert kept == {recent.jti, reset.jti, latest.jti}
