"""The Stripe provider: Checkout Sessions for giving, Billing for monthly and annual gifts, the
customer portal for card updates, refunds, and webhook verification.

The only module that imports the ``stripe`` SDK. Every request is written for the API version
pinned below (the SDK's own), sent with an idempotency key, a timeout and bounded retries.
Failures become ``ProviderError`` with a message fit for the donor; nothing is recorded for a
checkout that could not be opened.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Mapping
from datetime import UTC, datetime
from functools import partial
from urllib.parse import quote as _quote

import requests
import stripe
from stripe import WebhookSignature  # once: each stripe.<name> is a lazy import

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
    ProviderSubscription,
    RefundResult,
    decode_event,
)

log = logging.getLogger(__name__)

#: The API version every request and webhook handler here is written for. It is the version of
#: the installed SDK (checked by a test), so upgrading the SDK is a deliberate change.
API_VERSION = "2026-10-28.endive"

SIGNATURE_HEADER = "Stripe-Signature"
INTERVALS = {Frequency.MONTHLY: "month", Frequency.ANNUAL: "year"}

UNREACHABLE = ("We could not reach our payment provider just now. Nothing was charged; please "
               "try again in a minute.")
REFUSED = ("Our payment provider could not start this payment. Nothing was charged; please try "
           "again, or write to us if it keeps happening.")


class StripeProvider(PaymentProvider):
    name = "stripe"

    def __init__(self, *, secret_key: str, webhook_secret: str, api_base: str = "",
                 tolerance: int = 300, timeout: float = 10.0, retries: int = 2):
        self.webhook_secret = webhook_secret
        self.tolerance = tolerance
        base = {"api": api_base.rstrip("/")} if api_base else None
        self.client = stripe.StripeClient(
            secret_key,
            stripe_version=API_VERSION,
            base_addresses=base,
            max_network_retries=retries,
            http_client=_http_client(api_base or stripe.api_base, timeout=timeout),
        )

    def _retrieve(self, path: str, params: dict) -> dict:
        """``GET path`` (``/v1/<objects>/<id>``, the id quoted) as the JSON Stripe answered,
        through the SDK's ``raw_request`` (the same authentication, version, retries and
        errors): what a typed ``retrieve`` returns, without building the tree of
        StripeObjects that ``to_dict()`` then took apart again (40% of a webhook's API call
        in a worker)."""
        return self._call(lambda params, options: self.client.raw_request(
            "get", path, **params, **(options or {})).data, params)

    def _call(self, func, params: dict, *, idempotency_key: str | None = None):
        options = {"idempotency_key": idempotency_key} if idempotency_key else None
        try:
            return func(params=params, options=options)
        except stripe.APIConnectionError as exc:
            log.warning("Stripe unreachable: %s", exc)
            raise ProviderError(UNREACHABLE) from exc
        except stripe.StripeError as exc:
            log.error("Stripe refused a request: %s (request id %s)", exc.user_message or exc,
                      getattr(exc, "request_id", None))
            raise ProviderError(REFUSED) from exc

    # -- giving -----------------------------------------------------------------------------

    def create_checkout(self, request: CheckoutRequest, *, idempotency_key: str) -> Checkout:
        price_data = {
            "currency": request.currency.lower(),
            "unit_amount": request.amount,
            "product_data": {"name": request.description},
        }
        params = {
            "mode": "payment",
            "line_items": [{"price_data": price_data, "quantity": 1}],
            "customer_email": request.email,
            "client_reference_id": request.reference,
            "metadata": dict(request.metadata),
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
        }
        if request.frequency.is_recurring:
            price_data["recurring"] = {"interval": INTERVALS[request.frequency]}
            params["mode"] = "subscription"
            params["subscription_data"] = {"metadata": dict(request.metadata),
                                           "description": request.description}
        else:
            params["submit_type"] = "donate"
            params["payment_intent_data"] = {"metadata": dict(request.metadata),
                                             "description": request.description}
        session = self._call(self.client.v1.checkout.sessions.create, params,
                             idempotency_key=idempotency_key)
        return Checkout(id=session.id, url=session.url)

    # -- plans ------------------------------------------------------------------------------

    def cancel_subscription(self, subscription_id: str, *, idempotency_key: str) -> None:
        try:
            self.client.v1.subscriptions.cancel(
                subscription_id, options={"idempotency_key": idempotency_key})
        except stripe.InvalidRequestError as exc:
            # Already cancelled at Stripe (in the portal, say): the outcome we want.
            if exc.code == "resource_missing" or "canceled" in str(exc):
                return
            raise ProviderError(REFUSED) from exc
        except stripe.APIConnectionError as exc:
            raise ProviderError(UNREACHABLE) from exc
        except stripe.StripeError as exc:
            raise ProviderError(REFUSED) from exc

    def change_subscription_amount(self, subscription_id: str, *, amount: int, currency: str,
                                   frequency: Frequency, description: str,
                                   idempotency_key: str) -> None:
        subscription = self._retrieve(f"/v1/subscriptions/{quote(subscription_id)}", {})
        item = subscription["items"]["data"][0]
        self._call(
            lambda params, options: self.client.v1.subscriptions.update(
                subscription_id, params=params, options=options),
            {
                "items": [{"id": item["id"], "price_data": {
                    "currency": currency.lower(), "unit_amount": amount,
                    "product": item["price"]["product"],
                    "recurring": {"interval": INTERVALS[frequency]},
                }}],
                "proration_behavior": "none",
            },
            idempotency_key=idempotency_key,
        )

    def billing_portal_url(self, *, customer_id: str, return_url: str,
                           updated_url: str | None = None) -> str:
        # Straight to the portal's card-update flow; Stripe sends the donor to the
        # after-completion address only once the new card is saved, and to return_url from
        # the portal's way back.
        session = self._call(self.client.v1.billing_portal.sessions.create, {
            "customer": customer_id, "return_url": return_url,
            "flow_data": {"type": "payment_method_update", "after_completion": {
                "type": "redirect", "redirect": {"return_url": updated_url or return_url}}},
        })
        return session.url

    # -- adopting subscriptions another platform started -----------------------------------

    def subscription(self, subscription_id: str) -> ProviderSubscription | None:
        try:
            found = self._retrieve(f"/v1/subscriptions/{quote(subscription_id)}", {})
        except ProviderError as exc:
            if getattr(exc.__cause__, "http_status", None) == 404:
                return None
            raise
        return _subscription(found)

    def customer_subscriptions(self, customer_id: str) -> list[ProviderSubscription]:
        page = self._call(self.client.v1.subscriptions.list,
                          {"customer": customer_id, "status": "all", "limit": 100})
        try:
            return [_subscription(s.to_dict()) for s in page.auto_paging_iter()]
        except stripe.APIConnectionError as exc:
            raise ProviderError(UNREACHABLE) from exc
        except stripe.StripeError as exc:
            raise ProviderError(REFUSED) from exc

    def customers_by_email(self, email: str) -> list[str]:
        page = self._call(self.client.v1.customers.list, {"email": email, "limit": 100})
        try:
            return [c.id for c in page.auto_paging_iter()]
        except stripe.APIConnectionError as exc:
            raise ProviderError(UNREACHABLE) from exc
        except stripe.StripeError as exc:
            raise ProviderError(REFUSED) from exc

    def tag_subscription(self, subscription_id: str, metadata: Mapping[str, str], *,
                         idempotency_key: str) -> None:
        # Only metadata: no price, no proration, no invoice; Stripe merges the keys given.
        self._call(lambda params, options: self.client.v1.subscriptions.update(
            subscription_id, params=params, options=options),
            {"metadata": dict(metadata)}, idempotency_key=idempotency_key)

    # -- money after the fact ---------------------------------------------------------------

    def refund(self, *, payment_intent_id: str | None, charge_id: str | None, amount: int,
               idempotency_key: str) -> RefundResult:
        params = {"amount": amount}
        if payment_intent_id:
            params["payment_intent"] = payment_intent_id
        else:
            params["charge"] = charge_id
        refund = self._call(self.client.v1.refunds.create, params,
                            idempotency_key=idempotency_key)
        return RefundResult(id=refund.id, amount=refund.amount, status=refund.status,
                            created=refund.created)

    def list_refunds(self, charge_id: str) -> list[RefundResult]:
        page = self._call(self.client.v1.refunds.list, {"charge": charge_id, "limit": 100})
        return [RefundResult(id=r.id, amount=r.amount, status=r.status, created=r.created)
                for r in page.auto_paging_iter()]

    def charge_details(self, *, payment_intent_id: str | None = None,
                       invoice_id: str | None = None) -> ChargeDetails | None:
        paid_at = None
        if payment_intent_id is None and invoice_id:
            # Since 2025 an invoice names its payments through InvoicePayment objects.
            payments = self._call(self.client.v1.invoice_payments.list,
                                  {"invoice": invoice_id, "limit": 10})
            for invoice_payment in (p.to_dict() for p in payments.data):
                payment = invoice_payment["payment"]
                if invoice_payment["status"] == "paid" and payment.get("payment_intent"):
                    payment_intent_id = payment["payment_intent"]
                    # An invoice is paid when its payment is: status_transitions.paid_at.
                    paid_at = _time((invoice_payment.get("status_transitions") or {})
                                    .get("paid_at"))
                    break
        if payment_intent_id is None:
            return None
        intent = self._retrieve(f"/v1/payment_intents/{quote(payment_intent_id)}",
                                {"expand": ["latest_charge.balance_transaction"]})
        charge = intent.get("latest_charge")
        if not charge or isinstance(charge, str):
            return ChargeDetails(charge_id=charge or None, payment_intent_id=payment_intent_id,
                                 fee=None, net=None, paid_at=paid_at)
        txn = charge.get("balance_transaction")
        fee = net = None
        if txn and not isinstance(txn, str):
            fee, net = txn["fee"], txn["net"]
        return ChargeDetails(charge_id=charge["id"], payment_intent_id=payment_intent_id,
                             fee=fee, net=net,
                             card=Card.from_details(charge.get("payment_method_details")),
                             paid_at=paid_at or _time(charge.get("created")))

    def payment_reference(self, payment_intent_id: str) -> PaymentReference | None:
        """The payment intent's ``metadata.gift`` (our checkout sets it on a one-time gift's);
        failing that, the invoice it paid (``GET /v1/invoice_payments?payment[...]``, the
        invoice expanded) and the subscription and gift named there (our checkout sets
        ``metadata.gift`` on a subscription, and each invoice carries a copy). None when
        Stripe has no such payment intent (404)."""
        try:
            intent = self._retrieve(f"/v1/payment_intents/{quote(payment_intent_id)}", {})
        except ProviderError as exc:
            if getattr(exc.__cause__, "http_status", None) == 404:
                return None
            raise
        gift = (intent.get("metadata") or {}).get("gift")
        if gift:
            return PaymentReference(gift=gift)
        payments = self._call(self.client.v1.invoice_payments.list, {
            "payment": {"type": "payment_intent", "payment_intent": payment_intent_id},
            "limit": 1, "expand": ["data.invoice"]})
        for invoice_payment in (p.to_dict() for p in payments.data):
            invoice = invoice_payment.get("invoice")
            if isinstance(invoice, dict):
                details = (invoice.get("parent") or {}).get("subscription_details") or {}
                return PaymentReference(gift=(details.get("metadata") or {}).get("gift"),
                                        subscription_id=details.get("subscription"))
        return PaymentReference(gift=None)

    # -- events -----------------------------------------------------------------------------

    def list_events(self, *, since: int, types: Collection[str]) -> Iterator[dict]:
        """``GET /v1/events?created[gte]=...&types[]=...``, 100 a page, every page (Stripe
        lists newest first and keeps 30 days; the SDK follows ``has_more`` with
        ``starting_after``), returned oldest first. Stripe renders each listed event in the
        API version of its day, which a webhook endpoint pins: one in another version is
        logged, like a delivered one."""
        page = self._call(self.client.v1.events.list,
                          {"created": {"gte": since}, "types": sorted(types), "limit": 100})
        listed = []
        try:
            for event in page.auto_paging_iter():
                listed.append(event.to_dict())
        except stripe.APIConnectionError as exc:
            raise ProviderError(UNREACHABLE) from exc
        except stripe.StripeError as exc:
            raise ProviderError(REFUSED) from exc
        for event in listed:
            if event.get("api_version") not in (None, API_VERSION):
                log.warning("Stripe event %s is in API version %s, not %s", event.get("id"),
                            event.get("api_version"), API_VERSION)
        return reversed(listed)

    # -- payouts ----------------------------------------------------------------------------

    def payout_transactions(self, payout_id: str) -> list[BalanceTransaction]:
        """``GET /v1/balance_transactions?payout=po_...`` (automatic payouts only), 100 a page,
        every page (the SDK follows ``has_more`` with ``starting_after``). Each transaction's
        source is expanded so a charge also names its payment intent: the ledger knows some
        charges by that alone."""
        page = self._call(self.client.v1.balance_transactions.list,
                          {"payout": payout_id, "limit": 100, "expand": ["data.source"]})
        found = []
        try:
            for txn in page.auto_paging_iter():
                found.append(_balance_transaction(txn.to_dict()))
        except stripe.APIConnectionError as exc:
            raise ProviderError(UNREACHABLE) from exc
        except stripe.StripeError as exc:
            raise ProviderError(REFUSED) from exc
        return found

    # -- webhooks ---------------------------------------------------------------------------

    def parse_event(self, payload: bytes, headers: Mapping[str, str]) -> dict:
        """Verify ``Stripe-Signature`` with the SDK's own check (the one
        ``stripe.Webhook.construct_event`` makes), then parse the JSON once into plain dicts:
        building the SDK's StripeObject tree as well would cost most of a fresh event's time."""
        header = headers.get(SIGNATURE_HEADER)
        if header is not None and not header.isascii():
            # The SDK's comparison raises TypeError on text that is not ASCII.
            raise InvalidEvent("signature: malformed header")
        try:
            WebhookSignature.verify_header(
                payload.decode(), header, self.webhook_secret, tolerance=self.tolerance)
        except stripe.SignatureVerificationError as exc:
            raise InvalidEvent(f"signature: {exc.user_message or exc}") from None
        except ValueError:  # not UTF-8
            raise InvalidEvent("body is not JSON") from None
        event = decode_event(payload)
        if not {"id", "type", "data"} <= event.keys():
            raise InvalidEvent("body is not a Stripe event")
        if event.get("api_version") not in (None, API_VERSION):
            log.warning("Stripe event %s is in API version %s, not %s; check the webhook "
                        "endpoint's version", event.get("id"), event.get("api_version"),
                        API_VERSION)
        return event


def _time(ts) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if isinstance(ts, int) and ts > 0 else None


def _subscription(sub: dict) -> ProviderSubscription:
    """Since API version 2025-03-31 the period sits on each item, not the subscription."""
    items = (sub.get("items") or {}).get("data") or []
    first = items[0] if items else {}
    price = first.get("price") or {}
    recurring = price.get("recurring") or {}
    customer = sub.get("customer")
    return ProviderSubscription(
        id=sub["id"], customer_id=customer.get("id") if isinstance(customer, dict) else customer,
        status=sub.get("status") or "", amount=(price.get("unit_amount") or 0)
        * (first.get("quantity") or 1), currency=(price.get("currency") or sub.get("currency")
                                                 or "").upper(),
        interval=recurring.get("interval") or "", interval_count=recurring.get("interval_count")
        or 1, items=len(items), created=_time(sub.get("created")) or datetime.min.replace(
            tzinfo=UTC), started_at=_time(sub.get("start_date")),
        period_end=_time(first.get("current_period_end") or sub.get("current_period_end")),
        cancel_at_period_end=bool(sub.get("cancel_at_period_end")),
        cancel_at=_time(sub.get("cancel_at")), metadata=dict(sub.get("metadata") or {}),
        discounted=bool(sub.get("discounts") or sub.get("discount")
                        or first.get("discounts")))


def _balance_transaction(txn: dict) -> BalanceTransaction:
    source = txn.get("source")
    intent = None
    if isinstance(source, dict):  # expanded
        if source.get("object") == "charge":
            intent = source.get("payment_intent")
            if isinstance(intent, dict):
                intent = intent.get("id")
        source = source.get("id")
    return BalanceTransaction(
        id=txn["id"], type=txn["type"], source_id=source, amount=txn["amount"],
        fee=txn["fee"], net=txn["net"], currency=txn["currency"].upper(),
        reporting_category=txn.get("reporting_category"), payment_intent_id=intent)


#: An object id in a request's path, every character but the safe ones escaped (as the SDK's
#: typed calls do).
quote = partial(_quote, safe="")


def _http_client(api_base: str, *, timeout: float) -> stripe.RequestsClient:
    """The SDK's ``requests`` client on a session that does not read the environment on each
    call. ``requests`` looked up the proxy settings (every environment variable, twice) for
    every request: a fifth of an API call's CPU. They are read once here instead: an
    ``HTTPS_PROXY`` (and ``NO_PROXY``) set for the process still applies to Stripe's address.
    (The certificates are the SDK's own bundle either way.) The SDK shares a session it is
    given between threads (a worker's asking a batch's charges): its pool keeps up to 10
    connections to the API."""
    session = requests.Session()
    session.trust_env = False
    proxies = {scheme: address for scheme, address
               in requests.utils.get_environ_proxies(api_base).items()
               if scheme in ("http", "https")}
    return stripe.RequestsClient(timeout=timeout, session=session, proxy=proxies or None)
