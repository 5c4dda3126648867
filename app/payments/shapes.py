"""What a webhook event must look like to be stored: :func:`check_event`, called once its
signature is verified and before anything is written.

Every event needs an id, a type and an object (``data.object``). For the types we apply
(``app.payments.events.HANDLERS``), each field the handler reads must be of the JSON type it
expects and fit where it goes: ids fit their columns, amounts and times are integers within
the database's and the calendar's range. A field every such object carries (a paid session's
amount, an invoice's currency) must be there; any other may be missing or null. A correctly
signed event that does not fit is refused (400) with nothing stored, rather than failing
half-way through its handler, which would be a 500 now, or a job failing again and again on
the queue.

Fields a handler does not read are not checked: an object of someone else's (another
integration on the same Stripe account) is acknowledged and ignored as before.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from app.payments.base import InvalidEvent

#: The largest amount a ledger column holds (a 32-bit INTEGER on PostgreSQL).
MAX_AMOUNT = 2**31 - 1
#: The last second of year 9999: unix times beyond it are no date Python can hold.
MAX_TIME = 253_402_300_799


@dataclass(frozen=True)
class Text:
    max_length: int = 255
    pattern: re.Pattern | None = None

    def check(self, value, path: str) -> None:
        if not isinstance(value, str) or len(value) > self.max_length:
            raise InvalidEvent(f"{path}: not a text of at most {self.max_length} characters")
        if self.pattern is not None and not self.pattern.fullmatch(value):
            raise InvalidEvent(f"{path}: not of the form {self.pattern.pattern}")


@dataclass(frozen=True)
class Int:
    low: int
    high: int

    def check(self, value, path: str) -> None:
        if (not isinstance(value, int) or isinstance(value, bool)
                or not self.low <= value <= self.high):
            raise InvalidEvent(f"{path}: not an integer from {self.low} to {self.high}")


@dataclass(frozen=True)
class Flag:
    def check(self, value, path: str) -> None:
        if not isinstance(value, bool):
            raise InvalidEvent(f"{path}: not true or false")


@dataclass(frozen=True)
class ListOf:
    item: Obj

    def check(self, value, path: str) -> None:
        if not isinstance(value, list):
            raise InvalidEvent(f"{path}: not a list")
        for i, element in enumerate(value):
            self.item.check(element, f"{path}[{i}]")


@dataclass(frozen=True)
class Either:
    """One of several shapes (an id, or the object it names when the event expands it)."""

    choices: tuple

    def check(self, value, path: str) -> None:
        for choice in self.choices:
            try:
                choice.check(value, path)
                return
            except InvalidEvent:
                continue
        raise InvalidEvent(f"{path}: not an id nor an object")


@dataclass(frozen=True)
class Obj:
    """A JSON object. ``fields``: the shape of each field, when present and not null;
    ``required``: those that must be present, not null and not empty; ``required_when``:
    (condition, names): more that must be, when every field in the condition has the value
    given."""

    fields: Mapping[str, object] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    required_when: tuple[tuple[Mapping[str, object], tuple[str, ...]], ...] = ()

    def check(self, value, path: str) -> None:
        if not isinstance(value, dict):
            raise InvalidEvent(f"{path}: not an object")
        for name, shape in self.fields.items():
            if value.get(name) is not None:
                shape.check(value[name], f"{path}.{name}")
        required = list(self.required)
        for condition, names in self.required_when:
            if all(value.get(k) == v for k, v in condition.items()):
                required.extend(names)
        for name in required:
            if value.get(name) in (None, ""):
                raise InvalidEvent(f"{path}.{name}: missing")


def obj(*, required: tuple[str, ...] = (), required_when=(), **fields) -> Obj:
    return Obj(fields=fields, required=required, required_when=required_when)


ID = Text(255)
SHORT = Text(50)  # a status, a mode, a reason: compared with our words, or stored in 20
MESSAGE = Text(10_000)  # a provider's sentence, cut to its column's length where stored
CURRENCY = Text(3, re.compile(r"[A-Za-z]{3}"))
AMOUNT = Int(0, MAX_AMOUNT)
TIME = Int(0, MAX_TIME)
COUNT = Int(0, 1_000_000)
# Stripe's metadata values are text of up to 500 characters; ours names the gift.
METADATA = obj(gift=Text(500))
SUBSCRIPTION_PARENT = obj(subscription_details=obj(subscription=ID, metadata=METADATA))

CHECKOUT_SESSION = obj(
    id=ID, payment_status=SHORT, mode=SHORT, metadata=METADATA, client_reference_id=Text(500),
    customer=ID, created=TIME, amount_total=AMOUNT, currency=CURRENCY, payment_intent=ID,
    subscription=ID, invoice=ID,
    required=("id",),
    required_when=(
        ({"payment_status": "paid"}, ("mode", "amount_total", "currency")),
        ({"payment_status": "paid", "mode": "payment"}, ("payment_intent",)),
        ({"payment_status": "paid", "mode": "subscription"}, ("subscription", "invoice")),
    ),
)
PAYMENT_INTENT = obj(
    id=ID, metadata=METADATA, latest_charge=Either((ID, obj())), amount_received=AMOUNT,
    currency=CURRENCY, created=TIME, last_payment_error=obj(message=MESSAGE),
    required=("id", "amount_received", "currency"),
)
INVOICE = obj(
    id=ID, parent=SUBSCRIPTION_PARENT, status_transitions=obj(paid_at=TIME),
    billing_reason=SHORT, customer=ID, amount_paid=AMOUNT, currency=CURRENCY,
    attempt_count=COUNT, next_payment_attempt=TIME,
    required=("id", "amount_paid", "currency"),
)
SUBSCRIPTION = obj(
    id=ID, metadata=METADATA, status=SHORT, canceled_at=TIME, cancel_at=TIME,
    cancel_at_period_end=Flag(),
    items=obj(data=ListOf(obj(price=obj(unit_amount=AMOUNT), current_period_end=TIME,
                              required=("price",)))),
    cancellation_details=obj(comment=MESSAGE, reason=SHORT), start_date=TIME,
    required=("id", "status"),
)
CHARGE = obj(id=ID, payment_intent=ID, refunds=obj(data=ListOf(obj(
    id=ID, amount=AMOUNT, status=SHORT, created=TIME, required=("id", "amount")))),
    required=("id",))
SIGNED_AMOUNT = Int(-MAX_AMOUNT, MAX_AMOUNT)
DISPUTE = obj(
    id=ID, status=SHORT, charge=ID, payment_intent=ID, amount=AMOUNT, created=TIME,
    # The money it moved: withdrawn (negative) with the dispute fee, reinstated (positive).
    balance_transactions=ListOf(obj(amount=SIGNED_AMOUNT, fee=SIGNED_AMOUNT,
                                    currency=CURRENCY, created=TIME,
                                    required=("amount", "fee", "currency"))),
    required=("id", "status", "amount"),
)
PAYOUT = obj(
    object=SHORT, id=ID, amount=AMOUNT, currency=CURRENCY, status=Text(20),
    arrival_date=TIME, created=TIME, automatic=Flag(), reconciliation_status=Text(20),
    failure_message=MESSAGE,
    required_when=(({"object": "payout"},
                    ("id", "amount", "currency", "status", "arrival_date", "created")),),
)

#: The object each applied event type carries (``app.payments.events.HANDLERS``: a test
#: checks that every handled type has one).
OBJECT_SHAPES: dict[str, Obj] = {
    "checkout.session.completed": CHECKOUT_SESSION,
    "checkout.session.async_payment_succeeded": CHECKOUT_SESSION,
    "checkout.session.async_payment_failed": CHECKOUT_SESSION,
    "payment_intent.succeeded": PAYMENT_INTENT,
    "payment_intent.payment_failed": obj(**PAYMENT_INTENT.fields, required=("id",)),
    "invoice.paid": INVOICE,
    "invoice.payment_failed": INVOICE,
    "customer.subscription.updated": SUBSCRIPTION,
    "customer.subscription.deleted": obj(**SUBSCRIPTION.fields, required=("id",)),
    "charge.refunded": CHARGE,
    "charge.dispute.created": DISPUTE,
    "charge.dispute.funds_withdrawn": DISPUTE,
    "charge.dispute.funds_reinstated": DISPUTE,
    "charge.dispute.closed": DISPUTE,
    "payout.paid": PAYOUT,
    "payout.failed": PAYOUT,
    "payout.canceled": PAYOUT,
    "payout.reconciliation_completed": PAYOUT,
}


def check_event(event: Mapping) -> None:
    """Raise InvalidEvent (saying which field, never its value) unless the event has the
    shape its handler reads."""
    # ``created`` says how long an early event has waited (``app.payments.events.overdue``).
    obj(id=ID, type=Text(100), created=TIME, required=("id", "type", "data")).check(
        event, "event")
    data = event["data"]
    obj(required=("object",)).check(data, "data")
    OBJECT_SHAPES.get(event["type"], Obj()).check(data["object"], "data.object")
