"""Deliveries racing each other on a real, committed database: still one gift, one receipt."""

from __future__ import annotations

import time

import pytest
from flask import current_app
from sqlalchemy import func, select, text

from app import jobs
from app.db import utcnow
from app.extensions import db
from app.giving.models import Gift, GiftStatus
from app.giving.services import GivingRules, begin_checkout, start_gift
from app.mail import OutboundEmail
from app.payments.events import apply_event_batch, event_settings, receive_event
from app.payments.models import Payment, ProviderEvent
from app.payments.providers import current_provider
from tests.conftest import migrated_url
from tests.factories import gift_request, make_campaign
from tests.support.concurrency import run_concurrently
from tests.support.flow import donation_form

THREADS = 8


@pytest.fixture(params=["sqlite", "postgresql"])
def committed_app(request, make_app):
    url = migrated_url(request, request.param, f"race_{request.node.name[-12:-1]}")
    app = make_app(url)
    yield app


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_the_same_event_delivered_at_once_is_recorded_once(committed_app):
    app = committed_app
    with app.app_context():
        campaign = make_campaign("race")
        gift = start_gift(campaign, gift_request(), rules=GivingRules.from_config(app.config),
                          now=utcnow())
        begin_checkout(gift, current_provider(), success_url="http://x/ok",
                       cancel_url="http://x/no")
        db.session.commit()
        provider = current_provider()
        session = provider.load_session(gift.checkout_url.rsplit("/", 1)[1])
        [event] = provider.completion_events(session, name="Noa", now=time.time())
        payload, headers = provider.encode(event)

    def deliver():
        receive_event(current_provider(), payload, headers,
                      settings=event_settings(current_app.config))
        jobs.commit()

    errors = run_concurrently(app, deliver, threads=THREADS)
    assert errors == []
    with app.app_context():
        assert count(ProviderEvent) == 1
        assert count(Payment) == 1
        assert count(OutboundEmail) == 1
        assert db.session.scalar(select(Gift.status)) is GiftStatus.PAID


def test_a_form_submitted_many_times_at_once_makes_one_gift(committed_app):
    app = committed_app
    with app.app_context():
        make_campaign("race")
    client = app.test_client()
    data = donation_form(client, "race")
    data.update(amount_choice="2500", frequency="one_time", name="Noa", email="noa@example.org")
    locations = []

    def submit():
        response = client.post("/campaigns/race/give", data=data)
        assert response.status_code == 303, response.status_code
        locations.append(response.headers["Location"])

    errors = run_concurrently(app, submit, threads=THREADS)
    assert errors == []
    assert len(set(locations)) == 1 and len(locations) == THREADS
    with app.app_context():
        assert count(Gift) == 1


@pytest.mark.parametrize("committed_app", ["postgresql"], indirect=True)
def test_a_worker_skips_the_events_another_has_claimed_and_applies_the_rest(committed_app):
    """PostgreSQL: a worker's batch leaves the events another worker's batch holds (locked
    until it commits) and applies the others at once, rather than wait for them. (SQLite has
    one writer at a time: there the second waits its turn.)"""
    app = committed_app
    with app.app_context():
        campaign = make_campaign("race")
        provider = current_provider()
        rules = GivingRules.from_config(app.config)
        for n in range(3):
            gift = start_gift(campaign, gift_request(email=f"donor{n}@example.org"),
                              rules=rules, now=utcnow())
            begin_checkout(gift, provider, success_url="http://x/ok", cancel_url="http://x/no")
            session = provider.load_session(gift.checkout_url.rsplit("/", 1)[1])
            [event] = provider.completion_events(session, name="Noa", now=time.time())
            assert receive_event(provider, *provider.encode(event), defer=True,
                                 settings=event_settings(app.config))
        jobs.discard()  # stored, left for the batches below
        db.session.commit()
        first, *rest = db.session.scalars(select(ProviderEvent.id).order_by(ProviderEvent.id))
        other_worker = db.engine.connect()  # its batch claimed the first event, not committed
        other_worker.execute(select(ProviderEvent.id).where(ProviderEvent.id == first)
                             .with_for_update())
        try:
            # Were it to wait for the lock, it would fail after 5 s rather than hang.
            db.session.execute(text("SET lock_timeout = '5s'"))
            assert apply_event_batch(provider, settings=event_settings(app.config)) == 2
            assert db.session.scalars(select(ProviderEvent.id).where(
                ProviderEvent.processed_at.is_not(None)).order_by(ProviderEvent.id)).all() == rest
        finally:
            other_worker.rollback()
            other_worker.close()
        # Released, it is the next batch's.
        assert apply_event_batch(provider, settings=event_settings(app.config)) == 1
        assert apply_event_batch(provider, settings=event_settings(app.config)) is None
        assert count(Payment) == 3 and count(OutboundEmail) == 3
