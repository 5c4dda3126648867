"""The payments tests' Stripe: an app on Stripe's API served by pytest-httpserver
(``tests.support.stripe.stripe_config``), its test client, and a gift whose donor has just left
for Stripe's checkout (or has paid there). ``tests/payments/test_webhooks.py`` tests the
sandbox provider's pipeline and takes the suite's own client."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import db
from app.giving.models import Gift
from tests.factories import make_campaign
from tests.support import stripe_objects as so
from tests.support.flow import submit_gift
from tests.support.stripe import deliver, serve_charge, stripe_config


@pytest.fixture
def stripe_app(make_app, database_url, app, httpserver):
    stripe_app = make_app(database_url, **stripe_config(httpserver.url_for("/").rstrip("/")))
    with stripe_app.app_context():
        make_campaign("twenty")
        yield stripe_app


@pytest.fixture
def client(stripe_app):
    return stripe_app.test_client()


@pytest.fixture
def gift(client, httpserver):
    httpserver.expect_request("/v1/checkout/sessions", method="POST").respond_with_json(
        {**so.checkout_session(gift="x", amount=5000), "url": "https://checkout.stripe.test/x"})
    submit_gift(client, "twenty", amount="5000")
    httpserver.clear()
    return db.session.scalar(select(Gift))


@pytest.fixture
def paid_gift(client, gift, httpserver):
    """A one-time gift of $50 paid through Stripe's checkout (its webhook applied)."""
    serve_charge(httpserver)
    deliver(client, so.event("checkout.session.completed",
                             so.checkout_session(gift=gift.public_id, amount=5000)))
    httpserver.clear()
    return db.session.get(Gift, gift.id)
