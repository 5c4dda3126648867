"""The sandbox provider: a local stand-in for Stripe Checkout, the default with no keys.

It behaves like the real thing from the app's side: the donor is sent to a hosted checkout page
(served by ``sandbox_views``) that takes Stripe's test card numbers, never stores them, and on
success emits Stripe-shaped events signed with HMAC-SHA256 over ``"{timestamp}.{body}"`` in a
``Sandbox-Signature: t=...,v1=...`` header, which go through the same webhook pipeline as any
provider's. The checkout session itself lives in a signed, expiring token in its URL, so the
sandbox keeps no state of its own, like a remote service would.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from app import jobs
from app.giving.models import Frequency
from app.payments.base import (
    BalanceTransaction,
    Card,
    ChargeDetails,
    Checkout,
    CheckoutRequest,
    InvalidEvent,
    PaymentProvider,
    PaymentReference,
    ProviderError,
    RefundResult,
    decode_event,
)

SIGNATURE_HEADER = "Sandbox-Signature"
TIMESTAMP = re.compile(r"[0-9]{1,12}")
SIGNATURE = re.compile(r"[0-9a-f]{64}")
CHECKOUT_MAX_AGE = 24 * 3600

# Stripe's published test cards: number -> None (succeeds) or (decline code, message).
TEST_CARDS: dict[str, tuple[str, str] | None] = {
    "4242424242424242": None,
    "4000056655665556": None,
    "5555555555554444": None,
    "2223003122003222": None,
    "378282246310005": None,
    "6011111111111117": None,
    "4000000000000002": ("generic_decline", "Your card was declined."),
    "4000000000009995": ("insufficient_funds", "Your card has insufficient funds."),
    "4000000000009987": ("lost_card", "Your card was declined."),
    "4000000000009979": ("stolen_card", "Your card was declined."),
    "4000000000000069": ("expired_card", "Your card has expired."),
    "4000000000000127": ("incorrect_cvc", "Your card's security code is incorrect."),
    "4000000000000119": ("processing_error",
                         "An error occurred while processing your card. Try again in a moment."),
}


class CardDeclined(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


#: Card brands by number prefix, in Stripe's words (longest prefixes first).
BRAND_PREFIXES = (("6011", "discover"), ("34", "amex"), ("37", "amex"), ("36", "diners"),
                  ("35", "jcb"), ("62", "unionpay"), ("65", "discover"), ("2", "mastercard"),
                  ("5", "mastercard"), ("4", "visa"))


def card_of(number: str) -> Card:
    """What Stripe would report of a card number: its brand and last four digits (all that is
    kept of it)."""
    digits = "".join(ch for ch in number if ch.isdigit())
    brand = next((b for prefix, b in BRAND_PREFIXES if digits.startswith(prefix)), None)
    return Card(brand=brand, last4=digits[-4:])


def _payment_method(card: Card | None) -> dict:
    """The card in Stripe's ``payment_method_details`` shape. Stripe reports it on the charge,
    which the app asks for (``charge_details``); the sandbox keeps no state to answer that, so
    it puts it on the event's object instead."""
    if card is None:
        return {}
    return {"payment_method_details": {"type": "card", "card": {
        "brand": card.brand, "last4": card.last4}}}


def check_card(number: str, exp_month: int, exp_year: int, cvc: str, now: datetime) -> None:
    """Decide a test card's fate as Stripe's test mode would. Raises CardDeclined."""
    number = "".join(ch for ch in number if ch.isdigit())
    if not 13 <= len(number) <= 19 or not luhn_ok(number):
        raise CardDeclined("incorrect_number", "Your card number is incorrect.")
    if (exp_year, exp_month) < (now.year, now.month) or not 1 <= exp_month <= 12:
        raise CardDeclined("invalid_expiry", "Your card's expiration date is in the past.")
    expected_cvc = 4 if number.startswith(("34", "37")) else 3
    if len(cvc) != expected_cvc or not cvc.isdigit():
        raise CardDeclined("invalid_cvc", "Your card's security code is incomplete.")
    if number not in TEST_CARDS:
        raise CardDeclined("card_declined", "The sandbox takes Stripe's test card numbers only, "
                                            "such as 4242 4242 4242 4242.")
    outcome = TEST_CARDS[number]
    if outcome is not None:
        raise CardDeclined(*outcome)


@dataclass(frozen=True)
class SandboxSession(CheckoutRequest):
    """A checkout session: what was asked for, under the session's id."""

    id: str = field(kw_only=True)

    @property
    def suffix(self) -> str:
        return self.id.removeprefix("cs_sbx_")


