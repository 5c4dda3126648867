"""Hostile input gets a 404 or a 400, never a 500: ids in URLs beyond what the database holds,
malformed signature headers, and correctly signed events that are not the shape their handler
reads. The refused events are logged and nothing is stored."""

from __future__ import annotations

import json
import logging
import re
import time

import pytest
from flask import current_app
from sqlalchemy import func, select
from werkzeug.exceptions import NotFound

from app.core import MAX_ID
from app.extensions import db
from app.giving.models import GiftStatus
from app.payments.base import InvalidEvent
from app.payments.events import HANDLERS, event_settings, receive_event
from app.payments.models import Payment, Payout, ProviderEvent
from app.payments.providers import current_provider
from app.payments.shapes import OBJECT_SHAPES
from app.staff.models import Role
from tests.factories import make_campaign
from tests.support import flow
from tests.support import stripe_objects as so
from tests.support.accounts import RequestScopedClient
from tests.support.staff import csrf_token, make_person, sign_in_as


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


# -- ids in URLs ----------------------------------------------------------------------------

HUGE = [str(MAX_ID + 1), str(2**63 - 1), str(2**63), "1" + "0" * 30, "9" * 5000]
INT_VARIABLE = re.compile(r"<int:(\w+)>")
OTHER_VARIABLE = re.compile(r"<(?:\w+:)?(\w+)>")


def int_rules(app):
    rules = [r for r in app.url_map.iter_rules() if INT_VARIABLE.search(r.rule)]
    assert rules, "no route takes an <int:...>"
    return rules


@pytest.fixture
def admin_client(app):
    """Signed in as an admin: every staff page lets them in, and they are a supporter too."""
    make_campaign("walk-appeal")
    app.test_client_class = RequestScopedClient
    client = app.test_client()
    sign_in_as(client, make_person("admin@levantwire.example", roles=(Role.ADMIN,)))
    return client


@pytest.mark.parametrize("number", HUGE, ids=lambda n: f"{len(n)}-digits")
def test_every_int_route_is_a_404_beyond_the_ids_columns(app, admin_client, number):
    """As an admin (so no guard answers first), GET and POST (with a valid CSRF token) on
    every route that takes an id, with an id no INTEGER column holds (PostgreSQL's above 2^31-1,
    SQLite's above 2^63-1): a 404 page, not the driver's overflow."""
    for rule in int_rules(app):
        path = INT_VARIABLE.sub(number, rule.rule)
        path = OTHER_VARIABLE.sub("made-up", path)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            data = {"csrf_token": csrf_token(admin_client)} if method == "POST" else {}
            response = admin_client.open(path, method=method, data=data)
            assert response.status_code == 404, (method, rule.rule, response.status_code)
            assert "We could not find that page" in response.get_data(as_text=True)


def test_the_largest_id_still_reaches_the_view(app):
    """The bound is the column's: MAX_ID itself is matched (its view answers for it), one more
    is not."""
    adapter = app.url_map.bind("donate.test")
    for rule in int_rules(app):
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            path = OTHER_VARIABLE.sub("made-up", INT_VARIABLE.sub(str(MAX_ID), rule.rule))
            endpoint, values = adapter.match(path, method=method)
            assert endpoint == rule.endpoint and MAX_ID in values.values()
            with pytest.raises(NotFound):
                adapter.match(path.replace(str(MAX_ID), str(MAX_ID + 1)), method=method)


def test_a_supporter_asking_for_a_huge_plan_gets_a_404(app):
    """The probe's own case: any signed-in supporter, /account/plans/<id>."""
    app.test_client_class = RequestScopedClient
    client = app.test_client()
    sign_in_as(client, make_person("reader@example.org"))
    for number in (2**31, 2**63):
        assert client.get(f"/account/plans/{number}").status_code == 404
        response = client.post(f"/account/plans/{number}/cancel",
                               data={"csrf_token": csrf_token(client)})
        assert response.status_code == 404


# -- signature headers --------------------------------------------------------------------------


@pytest.fixture
def pending_gift(app, client):
    return flow.pending_gift(client)


def completion_event(gift) -> dict:
    provider = current_provider()
    session = provider.load_session(gift.checkout_url.rsplit("/", 1)[1])
    [event] = provider.completion_events(session, name="Noa", now=time.time())
    return event


