"""Events about sales that are not ours (issue 16 item 4): other products sold on the same
Stripe account are acknowledged (200) and stored with a note, never answered 409 for ever;
an event of ours that comes early is answered 409, and parked once it has waited longer than
``WEBHOOK_PARK_AFTER_HOURS``. Whose a payment is: the ``metadata.gift`` our checkout set on
the payment intent (or, for an invoice's payment, on its subscription), asked of the API."""

from __future__ import annotations

import itertools
import time
from datetime import timedelta

import pytest
from flask import current_app
from sqlalchemy import select

from app import jobs
from app.db import utcnow
from app.extensions import db
from app.giving.models import Gift, GiftStatus
from app.payments.events import (
    RetryLater,
    event_settings,
    process_event_job,
    process_pending,
    receive_event,
)
from app.payments.models import Payment, PaymentKind, ProviderEvent
from app.payments.providers import current_provider
from tests.factories import make_campaign
from tests.support import stripe_objects as so
from tests.support.flow import submit_gift
from tests.support.stripe import (
    count,
    deliver,
    deliver_until_done,
    ledger_state,
    reset_ledger,
    serve_charge,
    stripe_config,
)

NOT_FOUND = {"error": {"type": "invalid_request_error", "code": "resource_missing",
                       "message": "No such payment_intent: 'pi_shop_2'"}}


def serve_foreign_payments(httpserver):
    """Two payments of the newsroom's shop on the same account: one whose payment intent
    carries no gift of ours (and paid no invoice), one Stripe no longer has (404)."""
    httpserver.expect_request("/v1/payment_intents/pi_shop_1", method="GET").respond_with_json(
        {**so.payment_intent(intent_id="pi_shop_1", gift=None, amount=1800),
         "metadata": {"order": "shop-1041"}})
    httpserver.expect_request("/v1/invoice_payments", method="GET",
                              query_string={"payment[type]": "payment_intent",
                                            "payment[payment_intent]": "pi_shop_1",
                                            "limit": "1", "expand[0]": "data.invoice"}
                              ).respond_with_json(so.stripe_list([], "/v1/invoice_payments"))
    httpserver.expect_request("/v1/payment_intents/pi_shop_2", method="GET").respond_with_json(
        NOT_FOUND, status=404)


def foreign_events():
    return [
        so.event("charge.refunded", so.charge(charge_id="ch_shop_1", intent="pi_shop_1",
                                              amount=1800, refunded=1800)),
        so.event("charge.dispute.created", so.dispute(dispute_id="du_shop_2", amount=2500,
                                                      charge_id="ch_shop_2",
                                                      intent="pi_shop_2")),
        so.event("invoice.paid", so.invoice(invoice_id="in_shop_3", subscription="sub_shop_3",
                                            gift=None, amount=900,
                                            billing_reason="subscription_cycle")),
    ]


def stored(event: dict) -> ProviderEvent:
    return db.session.scalar(select(ProviderEvent).where(ProviderEvent.event_id == event["id"]))


def test_events_about_other_sales_are_acknowledged_and_noted_in_every_order(client, gift,
                                                                            httpserver):
    g = gift.public_id
    serve_charge(httpserver, refunds=[so.refund(refund_id="re_test_1", amount=2000)], gift=g)
    serve_foreign_payments(httpserver)
    ours = [so.event("checkout.session.completed", so.checkout_session(gift=g, amount=5000)),
            so.event("charge.refunded", so.charge(amount=5000, refunded=2000))]
    foreign = foreign_events()
    expected = (GiftStatus.PARTIALLY_REFUNDED, [(PaymentKind.CHARGE, 5000, "pi_test_1"),
                                                (PaymentKind.REFUND, 2000, "re_test_1")])
    for order in itertools.permutations([*ours, foreign[0]]):
        reset_ledger(gift)
        deliver_until_done(client, order)
        assert ledger_state(gift.id) == expected, [e["type"] for e in order]
        row = stored(foreign[0])
        assert (row.not_ours, row.processed_at is not None, row.parked_at) == (True, True, None)
        assert row.note == "not ours: charge ch_shop_1 is no gift of ours"
        assert not any(stored(evt).not_ours for evt in ours)

    # Each is answered 200 on its first delivery, whatever came before; none is parked.
    reset_ledger(gift)
    for evt in foreign:
        answer = deliver(client, evt)
        assert (answer.status_code, answer.get_json()["duplicate"]) == (200, False)
        assert stored(evt).not_ours
    assert count(Payment) == 0
    assert stored(foreign[1]).note == "not ours: charge ch_shop_2 is no gift of ours"
    assert stored(foreign[2]).note == "not ours: subscription sub_shop_3 names no gift of ours"


def test_a_charge_without_payment_intent_is_not_ours_without_asking(client, gift, httpserver):
    legacy = {**so.charge(charge_id="ch_legacy", amount=700, refunded=700),
              "payment_intent": None}
    assert deliver(client, so.event("charge.refunded", legacy)).status_code == 200
    assert httpserver.log == []
    assert db.session.scalar(select(ProviderEvent.not_ours))


def test_a_gift_of_another_installation_is_not_ours(client, gift, httpserver):
    """A staging copy on the same Stripe account names its own gifts: none is here."""
    httpserver.expect_request("/v1/payment_intents/pi_staging", method="GET").respond_with_json(
        so.payment_intent(intent_id="pi_staging", gift="gift-of-staging", amount=5000))
    evt = so.event("charge.refunded", so.charge(charge_id="ch_staging", intent="pi_staging",
                                                amount=5000, refunded=5000))
    assert deliver(client, evt).status_code == 200
    assert stored(evt).not_ours


