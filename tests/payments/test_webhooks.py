"""The webhook pipeline: signature first, each event stored once, idempotent processing."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import select

from app.extensions import db
from app.giving.models import GiftStatus
from app.payments.models import Payment, ProviderEvent
from app.payments.providers import current_provider
from tests.support import flow
from tests.support.stripe import count


@pytest.fixture
def client(app):
    """The sandbox app's client (``tests/payments/conftest.py``'s is the Stripe app's)."""
    return app.test_client()


@pytest.fixture
def pending_gift(app, client):
    return flow.pending_gift(client)


def completion_event(gift, **overrides):
    provider = current_provider()
    session = provider.load_session(gift.checkout_url.rsplit("/", 1)[1])
    [event] = provider.completion_events(session, name="Noa", now=time.time())
    event["data"]["object"].update(overrides)
    return event


def post(client, event, *, timestamp=None, secret_headers=None):
    provider = current_provider()
    payload = json.dumps(event).encode()
    headers = secret_headers or provider.sign(payload, timestamp)
    return client.post("/webhooks/sandbox", data=payload, headers=headers,
                       content_type="application/json")


def test_signed_event_records_the_gift_once(client, pending_gift):
    event = completion_event(pending_gift)
    first = post(client, event)
    assert first.status_code == 200 and first.get_json() == {"received": True,
                                                              "duplicate": False}
    again = post(client, event)
    assert again.status_code == 200 and again.get_json()["duplicate"] is True
    assert count(ProviderEvent) == 1 and count(Payment) == 1
    db.session.refresh(pending_gift)
    assert pending_gift.status is GiftStatus.PAID


def test_same_payment_under_another_event_id_is_recorded_once(client, pending_gift):
    event = completion_event(pending_gift)
    post(client, event)
    event["id"] = "evt_sbx_redelivered"
    assert post(client, event).status_code == 200
    assert count(ProviderEvent) == 2 and count(Payment) == 1


@pytest.mark.parametrize("header", [
    {},
    {"Sandbox-Signature": "garbage"},
    {"Sandbox-Signature": f"t={int(time.time())},v1={'0' * 64}"},
])
def test_bad_signature_is_400_and_stores_nothing(client, pending_gift, header):
    response = post(client, completion_event(pending_gift), secret_headers=header or {"X": "1"})
    assert response.status_code == 400
    assert count(ProviderEvent) == 0 and count(Payment) == 0


def test_stale_timestamp_is_refused(client, pending_gift):
    response = post(client, completion_event(pending_gift), timestamp=int(time.time()) - 3600)
    assert response.status_code == 400
    assert "tolerance" in response.get_json()["error"]
    assert count(ProviderEvent) == 0


def test_tampered_body_is_refused(client, pending_gift):
    provider = current_provider()
    payload = json.dumps(completion_event(pending_gift)).encode()
    headers = provider.sign(payload)
    tampered = payload.replace(b'"amount_total": 5000', b'"amount_total": 1')
    assert tampered != payload
    response = client.post("/webhooks/sandbox", data=tampered, headers=headers)
    assert response.status_code == 400
    assert count(ProviderEvent) == 0


def test_amount_mismatch_is_kept_but_pays_nothing(client, pending_gift):
    response = post(client, completion_event(pending_gift, amount_total=1))
    assert response.status_code == 200
    event = db.session.scalar(select(ProviderEvent))
    assert "expects 5000 USD" in event.note
    assert count(Payment) == 0
    db.session.refresh(pending_gift)
    assert pending_gift.status is GiftStatus.PENDING


def test_event_for_a_gift_that_is_not_ours_is_acknowledged(client, pending_gift):
    response = post(client, completion_event(pending_gift, metadata={"gift": "someone-else"},
                                             client_reference_id=None))
    assert response.status_code == 200
    assert "no gift" in db.session.scalar(select(ProviderEvent.note))
    assert count(Payment) == 0


def test_unknown_event_types_are_stored_and_acknowledged(client, app):
    event = {"id": "evt_sbx_other", "type": "customer.created", "data": {"object": {}}}
    assert post(client, event).status_code == 200
    stored = db.session.scalar(select(ProviderEvent))
    assert (stored.type, stored.note) == ("customer.created", "event type not handled")
    assert json.loads(stored.payload) == event


def test_renewal_before_its_subscription_asks_for_redelivery(client, pending_gift):
    event = current_provider().invoice_paid_event(
        subscription_id="sub_sbx_early", customer=None, period=2, amount=2500,
        currency="USD", metadata={"gift": pending_gift.public_id}, now=time.time())
    assert post(client, event).status_code == 409
    assert count(ProviderEvent) == 0  # not stored, so the redelivery is processed


def test_renewal_of_a_subscription_not_ours_is_acknowledged_with_a_note(client, pending_gift):
    """Its metadata names no gift of ours: another product sold on the same account."""
    event = current_provider().invoice_paid_event(
        subscription_id="sub_sbx_shop", customer=None, period=2, amount=2500,
        currency="USD", metadata={}, now=time.time())
    assert post(client, event).status_code == 200
    stored = db.session.scalar(select(ProviderEvent))
    assert (stored.not_ours, stored.processed_at is not None) == (True, True)
    assert stored.note == "not ours: subscription sub_sbx_shop names no gift of ours"
    assert count(Payment) == 0


def test_other_providers_endpoint_is_404_while_the_sandbox_is_active(client, app):
    assert client.post("/webhooks/stripe", data=b"{}").status_code == 404
