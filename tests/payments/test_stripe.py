"""The Stripe provider: the real stripe SDK against a local HTTP server that checks each request
and answers with objects in the pinned API version's shapes; webhooks signed with Stripe's
scheme and verified by ``stripe.Webhook.construct_event``."""

from __future__ import annotations

import time
from urllib.parse import parse_qs

import pytest
import stripe
from sqlalchemy import select
from werkzeug import Response

from app.extensions import db
from app.finance.models import Receipt, ReceiptStatus
from app.giving.models import Gift, GiftStatus, PlanStatus, RecurringPlan
from app.mail import OutboundEmail
from app.payments.models import Payment, PaymentKind, ProviderEvent
from app.payments.stripe import API_VERSION, StripeProvider
from tests.factories import make_campaign
from tests.support import stripe_objects as so
from tests.support.flow import submit_gift
from tests.support.pgcluster import free_port
from tests.support.stripe import (
    converge_in_every_order,
    count,
    deliver,
    form,
    ledger_state,
    make_monthly,
    one_time_scenario,
    serve_charge,
    stripe_config,
)


def test_api_version_is_pinned_to_the_sdks_own():
    assert API_VERSION == stripe.api_version


@pytest.fixture
def proxy_settings(monkeypatch):
    """Sets the process's proxy settings (both spellings cleared first: ``requests`` reads
    either)."""
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return lambda **settings: [monkeypatch.setenv(name, value)
                               for name, value in settings.items()]


def test_the_api_calls_go_through_the_proxy_set_for_the_process(httpserver, proxy_settings):
    """The SDK's HTTP session does not read the environment at each call (its proxy settings
    are read once, with the provider): a proxy set for the process carries the calls, and
    ``no_proxy`` still sends them direct."""
    serve_charge(httpserver)
    proxy_settings(http_proxy=httpserver.url_for("/").rstrip("/"))
    through_proxy = StripeProvider(secret_key="sk_test_1", webhook_secret="whsec_1",
                                   api_base="http://api.stripe.invalid", retries=0)
    assert through_proxy.charge_details(payment_intent_id="pi_test_1").fee == 175
    [(asked, _)] = httpserver.log
    assert asked.host == "api.stripe.invalid"  # the proxy was asked for Stripe's address

    proxy_settings(http_proxy=f"http://127.0.0.1:{free_port()}", no_proxy="localhost,127.0.0.1")
    direct = StripeProvider(secret_key="sk_test_1", webhook_secret="whsec_1",
                            api_base=httpserver.url_for("/").rstrip("/"), retries=0)
    assert direct.charge_details(payment_intent_id="pi_test_1").fee == 175  # no proxy there


def test_one_time_gift_opens_a_checkout_session(client, httpserver):
    seen = []

    def create_session(request):
        seen.append(request)
        return Response(status=200, content_type="application/json", response=__import__(
            "json").dumps({**so.checkout_session(gift="x", amount=5000),
                           "url": "https://checkout.stripe.test/c/pay/cs_test_a1"}))

    httpserver.expect_request("/v1/checkout/sessions", method="POST").respond_with_handler(
        create_session)
    response = submit_gift(client, "twenty", amount="5000")
    assert response.status_code == 303
    assert response.headers["Location"] == "https://checkout.stripe.test/c/pay/cs_test_a1"

    gift = db.session.scalar(select(Gift))
    [request] = seen
    params = form(request)
    assert request.headers["Authorization"] == "Bearer sk_test_123"
    assert request.headers["Stripe-Version"] == API_VERSION
    assert request.headers["Idempotency-Key"] == f"gift-{gift.public_id}"
    assert params["mode"] == "payment"
    assert params["submit_type"] == "donate"
    assert params["line_items[0][price_data][unit_amount]"] == "5000"
    assert params["line_items[0][price_data][currency]"] == "usd"
    assert params["line_items[0][quantity]"] == "1"
    assert params["metadata[gift]"] == gift.public_id
    assert params["payment_intent_data[metadata][gift]"] == gift.public_id
    assert params["client_reference_id"] == gift.public_id
    assert params["customer_email"] == "noa@example.org"
    assert params["success_url"] == f"http://donate.test/thanks/{gift.public_id}"
    assert "recurring" not in request.get_data(as_text=True)
    assert gift.checkout_id == "cs_test_a1" and gift.provider == "stripe"


