"""The webhook pipeline every provider's events go through: verify, store once, process.

:func:`receive_event` verifies the signature before anything else, then inserts the raw event
under its unique (provider, event id); a duplicate stops there. Then, in one of two ways:

- jobs inline (the default): the event is applied in the caller's transaction, so it is either
  stored and applied or neither, and an event that depends on one not received yet is refused
  with :class:`RetryLater` (nothing stored) for the provider to deliver again;
- jobs on a queue (``REDIS_URL``): the stored event is committed and acknowledged at once, and
  :func:`process_events_job` (one queued at a time, however many webhooks arrive) applies the
  stored events in batches, a transaction each (:func:`apply_event_batch`); one that must wait
  for another, or fails, goes to a job of its own (:func:`process_event_job`), retried by the
  queue with backoff, and ``flask payments process-pending`` applies any left unprocessed.

Handlers are idempotent and tolerate events arriving in any order.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import func, or_, select, update

from app import jobs
from app.db import insert, single_statement_connection, utcnow
from app.extensions import db
from app.giving import services as giving
from app.giving.models import Gift
from app.payments import ledger, payouts
from app.payments.base import (
    Card,
    ChargeDetails,
    PaymentProvider,
    ProviderError,
    RefundResult,
)
from app.payments.models import Payment, PaymentKind, ProviderEvent
from app.payments.providers import current_provider, provider_named
from app.payments.shapes import check_event

log = logging.getLogger(__name__)


class Ignored(Exception):
    """The event is acknowledged and kept, but changes nothing; the message says why."""


class NotOurs(Ignored):
    """The event is about a sale that is not ours: another product sold on the same provider
    account, or a gift of another installation's. Acknowledged, stored with ``not_ours``."""


#: How the note of an event about a sale not ours begins.
NOT_OURS = "not ours: "


class RetryLater(Exception):
    """The event depends on one not received yet; it must be applied again later."""


#: The ``created`` time of the event being applied: when a payment's own time cannot be
#: asked of the provider, the time of the event that reports it is the nearest to it.
_event_created: ContextVar[int | None] = ContextVar("event_created", default=None)


def receive_event(provider: PaymentProvider, payload: bytes, headers: Mapping[str, str], *,
                  settings: EventSettings, defer: bool | None = None) -> bool:
    """Verify and store one event, and apply it now or queue it (``defer``, by default when
    jobs go to a queue). Returns False for a duplicate, which changes nothing.

    Raises ``InvalidEvent`` (nothing stored: a bad signature, or a body that is not the
    shape its handler reads, ``app.payments.shapes``) or, applied now, ``RetryLater``; the
    caller commits with ``jobs.commit()``.
    """
    return accept_event(provider, provider.parse_event(payload, headers), payload,
                        settings=settings, defer=defer)


def accept_event(provider: PaymentProvider, event: dict, payload: bytes, *,
                 settings: EventSettings, defer: bool | None = None) -> bool:
    """Store and apply (or queue) one event known to come from the provider: a webhook whose
    signature is verified, or one its API listed (``app.payments.sync``). The same as
    :func:`receive_event` from there on; an event of ours that must wait for another is
    answered ``RetryLater`` until it is :func:`overdue`, then parked (stored unprocessed,
    ``parked_at`` set, the note saying what it waits for) and acknowledged."""
    check_event(event)  # before storing: a malformed event is refused, not failed on later
    deferring = jobs.deferred() if defer is None else defer
    event_pk = _store(provider.name, event, payload, alone=deferring)
    if event_pk is None:
        return False
    if deferring:
        jobs.enqueue(process_events_job)
        return True
    try:
        _mark_processed([event_pk], _apply(provider, event, settings.zone))
    except RetryLater as exc:
        if not overdue(event, park_after=settings.park_after):
            raise
        db.session.execute(update(ProviderEvent).where(ProviderEvent.id == event_pk)
                           .values(note=str(exc)[:500], **_parked()))
    return True


@dataclass(frozen=True)
class EventSettings:
    """What applying events takes from the settings (:func:`event_settings`), passed in by the
    views, commands and jobs that own the app.

    ``park_after``: how long an event of ours may wait for another before it is parked
    (``WEBHOOK_PARK_AFTER_HOURS``: Stripe retries for about three days, and the catch-up sync
    lists it again for 30); ``zone``: the organisation's (``ORG_TIMEZONE``), whose calendar
    year numbers the receipts the events issue or correct."""

    park_after: timedelta
    zone: ZoneInfo


def event_settings(config: Mapping) -> EventSettings:
    return EventSettings(park_after=timedelta(hours=config["WEBHOOK_PARK_AFTER_HOURS"]),
                         zone=ZoneInfo(config["ORG_TIMEZONE"]))


def overdue(event: Mapping, *, park_after: timedelta) -> bool:
    """Whether an event still waiting for another has waited long enough to be parked:
    ``park_after`` since the provider created it."""
    created = event.get("created")
    return isinstance(created, int) and utcnow() - _when(created) >= park_after


def _parked() -> dict:
    """The values that park a stored event (its first parking time kept)."""
    return {"parked_at": func.coalesce(ProviderEvent.parked_at, utcnow())}


