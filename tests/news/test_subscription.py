"""The daily email's subscription: consent, double opt-in, one-click unsubscribe, and a clear
answer to every bad input (malformed address, missing consent, tampered, expired or replayed
links)."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import func, select

from app.db import utcnow
from app.extensions import db
from app.news.models import NewsSubscriber, SubscriberStatus
from app.news.services import CONFIRM_SALT, email_fingerprint
from tests.support.news import (
    confirm_link,
    sign_in,
    subscribe,
    unsubscribe_link,
    verified_supporter,
)


def subscriber(email="noa@example.org") -> NewsSubscriber | None:
    return db.session.scalar(select(NewsSubscriber).where(NewsSubscriber.email == email))


def subscribers() -> int:
    return db.session.scalar(select(func.count()).select_from(NewsSubscriber))


def heading(response) -> str:
    match = re.search(r"<h1>(.*?)</h1>", response.get_data(as_text=True), re.S)
    return match.group(1).strip() if match else ""


def test_subscribe_records_consent_and_sends_a_confirmation(client, app, outbox):
    response = subscribe(client)
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/news/subscribe/check-inbox")
    assert heading(client.get(response.headers["Location"])) == "Check your inbox"

    row = subscriber()
    assert row.status is SubscriberStatus.PENDING
    assert row.email == "noa@example.org"  # lowercased
    assert row.consent_version == app.config["NEWS_CONSENT_VERSION"]
    assert row.consent_source == "/news/subscribe"
    assert abs(row.consented_at - utcnow()) < timedelta(minutes=1)
    assert row.confirmed_at is None

    [mail] = outbox()
    assert mail["To"] == "noa@example.org"
    assert mail["From"] == app.config["NEWS_MAIL_FROM"]
    assert mail["Subject"] == "Confirm your daily news email"
    # RFC 8058 on the confirmation too: a one-click way out before even confirming.
    assert mail["List-Unsubscribe"].startswith("<http://donate.test/news/unsubscribe/")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "within 7 days" in mail.get_body(("plain",)).get_content()
    assert "/news/confirm/" in mail.get_body(("html",)).get_content()


def test_the_page_shows_the_consent_text_and_links(client, app):
    html = client.get("/news/subscribe").get_data(as_text=True)
    assert app.config["NEWS_CONSENT_TEXT"] in html
    assert f'href="{app.config["NEWS_TERMS_URL"]}"' in html
    assert f'href="{app.config["NEWS_PRIVACY_URL"]}"' in html


def test_confirm_then_replay(client, outbox):
    subscribe(client)
    link = confirm_link(outbox()[0])
    first = client.get(link)
    assert first.status_code == 200
    assert heading(first) == "You are subscribed"
    row = subscriber()
    assert row.status is SubscriberStatus.CONFIRMED and row.confirmed_at is not None
    confirmed_at = row.confirmed_at
    replay = client.get(link)
    assert replay.status_code == 200
    assert heading(replay) == "Already confirmed"
    assert "There is nothing more to do" in replay.get_data(as_text=True)
    db.session.refresh(row)
    assert row.confirmed_at == confirmed_at


@pytest.mark.parametrize("email, message", [
    ("", "Enter your email address."),
    ("noa", "Enter an email address like name@example.com."),
    ("noa@", "Enter an email address like name@example.com."),
    ("noa@example", "Enter an email address like name@example.com."),
    ("no a@example.org", "Enter an email address like name@example.com."),
    ("nóa@example.org", "Enter an email address like name@example.com."),
    ("a" * 250 + "@example.org", "Use at most 254 characters."),
])
def test_malformed_addresses_are_refused_with_a_message(client, outbox, email, message):
    response = subscribe(client, email=email)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in html
    assert 'aria-invalid="true"' in html
    assert subscribers() == 0 and outbox() == []


def test_consent_is_required(client, outbox):
    response = subscribe(client, consent=False)
    assert response.status_code == 422
    assert "agree to the terms of use and the privacy policy" in response.get_data(as_text=True)
    assert subscribers() == 0 and outbox() == []


def test_a_forged_source_falls_back_and_a_missing_csrf_token_is_refused(client, outbox):
    response = subscribe(client, source="https://evil.example")
    assert response.status_code == 422
    no_token = client.post("/news/subscribe", data={"email": "noa@example.org", "consent": "y"})
    assert no_token.status_code == 400
    assert "security token" in no_token.get_data(as_text=True)
    assert subscribers() == 0


def test_asking_again_does_not_flood_the_inbox_or_reveal_the_state(client, outbox):
    first = subscribe(client)
    again = subscribe(client, email="NOA@example.org ")
    assert first.headers["Location"] == again.headers["Location"]
    assert len(outbox()) == 1  # no second email within NEWS_CONFIRM_RESEND_SECONDS
    assert subscribers() == 1
    client.get(confirm_link(outbox()[0]))
    confirmed = subscribe(client)
    assert confirmed.headers["Location"] == first.headers["Location"]  # same answer
    assert len(outbox()) == 1
    assert subscriber().status is SubscriberStatus.CONFIRMED


def test_a_pending_address_gets_a_new_link_after_the_resend_delay(app, client, outbox):
    subscribe(client)
    row = subscriber()
    row.confirm_sent_at -= timedelta(seconds=app.config["NEWS_CONFIRM_RESEND_SECONDS"] + 1)
    db.session.commit()
    subscribe(client)
    assert len(outbox()) == 2


def test_tampered_links_are_refused(client, outbox):
    subscribe(client)
    link = confirm_link(outbox()[0])
    for bad in (link[:-2] + ("AA" if not link.endswith("AA") else "BB"),
                link.rsplit(".", 1)[0],
                "/news/confirm/not-a-token",
                unsubscribe_link(outbox()[0]).replace("unsubscribe", "confirm")):
        response = client.get(bad)
        assert response.status_code == 400, bad
        assert heading(response) == "This link is not valid"
    assert subscriber().status is SubscriberStatus.PENDING


def test_expired_confirmation_link(app, client, outbox):
    subscribe(client)

    class EightDaysAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 8 * 86400

    old = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=CONFIRM_SALT, signer=EightDaysAgo)
    row = subscriber()
    response = client.get(f"/news/confirm/{old.dumps([row.id, email_fingerprint(row.email)])}")
    assert response.status_code == 410
    assert heading(response) == "This link has expired"
    html = response.get_data(as_text=True)
    assert "Confirmation links last 7 days" in html and "Subscribe to the daily email" in html
    assert subscriber().status is SubscriberStatus.PENDING


def test_a_link_for_a_subscription_that_is_gone(app, client, outbox):
    subscribe(client)
    link = confirm_link(outbox()[0])
    db.session.delete(subscriber())
    db.session.commit()
    response = client.get(link)
    assert response.status_code == 410
    assert heading(response) == "This subscription no longer exists"


def test_unsubscribe_page_then_one_click_then_replay(client, outbox):
    subscribe(client)
    client.get(confirm_link(outbox()[0]))
    link = unsubscribe_link(outbox()[0])
    page = client.get(link)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "n••@example.org" in html and "noa@example.org" not in html
    assert subscriber().status is SubscriberStatus.CONFIRMED  # opening the page changes nothing
    done = client.post(link)
    assert done.status_code == 200
    assert heading(done) == "You are unsubscribed"
    row = subscriber()
    assert row.status is SubscriberStatus.UNSUBSCRIBED and row.unsubscribed_at is not None
    replay = client.post(link)
    assert replay.status_code == 200
    assert "already unsubscribed" in replay.get_data(as_text=True)
    assert "already unsubscribed" in client.get(link).get_data(as_text=True)


def test_rfc8058_one_click_post_needs_no_token_no_cookie(app, client, outbox):
    subscribe(client)
    link = unsubscribe_link(outbox()[0])
    mail_client = app.test_client()  # a mail provider's server: no cookie, no CSRF token
    response = mail_client.post(link, data={"List-Unsubscribe": "One-Click"},
                                content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert subscriber().status is SubscriberStatus.UNSUBSCRIBED
    # ... and the same with a multipart body, as RFC 8058 also allows.
    again = mail_client.post(link, data={"List-Unsubscribe": "One-Click"},
                             content_type="multipart/form-data")
    assert again.status_code == 200


def test_only_the_unsubscribe_endpoint_is_exempt_from_csrf(app):
    exempt = app.extensions["csrf"]._exempt_views
    assert {v for v in exempt if v.startswith("app.news")} == {"app.news.views.unsubscribe_now"}


def test_tampered_unsubscribe_link_is_refused(client, outbox):
    subscribe(client)
    link = unsubscribe_link(outbox()[0])
    payload, signature = link.rsplit("/", 1)[1].split(".")
    forged = f"/news/unsubscribe/WzIsImFiYyJd.{signature}"  # another id, the old signature
    for bad in (forged, link + "x"):
        assert client.get(bad).status_code == 400
        response = client.post(bad)
        assert response.status_code == 400
        assert heading(response) == "This link is not valid"
    assert subscriber().status is SubscriberStatus.PENDING


def test_an_old_confirmation_link_does_not_undo_an_unsubscribe(client, outbox):
    subscribe(client)
    mail = outbox()[0]
    client.post(unsubscribe_link(mail))
    response = client.get(confirm_link(mail))
    assert response.status_code == 410
    assert heading(response) == "You have unsubscribed since"
    assert subscriber().status is SubscriberStatus.UNSUBSCRIBED


def test_subscribing_again_after_unsubscribing(client, outbox):
    subscribe(client)
    client.get(confirm_link(outbox()[0]))
    client.post(unsubscribe_link(outbox()[0]))
    subscribe(client)
    row = subscriber()
    assert row.status is SubscriberStatus.PENDING and row.unsubscribed_at is None
    assert len(outbox()) == 2
    client.get(confirm_link(outbox()[1]))
    assert subscriber().status is SubscriberStatus.CONFIRMED


def test_a_supporters_address_is_linked_and_signed_in_readers_see_it_filled_in(client, outbox):
    supporter = verified_supporter("noa@example.org")
    sign_in(client, supporter)
    assert 'value="noa@example.org"' in client.get("/news/subscribe").get_data(as_text=True)
    subscribe(client, email="noa@example.org", source="my-news")
    row = subscriber()
    assert row.supporter_id == supporter.id
    assert row.consent_source == "/news/my"