def post_raw(client, payload: bytes, headers: dict, path: str = "/webhooks/sandbox"):
    return client.post(path, data=payload, headers=headers, content_type="application/json")


def refused(caplog, response, reason: str) -> None:
    """A 400 whose refusal was logged, with nothing stored."""
    assert response.status_code == 400, response.get_data(as_text=True)
    assert any(r.name == "app.payments.views" and r.levelno == logging.WARNING
               and reason in r.getMessage() for r in caplog.records), caplog.text
    assert count(ProviderEvent) == 0 and count(Payment) == 0 and count(Payout) == 0


def at_now(header: str) -> str:
    """The header with ``{now}`` as the current Unix time: read when the test runs, not when it
    is collected (pytest-xdist's workers must collect the same test ids)."""
    return header.replace("{now}", str(int(time.time())))


@pytest.mark.parametrize("header", [
    "t=" + "9" * 5000 + ",v1=aa",  # more digits than int() takes
    "t=" + "9" * 300 + ",v1=" + "0" * 64,  # an int, but no time
    "t=\u0661\u0662\u0663,v1=" + "0" * 64,  # digits, but not ASCII ones
    "t={now},v1=\u00e9" + "0" * 63,  # a signature that is not hex
    "t={now},v1=" + "0" * 64 + ",v1",  # a part without a value
    "t=,v1=",
    ",,,",
], ids=["5000-digits", "300-digits", "arabic-digits", "not-hex", "no-value", "empty",
        "commas"])
def test_malformed_sandbox_signature_headers_are_400(caplog, client, pending_gift, header):
    payload = json.dumps(completion_event(pending_gift)).encode()
    response = post_raw(client, payload, {"Sandbox-Signature": at_now(header)})
    refused(caplog, response, "sandbox webhook refused")
    db.session.refresh(pending_gift)
    assert pending_gift.status is GiftStatus.PENDING


@pytest.fixture
def stripe_client(make_app, database_url, app):
    stripe_app = make_app(database_url, STRIPE_SECRET_KEY="sk_test_123",
                          STRIPE_WEBHOOK_SECRET=so.WEBHOOK_SECRET,
                          STRIPE_API_BASE="http://127.0.0.1:9", STRIPE_MAX_RETRIES=0)
    with stripe_app.app_context():
        yield stripe_app.test_client()


@pytest.mark.parametrize("header", [
    "t=" + "9" * 5000 + ",v1=aa",
    "t={now},v1=\u00e9\u00e9",
    "t=1,v1=\u00ff" * 3,
], ids=["5000-digits", "not-hex", "repeated"])
def test_malformed_stripe_signature_headers_are_400(caplog, stripe_client, header):
    payload = json.dumps(so.event("charge.refunded", so.charge(amount=5000))).encode()
    response = post_raw(stripe_client, payload, {"Stripe-Signature": at_now(header)},
                        path="/webhooks/stripe")
    refused(caplog, response, "stripe webhook refused")


# -- correctly signed, malformed events -------------------------------------------------------