def _store(provider_name: str, event: Mapping, payload: bytes, *, alone: bool) -> int | None:
    """Insert the raw event in one statement; its id, or None when it was stored already.
    ``alone``: nothing is written with it (it is queued for a worker), so on a database
    server it commits by itself."""
    values = {"provider": provider_name, "event_id": str(event["id"]),
              "type": str(event["type"])[:100], "payload": payload.decode(),
              "received_at": utcnow()}
    connection = single_statement_connection() if alone else db.session.connection()
    return connection.execute(_store_statement(connection.dialect.name), values).scalar()


@functools.cache
def _store_statement(dialect: str):
    """The INSERT of :func:`_store` for the session's database (``dialect``, its name), built
    once: on the table, not the model, and with its values bound at each execution, so
    SQLAlchemy neither takes it through the ORM's bulk insert nor works out its cache key again
    to find its compiled form (built with its values, per event, that was a third of a fresh
    webhook's CPU). It runs on the session's connection: a plain INSERT has nothing of the
    ORM's to go through."""
    table = ProviderEvent.__table__
    return (insert(table).on_conflict_do_nothing(index_elements=["provider", "event_id"])
            .returning(table.c.id))


def _apply(provider: PaymentProvider, event: Mapping, zone: ZoneInfo) -> str | None:
    """Apply one event; returns why it changed nothing, if it did not. Raises RetryLater."""
    handler = HANDLERS.get(str(event["type"]))
    if handler is None:
        return "event type not handled"
    token = _event_created.set(event.get("created"))
    try:
        with db.session.begin_nested():
            handler(provider, event["data"]["object"], zone)
    except NotOurs as exc:
        log.info("%s event %s is not ours: %s", provider.name, event["id"], exc)
        return f"{NOT_OURS}{exc}"[:500]
    except (Ignored, giving.PaymentMismatch) as exc:
        log.warning("%s event %s ignored: %s", provider.name, event["id"], exc)
        return str(exc)[:500]
    finally:
        _event_created.reset(token)
    return None


def _mark_processed(event_pks: Sequence[int], note: str | None) -> None:
    """Stamp stored events processed, all with the same ``note`` (None: they changed what they
    report), in one statement."""
    db.session.execute(update(ProviderEvent).where(ProviderEvent.id.in_(event_pks))
                       .values(processed_at=utcnow(), note=note, last_error=None,
                               not_ours=bool(note and note.startswith(NOT_OURS))))


#: Stored events a job applies in one transaction (:func:`apply_event_batch`): RQ's bookkeeping
#: and a transaction's fixed costs are paid once for them all. The receipt counter of the year
#: stays locked until the batch commits, so this bounds how long an issuer waits for it.
BATCH = 100


@jobs.coalesced
def process_events_job() -> int:
    """The job queued for stored events (:func:`accept_event`; one waits on the queue at a time
    however many webhooks queue it): :func:`apply_pending_events` with the app's provider and
    settings. In a worker, until none is left; run in a web process instead (Redis could not
    take it), one batch only, so that a request does not take on a backlog."""
    return apply_pending_events(current_provider(), settings=event_settings(current_app.config),
                                batches=None if jobs.in_worker() else 1)


def apply_pending_events(provider: PaymentProvider, *, settings: EventSettings,
                         size: int = BATCH, batches: int | None = None) -> int:
    """Apply the provider's stored events that were never tried, ``size`` to a transaction
    (:func:`apply_event_batch`), until none is left or after ``batches``; returns how many
    were applied."""
    applied = 0
    while batches is None or batches > 0:
        batch = apply_event_batch(provider, settings=settings, size=size)
        if batch is None:
            break
        applied += batch
        batches = None if batches is None else batches - 1
    return applied


def apply_event_batch(provider: PaymentProvider, *, settings: EventSettings,
                      size: int = BATCH) -> int | None:
    """Claim up to ``size`` of the provider's stored events never tried (not processed, not
    parked, no attempt counted: one that failed once is its own job's, retried with backoff,
    and the sweep's), oldest first, apply them in one transaction and commit; returns how many
    were applied, None when there were none to claim.

    On PostgreSQL the claimed events stay locked until the commit and a second worker claims
    others (``SKIP LOCKED``); SQLite has one writer at a time. Each event is applied in a
    savepoint (:func:`_apply`), as alone; the provider is asked about the batch's one-time
    payments beforehand, concurrently (:func:`_prefetch_details`), and the events are stamped
    processed together. One that must wait for another has its attempt counted (parked when
    :func:`overdue`) and goes, after the commit, to a job of its own (:func:`process_event_job`)
    for the queue's retries. Any other error rolls the batch back, and its events are applied
    one per transaction (:func:`apply_stored_event`), so that one bad event holds back no
    other."""
    rows = db.session.execute(
        select(ProviderEvent.id, ProviderEvent.payload)
        .where(ProviderEvent.provider == provider.name, ProviderEvent.processed_at.is_(None),
               ProviderEvent.parked_at.is_(None), ProviderEvent.attempts == 0)
        .order_by(ProviderEvent.id).limit(size).with_for_update(skip_locked=True)).all()
    if not rows:
        db.session.rollback()
        return None
    events = [(event_pk, json.loads(payload)) for event_pk, payload in rows]
    try:
        applied, waiting = _apply_batch(provider, events, settings)
    except Exception:
        db.session.rollback()
        jobs.discard()
        log.exception("a batch of %d events failed; applying them one by one", len(events))
        return _one_by_one([event_pk for event_pk, _ in events], settings)
    jobs.commit()
    for event_pk in waiting:
        jobs.retry_later(process_event_job, event_pk)
    return applied


