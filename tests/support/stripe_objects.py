"""Stripe objects and events in the shapes of the pinned API version (2026-10-28.endive), built
from Stripe's API reference, and Stripe's webhook signature scheme, for the tests.

Only the fields a real object carries; enough of them that handlers meet what Stripe sends.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from app.payments.stripe import API_VERSION

WEBHOOK_SECRET = "whsec_test_secret"
NOW = 1_764_000_000


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header: ``t=<ts>,v1=<HMAC-SHA256(secret, "<ts>.<payload>")>``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def event(type_: str, obj: dict, *, event_id: str | None = None, created: int = NOW) -> dict:
    return {
        "id": event_id or f"evt_{type_.replace('.', '_')}_{obj['id']}",
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type_,
    }


def encode(evt: dict, **sign_kwargs) -> tuple[bytes, dict[str, str]]:
    payload = json.dumps(evt).encode()
    return payload, {"Stripe-Signature": sign(payload, **sign_kwargs),
                     "Content-Type": "application/json"}


def checkout_session(*, session_id="cs_test_a1", gift: str, amount: int, mode="payment",
                     payment_intent="pi_test_1", subscription=None, invoice=None,
                     customer="cus_test_1", email="noa@example.org", created=NOW) -> dict:
    return {
        "id": session_id, "object": "checkout.session", "after_expiration": None,
        "allow_promotion_codes": None, "amount_subtotal": amount, "amount_total": amount,
        "automatic_tax": {"enabled": False, "liability": None, "status": None},
        "billing_address_collection": None, "cancel_url": "https://donate.test/campaigns/x",
        "client_reference_id": gift, "client_secret": None, "consent": None,
        "consent_collection": None, "created": created, "currency": "usd",
        "custom_fields": [], "custom_text": {"after_submit": None, "shipping_address": None,
                                             "submit": None, "terms_of_service_acceptance": None},
        "customer": customer, "customer_creation": "always",
        "customer_details": {"address": None, "email": email, "name": "Noa Levi",
                             "phone": None, "tax_exempt": "none", "tax_ids": []},
        "customer_email": email, "expires_at": created + 86400, "invoice": invoice,
        "invoice_creation": None, "livemode": False, "locale": None,
        "metadata": {"gift": gift, "campaign": "twenty"}, "mode": mode,
        "payment_intent": payment_intent if mode == "payment" else None,
        "payment_link": None, "payment_method_collection": "always",
        "payment_method_types": ["card"], "payment_status": "paid",
        "status": "complete", "submit_type": "donate" if mode == "payment" else None,
        "subscription": subscription, "success_url": "https://donate.test/thanks/x",
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted", "url": None,
    }


def payment_intent(*, intent_id="pi_test_1", gift: str | None, amount: int,
                   charge="ch_test_1", status="succeeded", error=None, created=NOW) -> dict:
    return {
        "id": intent_id, "object": "payment_intent", "amount": amount,
        "amount_capturable": 0, "amount_details": {"tip": {}},
        "amount_received": amount if status == "succeeded" else 0, "application": None,
        "automatic_payment_methods": None, "canceled_at": None, "cancellation_reason": None,
        "capture_method": "automatic_async", "client_secret": f"{intent_id}_secret_x",
        "confirmation_method": "automatic", "created": created, "currency": "usd",
        "customer": "cus_test_1", "description": "One time gift to A test appeal",
        "last_payment_error": error, "latest_charge": charge, "livemode": False,
        "metadata": {"gift": gift, "campaign": "twenty"} if gift else {},
        "next_action": None, "payment_method": "pm_test_1",
        "payment_method_types": ["card"], "processing": None, "receipt_email": None,
        "status": status,
    }


def balance_transaction(*, amount: int, txn_id="txn_test_1") -> dict:
    fee = amount * 29 // 1000 + 30
    return {"id": txn_id, "object": "balance_transaction", "amount": amount,
            "available_on": NOW + 2 * 86400, "created": NOW, "currency": "usd",
            "description": None, "exchange_rate": None, "fee": fee,
            "fee_details": [{"amount": fee, "application": None, "currency": "usd",
                             "description": "Stripe processing fees", "type": "stripe_fee"}],
            "net": amount - fee, "reporting_category": "charge", "source": "ch_test_1",
            "status": "pending", "type": "charge"}


def charge(*, charge_id="ch_test_1", intent="pi_test_1", amount: int, refunded=0,
           balance_transaction_id="txn_test_1", created=NOW) -> dict:
    return {
        "id": charge_id, "object": "charge", "amount": amount, "amount_captured": amount,
        "amount_refunded": refunded, "application": None, "application_fee": None,
        "balance_transaction": balance_transaction_id,
        "billing_details": {"address": None, "email": "noa@example.org", "name": "Noa Levi",
                            "phone": None},
        "calculated_statement_descriptor": "LEVANT WIRE", "captured": True, "created": created,
        "currency": "usd", "customer": "cus_test_1", "description": None, "disputed": False,
        "failure_code": None, "failure_message": None, "livemode": False, "metadata": {},
        "outcome": {"network_status": "approved_by_network", "reason": None,
                    "risk_level": "normal", "seller_message": "Payment complete.",
                    "type": "authorized"},
        "paid": True, "payment_intent": intent, "payment_method": "pm_test_1",
        "payment_method_details": {"type": "card", "card": {
            "brand": "visa", "country": "US", "exp_month": 12, "exp_year": 2034,
            "funding": "credit", "last4": "4242", "network": "visa"}},
        "receipt_email": None, "refunded": refunded >= amount, "status": "succeeded",
    }


def refund(*, refund_id: str, amount: int, charge_id="ch_test_1", intent="pi_test_1",
           status="succeeded") -> dict:
    return {"id": refund_id, "object": "refund", "amount": amount,
            "balance_transaction": f"txn_{refund_id}", "charge": charge_id, "created": NOW,
            "currency": "usd", "destination_details": {"card": {"type": "refund"},
                                                       "type": "card"},
            "metadata": {}, "payment_intent": intent, "reason": "requested_by_customer",
            "receipt_number": None, "source_transfer_reversal": None, "status": status,
            "transfer_reversal": None}


def dispute_transaction(*, dispute_id="du_test_1", amount: int, fee: int, created=NOW,
                        currency="usd") -> dict:
    """A balance transaction of a dispute: the money withdrawn (``amount`` negative, with
    Stripe's dispute fee) or reinstated (positive; ``fee`` negative when the fee is returned)."""
    category = "dispute" if amount < 0 else "dispute_reversal"
    return {"id": f"txn_{dispute_id}_{category}", "object": "balance_transaction",
            "amount": amount, "available_on": created + 2 * 86400, "created": created,
            "currency": currency, "description": f"Chargeback {category}",
            "exchange_rate": None, "fee": fee,
            "fee_details": [{"amount": fee, "application": None, "currency": currency,
                             "description": "Dispute fee", "type": "stripe_fee"}]
            if fee else [],
            "net": amount - fee, "reporting_category": category, "source": dispute_id,
            "status": "pending", "type": "adjustment"}


def dispute(*, dispute_id="du_test_1", amount: int, status="needs_response",
            charge_id="ch_test_1", intent="pi_test_1", fee=1500, fee_returned=0,
            transactions: list | None = None, closed_at=NOW) -> dict:
    """A dispute as its events carry it, with the balance transactions Stripe lists by then:
    the withdrawal (``amount`` and the dispute ``fee``) once the money is taken (any status
    but an inquiry's), and the reinstatement once won (returning ``fee_returned`` of the fee).
    ``transactions`` overrides them."""
    if transactions is None:
        transactions = [] if status.startswith("warning_") else [
            dispute_transaction(dispute_id=dispute_id, amount=-amount, fee=fee)]
        if status == "won":
            transactions.append(dispute_transaction(
                dispute_id=dispute_id, amount=amount, fee=-fee_returned, created=closed_at))
    return {"id": dispute_id, "object": "dispute", "amount": amount,
            "balance_transactions": transactions, "charge": charge_id, "created": NOW,
            "currency": "usd", "evidence_details": {"due_by": NOW + 7 * 86400,
                                                    "has_evidence": False, "past_due": False,
                                                    "submission_count": 0},
            "is_charge_refundable": False, "livemode": False, "metadata": {},
            "payment_intent": intent, "reason": "fraudulent", "status": status}


def invoice(*, invoice_id="in_test_1", subscription="sub_test_1", gift: str | None,
            amount: int, billing_reason="subscription_create", status="paid",
            attempt_count=1, next_payment_attempt=None, paid_at=NOW) -> dict:
    """``next_payment_attempt``: when Stripe will try an unpaid invoice again (None: it will
    not)."""
    return {
        "id": invoice_id, "object": "invoice", "account_country": "US",
        "account_name": "Levant Wire", "amount_due": amount,
        "amount_paid": amount if status == "paid" else 0, "amount_remaining": 0,
        "attempt_count": attempt_count, "attempted": True, "billing_reason": billing_reason,
        "collection_method": "charge_automatically", "created": NOW, "currency": "usd",
        "customer": "cus_test_1", "customer_email": "noa@example.org", "livemode": False,
        "metadata": {}, "next_payment_attempt": next_payment_attempt,
        "parent": {"quote_details": None, "subscription_details": {
            "metadata": {"gift": gift, "campaign": "twenty"} if gift else {},
            "subscription": subscription}, "type": "subscription_details"},
        "period_end": NOW, "period_start": NOW, "status": status,
        "status_transitions": {"finalized_at": NOW, "marked_uncollectible_at": None,
                               "paid_at": paid_at if status == "paid" else None,
                               "voided_at": None},
        "subtotal": amount, "total": amount,
    }


def invoice_payment(*, invoice_id="in_test_1", intent="pi_test_sub_1", amount: int,
                    paid_at=NOW) -> dict:
    return {"id": f"inpay_{invoice_id}", "object": "invoice_payment", "amount_paid": amount,
            "amount_requested": amount, "created": NOW, "currency": "usd",
            "invoice": invoice_id, "is_default": True, "livemode": False,
            "payment": {"payment_intent": intent, "type": "payment_intent"},
            "status": "paid", "status_transitions": {"canceled_at": None, "paid_at": paid_at}}


def subscription(*, sub_id="sub_test_1", status="active", amount: int, gift: str | None,
                 canceled_at=None, reason=None, comment=None, start_date=NOW) -> dict:
    """``reason``: ``cancellation_details.reason`` (cancellation_requested, payment_failed,
    payment_disputed)."""
    return {
        "id": sub_id, "object": "subscription", "billing_cycle_anchor": start_date,
        "cancel_at": None, "cancel_at_period_end": False, "canceled_at": canceled_at,
        "cancellation_details": {"comment": comment, "feedback": None, "reason": reason},
        "collection_method": "charge_automatically", "created": NOW, "currency": "usd",
        "customer": "cus_test_1", "ended_at": canceled_at,
        "items": {"object": "list", "data": [{
            "id": "si_test_1", "object": "subscription_item", "created": NOW,
            "current_period_end": NOW + 30 * 86400, "current_period_start": NOW,
            "price": {"id": "price_test_1", "object": "price", "active": False,
                      "currency": "usd", "product": "prod_test_1", "type": "recurring",
                      "recurring": {"interval": "month", "interval_count": 1,
                                    "usage_type": "licensed"},
                      "unit_amount": amount},
            "quantity": 1, "subscription": sub_id}],
            "has_more": False, "url": f"/v1/subscription_items?subscription={sub_id}"},
        "latest_invoice": "in_test_1", "livemode": False,
        "metadata": {"gift": gift, "campaign": "twenty"} if gift else {},
        "start_date": start_date, "status": status,
    }


def stripe_list(data: list, url: str) -> dict:
    return {"object": "list", "data": data, "has_more": False, "url": url}


def payout(*, payout_id="po_test_1", amount: int, status="paid", currency="usd",
           arrival_date=NOW - NOW % 86400 + 2 * 86400, reconciliation_status="completed",
           automatic=True, failure_message=None) -> dict:
    """A payout as ``payout.*`` events carry it (arrival_date: a UTC midnight in Stripe)."""
    failed = status in ("failed", "canceled")
    return {
        "id": payout_id, "object": "payout", "amount": amount, "application_fee": None,
        "application_fee_amount": None, "arrival_date": arrival_date, "automatic": automatic,
        "balance_transaction": f"txn_{payout_id}", "created": NOW, "currency": currency,
        "description": "STRIPE PAYOUT", "destination": "ba_test_1",
        "failure_balance_transaction": f"txn_{payout_id}_failure" if failed else None,
        "failure_code": "account_closed" if failed else None,
        "failure_message": failure_message, "livemode": False, "metadata": {},
        "method": "standard", "original_payout": None, "payout_method": None,
        "reconciliation_status": reconciliation_status, "reversed_by": None,
        "source_type": "card", "statement_descriptor": None, "status": status,
        "trace_id": {"status": "supported" if status == "paid" else "pending",
                     "value": "TRACE123" if status == "paid" else None},
        "type": "bank_account",
    }


#: Stripe's reporting category of each balance transaction type used here.
CATEGORIES = {"charge": "charge", "payment": "charge", "refund": "refund",
              "payment_refund": "refund", "stripe_fee": "fee", "payout": "payout"}


def payout_txn(*, txn_id: str, type_: str, amount: int, source, fee: int = 0,
               currency="usd", reporting_category: str | None = None,
               description: str | None = None) -> dict:
    """A balance transaction as ``GET /v1/balance_transactions?payout=...`` lists it, its
    ``source`` an id, or the object when the request expands ``data.source``."""
    return {
        "id": txn_id, "object": "balance_transaction", "amount": amount,
        "available_on": NOW + 2 * 86400, "balance_type": "payments", "created": NOW,
        "currency": currency, "description": description, "exchange_rate": None, "fee": fee,
        "fee_details": [{"amount": fee, "application": None, "currency": currency,
                         "description": "Stripe processing fees", "type": "stripe_fee"}]
        if fee else [],
        "net": amount - fee,
        "reporting_category": reporting_category or CATEGORIES.get(type_, "other_adjustment"),
        "source": source, "status": "available", "type": type_,
    }


def stripe_page(data: list, url: str, *, has_more: bool) -> dict:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}
