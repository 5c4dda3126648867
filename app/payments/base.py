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


class PaymentProvider(ABC):
    name: str

    @abstractmethod
    def create_checkout(self, request: CheckoutRequest, *, idempotency_key: str) -> Checkout:
        """Open a hosted checkout for one gift."""

    @abstractmethod
    def parse_event(self, payload: bytes, headers: Mapping[str, str]) -> dict:
        """Verify the signature (with its timestamp tolerance), then decode. Raises InvalidEvent."""