def _apply_batch(provider: PaymentProvider, events: Sequence[tuple[int, dict]],
                 settings: EventSettings) -> tuple[int, list[int]]:
    """Apply claimed events in the current transaction; returns how many were applied, and
    the ids of those that wait for another (their attempt counted, unless parked)."""
    applied: dict[str | None, list[int]] = {}  # by note
    waiting = []
    token = _prefetched.set(_prefetch_details(provider, [event for _, event in events]))
    try:
        first = set(_first_payments(provider, events, settings.zone))
        if first:
            applied[None] = sorted(first)
        for event_pk, event in events:
            if event_pk in first:
                continue
            mark = jobs.queued_mark()
            try:
                note = _apply(provider, event, settings.zone)
            except RetryLater as exc:
                jobs.drop_since(mark)
                park = overdue(event, park_after=settings.park_after)
                db.session.execute(update(ProviderEvent).where(ProviderEvent.id == event_pk)
                                   .values(attempts=ProviderEvent.attempts + 1, last_error=None,
                                           note=str(exc)[:500],
                                           **(_parked() if park else {})))
                if not park:
                    waiting.append(event_pk)
                continue
            applied.setdefault(note, []).append(event_pk)
    finally:
        _prefetched.reset(token)
    for note, event_pks in applied.items():
        _mark_processed(event_pks, note)
    return sum(map(len, applied.values())), waiting


def _first_payments(provider: PaymentProvider, events: Sequence[tuple[int, dict]],
                    zone: ZoneInfo) -> list[int]:
    """Record together the batch's one-time gifts paid by ``payment_intent.succeeded`` (most
    events of a busy day) that pay a gift's first money, with their prefetched charges:
    ``giving.record_first_payments``, what :func:`payment_intent_succeeded` does for each,
    set-based. Returns the ids of the events it applied; the others (and those it leaves out:
    a gift already paid, an amount that differs, ...) are applied one by one."""
    prefetched = _prefetched.get() or {}
    reported = {}
    for event_pk, event in events:
        intent = event["data"]["object"]
        gift = (intent.get("metadata") or {}).get("gift")
        if event["type"] != "payment_intent.succeeded" or not gift or \
                intent["id"] not in prefetched:  # not asked: recorded already, or no gift here
            continue
        details = prefetched[intent["id"]]
        latest = intent.get("latest_charge")
        reported[event_pk] = giving.ReportedPayment(
            gift=gift, provider_id=intent["id"], amount=intent["amount_received"],
            currency=intent["currency"], occurred_at=_paid_time(details, event.get("created")),
            payment_intent_id=intent["id"], charge_id=latest if isinstance(latest, str) else None,
            card=_card(intent, details), details=details)
    if len(reported) < 2:
        return []
    charges = dict(zip(reported, giving.record_first_payments(
        provider.name, list(reported.values()), zone=zone), strict=True))
    for charge in filter(None, charges.values()):
        del prefetched[charge.provider_id]  # asked for this payment only: as _details_now
        _settle_later(provider, charge)
    return [event_pk for event_pk, charge in charges.items() if charge is not None]


def _one_by_one(event_pks: Sequence[int], settings: EventSettings) -> int:
    """Apply stored events one per transaction (a batch of them failed); one that fails again
    goes to a job of its own for the queue's retries. Returns how many were applied."""
    applied = 0
    for event_pk in event_pks:
        try:
            applied += apply_stored_event(event_pk, settings=settings)
        except RetryLater as exc:
            log.info("event %s waits: %s", event_pk, exc)
            jobs.retry_later(process_event_job, event_pk)
        except Exception:  # counted on the event; the next ones are applied all the same
            log.exception("event %s could not be applied", event_pk)
            jobs.retry_later(process_event_job, event_pk)
    return applied


#: The provider's charges behind the one-time payments of a batch of events, asked before it
#: is applied (:func:`_prefetch_details`), by payment intent; taken by :func:`_details_now`.
_prefetched: ContextVar[dict[str, ChargeDetails | None] | None] = ContextVar(
    "prefetched", default=None)

#: Provider calls made at once for a batch of events.
PREFETCH_THREADS = 8


def _one_time_payment_of(event: Mapping) -> tuple[str, str] | None:
    """(payment intent, gift) of a one-time gift's payment event, whose handler asks the
    provider for its charge (:func:`_one_time_payment`); None for any other event."""
    obj = event["data"]["object"]
    gift = (obj.get("metadata") or {}).get("gift")
    if event["type"] == "payment_intent.succeeded":
        return (obj["id"], gift) if gift else None
    if event["type"] in ("checkout.session.completed",
                         "checkout.session.async_payment_succeeded"):
        gift = gift or obj.get("client_reference_id")
        paid_once = obj.get("mode") != "subscription" and obj.get("payment_status") == "paid"
        return (obj["payment_intent"], gift) if paid_once and gift and \
            obj.get("payment_intent") else None
    return None


