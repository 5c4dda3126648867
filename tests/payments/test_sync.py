"""The catch-up sync (issue 16): Stripe's events listed from ``GET /v1/events`` (every page)
and applied when not stored yet, exactly as delivered webhooks: a scenario delivered only
through the sync ends as through webhooks, and mixed delivery changes nothing."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta

from flask import current_app
from sqlalchemy import select
from werkzeug import Response

from app.db import utcnow
from app.extensions import db
from app.finance.models import Receipt
from app.mail import OutboundEmail
from app.payments.events import HANDLERS, event_settings
from app.payments.models import ProviderEvent
from app.payments.providers import current_provider
from app.payments.sync import sync_events
from tests.support import stripe_objects as so
from tests.support.stripe import (
    count,
    deliver,
    deliver_until_done,
    ledger_state,
    reset_ledger,
    serve_charge,
)

PAGE = 2  # events a page of the list holds here (Stripe's: up to 100)


def scenario(g: str) -> list[dict]:
    """A gift paid and refunded in part, oldest first as Stripe lists them. The refund and
    the checkout share a second, and Stripe lists events of one second in any order: here the
    refund first, so the sync must come back to it."""
    t = int(time.time()) - 3600
    return [
        so.event("charge.refunded", so.charge(amount=5000, refunded=2000), created=t),
        so.event("checkout.session.completed", so.checkout_session(gift=g, amount=5000),
                 created=t),
        so.event("payment_intent.succeeded", so.payment_intent(gift=g, amount=5000),
                 created=t + 1),
    ]


def serve_events(httpserver, events: list[dict]) -> list[dict]:
    """``GET /v1/events``: newest first, ``PAGE`` a page, later pages after
    ``starting_after``, only those created since ``created[gte]``. Returns the query of each
    request made."""
    queries = []

    def page(request):
        args = request.args
        queries.append(args.to_dict(flat=False))
        newest_first = [e for e in reversed(events) if e["created"] >= int(args["created[gte]"])]
        ids = [e["id"] for e in newest_first]
        start = ids.index(args["starting_after"]) + 1 if "starting_after" in args else 0
        return Response(json.dumps(so.stripe_page(
            newest_first[start:start + PAGE], "/v1/events",
            has_more=start + PAGE < len(newest_first))), content_type="application/json")

    httpserver.expect_request("/v1/events", method="GET").respond_with_handler(page)
    return queries


def money_state(gift_id: int):
    """What the donor and finance see: the ledger, the receipts, the mail sent (receipt
    numbers left out: a reset ledger does not give them back)."""
    receipts = db.session.execute(select(Receipt.amount, Receipt.status)
                                  .order_by(Receipt.id)).all()
    mail = sorted(re.sub(r"\d{4}-\d+", "N", subject)
                  for subject in db.session.scalars(select(OutboundEmail.subject)))
    return ledger_state(gift_id), receipts, mail


def test_a_scenario_delivered_only_through_sync_ends_as_through_webhooks(stripe_app, client,
                                                                        gift, httpserver):
    g = gift.public_id
    serve_charge(httpserver, refunds=[so.refund(refund_id="re_test_1", amount=2000)], gift=g)
    events = scenario(g)
    queries = serve_events(httpserver, events)
    deliver_until_done(client, events)
    through_webhooks = money_state(gift.id)
    assert through_webhooks[0][1], "the scenario moved money"

    reset_ledger(gift)
    since = utcnow() - timedelta(hours=2)
    report = sync_events(current_provider(), since=since,
                         settings=event_settings(current_app.config))
    assert (report.listed, report.applied, report.known, report.waiting, report.failed) == (
        3, 3, 0, [], [])
    assert money_state(gift.id) == through_webhooks
    # Every page was asked for, each for the types handled since the time given.
    assert [q.get("starting_after") for q in queries] == [None, [events[1]["id"]]]
    first = queries[0]
    assert first["created[gte]"] == [str(int(since.timestamp()))]
    assert first["limit"] == ["100"]
    assert {v[0] for k, v in first.items() if k.startswith("types[")} == set(HANDLERS)
    # Stored as a delivery would be: the raw event, once, processed.
    assert db.session.scalars(select(ProviderEvent.event_id).where(
        ProviderEvent.processed_at.is_not(None)).order_by(ProviderEvent.event_id)).all() == \
        sorted(e["id"] for e in events)

    again = sync_events(current_provider(), since=since,
                         settings=event_settings(current_app.config))
    assert (again.listed, again.applied, again.known) == (3, 0, 3)
    assert money_state(gift.id) == through_webhooks
    assert count(ProviderEvent) == 3


def test_mixed_delivery_changes_nothing(stripe_app, client, gift, httpserver):
    g = gift.public_id
    serve_charge(httpserver, refunds=[so.refund(refund_id="re_test_1", amount=2000)], gift=g)
    events = scenario(g)
    serve_events(httpserver, events)
    deliver_until_done(client, events)
    through_webhooks = money_state(gift.id)

    reset_ledger(gift)
    refund, checkout, _ = events
    assert deliver(client, refund).status_code == 409  # early: not stored
    assert deliver(client, checkout).status_code == 200
    report = sync_events(current_provider(), since=utcnow() - timedelta(hours=2),
                         settings=event_settings(current_app.config))
    assert (report.listed, report.applied, report.known, report.waiting) == (3, 2, 1, [])
    assert money_state(gift.id) == through_webhooks
    # Stripe's own retry of the refund, after the sync: a duplicate.
    assert deliver(client, refund).get_json()["duplicate"] is True
    assert money_state(gift.id) == through_webhooks


def test_an_event_whose_payment_is_never_listed_still_waits(stripe_app, gift, httpserver):
    g = gift.public_id
    serve_charge(httpserver, refunds=[so.refund(refund_id="re_test_1", amount=2000)], gift=g)
    refund = scenario(g)[0]
    serve_events(httpserver, [refund])
    report = sync_events(current_provider(), since=utcnow() - timedelta(hours=2),
                         settings=event_settings(current_app.config))
    assert (report.listed, report.applied, report.waiting) == (1, 0, [refund["id"]])
    assert count(ProviderEvent) == 0  # the next sync, or Stripe's retry, tries it again


def test_flask_payments_sync(stripe_app, gift, httpserver):
    g = gift.public_id
    serve_charge(httpserver, refunds=[so.refund(refund_id="re_test_1", amount=2000)], gift=g)
    queries = serve_events(httpserver, scenario(g))
    runner = stripe_app.test_cli_runner()
    result = runner.invoke(args=["payments", "sync", "--since", "2h"])
    assert result.exit_code == 0, result.output
    assert result.output == ("listed 3 event(s): 3 applied, 0 already stored, "
                             "0 still wait for another event, 0 failed\n")
    assert abs(int(queries[0]["created[gte]"][0]) - (time.time() - 7200)) < 60
    for bad in ("72", "3w", "-1h", "h"):
        refused = runner.invoke(args=["payments", "sync", "--since", bad])
        assert refused.exit_code == 2 and "a number of minutes, hours or days" in refused.output
