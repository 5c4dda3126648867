"""The payment provider interface. Card data never reaches this app: every provider sends the
donor to a hosted checkout page and tells us the outcome through signed webhook events.

Events are handled in Stripe's object shapes (the sandbox speaks them too), so one set of
handlers serves every provider.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from app.giving.models import Frequency


class ProviderError(Exception):
    """The provider could not be reached or refused the request; the message is for people."""


class InvalidEvent(Exception):
    """A webhook whose signature, timestamp or body does not check out."""


#: How deep an event's JSON may nest. Stripe's events, expanded objects and all, stay far
#: below it; code that walks a stored event (the erasure of personal data) recurses.
MAX_EVENT_DEPTH = 32


def decode_event(payload: bytes) -> dict:
    """The JSON object of a verified webhook body, as plain dicts and lists. Raises
    InvalidEvent when it is not UTF-8 JSON, not an object, or nested deeper than
    :data:`MAX_EVENT_DEPTH` (a JSON nesting too deep for the parser is refused the same)."""
    try:
        event = json.loads(payload.decode("utf-8"))
    except (ValueError, RecursionError):  # not UTF-8 (UnicodeDecodeError) or not JSON
        raise InvalidEvent("body is not JSON") from None
    if not isinstance(event, dict):
        raise InvalidEvent("body is not a JSON object")
    stack = [(event, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_EVENT_DEPTH:
            raise InvalidEvent(f"body nests deeper than {MAX_EVENT_DEPTH} levels")
        children = value.values() if isinstance(value, dict) else value
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, dict | list))
    return event


@dataclass(frozen=True)
class CheckoutRequest:
    reference: str  # our gift's public id
    amount: int  # minor units, charged now and, when recurring, every period
    currency: str
    frequency: Frequency
    description: str
    email: str
    success_url: str
    cancel_url: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Checkout:
    id: str
    url: str


@dataclass(frozen=True)
class RefundResult:
    id: str
    amount: int
    status: str  # the provider's word: succeeded, pending, failed
    created: int | None = None  # unix time


@dataclass(frozen=True)
class Card:
    """The card a charge was paid with, as the provider reports it (never more than this)."""

    brand: str | None  # Stripe's word: visa, mastercard, amex, discover, ...
    last4: str

    #: How each brand is named to the donor ("Visa card ending 4242").
    NAMES = {"visa": "Visa", "mastercard": "Mastercard", "amex": "American Express",
             "discover": "Discover", "diners": "Diners Club", "jcb": "JCB",
             "unionpay": "UnionPay", "cartes_bancaires": "Cartes Bancaires"}

    @classmethod
    def from_details(cls, details) -> Card | None:
        """The card in a Stripe-shaped ``payment_method_details`` (``{"type": "card", "card":
        {"brand": ..., "last4": ...}}``), or None when there is none or it is not one."""
        card = details.get("card") if isinstance(details, Mapping) else None
        if not isinstance(card, Mapping):
            return None
        brand, last4 = card.get("brand"), card.get("last4")
        if not (isinstance(last4, str) and len(last4) == 4 and last4.isdigit()):
            return None
        if not (isinstance(brand, str) and 0 < len(brand) <= 20):
            brand = None
        return cls(brand=brand.lower() if brand else None, last4=last4)

    @property
    def label(self) -> str:
        name = self.NAMES.get(self.brand or "")
        return f"{name} card ending {self.last4}" if name else f"Card ending {self.last4}"


@dataclass(frozen=True)
class ChargeDetails:
    """What the provider knows of a charge once it settles: its ids, its fee and the net, the
    card it was paid with, and when the money moved (``paid_at``: the charge's own time; for
    an invoice, when its payment was paid), which is the gift's paid time whichever event
    records it first."""

    charge_id: str | None
    payment_intent_id: str | None
    fee: int | None
    net: int | None
    card: Card | None = None
    paid_at: datetime | None = None


@dataclass(frozen=True)
class BalanceTransaction:
    """One movement of the provider's balance that a payout paid out, in Stripe's terms."""

    id: str  # txn_...
    type: str  # charge, payment, refund, payment_refund, adjustment, stripe_fee, payout, ...
    source_id: str | None  # the object behind it: ch_, py_, re_, pyr_, du_, po_, ...
    amount: int  # signed minor units, in the payout's (settlement) currency
    fee: int
    net: int
    currency: str  # upper case
    reporting_category: str | None = None  # charge, refund, dispute, dispute_reversal, fee...
    # For a charge: its payment intent, when the provider tells (the ledger may know only that).
    payment_intent_id: str | None = None


@dataclass(frozen=True)
class PaymentReference:
    """Whose sale a payment was, as the provider holds it: the gift our checkout named in the
    payment intent's metadata, or, for an invoice's payment, the subscription it paid and the
    gift that subscription's metadata names."""

    gift: str | None
    subscription_id: str | None = None