def _prefetch_details(provider: PaymentProvider,
                      events: Sequence[Mapping]) -> dict[str, ChargeDetails | None]:
    """Ask the provider, concurrently, for the charge of each one-time payment among
    ``events`` that :func:`_details_now` would ask about: not recorded yet, and of a gift here
    (so none is asked that its handler would not). With a real API's latency (about 150 ms a
    call), asked one after the other they would take most of a batch's time."""
    payments = dict(filter(None, map(_one_time_payment_of, events)))
    if not payments:
        return {}
    recorded = db.session.execute(select(Payment.provider_id, Payment.payment_intent_id).where(
        Payment.provider == provider.name, Payment.kind == PaymentKind.CHARGE,
        or_(Payment.provider_id.in_(payments), Payment.payment_intent_id.in_(payments)))).all()
    ours = set(db.session.scalars(select(Gift.public_id).where(
        Gift.public_id.in_(set(payments.values())))))
    known = {key for row in recorded for key in row}
    asked = sorted(intent for intent, gift in payments.items()
                   if gift in ours and intent not in known)

    def ask(intent: str) -> ChargeDetails | None:
        try:
            return provider.charge_details(payment_intent_id=intent)
        except ProviderError as exc:
            log.warning("charge of %s not known yet: %s", intent, exc)
            return None

    if len(asked) < 2:
        return {intent: ask(intent) for intent in asked}
    return dict(zip(asked, _asking_pool().map(ask, asked), strict=True))


_pool: tuple[int, ThreadPoolExecutor] | None = None


def _asking_pool() -> ThreadPoolExecutor:
    """The threads that ask the provider about a batch's payments, kept for the process (not
    for one forked from it), as is the provider's HTTP session: the connections to the API
    (TLS, with Stripe's) are made once, not once a batch."""
    global _pool
    if _pool is None or _pool[0] != os.getpid():
        _pool = (os.getpid(), ThreadPoolExecutor(PREFETCH_THREADS, "provider-calls"))
    return _pool[1]


def process_event_job(event_pk: int) -> bool:
    """The job of one stored event that a batch could not apply (:func:`apply_event_batch`),
    retried by the queue with backoff: :func:`apply_stored_event` with the app's settings."""
    return apply_stored_event(event_pk, settings=event_settings(current_app.config))


def apply_stored_event(event_pk: int, *, settings: EventSettings) -> bool:
    """Apply one stored event that has not been, in one transaction, and commit. Returns
    False when there was nothing to do, or the event was parked: it waits for another and is
    :func:`overdue`. Raises RetryLater (nothing changed) when it must wait for another event:
    the queue tries it again later."""
    row = db.session.execute(select(ProviderEvent).where(ProviderEvent.id == event_pk)
                             .with_for_update()).scalar_one_or_none()
    provider = provider_named(row.provider) if row is not None else None
    if row is None or row.processed_at is not None or provider is None:
        db.session.rollback()
        return False
    event = json.loads(row.payload)
    try:
        note = _apply(provider, event, settings.zone)
    except RetryLater as exc:
        db.session.rollback()
        park = overdue(event, park_after=settings.park_after)
        _count_attempt(event_pk, note=str(exc)[:500], error=None, **(_parked() if park else {}))
        if park:
            return False
        raise
    except Exception as exc:
        db.session.rollback()
        _count_attempt(event_pk, error=f"{type(exc).__name__}: {exc}"[:500])
        raise
    _mark_processed([event_pk], note)
    jobs.commit()
    return True


def _count_attempt(event_pk: int, *, error: str | None, **values) -> None:
    """Keep, in a transaction of its own, that applying the event did not go through: what it
    waits for (``note``) or the error it raised, for the operations inbox."""
    db.session.execute(update(ProviderEvent).where(ProviderEvent.id == event_pk).values(
        attempts=ProviderEvent.attempts + 1, last_error=error, **values))
    db.session.commit()


@dataclass(frozen=True)
class PendingFailure:
    """A stored event :func:`process_pending` could not apply, and why."""

    event_pk: int
    event_id: str
    type: str
    reason: str


@dataclass
class PendingReport:
    applied: int = 0
    waiting: int = 0  # still wait for an earlier event
    failed: list[PendingFailure] = field(default_factory=list)