def test_an_early_renewal_refund_is_ours_through_its_invoice(client, gift, httpserver):
    """A renewal's payment intent carries no metadata: its invoice names the subscription,
    whose metadata names our gift. Early, so 409; the next delivery the same."""
    gift.frequency = gift.frequency.MONTHLY
    db.session.commit()
    httpserver.expect_request("/v1/payment_intents/pi_test_sub_2", method="GET"
                              ).respond_with_json(so.payment_intent(
                                  intent_id="pi_test_sub_2", gift=None, amount=5000))
    httpserver.expect_request("/v1/invoice_payments", method="GET").respond_with_json(
        so.stripe_list([{**so.invoice_payment(invoice_id="in_test_2", intent="pi_test_sub_2",
                                              amount=5000),
                         "invoice": so.invoice(invoice_id="in_test_2", gift=gift.public_id,
                                               amount=5000,
                                               billing_reason="subscription_cycle")}],
                       "/v1/invoice_payments"))
    evt = so.event("charge.refunded", so.charge(charge_id="ch_test_sub_2",
                                                intent="pi_test_sub_2", amount=5000,
                                                refunded=5000))
    assert deliver(client, evt).status_code == 409
    assert deliver(client, evt).status_code == 409
    assert count(ProviderEvent) == 0


def test_stripe_unreachable_while_asking_whose_it_is_is_409(client, gift, httpserver):
    httpserver.expect_request("/v1/payment_intents/pi_shop_1").respond_with_json(
        {"error": {"type": "api_error", "message": "Stripe is having a bad day"}}, status=500)
    evt = foreign_events()[0]
    assert deliver(client, evt).status_code == 409
    assert count(ProviderEvent) == 0


# -- ours, early, for too long: parked -------------------------------------------------------


@pytest.fixture
def patient_app(make_app, database_url, app, httpserver):
    """Stripe configured with the default bound (3 days)."""
    patient = make_app(database_url, **stripe_config(httpserver.url_for("/").rstrip("/"),
                                                     WEBHOOK_PARK_AFTER_HOURS=72))
    with patient.app_context():
        make_campaign("twenty")
        yield patient


@pytest.fixture
def patient_gift(patient_app, httpserver) -> Gift:
    httpserver.expect_request("/v1/checkout/sessions", method="POST").respond_with_json(
        {**so.checkout_session(gift="x", amount=5000), "url": "https://checkout.stripe.test/x"})
    submit_gift(patient_app.test_client(), "twenty", amount="5000")
    httpserver.clear()
    pending = db.session.scalar(select(Gift))
    serve_charge(httpserver, refunds=[so.refund(refund_id="re_test_1", amount=2000)],
                 gift=pending.public_id)
    return pending


def early_refund(*, age: timedelta, event_id: str | None = None) -> dict:
    """A refund of our gift's charge that Stripe created ``age`` ago."""
    return so.event("charge.refunded", so.charge(amount=5000, refunded=2000),
                    event_id=event_id, created=int(time.time() - age.total_seconds()))


def test_an_early_event_of_ours_is_409_then_parked_after_the_bound(patient_app, patient_gift):
    patient = patient_app.test_client()
    assert deliver(patient, early_refund(age=timedelta(hours=71))).status_code == 409
    assert count(ProviderEvent) == 0

    old = early_refund(age=timedelta(hours=73))
    answer = deliver(patient, old)
    assert answer.status_code == 200 and answer.get_json()["duplicate"] is False
    row = stored(old)
    assert (row.parked_at is not None, row.processed_at, row.not_ours) == (True, None, False)
    assert row.note == "no recorded charge for ch_test_1"
    parked_at = row.parked_at
    # Stripe's next delivery is a duplicate; process-pending leaves it to staff.
    assert deliver(patient, old).get_json()["duplicate"] is True
    process_pending(received_before=utcnow() + timedelta(minutes=1),
                    settings=event_settings(current_app.config))
    db.session.expire_all()
    assert (stored(old).processed_at, stored(old).attempts) == (None, 0)  # not even tried

    # Its payment arrives; a retry (the operations inbox's) applies it, and it stays on
    # record as once parked.
    deliver(patient, so.event("checkout.session.completed",
                              so.checkout_session(gift=patient_gift.public_id, amount=5000)))
    assert process_event_job(row.id) is True
    db.session.expire_all()
    row = stored(old)
    assert row.processed_at is not None and row.parked_at == parked_at
    assert db.session.get(Gift, patient_gift.id).status is GiftStatus.PARTIALLY_REFUNDED


@pytest.mark.parametrize("age, parked", [(timedelta(hours=1), False), (timedelta(days=4), True)])
def test_a_queued_event_of_ours_is_parked_by_its_job_after_the_bound(patient_app, patient_gift,
                                                                    age, parked):
    """With jobs on a queue the event is stored first; the job that finds it early raises
    for the queue to retry, or, overdue, parks it and ends."""
    evt = early_refund(age=age)
    payload, headers = so.encode(evt)
    assert receive_event(current_provider(), payload, headers, defer=True,
                         settings=event_settings(current_app.config)) is True
    jobs.discard()  # the queue's job is run by hand below
    db.session.commit()
    row_id = stored(evt).id
    if parked:
        assert process_event_job(row_id) is False
    else:
        with pytest.raises(RetryLater, match="no recorded charge"):
            process_event_job(row_id)
    db.session.expire_all()
    row = stored(evt)
    assert (row.parked_at is not None, row.processed_at, row.attempts) == (parked, None, 1)