def test_monthly_gift_opens_a_subscription_checkout(client, httpserver):
    httpserver.expect_request("/v1/checkout/sessions", method="POST").respond_with_json(
        {**so.checkout_session(gift="x", amount=2500, mode="subscription"),
         "url": "https://checkout.stripe.test/c/pay/cs_test_a1"})
    submit_gift(client, "twenty", amount="2500", frequency="monthly")
    [(request, _)] = httpserver.log
    params = form(request)
    assert params["mode"] == "subscription"
    assert params["line_items[0][price_data][recurring][interval]"] == "month"
    assert params["subscription_data[metadata][gift]"] == db.session.scalar(
        select(Gift.public_id))
    assert "payment_intent_data[metadata][gift]" not in params


def test_stripe_unreachable_records_no_gift_and_says_so(make_app, database_url, app):
    down = make_app(database_url, **stripe_config(f"http://127.0.0.1:{free_port()}"))
    with down.app_context():
        make_campaign("twenty")
        started = time.monotonic()
        response = submit_gift(down.test_client(), "twenty")
        assert time.monotonic() - started < 10
    assert response.status_code == 422
    assert "could not reach our payment provider" in response.get_data(as_text=True)
    assert count(Gift) == 0


def test_stripe_refusing_records_no_gift(client, httpserver):
    httpserver.expect_request("/v1/checkout/sessions", method="POST").respond_with_json(
        {"error": {"type": "invalid_request_error", "message": "Invalid currency"}}, status=400)
    response = submit_gift(client, "twenty")
    assert response.status_code == 422
    assert "could not start this payment" in response.get_data(as_text=True)
    assert count(Gift) == 0


def test_transient_failures_are_retried_with_the_same_idempotency_key(make_app, database_url,
                                                                      app, httpserver):
    retrying = make_app(database_url, **stripe_config(httpserver.url_for("/").rstrip("/"),
                                                      STRIPE_MAX_RETRIES=2))
    httpserver.expect_ordered_request("/v1/checkout/sessions", method="POST").respond_with_json(
        {"error": {"type": "api_error", "message": "try again"}}, status=503,
        headers={"Stripe-Should-Retry": "true"})
    httpserver.expect_ordered_request("/v1/checkout/sessions", method="POST").respond_with_json(
        {**so.checkout_session(gift="x", amount=2500), "url": "https://checkout.stripe.test/x"})
    with retrying.app_context():
        make_campaign("twenty")
        response = submit_gift(retrying.test_client(), "twenty")
    assert response.status_code == 303
    keys = {request.headers["Idempotency-Key"] for request, _ in httpserver.log}
    assert len(httpserver.log) == 2 and len(keys) == 1
    assert count(Gift) == 1


# -- webhooks --------------------------------------------------------------------------------


def test_test_events_pass_the_sdks_own_construct_event(gift):
    """What these tests sign is what the real SDK accepts, and a tampered body it refuses."""
    evt = so.event("checkout.session.completed",
                   so.checkout_session(gift=gift.public_id, amount=5000))
    payload, headers = so.encode(evt)
    built = stripe.Webhook.construct_event(payload, headers["Stripe-Signature"],
                                           so.WEBHOOK_SECRET, tolerance=300)
    assert (built.id, built.type) == (evt["id"], "checkout.session.completed")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload.replace(b"5000", b"5001"),
                                       headers["Stripe-Signature"], so.WEBHOOK_SECRET)


def test_bad_signature_is_refused_before_anything_is_stored(client, gift):
    evt = so.event("checkout.session.completed",
                   so.checkout_session(gift=gift.public_id, amount=5000))
    for kwargs in ({"secret": "whsec_wrong"}, {"timestamp": int(time.time()) - 3600}):
        assert deliver(client, evt, **kwargs).status_code == 400
    payload, headers = so.encode(evt)
    assert client.post("/webhooks/stripe", data=payload).status_code == 400
    for body in (b"not json", "\u00e9t\u00e9".encode("latin-1"), b"[1, 2]", b'{"id": "evt_1"}'):
        bad = {"Stripe-Signature": so.sign(body), "Content-Type": "application/json"}
        answer = client.post("/webhooks/stripe", data=body, headers=bad)
        assert answer.status_code == 400, body
    assert count(ProviderEvent) == 0 and count(Payment) == 0