def process_pending(*, received_before: datetime, settings: EventSettings) -> PendingReport:
    """Apply every stored event still unprocessed that was received before the given time
    (a worker or Redis lost it; parked ones are left to staff), each in its own transaction.
    One that raises is rolled back, reported with the reason and logged, and the rest are
    applied all the same."""
    pending = db.session.execute(
        select(ProviderEvent.id, ProviderEvent.event_id, ProviderEvent.type)
        .where(ProviderEvent.processed_at.is_(None), ProviderEvent.parked_at.is_(None),
               ProviderEvent.received_at < received_before)
        .order_by(ProviderEvent.id)).all()
    db.session.rollback()
    report = PendingReport()
    for event_pk, event_id, event_type in pending:
        try:
            report.applied += apply_stored_event(event_pk, settings=settings)
        except RetryLater as exc:
            log.info("event %s still waits: %s", event_pk, exc)
            report.waiting += 1
        except Exception as exc:  # reported; the next events are applied all the same
            db.session.rollback()
            log.exception("event %s (%s %s) could not be applied", event_pk, event_type,
                          event_id)
            report.failed.append(PendingFailure(event_pk, event_id, event_type,
                                                f"{type(exc).__name__}: {exc}"[:500]))
    return report


def _when(ts: int | None) -> datetime:
    return datetime.fromtimestamp(ts, UTC) if ts else utcnow()


