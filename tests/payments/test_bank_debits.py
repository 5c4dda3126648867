"""Delayed payment methods (issue 16 item 6): a gift paid by ACH Direct Debit
(``us_bank_account``) completes its checkout unpaid and clears, or fails, days later
(``checkout.session.async_payment_succeeded`` / ``_failed``). Until then the thank-you page and
the account say "processing" and no receipt exists; the receipt is mailed when the money
clears; a failure is mailed once, with a link to try again. In every order of the events."""

from __future__ import annotations

import itertools

from sqlalchemy import select

from app.extensions import db
from app.finance.models import Receipt, ReceiptStatus
from app.giving.models import Gift, GiftStatus
from app.mail import OutboundEmail
from app.payments.models import Payment
from tests.support import stripe_objects as so
from tests.support.accounts import make_account, sign_in, text_of
from tests.support.flow import submit_gift
from tests.support.stripe import count, deliver, make_monthly, reset_ledger

BANK = {"type": "us_bank_account", "us_bank_account": {
    "account_holder_type": "individual", "account_type": "checking",
    "bank_name": "STRIPE TEST BANK", "fingerprint": "FFDMA0xfhBjWSZLu", "last4": "6789",
    "payment_method": "pm_test_ach", "routing_number": "110000000"}}


def session(g: str, payment_status: str) -> dict:
    """The checkout session of a gift paid from a bank account: complete, and unpaid until
    the debit clears (Checkout offers what the dashboard enables, bank debits among them)."""
    return {**so.checkout_session(gift=g, amount=5000), "payment_status": payment_status,
            "payment_method_types": ["card", "us_bank_account"]}


def intent(g: str, status: str) -> dict:
    succeeded = status == "succeeded"
    return {**so.payment_intent(gift=g, amount=5000, status=status, error=None if succeeded else {
        "code": "payment_method_provider_decline", "type": "invalid_request_error",
        "message": "The customer's bank account could not be located."}),
        "payment_method_types": ["us_bank_account"], "payment_method": "pm_test_ach"}


def serve_bank_charge(httpserver, g: str):
    """The payment intent as Stripe answers once the debit cleared: its charge paid from the
    bank account, with ACH's fee (0.8%) on the balance transaction."""
    charge = {**so.charge(amount=5000), "payment_method_details": BANK,
              "balance_transaction": {**so.balance_transaction(amount=5000), "fee": 40,
                                      "net": 4960}}
    httpserver.expect_request("/v1/payment_intents/pi_test_1", method="GET").respond_with_json(
        {**intent(g, "succeeded"), "latest_charge": charge})


def state(gift_id: int):
    gift = db.session.get(Gift, gift_id)
    receipts = db.session.execute(select(Receipt.amount, Receipt.status)).all()
    mail = sorted(db.session.scalars(select(OutboundEmail.subject)))
    return gift.status, count(Payment), receipts, mail


def deliver_in_order(client, gift, order, *, cleared_by) -> None:
    """Deliver each event once (none waits for another); after each, nothing is recorded or
    receipted unless an event that says the money cleared has come, and once the checkout's
    completion has come (and no failure), the gift is processing."""
    seen = set()
    for evt in order:
        assert deliver(client, evt).status_code == 200, evt["type"]
        seen.add(evt["type"])
        if seen & cleared_by:
            continue
        status, payments, receipts, _ = state(gift.id)
        assert (payments, receipts) == (0, []), [e["type"] for e in order]
        if "checkout.session.async_payment_failed" in seen:
            assert status is GiftStatus.FAILED
        elif "checkout.session.completed" in seen:
            assert status is GiftStatus.PROCESSING


def test_checkout_sends_no_payment_method_types(client, httpserver):
    """Checkout offers whatever the newsroom enables in Stripe's dashboard (bank debits too)."""
    bodies = []
    for n, frequency in enumerate(("one_time", "monthly")):
        httpserver.expect_oneshot_request("/v1/checkout/sessions", method="POST"
                                          ).respond_with_json(
            {**so.checkout_session(session_id=f"cs_test_{n}", gift="x", amount=5000),
             "url": f"https://checkout.stripe.test/{n}"})
        assert submit_gift(client, "twenty", amount="5000",
                           frequency=frequency).status_code == 303
        bodies.append(httpserver.log[-1][0].get_data(as_text=True))
    assert len(bodies) == 2 and all("line_items" in body for body in bodies)
    assert not any("payment_method_types" in body for body in bodies)


def test_a_bank_debit_that_clears_is_receipted_once_in_every_order(client, gift, httpserver):
    g = gift.public_id
    serve_bank_charge(httpserver, g)
    events = [
        so.event("checkout.session.completed", session(g, "unpaid")),
        so.event("checkout.session.async_payment_succeeded", session(g, "paid")),
        so.event("payment_intent.succeeded", intent(g, "succeeded")),
    ]
    # Every order of the three, and of the checkout's two alone (an endpoint that does not
    # take payment_intent.* events).
    orders = [*itertools.permutations(events), *itertools.permutations(events[:2])]
    for order in orders:
        reset_ledger(gift)
        deliver_in_order(client, gift, order, cleared_by={
            "checkout.session.async_payment_succeeded", "payment_intent.succeeded"})
        status, payments, receipts, mail = state(gift.id)
        assert (status, payments, receipts) == (
            GiftStatus.PAID, 1, [(5000, ReceiptStatus.ISSUED)]), [e["type"] for e in order]
        assert mail == ["Thank you for your gift to A test appeal"]
        assert db.session.execute(select(Payment.fee, Payment.net)).one() == (40, 4960)


