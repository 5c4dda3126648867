"""The payment provider interface. Card data never reaches this app: every provider sends the
donor to a hosted checkout page and tells us the outcome through signed webhook events.

Events are handled in Stripe's object shapes (the sandbox speaks them too), so one set of
handlers serves every provider.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field

from app.giving.models import Frequency


class ProviderError(Exception):
    """The provider could not be reached or refused the request; the message is for people."""


class InvalidEvent(Exception):
    """A webhook whose signature, timestamp or body does not check out."""


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
class ChargeDetails:
    """What the provider knows of a charge once it settles: its ids, its fee and the net."""

    charge_id: str | None
    payment_intent_id: str | None
    fee: int | None
    net: int | None


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


class PaymentProvider(ABC):
    name: str

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
    def billing_portal_url(self, *, customer_id: str, return_url: str) -> str:
        """A page of the provider's where the donor updates their card, then comes back."""

    @abstractmethod
    def charge_details(self, *, payment_intent_id: str | None = None,
                       invoice_id: str | None = None) -> ChargeDetails | None:
        """The charge behind a payment intent or a paid invoice, or None if there is none yet."""

    @abstractmethod
    def list_refunds(self, charge_id: str) -> list[RefundResult]:
        """Every refund of a charge, as the provider holds them."""

    @abstractmethod
    def payout_transactions(self, payout_id: str) -> list[BalanceTransaction]:
        """Every balance transaction an automatic payout paid out, all pages. Raises
        ProviderError when they cannot be listed."""