def test_checkout_completed_pays_the_gift_and_records_the_fee(client, gift, httpserver, outbox):
    serve_charge(httpserver)
    evt = so.event("checkout.session.completed",
                   so.checkout_session(gift=gift.public_id, amount=5000))
    assert deliver(client, evt).status_code == 200
    assert deliver(client, evt).get_json()["duplicate"] is True
    charge = db.session.scalar(select(Payment))
    assert (charge.kind, charge.amount, charge.provider_id) == (PaymentKind.CHARGE, 5000,
                                                                "pi_test_1")
    assert (charge.charge_id, charge.fee, charge.net) == ("ch_test_1", 175, 4825)
    [(request, _)] = httpserver.log
    assert parse_qs(request.query_string.decode())["expand[0]"] == [
        "latest_charge.balance_transaction"]
    assert db.session.get(Gift, gift.id).status is GiftStatus.PAID
    assert len(outbox()) == 1


def test_a_fee_stripe_could_not_give_is_asked_for_again(stripe_app, client, gift, httpserver):
    httpserver.expect_request("/v1/payment_intents/pi_test_1").respond_with_json(
        {"error": {"type": "api_error", "message": "Stripe is having a bad day"}}, status=500)
    evt = so.event("checkout.session.completed",
                   so.checkout_session(gift=gift.public_id, amount=5000))
    assert deliver(client, evt).status_code == 200  # the gift is recorded all the same
    assert db.session.scalar(select(Payment.fee)) is None
    settle = ["payments", "settle-fees", "--older-than", "0"]
    assert "settled 0 fee(s); 1 still unknown" in stripe_app.test_cli_runner().invoke(
        args=settle).output

    httpserver.clear()
    serve_charge(httpserver)
    assert "settled 1 fee(s); 0 still unknown" in stripe_app.test_cli_runner().invoke(
        args=settle).output
    assert db.session.execute(select(Payment.fee, Payment.net)).one() == (175, 4825)
    assert "settled 0 fee(s); 0 still unknown" in stripe_app.test_cli_runner().invoke(
        args=settle).output


def test_unknown_event_types_are_stored_and_acknowledged(client, gift):
    evt = so.event("customer.created", {"id": "cus_test_1", "object": "customer"})
    assert deliver(client, evt).status_code == 200
    assert db.session.scalar(select(ProviderEvent.note)) == "event type not handled"


def test_failed_payment_records_nothing(client, gift):
    intent = so.payment_intent(gift=gift.public_id, amount=5000, status="requires_payment_method",
                               error={"message": "Your card was declined."})
    assert deliver(client, so.event("payment_intent.payment_failed", intent)).status_code == 200
    assert count(Payment) == 0
    assert "Your card was declined." in db.session.scalar(select(ProviderEvent.note))


def test_one_time_scenario_converges_whatever_the_order(client, gift, httpserver):
    g = gift.public_id
    serve_charge(httpserver, refunds=[so.refund(refund_id="re_test_1", amount=2000)], gift=g)
    events = one_time_scenario(g)
    expected = (GiftStatus.PARTIALLY_REFUNDED, [
        (PaymentKind.DISPUTE, 3000, "du_test_1"), (PaymentKind.DISPUTE_WON, 3000, "du_test_1:won"),
        (PaymentKind.CHARGE, 5000, "pi_test_1"), (PaymentKind.REFUND, 2000, "re_test_1")])

    def check(order):
        assert ledger_state(gift.id) == expected, [e["type"] for e in order]
        # One receipt stands, for what the refund left, whatever the order (one voided while
        # the dispute withheld the money is issued again once it is won), and the donor's
        # last mail is that receipt.
        [standing] = db.session.scalars(select(Receipt.number).where(
            Receipt.status == ReceiptStatus.ISSUED)).all()
        assert db.session.scalar(select(Receipt.amount).where(
            Receipt.number == standing)) == 3000
        subjects = db.session.scalars(select(OutboundEmail.subject)
                                      .order_by(OutboundEmail.id)).all()
        assert subjects[0].startswith("Thank you for your gift")
        assert subjects[-1] == f"Your corrected receipt {standing}"

    orders = converge_in_every_order(client, events, check)
    assert orders == (120 if db.session.get_bind().dialect.name == "sqlite" else 10)


