"""A dedication's note is mail to an address a stranger typed in (issue 11 item 11).

It must not be a relay: nothing goes out before the gift's payment is recorded, at most one note
per gift however its paid event is delivered, the name it carries is a name (100 characters),
and the note says who asked for it and where to report it.
"""

from __future__ import annotations

import json
import time

import pytest
from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm.attributes import set_committed_value

from app import jobs
from app.db import utcnow
from app.extensions import db
from app.giving.models import Dedication, Gift, GiftStatus
from app.giving.services import (
    DEDICATION_NAME_MAX,
    GiftError,
    GivingRules,
    begin_checkout,
    queue_dedication_notice,
    start_gift,
)
from app.mail import OutboundEmail
from app.payments.events import event_settings, receive_event
from app.payments.models import Payment
from app.payments.providers import current_provider
from tests.conftest import migrated_url
from tests.factories import gift_request, make_campaign
from tests.support.concurrency import run_concurrently
from tests.support.flow import give, pay, submit_gift

HONOREE = "rivka@example.org"
DEDICATED = dict(dedication="honour", dedication_name="Savta Rivka", dedication_email=HONOREE)


@pytest.fixture
def campaign(app):
    return make_campaign("twenty")


def notices() -> list[OutboundEmail]:
    return list(db.session.scalars(select(OutboundEmail).where(
        OutboundEmail.recipient == HONOREE)))


def sent_to_honoree(outbox) -> list:
    return [m for m in outbox() if m["To"] == HONOREE]


def the_gift() -> Gift:
    gift = db.session.scalar(select(Gift))
    db.session.refresh(gift)
    return gift


def post_event(client, event: dict):
    payload = json.dumps(event).encode()
    return client.post("/webhooks/sandbox", data=payload, content_type="application/json",
                       headers=current_provider().sign(payload))


def completion_event(gift: Gift) -> dict:
    provider = current_provider()
    session = provider.load_session(gift.checkout_url.rsplit("/", 1)[1])
    [event] = provider.completion_events(session, name="Noa Levi", now=time.time())
    return event


def test_no_note_before_the_payment_is_recorded(client, campaign, outbox):
    started = submit_gift(client, "twenty", **DEDICATED)
    assert started.status_code == 303
    checkout = started.headers["Location"]
    assert client.get(checkout).status_code == 200  # the checkout page, opened and left
    declined = pay(client, checkout, card="4000 0000 0000 0002")
    assert declined.status_code == 402
    gift = the_gift()
    assert gift.status is GiftStatus.PENDING and gift.dedication_sent_at is None
    assert notices() == [] and sent_to_honoree(outbox) == []

    pay(client, checkout)  # the sandbox's paid event, through the webhook pipeline
    gift = the_gift()
    assert gift.status is GiftStatus.PAID and gift.dedication_sent_at is not None
    assert len(notices()) == 1 and len(sent_to_honoree(outbox)) == 1


def test_one_note_however_often_the_paid_event_comes(client, campaign, outbox):
    started = submit_gift(client, "twenty", **DEDICATED)
    checkout = started.headers["Location"]
    pay(client, checkout)
    pay(client, checkout)  # the same checkout paid again: the same events, stored once
    gift = the_gift()
    event = completion_event(gift)
    assert post_event(client, event).get_json()["duplicate"] is True
    event["id"] = "evt_sbx_replayed"  # the same payment under another event id
    assert post_event(client, event).get_json()["duplicate"] is False
    intent = {"id": "evt_sbx_intent", "type": "payment_intent.succeeded", "data": {"object": {
        "id": event["data"]["object"]["payment_intent"], "object": "payment_intent",
        "amount_received": gift.total, "currency": "usd", "metadata": {"gift": gift.public_id},
        "created": int(time.time())}}}
    assert post_event(client, intent).status_code == 200
    assert db.session.scalar(select(func.count()).select_from(Payment)) == 1
    assert len(notices()) == 1 and len(sent_to_honoree(outbox)) == 1