@dataclass(frozen=True)
class ProviderSubscription:
    """A subscription that already lives at the provider (another platform started it), as
    ``flask supporters import`` adopts it: what it charges, how often, until when it is paid."""

    id: str
    customer_id: str | None
    status: str  # the provider's word: active, trialing, past_due, unpaid, canceled, ...
    amount: int  # minor units a period (the price times the quantity)
    currency: str  # upper case
    interval: str  # month, year (day, week: not a plan here)
    interval_count: int
    items: int  # how many prices it charges (a plan here is one)
    created: datetime
    started_at: datetime | None
    period_end: datetime | None  # the end of the period paid for: the next payment's date
    cancel_at_period_end: bool
    cancel_at: datetime | None
    metadata: dict[str, str] = field(default_factory=dict)
    # A coupon or discount applies: its invoices charge less than its price.
    discounted: bool = False

    @property
    def live(self) -> bool:
        """Still charging, or paid until a date: a plan here (the others have ended)."""
        return self.status in ("active", "trialing", "past_due", "unpaid")

    @property
    def ends_at(self) -> datetime | None:
        """When a subscription cancelled by its donor stops, paid until then; None: it goes
        on."""
        if self.cancel_at is not None:
            return self.cancel_at
        return self.period_end if self.cancel_at_period_end else None


class PaymentProvider(ABC):
    name: str

    # -- adopting subscriptions another platform started (Stripe only) ----------------------

    def subscription(self, subscription_id: str) -> ProviderSubscription | None:
        """The subscription, or None when the account has no such one."""
        raise ProviderError(f"The {self.name} provider has no subscriptions to import.")

    def customer_subscriptions(self, customer_id: str) -> list[ProviderSubscription]:
        """Every subscription of the customer, ended ones too (all pages)."""
        raise ProviderError(f"The {self.name} provider has no subscriptions to import.")

    def customers_by_email(self, email: str) -> list[str]:
        """The ids of the customers with this email address (the provider matches it
        exactly, so the caller gives it lowercased as stored here)."""
        raise ProviderError(f"The {self.name} provider has no customers to import.")

    def tag_subscription(self, subscription_id: str, metadata: Mapping[str, str], *,
                         idempotency_key: str) -> None:
        """Add ``metadata`` to the subscription (its later invoices carry a copy); nothing
        else about it changes and nothing is charged."""
        raise ProviderError(f"The {self.name} provider has no subscriptions to import.")

    @abstractmethod
    def create_checkout(self, request: CheckoutRequest, *, idempotency_key: str) -> Checkout:
        """Open a hosted checkout for one gift."""

    @abstractmethod
    def parse_event(self, payload: bytes, headers: Mapping[str, str]) -> dict:
        """Verify the signature (with its timestamp tolerance), then decode. Raises InvalidEvent."""

    @abstractmethod
    def cancel_subscription(self, subscription_id: str, *, idempotency_key: str) -> None:
        """Stop a subscription now; no further charges. Cancelling twice is not an error."""

    @abstractmethod
    def change_subscription_amount(self, subscription_id: str, *, amount: int, currency: str,
                                   frequency: Frequency, description: str,
                                   idempotency_key: str) -> None:
        """Charge ``amount`` from the next period on, without proration."""

    @abstractmethod
    def refund(self, *, payment_intent_id: str | None, charge_id: str | None, amount: int,
               idempotency_key: str) -> RefundResult:
        """Give back ``amount`` of a charge (all or part of it)."""

    @abstractmethod
    def billing_portal_url(self, *, customer_id: str, return_url: str,
                           updated_url: str | None = None) -> str:
        """A page of the provider's where the donor updates their card, then comes back: to
        ``updated_url`` once a new card is saved (the provider's word that it changed), to
        ``return_url`` when they leave without saving one (``updated_url`` defaults to it)."""

    @abstractmethod
    def charge_details(self, *, payment_intent_id: str | None = None,
                       invoice_id: str | None = None) -> ChargeDetails | None:
        """The charge behind a payment intent or a paid invoice, or None if there is none yet."""

    @abstractmethod
    def list_refunds(self, charge_id: str) -> list[RefundResult]:
        """Every refund of a charge, as the provider holds them."""

    @abstractmethod
    def payment_reference(self, payment_intent_id: str) -> PaymentReference | None:
        """Whose sale the payment intent was; None when the provider has no such payment.
        Raises ProviderError when it cannot say just now."""

    @abstractmethod
    def list_events(self, *, since: int, types: Collection[str]) -> Iterator[dict]:
        """Every event of those types the provider created since the unix time ``since``, as
        plain dicts, oldest first (all pages). Raises ProviderError when they cannot be
        listed."""

    @abstractmethod
    def payout_transactions(self, payout_id: str) -> list[BalanceTransaction]:
        """Every balance transaction an automatic payout paid out, all pages. Raises
        ProviderError when they cannot be listed."""