def signed(event) -> tuple[bytes, dict]:
    payload = event if isinstance(event, bytes) else json.dumps(event).encode()
    return payload, current_provider().sign(payload)


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def malformed(gift_event: dict) -> dict[str, bytes | dict]:
    session = gift_event["data"]["object"]
    event = {k: v for k, v in gift_event.items() if k != "data"}

    def with_object(obj, type_="checkout.session.completed", **envelope):
        return {**event, "type": type_, "data": {"object": obj}, **envelope}

    def session_without(*names):
        return with_object({k: v for k, v in session.items() if k not in names})

    payout = so.payout(amount=5000)
    return {
        "no data": event,
        "data not an object": {**event, "data": "cs_1"},
        "data without object": {**event, "data": {}},
        "object not an object": with_object("cs_sbx_1"),
        "object a list": with_object([session]),
        "empty session": with_object({}),
        "paid session without amount": session_without("amount_total"),
        "paid session without currency": session_without("currency"),
        "paid session without payment intent": session_without("payment_intent"),
        "amount as text": with_object({**session, "amount_total": "5000"}),
        "amount as true": with_object({**session, "amount_total": True}),
        "amount beyond a column": with_object({**session, "amount_total": 2**31}),
        "amount of 40 digits": with_object({**session, "amount_total": 10**40}),
        "time beyond year 9999": with_object({**session, "created": 10**20}),
        "metadata a list": with_object({**session, "metadata": ["gift"]}),
        "gift reference an object": with_object({**session, "metadata": {"gift": {"x": 1}}}),
        "event id of 300 characters": {**with_object(session), "id": "evt_" + "x" * 300},
        "event id a number": {**with_object(session), "id": 12345},
        "type a list": {**with_object(session), "type": ["checkout.session.completed"]},
        "payout amount beyond a column": with_object({**payout, "amount": 10**30},
                                                     "payout.paid"),
        "payout without arrival date": with_object(
            {k: v for k, v in payout.items() if k != "arrival_date"}, "payout.paid"),
        "payout currency of 4 letters": with_object({**payout, "currency": "usdx"},
                                                    "payout.paid"),
        "subscription item without price": with_object(
            {**so.subscription(amount=5000, gift=None), "items": {"data": [{"id": "si_1"}]}},
            "customer.subscription.updated"),
        "dispute without amount": with_object(
            {k: v for k, v in so.dispute(amount=5000).items() if k != "amount"},
            "charge.dispute.created"),
        "100,000 levels deep": (json.dumps(with_object(session))[:-2]
                                + ', "x": ' + deep(100_000) + "}}").encode(),
        "40 levels deep": with_object({**session, "customer_details": json.loads(deep(40))}),
    }


CASES = list(malformed({"id": "e", "type": "t", "data": {"object": {}}}))


@pytest.mark.parametrize("case", CASES)
def test_a_signed_malformed_event_is_400_logged_and_not_stored(caplog, client, pending_gift,
                                                               case):
    payload, headers = signed(malformed(completion_event(pending_gift))[case])
    refused(caplog, post_raw(client, payload, headers), "sandbox webhook refused")
    db.session.refresh(pending_gift)
    assert pending_gift.status is GiftStatus.PENDING


def test_the_well_formed_event_the_cases_spoil_is_taken(client, pending_gift):
    """Each case above changes one thing in this event, which is applied."""
    payload, headers = signed(completion_event(pending_gift))
    assert post_raw(client, payload, headers).status_code == 200
    db.session.refresh(pending_gift)
    assert pending_gift.status is GiftStatus.PAID


@pytest.mark.parametrize("case", ["empty session", "100,000 levels deep", "no data"])
def test_malformed_events_are_refused_before_being_queued(app, pending_gift, case):
    """With jobs on a queue an event is stored and acknowledged before it is applied: its shape
    is checked before that, so a malformed one is never stored for a worker to fail on."""
    payload, headers = signed(malformed(completion_event(pending_gift))[case])
    with pytest.raises(InvalidEvent):
        receive_event(current_provider(), payload, headers, defer=True,
                      settings=event_settings(current_app.config))
    assert count(ProviderEvent) == 0


def test_other_integrations_objects_are_still_acknowledged(client, pending_gift):
    """Fields our handlers do not read are not checked, and an unpaid session of someone
    else's needs none of a paid one's: such events are stored and ignored, as before."""
    event = completion_event(pending_gift)
    event["data"]["object"] = {"id": "cs_other", "object": "checkout.session",
                               "payment_status": "unpaid", "mode": "setup",
                               "amount_total": None, "currency": None, "custom": [[{}]]}
    payload, headers = signed(event)
    response = post_raw(client, payload, headers)
    assert response.status_code == 200
    assert count(ProviderEvent) == 1 and count(Payment) == 0


def test_a_malformed_stripe_event_is_400(caplog, stripe_client):
    evt = so.event("checkout.session.completed", {}, event_id="evt_empty")
    payload, headers = so.encode(evt)
    response = stripe_client.post("/webhooks/stripe", data=payload, headers=headers)
    refused(caplog, response, "stripe webhook refused")
    payload = ('{"id": "evt_1", "type": "x", "data": ' + deep(100_000) + "}").encode()
    response = stripe_client.post("/webhooks/stripe", data=payload, headers={
        "Stripe-Signature": so.sign(payload), "Content-Type": "application/json"})
    refused(caplog, response, "stripe webhook refused")


def test_every_handled_event_type_has_a_shape():
    assert set(HANDLERS) <= set(OBJECT_SHAPES)
