"""``flask payments process-pending``: the sweep of stored webhook events no job applied goes on
past one it cannot apply, reports it with the reason, and only then exits non-zero."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import db
from app.giving.models import Gift, GiftStatus
from app.payments import events
from app.payments.models import Payment, PaymentKind, ProviderEvent
from tests.factories import make_campaign
from tests.support import stripe_objects as so
from tests.support.flow import submit_gift
from tests.support.stripe import deliver, serve_charge, stripe_config


@pytest.fixture
def stored_only(make_app, database_url, app, httpserver):
    """A Stripe app whose job queue cannot be reached (nothing listens on port 1): webhooks
    store their events and leave them for the sweep."""
    flask_app = make_app(database_url, **stripe_config(httpserver.url_for("/").rstrip("/")),
                         REDIS_URL="redis://127.0.0.1:1/0")
    with flask_app.app_context():
        make_campaign("twenty")
        yield flask_app


def test_a_broken_event_between_good_ones_is_reported_and_the_rest_applied(
        stored_only, httpserver, monkeypatch):
    client = stored_only.test_client()
    httpserver.expect_request("/v1/checkout/sessions", method="POST").respond_with_json(
        {**so.checkout_session(gift="x", amount=5000), "url": "https://checkout.stripe.test/x"})
    submit_gift(client, "twenty", amount="5000")
    gift = db.session.scalar(select(Gift))
    serve_charge(httpserver, refunds=[so.refund(refund_id="re_test_1", amount=2000)])
    paid = so.event("checkout.session.completed",
                    so.checkout_session(gift=gift.public_id, amount=5000))
    disputed = so.event("charge.dispute.created", so.dispute(amount=3000))
    refunded = so.event("charge.refunded", so.charge(amount=5000, refunded=2000))
    for evt in (paid, disputed, refunded):
        assert deliver(client, evt).status_code == 200
    assert db.session.scalar(select(Payment.id)) is None  # stored, none applied

    def broken(provider, obj, zone):  # what a handler that raises outside a request did
        raise RuntimeError("Working outside of request context.")

    monkeypatch.setitem(events.HANDLERS, "charge.dispute.created", broken)
    result = stored_only.test_cli_runner().invoke(
        args=["payments", "process-pending", "--older-than", "0"])

    # The events before and after the broken one are applied; it is named, with its reason,
    # and the command fails only once it has gone through them all.
    assert result.exit_code == 1, result.output
    assert "applied 2 event(s); 0 still wait for an earlier event" in result.output
    assert (f"could not apply {disputed['id']} (charge.dispute.created): RuntimeError: "
            "Working outside of request context.") in result.output
    db.session.expire_all()
    assert db.session.get(Gift, gift.id).status is GiftStatus.PARTIALLY_REFUNDED
    assert sorted(db.session.scalars(select(Payment.kind))) == sorted(
        [PaymentKind.CHARGE, PaymentKind.REFUND])
    unapplied = db.session.scalars(select(ProviderEvent.event_id)
                                   .where(ProviderEvent.processed_at.is_(None))).all()
    assert unapplied == [disputed["id"]]

    # Mended, the next sweep applies it, and succeeds.
    monkeypatch.undo()
    result = stored_only.test_cli_runner().invoke(
        args=["payments", "process-pending", "--older-than", "0"])
    assert result.exit_code == 0, result.output
    assert "applied 1 event(s); 0 still wait" in result.output
    assert db.session.get(Gift, gift.id).status is GiftStatus.DISPUTED