def test_the_claim_is_the_database_s_not_the_caller_s(client, campaign, outbox):
    """A second worker holding the gift as it was before the first claimed it still sends
    nothing: the claim is a conditional UPDATE."""
    give(client, "twenty", **DEDICATED)
    gift = the_gift()
    sent_at = gift.dedication_sent_at
    assert not queue_dedication_notice(gift, now=utcnow())
    set_committed_value(gift, "dedication_sent_at", None)  # what a stale copy would hold
    assert not queue_dedication_notice(gift, now=utcnow())
    assert the_gift().dedication_sent_at == sent_at
    assert len(notices()) == 1


@pytest.fixture(params=["sqlite", "postgresql"])
def committed(request, make_app):
    """An app on a database of its own, committed to for real (threads see each other's)."""
    return make_app(migrated_url(request, request.param, f"dedication_race_{request.param}"))


def test_workers_applying_the_paid_event_at_once_send_one_note(committed):
    app = committed
    with app.app_context():
        campaign = make_campaign("race")
        gift = start_gift(campaign, gift_request(dedication=Dedication.MEMORY,
                                                 dedication_name="Yosef",
                                                 dedication_email=HONOREE),
                          rules=GivingRules.from_config(app.config), now=utcnow())
        begin_checkout(gift, current_provider(), success_url="http://x/ok",
                       cancel_url="http://x/no")
        db.session.commit()
        event = completion_event(gift)
    ids = iter(range(100))

    def deliver():
        # Each worker a delivery of its own (another event id): all reach the handler.
        provider = current_provider()
        payload, headers = provider.encode({**event, "id": f"evt_sbx_{next(ids)}"})
        receive_event(provider, payload, headers,
                      settings=event_settings(current_app.config))
        jobs.commit()

    errors = run_concurrently(app, deliver)
    assert errors == [], errors
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Payment)) == 1
        assert len(notices()) == 1
        assert db.session.scalar(select(Gift.dedication_sent_at)) is not None


def test_a_long_name_is_refused_beside_its_field(client, campaign):
    too_long = "x" * (DEDICATION_NAME_MAX + 1)
    response = submit_gift(client, "twenty", **{**DEDICATED, "dedication_name": too_long})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert ('id="dedication_name-error">Use at most 100 characters for their name.</p>'
            in page)
    assert db.session.scalar(select(func.count()).select_from(Gift)) == 0
    longest = submit_gift(client, "twenty", **{**DEDICATED, "dedication_name": "x" * 100})
    assert longest.status_code == 303


def test_the_service_refuses_a_long_name_too(app, campaign):
    request = gift_request(dedication=Dedication.HONOUR, dedication_email=HONOREE,
                           dedication_name="Rivka, and visit cheap-pills.example " * 10)
    with pytest.raises(GiftError) as refused:
        start_gift(campaign, request, rules=GivingRules.from_config(app.config), now=utcnow())
    assert refused.value.field == "dedication_name"
    assert refused.value.message == "Use at most 100 characters for their name."


def bodies(message) -> tuple[str, str]:
    return (message.get_body(("plain",)).get_content(),
            message.get_body(("html",)).get_content())


def test_the_note_says_who_asked_and_where_to_report_it(app, client, campaign, outbox):
    app.config["ORG_CONTACT_EMAIL"] = "trust@levantwire.example"
    give(client, "twenty", name="Dina Haddad", email="dina@example.org", **DEDICATED)
    [note] = sent_to_honoree(outbox)
    for body in bodies(note):
        assert "the donor, who gave their name as Dina Haddad, entered your email address" \
               in body
        assert "trust@levantwire.example" in body
    assert 'href="mailto:trust@levantwire.example"' in bodies(note)[1]


def test_an_anonymous_donor_is_not_named_but_the_note_still_says_why(client, campaign, outbox):
    give(client, "twenty", anonymous="y", **DEDICATED)
    [note] = sent_to_honoree(outbox)
    for body in bodies(note):
        assert "Noa" not in body
        assert "a donor who asked not to be named entered your email address" in body
    # No ORG_CONTACT_EMAIL: the address receipts come from.
    text, html = bodies(note)
    assert "write to giving@levantwire.example." in text
    assert 'write to <a href="mailto:giving@levantwire.example"' in html