def _time_or_none(ts: int | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts else None


def _paid_time(details: ChargeDetails | None, fallback: int | None = None) -> datetime:
    """When a gift was paid: the charge's own time as the provider reports it (for an invoice,
    when its payment was paid), so the same whichever event records the payment first; never
    when its checkout session or payment intent was opened (a session stays open a day, and
    the receipt year depends on this). When the provider cannot say (unreachable just now, or
    the sandbox, which reports nothing): ``fallback``, else the event's own time."""
    if details is not None and details.paid_at is not None:
        return details.paid_at
    return _when(fallback or _event_created.get())


def _gift_named(metadata: Mapping | None, fallback: str | None = None):
    public_id = (metadata or {}).get("gift") or fallback
    gift = giving.gift_by_public_id(public_id) if public_id else None
    if gift is None:
        raise NotOurs(f"no gift {public_id!r} here")
    return gift


def _settle_later(provider: PaymentProvider, charge: Payment) -> None:
    """Ask for the charge's fee and net after the commit (one-time gifts: the event is
    acknowledged without waiting on the provider's API)."""
    if charge.fee is None:
        jobs.enqueue(settle_charge_job, provider.name, charge.id)


def settle_charge_job(provider_name: str, payment_id: int) -> None:
    provider = provider_named(provider_name)
    charge = db.session.get(Payment, payment_id)
    if provider is None or charge is None or charge.fee is not None:
        return
    ledger.settle_charge(charge, provider.charge_details(
        payment_intent_id=charge.payment_intent_id))
    db.session.commit()


def settle_pending(provider: PaymentProvider, *, occurred_before: datetime) -> tuple[int, int]:
    """Ask ``provider`` again for the fee of each of its charges that has none yet (the
    lookup after the charge failed, or the provider had not settled it); returns (settled,
    still unknown)."""
    pending = db.session.scalars(
        select(Payment.id).where(Payment.provider == provider.name,
                                 Payment.kind == PaymentKind.CHARGE, Payment.fee.is_(None),
                                 Payment.occurred_at < occurred_before)
        .order_by(Payment.id)).all()
    db.session.rollback()
    settled = 0
    for payment_id in pending:
        try:
            settle_charge_job(provider.name, payment_id)
        except ProviderError as exc:
            log.warning("fee of payment %s still unknown: %s", payment_id, exc)
            db.session.rollback()
        settled += db.session.scalar(select(Payment.fee).where(Payment.id == payment_id)) \
            is not None
    return settled, len(pending) - settled


def _card(obj: Mapping, details: ChargeDetails | None) -> Card | None:
    """The card a payment was made with: from the provider's charge (``charge_details``,
    Stripe), or from the event's own ``payment_method_details`` (the sandbox's, which keeps no
    state to be asked later)."""
    if details is not None and details.card is not None:
        return details.card
    return Card.from_details(obj.get("payment_method_details"))


def _details_now(provider: PaymentProvider, payment_intent_id: str) -> ChargeDetails | None:
    """The charge behind a one-time gift's payment intent, asked before its receipt is mailed
    so that the receipt names the card; None when the provider cannot say just now (the fee
    is then asked again after the commit, and the receipt names no card)."""
    prefetched = _prefetched.get()
    if prefetched is not None and payment_intent_id in prefetched:
        return prefetched.pop(payment_intent_id)  # once: a second event for it is as alone
    if ledger.find_charge(provider.name, payment_intent_id=payment_intent_id) is not None:
        return None  # recorded already: this delivery changes nothing
    try:
        return provider.charge_details(payment_intent_id=payment_intent_id)
    except ProviderError as exc:
        log.warning("charge of %s not known yet: %s", payment_intent_id, exc)
        return None


def _one_time_payment(provider: PaymentProvider, gift, obj: Mapping, *, intent_id: str,
                      amount: int, currency: str, zone: ZoneInfo,
                      charge_id: str | None = None) -> None:
    details = _details_now(provider, intent_id)
    charge = giving.record_gift_payment(
        gift, provider=provider.name, provider_id=intent_id, payment_intent_id=intent_id,
        charge_id=charge_id, amount=amount, currency=currency,
        occurred_at=_paid_time(details), card=_card(obj, details), zone=zone)
    ledger.settle_charge(charge, details)
    _settle_later(provider, charge)


def checkout_completed(provider: PaymentProvider, session: dict, zone: ZoneInfo) -> None:
    """A checkout completed (``checkout.session.completed``), or its delayed payment cleared
    (``checkout.session.async_payment_succeeded``: a bank debit, days later)."""
    gift = _gift_named(session.get("metadata"), session.get("client_reference_id"))
    if session.get("payment_status") == "unpaid":
        # A delayed method (ACH Direct Debit): the money clears, or fails, days later; the
        # gift shows as processing meanwhile, with no receipt.
        giving.mark_gift_processing(gift)
        return
    if session.get("payment_status") != "paid":
        raise Ignored(f"checkout session {session['id']} is not paid yet")
    if session.get("mode") == "subscription":
        # A subscription's first charge is its first invoice, which invoice.paid names too.
        _first_invoice(provider, gift, session, subscription_id=session["subscription"],
                       customer_id=session.get("customer"), invoice_id=session["invoice"],
                       amount=session["amount_total"], currency=session["currency"], zone=zone)
        return
    _one_time_payment(provider, gift, session, intent_id=session["payment_intent"],
                      amount=session["amount_total"], currency=session["currency"], zone=zone)


def checkout_payment_failed(provider: PaymentProvider, session: dict, zone: ZoneInfo) -> None:
    """``checkout.session.async_payment_failed``: the delayed payment (a bank debit) of a
    completed checkout failed; the donor hears so, with a link to try again."""
    giving.mark_gift_failed(_gift_named(session.get("metadata"),
                                        session.get("client_reference_id")), now=utcnow())


def payment_intent_succeeded(provider: PaymentProvider, intent: dict, zone: ZoneInfo) -> None:
    """A one-time gift's payment; may arrive before or after its checkout session."""
    if not (intent.get("metadata") or {}).get("gift"):
        raise Ignored(f"payment intent {intent['id']} is not a one-time gift of ours")
    gift = _gift_named(intent["metadata"])
    _one_time_payment(
        provider, gift, intent, intent_id=intent["id"], amount=intent["amount_received"],
        currency=intent["currency"], zone=zone,
        charge_id=intent.get("latest_charge") if isinstance(intent.get("latest_charge"), str)
        else None)


def payment_intent_failed(provider: PaymentProvider, intent: dict, zone: ZoneInfo) -> None:
    error = (intent.get("last_payment_error") or {}).get("message") or "no reason given"
    raise Ignored(f"payment {intent['id']} failed: {error}; nothing recorded")


def _subscription_of(invoice: dict) -> tuple[str | None, dict]:
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    return details.get("subscription"), details.get("metadata") or {}


def _first_invoice(provider: PaymentProvider, gift, obj: Mapping, *, subscription_id: str,
                   customer_id: str | None, invoice_id: str, amount: int, currency: str,
                   zone: ZoneInfo, paid_at: int | None = None) -> None:
    """A plan's first payment, from its checkout session or its invoice, whichever comes
    first: the plan (started, until a subscription event says when it did, when first paid)
    and its first gift's charge."""
    details = provider.charge_details(invoice_id=invoice_id)
    when = _paid_time(details, paid_at)
    giving.ensure_plan(gift, provider=provider.name, subscription_id=subscription_id,
                       customer_id=customer_id, started_at=when)
    charge = giving.record_gift_payment(
        gift, provider=provider.name, provider_id=invoice_id, amount=amount, currency=currency,
        occurred_at=when, payment_intent_id=details.payment_intent_id if details else None,
        card=_card(obj, details), zone=zone)
    ledger.settle_charge(charge, details)


def invoice_paid(provider: PaymentProvider, invoice: dict, zone: ZoneInfo) -> None:
    subscription_id, metadata = _subscription_of(invoice)
    if not subscription_id:
        raise NotOurs(f"invoice {invoice['id']} belongs to no subscription")
    paid_at = (invoice.get("status_transitions") or {}).get("paid_at")
    if invoice.get("billing_reason") == "subscription_create":
        _first_invoice(provider, _gift_named(metadata), invoice, subscription_id=subscription_id,
                       customer_id=invoice.get("customer"), invoice_id=invoice["id"],
                       amount=invoice["amount_paid"], currency=invoice["currency"],
                       zone=zone, paid_at=paid_at)
        return
    plan = _plan_for(provider, {"id": subscription_id, "metadata": metadata})
    details = provider.charge_details(invoice_id=invoice["id"])
    charge = giving.record_renewal(
        plan, provider_id=invoice["id"], amount=invoice["amount_paid"],
        currency=invoice["currency"], occurred_at=_paid_time(details, paid_at),
        payment_intent_id=details.payment_intent_id if details else None,
        card=_card(invoice, details), zone=zone)
    ledger.settle_charge(charge, details)


def invoice_payment_failed(provider: PaymentProvider, invoice: dict, zone: ZoneInfo) -> None:
    subscription_id, metadata = _subscription_of(invoice)
    if not subscription_id:
        raise NotOurs(f"invoice {invoice['id']} belongs to no subscription")
    if invoice.get("billing_reason") == "subscription_create":
        raise Ignored(f"first payment of {subscription_id} failed at checkout; nothing recorded")
    plan = _plan_for(provider, {"id": subscription_id, "metadata": metadata})
    # Stripe names the next attempt while it will try again; none: it has given up.
    giving.mark_plan_past_due(plan, invoice_id=invoice["id"],
                              attempt=invoice.get("attempt_count") or 1,
                              retrying=invoice.get("next_payment_attempt") is not None)


def _plan_for(provider: PaymentProvider, subscription: dict):
    """The plan behind a subscription. One that names a gift of ours in its metadata (our
    checkout sets it; an invoice carries a copy) but has no plan yet is early (its checkout
    has not been processed): the provider should deliver it again. Any other is not ours."""
    plan = giving.plan_by_subscription(provider.name, subscription["id"])
    if plan is not None:
        return plan
    public_id = (subscription.get("metadata") or {}).get("gift")
    if public_id and giving.gift_by_public_id(public_id):
        raise RetryLater(f"subscription {subscription['id']} arrived before its checkout")
    raise NotOurs(f"subscription {subscription['id']} names no gift of ours")


#: Stripe's ``cancellation_details.reason``, as staff read it beside the plan.
CANCEL_REASONS = {"cancellation_requested": "cancellation requested",
                  "payment_failed": "payment failed", "payment_disputed": "payment disputed"}


def _cancel_reason(subscription: dict) -> str | None:
    """Why the provider ended a subscription: its reason, and the comment left with it."""
    details = subscription.get("cancellation_details") or {}
    reason = details.get("reason")
    words = [CANCEL_REASONS.get(reason, reason), (details.get("comment") or "").strip()]
    return ": ".join(w for w in words if w) or None


def subscription_updated(provider: PaymentProvider, subscription: dict,
                         zone: ZoneInfo) -> None:
    plan = _plan_for(provider, subscription)
    giving.record_plan_start(plan, _time_or_none(subscription.get("start_date")))
    items = (subscription.get("items") or {}).get("data") or []
    amount = items[0]["price"]["unit_amount"] if items else None
    giving.sync_plan(plan, status=subscription["status"], amount=amount,
                     when=_when(subscription.get("canceled_at")),
                     reason=_cancel_reason(subscription), ends_at=_ends_at(subscription))


def _ends_at(subscription: dict) -> datetime | None:
    """When a subscription its donor cancelled stops, paid until then: ``cancel_at``, or
    with ``cancel_at_period_end`` its period's end (on its item since API 2025-03-31)."""
    if subscription.get("cancel_at"):
        return _time_or_none(subscription["cancel_at"])
    if not subscription.get("cancel_at_period_end"):
        return None
    items = (subscription.get("items") or {}).get("data") or []
    return _time_or_none(items[0].get("current_period_end")) if items else None


def subscription_deleted(provider: PaymentProvider, subscription: dict,
                         zone: ZoneInfo) -> None:
    plan = _plan_for(provider, subscription)
    giving.record_plan_start(plan, _time_or_none(subscription.get("start_date")))
    giving.mark_plan_canceled(plan, when=_when(subscription.get("canceled_at")),
                              reason=_cancel_reason(subscription), tell_donor=True)


def _charge_for(provider: PaymentProvider, obj: dict, charge_id: str | None) -> Payment:
    charge = ledger.find_charge(provider.name, payment_intent_id=obj.get("payment_intent"),
                                charge_id=charge_id)
    if charge is None:
        if not _ours(provider, obj.get("payment_intent")):
            raise NotOurs(f"charge {charge_id} is no gift of ours")
        raise RetryLater(f"no recorded charge for {charge_id or obj.get('payment_intent')}")
    return charge


def _ours(provider: PaymentProvider, payment_intent_id: str | None) -> bool:
    """Whether a payment the ledger does not know (yet) is one of ours, as the provider holds
    it: its payment intent names a gift here (our checkout sets ``metadata.gift``), or it paid
    an invoice of a subscription that is a plan here or names a gift here. A charge with no
    payment intent, or one the provider does not have, is not ours: this app's payments all
    go through payment intents. The provider unreachable: RetryLater."""
    if not payment_intent_id:
        return False
    try:
        reference = provider.payment_reference(payment_intent_id)
    except ProviderError as exc:
        raise RetryLater(f"whether {payment_intent_id} is ours: {exc}") from exc
    if reference is None:
        return False
    if reference.gift and giving.gift_by_public_id(reference.gift) is not None:
        return True
    return bool(reference.subscription_id and giving.plan_by_subscription(
        provider.name, reference.subscription_id) is not None)


def charge_refunded(provider: PaymentProvider, charge_obj: dict, zone: ZoneInfo) -> None:
    """Record every refund of the charge not recorded yet (full, partial, several)."""
    charge = _charge_for(provider, charge_obj, charge_obj["id"])
    charge.charge_id = charge.charge_id or charge_obj["id"]
    for refund in provider.list_refunds(charge_obj["id"]) or _refunds_in(charge_obj):
        if refund.status in ("succeeded", "pending"):
            ledger.record_refund(charge, refund_id=refund.id, amount=refund.amount,
                                 occurred_at=_when(refund.created))
    # The receipt follows once every refund is in: one corrected receipt, or one notice.
    ledger.follow_money(charge, zone=zone)


def _refunds_in(charge_obj: Mapping) -> list[RefundResult]:
    """The refunds a charge object carries itself (``refunds.data``): the sandbox's, which
    keeps no state to list them later (Stripe's are listed through its API)."""
    listed = (charge_obj.get("refunds") or {}).get("data") or []
    return [RefundResult(id=r["id"], amount=r["amount"], status=r.get("status") or "succeeded",
                         created=r.get("created")) for r in listed]


def _dispute_money(dispute: Mapping, currency: str) -> tuple[list, list]:
    """The money a dispute's balance transactions moved, as (withdrawn, reinstated): each a
    list of (amount, fee, time), amounts positive; fees as the provider reports them (a
    reinstatement's is negative when the dispute fee is returned). Transactions in another
    currency than the charge's (a settlement currency) are left out: the ledger cannot hold
    them, and the dispute's own amount stands in, with its fee unknown."""
    withdrawn, reinstated = [], []
    for txn in dispute.get("balance_transactions") or []:
        if str(txn.get("currency", "")).upper() != currency or not txn.get("amount"):
            continue
        entry = (abs(txn["amount"]), txn.get("fee"), _when(txn.get("created")))
        (withdrawn if txn["amount"] < 0 else reinstated).append(entry)
    return withdrawn, reinstated


def dispute_changed(provider: PaymentProvider, dispute: dict, zone: ZoneInfo) -> None:
    """Any dispute event (created, funds withdrawn or reinstated, closed): record what its
    balance transactions say, each movement once (they are cumulative: a later event lists
    the earlier withdrawal too): the money withdrawn and Stripe's dispute fee, and, once won,
    the money reinstated and whatever fee it returns. An event with none (an older API
    version, the sandbox) records the dispute's amount, its fee unknown (filled in by a later
    event that reports it). Then the receipt follows: void while the money is withheld,
    reissued when it comes back."""
    if str(dispute.get("status", "")).startswith("warning_"):
        raise Ignored(f"dispute {dispute['id']} is an inquiry; no money was withheld")
    charge = _charge_for(provider, dispute, dispute.get("charge"))
    withdrawn, reinstated = _dispute_money(dispute, charge.currency)
    when = _when(dispute.get("created"))
    won = dispute["status"] == "won"
    if not withdrawn and (won or not reinstated):
        withdrawn = [(dispute["amount"], None, when)]
    if won and not reinstated:
        reinstated = [(dispute["amount"], None, when)]
    for amount, fee, at in withdrawn[:1]:  # one withdrawal per dispute
        ledger.record_dispute(charge, dispute_id=dispute["id"], amount=amount, fee=fee,
                              occurred_at=at)
    for amount, fee, at in reinstated[:1]:
        ledger.record_dispute_won(charge, dispute_id=dispute["id"], amount=amount, fee=fee,
                                  occurred_at=at)
    ledger.follow_money(charge, zone=zone)


def payout_changed(provider: PaymentProvider, payout: dict, zone: ZoneInfo) -> None:
    """Any payout event: store or update the payout, and once its balance transactions can be
    listed (``reconciliation_status`` completed, which ``payout.reconciliation_completed``
    announces; it may already be so in ``payout.paid``), fetch and store them, once.

    A payout paid before the charge it pays out is recorded needs no retry: its transactions
    are joined to the ledger when read (``app.payments.payouts``). The provider unreachable
    while listing them: RetryLater, so the event comes again and nothing half-done stays."""
    if payout.get("object") != "payout":
        raise Ignored(f"{payout.get('id')} is not a payout")
    record = payouts.record_payout(provider.name, payout)
    if payouts.needs_transactions(record):
        try:
            transactions = provider.payout_transactions(record.provider_id)
        except ProviderError as exc:
            raise RetryLater(f"balance transactions of {record.provider_id}: {exc}") from exc
        payouts.record_transactions(record, transactions)


#: Event type -> handler(provider, the event's object, the organisation's zone).
HANDLERS: dict[str, Callable[[PaymentProvider, dict, ZoneInfo], None]] = {
    "checkout.session.completed": checkout_completed,
    "checkout.session.async_payment_succeeded": checkout_completed,
    "checkout.session.async_payment_failed": checkout_payment_failed,
    "payment_intent.succeeded": payment_intent_succeeded,
    "payment_intent.payment_failed": payment_intent_failed,
    "invoice.paid": invoice_paid,
    "invoice.payment_failed": invoice_payment_failed,
    "customer.subscription.updated": subscription_updated,
    "customer.subscription.deleted": subscription_deleted,
    "charge.refunded": charge_refunded,
    "charge.dispute.created": dispute_changed,
    "charge.dispute.funds_withdrawn": dispute_changed,
    "charge.dispute.funds_reinstated": dispute_changed,
    "charge.dispute.closed": dispute_changed,
    "payout.paid": payout_changed,
    "payout.failed": payout_changed,
    "payout.canceled": payout_changed,
    "payout.reconciliation_completed": payout_changed,
}
