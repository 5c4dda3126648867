"""The webhook pipeline every provider's events go through: verify, store once, process.

:func:`receive_event` verifies the signature before anything else, inserts the raw event under
its unique (provider, event id) — a duplicate stops there — and applies it in the caller's
transaction, so an event is either stored and applied or neither. Handlers are idempotent and
tolerate events arriving out of order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError

from app.db import utcnow
from app.extensions import db
from app.giving import services as giving
from app.payments.base import PaymentProvider
from app.payments.models import ProviderEvent

log = logging.getLogger(__name__)


class Ignored(Exception):
    """The event is acknowledged and kept, but changes nothing; the message says why."""


class RetryLater(Exception):
    """The event depends on one not received yet; the provider should deliver it again."""


def receive_event(provider: PaymentProvider, payload: bytes, headers: Mapping[str, str]) -> bool:
    """Verify, store and apply one event. Returns False for a duplicate, which changes nothing.

    Raises ``InvalidEvent`` (nothing stored) or ``RetryLater``; the caller commits.
    """
    event = provider.parse_event(payload, headers)
    row = ProviderEvent(provider=provider.name, event_id=str(event["id"]),
                        type=str(event["type"])[:100], payload=payload.decode())
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:
        return False
    handler = HANDLERS.get(row.type)
    if handler is None:
        row.note = "event type not handled"
    else:
        try:
            with db.session.begin_nested():
                handler(provider.name, event["data"]["object"])
        except (Ignored, giving.PaymentMismatch) as exc:
            log.warning("%s event %s ignored: %s", provider.name, row.event_id, exc)
            row.note = str(exc)[:500]
    row.processed_at = utcnow()
    return True


def _when(ts: int | None) -> datetime:
    return datetime.fromtimestamp(ts, UTC) if ts else utcnow()


def _gift_named(metadata: Mapping | None, fallback: str | None = None):
    public_id = (metadata or {}).get("gift") or fallback
    gift = giving.gift_by_public_id(public_id) if public_id else None
    if gift is None:
        raise Ignored(f"no gift {public_id!r} here")
    return gift


def checkout_completed(provider: str, session: dict) -> None:
    if session.get("payment_status") != "paid":
        raise Ignored(f"checkout session {session['id']} is not paid yet")
    gift = _gift_named(session.get("metadata"), session.get("client_reference_id"))
    when = _when(session.get("created"))
    if session.get("mode") == "subscription":
        giving.ensure_plan(gift, provider=provider, subscription_id=session["subscription"],
                           customer_id=session.get("customer"), started_at=gift.created_at)
        # A subscription's first charge is its first invoice; invoice.paid names it too.
        payment_id = session["invoice"]
    else:
        payment_id = session["payment_intent"]
    giving.record_gift_payment(gift, provider=provider, provider_id=payment_id,
                               amount=session["amount_total"], currency=session["currency"],
                               occurred_at=when)


def invoice_paid(provider: str, invoice: dict) -> None:
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    subscription_id = details.get("subscription")
    if not subscription_id:
        raise Ignored(f"invoice {invoice['id']} belongs to no subscription")
    when = _when((invoice.get("status_transitions") or {}).get("paid_at"))
    if invoice.get("billing_reason") == "subscription_create":
        gift = _gift_named(details.get("metadata"))
        giving.ensure_plan(gift, provider=provider, subscription_id=subscription_id,
                           customer_id=invoice.get("customer"), started_at=gift.created_at)
        giving.record_gift_payment(gift, provider=provider, provider_id=invoice["id"],
                                   amount=invoice["amount_paid"], currency=invoice["currency"],
                                   occurred_at=when)
        return
    plan = giving.plan_by_subscription(provider, subscription_id)
    if plan is None:
        raise RetryLater(f"subscription {subscription_id} is not known yet")
    giving.record_renewal(plan, provider_id=invoice["id"], amount=invoice["amount_paid"],
                          currency=invoice["currency"], occurred_at=when)


HANDLERS: dict[str, Callable[[str, dict], None]] = {
    "checkout.session.completed": checkout_completed,
    "invoice.paid": invoice_paid,
}