def test_a_bank_debit_that_fails_is_mailed_once_with_a_retry_link_in_every_order(
        client, gift, outbox):
    g = gift.public_id
    events = [
        so.event("checkout.session.completed", session(g, "unpaid")),
        so.event("checkout.session.async_payment_failed", session(g, "unpaid")),
        so.event("payment_intent.payment_failed", intent(g, "requires_payment_method")),
    ]
    for order in itertools.permutations(events):
        reset_ledger(gift)
        deliver_in_order(client, gift, order, cleared_by=set())
        status, payments, receipts, mail = state(gift.id)
        assert (status, payments, receipts) == (GiftStatus.FAILED, 0, []), [
            e["type"] for e in order]
        assert mail == ["Your gift to A test appeal did not go through"]
    [notice] = [m for m in outbox() if "did not go through" in m["Subject"]][-1:]
    text = text_of(notice)
    assert "no money was taken and no receipt was issued" in text
    assert "http://donate.test/campaigns/twenty?frequency=one_time&amount=50.00" in text


def test_thank_you_page_and_account_say_processing_until_it_clears(stripe_app, client, gift,
                                                                  httpserver):
    g = gift.public_id
    assert deliver(client, so.event("checkout.session.completed",
                                    session(g, "unpaid"))).status_code == 200
    page = client.get(f"/thanks/{g}").get_data(as_text=True)
    assert "Your payment is processing." in page and "data-gift-processing" in page
    assert "http-equiv=\"refresh\"" not in page  # it takes days: no reloading every 3 s
    assert "We have emailed a receipt" not in page
    make_account()
    sign_in(client)
    gifts = client.get("/account/gifts").get_data(as_text=True)
    assert "Processing (bank payment)" in gifts and "$50.00" in gifts
    assert ">Details<span" in gifts and ">Receipt<span" not in gifts
    detail = client.get(f"/account/gifts/{g}/receipt").get_data(as_text=True)
    assert "has not cleared yet" in detail and "Receipt number" not in detail

    serve_bank_charge(httpserver, g)
    deliver(client, so.event("checkout.session.async_payment_succeeded", session(g, "paid")))
    page = client.get(f"/thanks/{g}").get_data(as_text=True)
    assert "We have emailed a receipt" in page and "data-gift-processing" not in page
    gifts = client.get("/account/gifts").get_data(as_text=True)
    assert "Processing (bank payment)" not in gifts and ">Paid<" in gifts
    assert ">Receipt<span" in gifts
    detail = client.get(f"/account/gifts/{g}/receipt").get_data(as_text=True)
    assert "has not cleared yet" not in detail and "Receipt number" in detail


def test_thank_you_page_after_a_failed_debit_offers_to_try_again(client, gift):
    g = gift.public_id
    deliver(client, so.event("checkout.session.async_payment_failed", session(g, "unpaid")))
    page = client.get(f"/thanks/{g}").get_data(as_text=True)
    assert "Your payment did not go through" in page and "data-gift-failed" in page
    assert 'href="http://donate.test/campaigns/twenty?frequency=one_time&amp;amount=50.00"' \
        in page
    assert "http-equiv=\"refresh\"" not in page


def test_a_monthly_gift_by_bank_debit_is_processing_then_paid_in_every_order(client, gift,
                                                                            httpserver):
    """Its first invoice is paid when the debit clears (invoice.paid, and the session's
    async_payment_succeeded): the plan starts then, with the one receipt."""
    make_monthly(gift, httpserver)
    g = gift.public_id

    def monthly(payment_status: str) -> dict:
        return {**so.checkout_session(gift=g, amount=5000, mode="subscription",
                                      subscription="sub_test_1", invoice="in_test_1"),
                "payment_status": payment_status,
                "payment_method_types": ["card", "us_bank_account"]}

    events = [
        so.event("checkout.session.completed", monthly("unpaid")),
        so.event("checkout.session.async_payment_succeeded", monthly("paid")),
        so.event("invoice.paid", so.invoice(gift=g, amount=5000)),
    ]
    for order in itertools.permutations(events):
        reset_ledger(gift)
        deliver_in_order(client, gift, order, cleared_by={
            "checkout.session.async_payment_succeeded", "invoice.paid"})
        status, payments, receipts, mail = state(gift.id)
        assert (status, payments, receipts) == (
            GiftStatus.PAID, 1, [(5000, ReceiptStatus.ISSUED)]), [e["type"] for e in order]
        assert len(mail) == 1 and db.session.get(Gift, gift.id).plan_id is not None


def test_a_failed_monthly_debit_links_to_a_monthly_gift(client, gift, outbox):
    gift.frequency = gift.frequency.MONTHLY
    db.session.commit()
    failed = {**so.checkout_session(gift=gift.public_id, amount=5000, mode="subscription",
                                    subscription="sub_test_1", invoice="in_test_1"),
              "payment_status": "unpaid"}
    assert deliver(client, so.event("checkout.session.async_payment_failed",
                                    failed)).status_code == 200
    [notice] = outbox()
    assert "http://donate.test/campaigns/twenty?frequency=monthly&amount=50.00" in text_of(notice)
    assert db.session.get(Gift, gift.id).status is GiftStatus.FAILED