def test_subscription_scenario_converges_whatever_the_order(client, gift, httpserver):
    gift.frequency = gift.frequency.MONTHLY
    db.session.commit()
    for invoice_id, intent in (("in_test_1", "pi_test_sub_1"), ("in_test_2", "pi_test_sub_2")):
        httpserver.expect_request("/v1/invoice_payments", method="GET",
                                  query_string={"invoice": invoice_id, "limit": "10"}
                                  ).respond_with_json(so.stripe_list(
                                      [so.invoice_payment(invoice_id=invoice_id, intent=intent,
                                                          amount=5000)], "/v1/invoice_payments"))
        httpserver.expect_request(f"/v1/payment_intents/{intent}", method="GET"
                                  ).respond_with_json(so.payment_intent(
                                      intent_id=intent, gift=None, amount=5000, charge=None))
    g = gift.public_id
    events = [
        so.event("checkout.session.completed", so.checkout_session(
            gift=g, amount=5000, mode="subscription", subscription="sub_test_1",
            invoice="in_test_1")),
        so.event("invoice.paid", so.invoice(gift=g, amount=5000)),
        so.event("invoice.paid", so.invoice(invoice_id="in_test_2", gift=g, amount=5000,
                                            billing_reason="subscription_cycle")),
        so.event("customer.subscription.deleted", so.subscription(
            gift=g, amount=5000, status="canceled", canceled_at=so.NOW)),
    ]

    def check(order):
        plan = db.session.scalar(select(RecurringPlan))
        assert plan.status is PlanStatus.CANCELED, [e["type"] for e in order]
        assert plan.periods_paid == 2
        charges = db.session.execute(select(Payment.provider_id, Payment.payment_intent_id)
                                     .order_by(Payment.provider_id)).all()
        assert charges == [("in_test_1", "pi_test_sub_1"), ("in_test_2", "pi_test_sub_2")]
        assert count(Gift) == 2

    orders = converge_in_every_order(client, events, check)
    assert orders == (24 if db.session.get_bind().dialect.name == "sqlite" else 8)


# -- refunds, plans and the card-update link ------------------------------------------------


def test_a_refund_is_recorded_once_from_our_request_and_its_webhook(stripe_app, client,
                                                                    paid_gift, httpserver):
    from app.db import utcnow
    from app.payments.providers import current_provider
    from tests.factories import refund_gift

    seen = []

    def create_refund(request):
        seen.append(request)
        return Response(__import__("json").dumps(so.refund(refund_id="re_test_9", amount=1500)),
                        content_type="application/json")

    httpserver.expect_request("/v1/refunds", method="POST").respond_with_handler(create_refund)
    refund_gift(paid_gift, current_provider(), now=utcnow(), amount=1500)
    db.session.commit()
    [request] = seen
    assert form(request) == {"amount": "1500", "payment_intent": "pi_test_1"}
    assert request.headers["Idempotency-Key"].startswith("refund-")

    httpserver.expect_request("/v1/refunds", method="GET").respond_with_json(
        so.stripe_list([so.refund(refund_id="re_test_9", amount=1500)], "/v1/refunds"))
    assert deliver(client, so.event("charge.refunded",
                                    so.charge(amount=5000, refunded=1500))).status_code == 200
    refunds = db.session.scalars(select(Payment).where(Payment.kind == PaymentKind.REFUND)).all()
    assert [(r.provider_id, r.amount) for r in refunds] == [("re_test_9", 1500)]
    assert db.session.get(Gift, paid_gift.id).status is GiftStatus.PARTIALLY_REFUNDED


@pytest.mark.parametrize("amount, message", [(0, "Refund between"), (5001, "Refund between")])
def test_refund_amount_must_fit_what_is_left(stripe_app, paid_gift, amount, message):
    from app.db import utcnow
    from app.giving.services import GiftError
    from app.payments.providers import current_provider
    from tests.factories import refund_gift

    with pytest.raises(GiftError, match=message):
        refund_gift(paid_gift, current_provider(), now=utcnow(), amount=amount)


@pytest.fixture
def plan(client, gift, httpserver):
    make_monthly(gift, httpserver)
    deliver(client, so.event("checkout.session.completed", so.checkout_session(
        gift=gift.public_id, amount=5000, mode="subscription", subscription="sub_test_1",
        invoice="in_test_1")))
    httpserver.clear()
    return db.session.scalar(select(RecurringPlan))