class SandboxProvider(PaymentProvider):
    name = "sandbox"

    def __init__(self, *, secret: str, signing_key: str, tolerance: int = 300):
        self.secret = secret.encode()
        self.tolerance = tolerance
        self._tokens = URLSafeTimedSerializer(signing_key, salt="sandbox-checkout")
        self._portal_tokens = URLSafeTimedSerializer(signing_key, salt="sandbox-portal")

    # -- checkout ---------------------------------------------------------------------------

    def create_checkout(self, request: CheckoutRequest, *, idempotency_key: str) -> Checkout:
        # Like Stripe's idempotency keys: the same key always yields the same session.
        digest = hmac.new(self.secret, idempotency_key.encode(), hashlib.sha256).hexdigest()
        session_id = f"cs_sbx_{digest[:24]}"
        token = self._tokens.dumps({"id": session_id, **asdict(request),
                                    "frequency": request.frequency.value})
        return Checkout(id=session_id, url=f"/sandbox/checkout/{token}")

    def load_session(self, token: str) -> SandboxSession | None:
        """The session in a checkout URL, or None when it is tampered with or expired."""
        try:
            data = self._tokens.loads(token, max_age=CHECKOUT_MAX_AGE)
        except (BadSignature, SignatureExpired):
            return None
        data["frequency"] = Frequency(data["frequency"])
        return SandboxSession(**data)

    def completion_events(self, session: SandboxSession, *, name: str, now: float,
                          card: Card | None = None) -> list[dict]:
        """What Stripe would send once this session is paid: the completed session and, for a
        subscription, its first paid invoice, each naming the ``card`` paid with. Ids derive
        from the session's, so paying the same session twice produces the same events, which
        the pipeline stores once."""
        s = session.suffix
        recurring = session.frequency.is_recurring
        customer = "cus_sbx_" + hashlib.sha256(session.email.encode()).hexdigest()[:20]
        obj = {
            "id": session.id, "object": "checkout.session",
            "mode": "subscription" if recurring else "payment",
            "status": "complete", "payment_status": "paid",
            "amount_total": session.amount, "currency": session.currency.lower(),
            "client_reference_id": session.reference, "customer": customer,
            "customer_details": {"email": session.email, "name": name},
            "payment_intent": None if recurring else f"pi_sbx_{s}",
            "subscription": f"sub_sbx_{s}" if recurring else None,
            "invoice": f"in_sbx_{s}_1" if recurring else None,
            "metadata": session.metadata, "created": int(now), **_payment_method(card),
        }
        events = [self._event(f"evt_sbx_{s}_completed", "checkout.session.completed", obj, now)]
        if recurring:
            events.append(self.invoice_paid_event(
                subscription_id=f"sub_sbx_{s}", customer=customer, period=1,
                amount=session.amount, currency=session.currency,
                metadata=session.metadata, now=now, card=card))
        return events

    def invoice_paid_event(self, *, subscription_id: str, customer: str | None, period: int,
                           amount: int, currency: str, metadata: dict, now: float,
                           card: Card | None = None) -> dict:
        """``invoice.paid`` for the subscription's ``period``-th invoice (1 is the first),
        charged to ``card``."""
        s = subscription_id.removeprefix("sub_sbx_")
        obj = {
            "id": f"in_sbx_{s}_{period}", "object": "invoice", "status": "paid",
            "billing_reason": "subscription_create" if period == 1 else "subscription_cycle",
            "amount_paid": amount, "currency": currency.lower(), "customer": customer,
            "status_transitions": {"paid_at": int(now)},
            "parent": {"type": "subscription_details", "subscription_details": {
                "subscription": subscription_id, "metadata": metadata}},
            "created": int(now), **_payment_method(card),
        }
        return self._event(f"evt_sbx_{s}_in{period}", "invoice.paid", obj, now)

    @staticmethod
    def _event(event_id: str, type_: str, obj: dict, now: float) -> dict:
        return {"id": event_id, "object": "event", "type": type_, "created": int(now),
                "api_version": "sandbox", "livemode": False, "data": {"object": obj}}

    # -- subscriptions, refunds, the card-update page ---------------------------------------
    # The sandbox keeps no state of its own: `flask sandbox renew` charges the plans this app
    # holds as active, at their current amount, so cancelling or changing an amount here needs
    # nothing remote.

    def cancel_subscription(self, subscription_id: str, *, idempotency_key: str) -> None:
        return None

    def change_subscription_amount(self, subscription_id: str, *, amount: int, currency: str,
                                   frequency: Frequency, description: str,
                                   idempotency_key: str) -> None:
        return None

    def refund(self, *, payment_intent_id: str | None, charge_id: str | None, amount: int,
               idempotency_key: str) -> RefundResult:
        """Refund at once and, as Stripe does, tell the app with ``charge.refunded`` (sent
        through the webhook pipeline after the caller's commit): the event, not the request,
        records the refund in the ledger."""
        digest = hmac.new(self.secret, idempotency_key.encode(), hashlib.sha256).hexdigest()
        now = time.time()
        result = RefundResult(id=f"re_sbx_{digest[:24]}", amount=amount, status="succeeded",
                              created=int(now))
        from app.payments.sandbox_views import deliver_event_job  # it imports this module

        jobs.enqueue(deliver_event_job, self.refund_event(
            result, payment_intent_id=payment_intent_id, charge_id=charge_id, now=now))
        return result

    def refund_event(self, refund: RefundResult, *, payment_intent_id: str | None,
                     charge_id: str | None, now: float) -> dict:
        """``charge.refunded`` for one refund. The charge carries the refund itself
        (``refunds.data``): the sandbox keeps no state for the app to list refunds from."""
        source = payment_intent_id or charge_id or ""
        obj = {"id": charge_id or f"ch_sbx_{source.removeprefix('pi_sbx_')}",
               "object": "charge", "payment_intent": payment_intent_id,
               "refunds": {"object": "list", "data": [{
                   "id": refund.id, "object": "refund", "amount": refund.amount,
                   "status": refund.status, "created": refund.created,
                   "payment_intent": payment_intent_id}]}}
        return self._event(f"evt_sbx_{refund.id.removeprefix('re_sbx_')}_refunded",
                           "charge.refunded", obj, now)

    def billing_portal_url(self, *, customer_id: str, return_url: str,
                           updated_url: str | None = None) -> str:
        token = self._portal_tokens.dumps({"customer": customer_id, "return_url": return_url,
                                           "updated_url": updated_url or return_url})
        return f"/sandbox/portal/{token}"

    def charge_details(self, *, payment_intent_id: str | None = None,
                       invoice_id: str | None = None) -> ChargeDetails | None:
        # The sandbox settles instantly and reports no fee: its money is not real.
        return None

    def list_refunds(self, charge_id: str) -> list[RefundResult]:
        return []

    def payment_reference(self, payment_intent_id: str) -> PaymentReference | None:
        # It keeps no payments, and the refund events it sends are about charges the app
        # recorded: any it is asked about are not its own.
        return None

    def list_events(self, *, since: int, types: Collection[str]) -> Iterator[dict]:
        # Its events are delivered in the request that makes them (or queued with it): none
        # can be missed, and it keeps none to list.
        return iter(())

    def payout_transactions(self, payout_id: str) -> list[BalanceTransaction]:
        # Its money is not real, so nothing is ever paid out to a bank, and no payout event is
        # ever sent.
        raise ProviderError("The sandbox provider makes no payouts: there is nothing to "
                            "reconcile against a bank account.")

    def load_portal(self, token: str) -> dict | None:
        try:
            return self._portal_tokens.loads(token, max_age=CHECKOUT_MAX_AGE)
        except (BadSignature, SignatureExpired):
            return None

    # -- webhooks ---------------------------------------------------------------------------

    def sign(self, payload: bytes, timestamp: int | None = None) -> dict[str, str]:
        t = int(time.time()) if timestamp is None else timestamp
        mac = hmac.new(self.secret, f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
        return {SIGNATURE_HEADER: f"t={t},v1={mac}"}

    def encode(self, event: dict) -> tuple[bytes, dict[str, str]]:
        payload = json.dumps(event, separators=(",", ":")).encode()
        return payload, self.sign(payload)

    def parse_event(self, payload: bytes, headers: Mapping[str, str]) -> dict:
        header = headers.get(SIGNATURE_HEADER)
        if not header:
            raise InvalidEvent(f"missing {SIGNATURE_HEADER} header")
        timestamp, signatures = None, []
        for part in header.split(","):
            key, _, value = part.strip().partition("=")
            # Only what this scheme can hold: a hostile 5,000-digit time or a signature that
            # is not hex is malformed, not a crash further on.
            if key == "t" and TIMESTAMP.fullmatch(value):
                timestamp = int(value)
            elif key == "v1" and SIGNATURE.fullmatch(value):
                signatures.append(value)
        if timestamp is None or not signatures:
            raise InvalidEvent("malformed signature header")
        if abs(time.time() - timestamp) > self.tolerance:
            raise InvalidEvent("timestamp outside the tolerance")
        expected = hmac.new(self.secret, f"{timestamp}.".encode() + payload,
                            hashlib.sha256).hexdigest()
        if not any(hmac.compare_digest(expected, sig) for sig in signatures):
            raise InvalidEvent("signature does not match")
        event = decode_event(payload)
        if not event.get("id") or not event.get("type"):
            raise InvalidEvent("event without id or type")
        return event