def test_cancel_and_change_amount_go_through_stripe(stripe_app, plan, httpserver):
    from app.db import utcnow
    from app.giving.services import GivingRules, cancel_plan, change_plan_amount
    from app.payments.providers import current_provider

    httpserver.expect_request("/v1/subscriptions/sub_test_1", method="GET").respond_with_json(
        so.subscription(amount=5000, gift=None))
    httpserver.expect_request("/v1/subscriptions/sub_test_1", method="POST").respond_with_json(
        so.subscription(amount=7500, gift=None))
    change_plan_amount(plan, current_provider(), amount=7500,
                       rules=GivingRules.from_config(stripe_app.config))
    update = form(httpserver.log[-1][0])
    assert update["items[0][id]"] == "si_test_1"
    assert update["items[0][price_data][unit_amount]"] == "7500"
    assert update["items[0][price_data][product]"] == "prod_test_1"
    assert update["items[0][price_data][recurring][interval]"] == "month"
    assert update["proration_behavior"] == "none"
    assert plan.amount == 7500

    httpserver.expect_request("/v1/subscriptions/sub_test_1", method="DELETE").respond_with_json(
        so.subscription(amount=7500, gift=None, status="canceled", canceled_at=so.NOW))
    cancel_plan(plan, current_provider(), now=utcnow(), reason="budget")
    assert httpserver.log[-1][0].method == "DELETE"
    assert plan.status is PlanStatus.CANCELED and plan.cancel_reason == "budget"


def test_failed_renewal_flags_the_plan_and_mails_a_card_link(stripe_app, client, plan,
                                                           httpserver, outbox):
    failed = so.invoice(invoice_id="in_test_2", gift=plan.gifts[0].public_id, amount=5000,
                        billing_reason="subscription_cycle", status="open", attempt_count=1,
                        next_payment_attempt=so.NOW + 3 * 86400)
    assert deliver(client, so.event("invoice.payment_failed", failed)).status_code == 200
    assert deliver(client, so.event("invoice.payment_failed", failed,
                                    event_id="evt_retry")).status_code == 200
    assert db.session.get(RecurringPlan, plan.id).status is PlanStatus.PAST_DUE
    notices = [m for m in outbox() if "could not be renewed" in m["Subject"]]
    assert len(notices) == 1  # one email per failed period, however many retries
    text = notices[0].get_body(preferencelist=("plain",)).get_content()
    link = next(line for line in text.splitlines() if "/billing/card/" in line).strip()

    httpserver.expect_request("/v1/billing_portal/sessions", method="POST").respond_with_json(
        {"id": "bps_test_1", "object": "billing_portal.session", "customer": "cus_test_1",
         "url": "https://billing.stripe.test/p/session/bps_test_1",
         "return_url": "http://donate.test/", "livemode": False, "created": so.NOW})
    response = client.get(link.replace("http://donate.test", ""))
    assert response.status_code == 303
    assert response.headers["Location"] == "https://billing.stripe.test/p/session/bps_test_1"
    sent = form(httpserver.log[-1][0])
    assert sent["customer"] == "cus_test_1"
    # Straight to the card-update flow: Stripe comes back to the "updated" page only once the
    # new card is saved, and to the home page from its way back.
    assert sent["return_url"] == "http://donate.test/"
    assert sent["flow_data[type]"] == "payment_method_update"
    assert sent["flow_data[after_completion][type]"] == "redirect"
    assert sent["flow_data[after_completion][redirect][return_url]"] == f"{link}/updated"
    updated = client.get(link.replace("http://donate.test", "") + "/updated")
    assert updated.status_code == 200
    assert "<h1>Your card is updated</h1>" in updated.get_data(as_text=True)
    assert client.get(link.replace("http://donate.test", "") + "x").status_code == 404

    # The provider's retry succeeds: the plan is active again.
    httpserver.expect_request("/v1/invoice_payments", method="GET").respond_with_json(
        so.stripe_list([], "/v1/invoice_payments"))
    paid = so.invoice(invoice_id="in_test_2", gift=None, amount=5000,
                      billing_reason="subscription_cycle")
    assert deliver(client, so.event("invoice.paid", paid)).status_code == 200
    assert db.session.get(RecurringPlan, plan.id).status is PlanStatus.ACTIVE


def test_amount_changed_in_stripes_portal_is_taken_up(client, plan):
    updated = so.subscription(amount=9000, gift=plan.gifts[0].public_id)
    assert deliver(client, so.event("customer.subscription.updated", updated)).status_code == 200
    plan = db.session.get(RecurringPlan, plan.id)
    assert (plan.total, plan.status) == (9000, PlanStatus.ACTIVE)


def test_a_late_active_update_does_not_revive_a_cancelled_plan(client, plan):
    g = plan.gifts[0].public_id
    deliver(client, so.event("customer.subscription.deleted", so.subscription(
        amount=5000, gift=g, status="canceled", canceled_at=so.NOW)))
    deliver(client, so.event("customer.subscription.updated", so.subscription(
        amount=5000, gift=g, status="active")))
    assert db.session.get(RecurringPlan, plan.id).status is PlanStatus.CANCELED
