"""The operations inbox (``/staff/operations``): where money problems surface for finance staff,
each beside the action that deals with it, and each action written to the audit log.

What it lists, read from where the work is kept (nothing here keeps state of its own):

- webhook events stored but not applied: waiting for another event (what for, attempts, age),
  failed with an error, or parked after waiting too long (``parked_at``); and how many events
  were about sales that are not ours (``not_ours``), with the latest few;
- failed background jobs: RQ's failed registry with ``REDIS_URL`` (``None`` here when jobs run
  inline: there is no queue to fail in);
- mail not delivered: tried and refused, or queued long ago and never tried;
- plans past due, and renewals expected but not seen: an active plan whose period ended more
  than ``RENEWAL_GRACE_HOURS`` ago with no paid renewal recorded (the missing-webhook signal);
- charges whose provider fee is still unknown ``FEE_UNKNOWN_AFTER_HOURS`` after them.

The actions (retry an event or a job, resend a message, ask for a fee again) use the same
functions the workers and sweeps use; refunds are in ``app.giving.services.request_refund``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from redis.exceptions import RedisError
from sqlalchemy import func, select

from app import audit
from app.audit import Actor
from app.core import MAX_ID
from app.extensions import db
from app.giving.models import Gift, PlanStatus, RecurringPlan
from app.mail import OutboundEmail, OutboxTransport, SMTPTransport, send_email
from app.payments import events, sync
from app.payments.base import PaymentProvider, ProviderError
from app.payments.models import Payment, PaymentKind, ProviderEvent

#: Longest list shown per section (the counts are exact).
LIMIT = 50
#: Mail queued this long ago and never tried is undelivered (its job was lost).
MAIL_LOST_AFTER = timedelta(minutes=15)
#: Providers that report a fee per charge (the sandbox's money is not real: it reports none).
FEE_REPORTING = ("stripe",)


class OperationsError(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Settings:
    renewal_grace: timedelta
    fee_unknown_after: timedelta

    @classmethod
    def from_config(cls, config) -> Settings:
        return cls(renewal_grace=timedelta(hours=config["RENEWAL_GRACE_HOURS"]),
                   fee_unknown_after=timedelta(hours=config["FEE_UNKNOWN_AFTER_HOURS"]))


@dataclass(frozen=True)
class FailedJob:
    id: str
    name: str  # the function's qualified name (its arguments may hold addresses: not shown)
    ended_at: datetime | None
    error: str  # the last line of its traceback


@dataclass
class Section:
    count: int
    items: list = field(default_factory=list)


@dataclass
class Inbox:
    waiting: Section
    failed: Section
    parked: Section
    not_ours: Section
    undelivered: Section
    past_due: Section
    missing_renewals: Section
    unknown_fees: Section
    # None: jobs run inline, there is no queue; "unreachable": Redis did not answer.
    failed_jobs: Section | None
    jobs_problem: str | None = None

    @property
    def total(self) -> int:
        """Problems that need someone (events not ours are acknowledged, nothing to do)."""
        sections = (self.waiting, self.failed, self.parked, self.undelivered, self.past_due,
                    self.missing_renewals, self.unknown_fees, self.failed_jobs)
        return sum(s.count for s in sections if s is not None)


def _section(query, *, limit: int) -> Section:
    count = db.session.scalar(select(func.count()).select_from(query.subquery()))
    items = list(db.session.scalars(query.limit(limit))) if count and limit else []
    return Section(count=count, items=items)


def _unapplied():
    return (ProviderEvent.processed_at.is_(None),)


def event_queries():
    """The stored events not applied, by what is the matter with them, oldest first."""
    base = select(ProviderEvent).where(*_unapplied()).order_by(ProviderEvent.received_at,
                                                               ProviderEvent.id)
    return {
        "failed": base.where(ProviderEvent.last_error.is_not(None)),
        "parked": base.where(ProviderEvent.last_error.is_(None),
                             ProviderEvent.parked_at.is_not(None)),
        "waiting": base.where(ProviderEvent.last_error.is_(None),
                              ProviderEvent.parked_at.is_(None)),
        "not_ours": select(ProviderEvent).where(ProviderEvent.not_ours.is_(True))
        .order_by(ProviderEvent.received_at.desc(), ProviderEvent.id.desc()),
    }


def undelivered_mail(now: datetime):
    return (select(OutboundEmail).where(
        OutboundEmail.sent_at.is_(None),
        (OutboundEmail.attempts > 0) | (OutboundEmail.created_at < now - MAIL_LOST_AFTER))
        .order_by(OutboundEmail.created_at, OutboundEmail.id))


def past_due_plans():
    return (select(RecurringPlan).where(RecurringPlan.status == PlanStatus.PAST_DUE)
            .order_by(RecurringPlan.next_charge_at, RecurringPlan.id))


def missing_renewals(now: datetime, grace: timedelta):
    """Active plans whose period ended more than ``grace`` ago: recording a paid renewal moves
    ``next_charge_at`` on, and a failed one makes the plan past due, so neither arrived."""
    return (select(RecurringPlan).where(RecurringPlan.status == PlanStatus.ACTIVE,
                                        RecurringPlan.next_charge_at < now - grace)
            .order_by(RecurringPlan.next_charge_at, RecurringPlan.id))


def unknown_fees(now: datetime, after: timedelta):
    return (select(Payment).where(Payment.kind == PaymentKind.CHARGE, Payment.fee.is_(None),
                                  Payment.provider.in_(FEE_REPORTING),
                                  Payment.occurred_at < now - after)
            .order_by(Payment.occurred_at, Payment.id))


def _failed_jobs(backend, *, limit: int) -> tuple[Section | None, str | None]:
    if not backend.deferred:
        return None, None
    from rq.job import Job
    from rq.registry import FailedJobRegistry

    try:
        registry = FailedJobRegistry(queue=backend.queue)
        count = registry.count
        ids = registry.get_job_ids(0, limit - 1) if limit else []
        items = []
        for job in Job.fetch_many(ids, connection=backend.connection):
            if job is None:
                continue
            result = job.latest_result()
            lines = ((result.exc_string if result else None) or "").strip().splitlines()
            items.append(FailedJob(id=job.id, name=job.func_name, ended_at=job.ended_at,
                                   error=lines[-1][:300] if lines else ""))
    except RedisError as exc:
        return Section(count=0), f"Redis did not answer: {exc}"
    return Section(count=count, items=items), None


def inbox(*, now: datetime, settings: Settings, backend, limit: int = LIMIT) -> Inbox:
    """Everything in the inbox, each section's count and its first ``limit`` items (0: the
    counts only, for the staff home)."""
    queries = event_queries()
    failed_jobs, problem = _failed_jobs(backend, limit=limit)
    return Inbox(
        waiting=_section(queries["waiting"], limit=limit),
        failed=_section(queries["failed"], limit=limit),
        parked=_section(queries["parked"], limit=limit),
        not_ours=_section(queries["not_ours"], limit=min(limit, 5)),
        undelivered=_section(undelivered_mail(now), limit=limit),
        past_due=_section(past_due_plans(), limit=limit),
        missing_renewals=_section(missing_renewals(now, settings.renewal_grace), limit=limit),
        unknown_fees=_section(unknown_fees(now, settings.fee_unknown_after), limit=limit),
        failed_jobs=failed_jobs, jobs_problem=problem)


def age(then: datetime, now: datetime) -> str:
    """How long ago, in the largest whole unit: "3 days", "5 hours", "12 minutes"."""
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return "under a minute"


def find_gift(text: str) -> Gift | None:
    """A gift by its number (``gift_id`` in the exports) or its public reference."""
    text = (text or "").strip()
    if text.isascii() and text.isdigit():
        return db.session.get(Gift, int(text)) if len(text) <= len(str(MAX_ID)) \
            and int(text) <= MAX_ID else None
    return db.session.scalar(select(Gift).where(Gift.public_id == text))


def event_type_and_object(event: ProviderEvent) -> tuple[str, str]:
    """The event's type and the id of the object it is about, for the page."""
    try:
        obj = json.loads(event.payload)["data"]["object"]
    except (ValueError, KeyError, TypeError):
        return event.type, ""
    return event.type, str(obj.get("id", "")) if isinstance(obj, dict) else ""


# -- actions: each audited ------------------------------------------------------------------

def _audit(actor: Actor, action: str, target_type: str, target_id, *, before=None,
           after=None) -> None:
    audit.record_change(actor, action, target_type, target_id, before=before, after=after)


def retry_event(event_pk: int, *, actor: Actor, settings: events.EventSettings) -> str:
    """Apply a stored event now, as a worker would (``settings``: as
    ``events.apply_stored_event``); returns what happened, for the page. Commits (the event's
    own transaction, then the audit entry's)."""
    event = db.session.get(ProviderEvent, event_pk)
    if event is None:
        raise OperationsError("There is no such event.")
    if event.processed_at is not None:
        raise OperationsError(f"Event {event.event_id} was applied already.")
    before = {"event": event.event_id, "type": event.type, "attempts": event.attempts,
              "note": event.note, "error": event.last_error}
    event_id = event.event_id
    try:
        applied = events.apply_stored_event(event_pk, settings=settings)
    except events.RetryLater as exc:
        outcome = f"still waits: {exc}"
    except Exception as exc:  # kept on the event by apply_stored_event; shown, not raised
        db.session.rollback()
        outcome = f"failed: {type(exc).__name__}: {exc}"
    else:
        outcome = "applied" if applied else _not_applied(event_pk)
    _audit(actor, "operations.event_retry", "provider_event", event_pk, before=before,
           after={"event": event_id, "outcome": outcome[:300]})
    db.session.commit()
    return outcome


def _not_applied(event_pk: int) -> str:
    """Why apply_stored_event applied nothing without raising: the event waits for another
    long past the bound (parked again), or it is another provider's."""
    event = db.session.get(ProviderEvent, event_pk)
    if event is not None and event.processed_at is None and event.parked_at is not None:
        return f"still waits (parked): {event.note or 'for another event'}"
    return "not applied (another provider's event)"


def retry_job(backend, job_id: str, *, actor: Actor) -> str:
    """Put a failed job back on the queue (RQ's requeue)."""
    if not backend.deferred:
        raise OperationsError("Jobs run inline here: there is no queue to retry on.")
    from rq.exceptions import InvalidJobOperation, NoSuchJobError
    from rq.registry import FailedJobRegistry

    try:
        job = FailedJobRegistry(queue=backend.queue).requeue(job_id)
    except (NoSuchJobError, InvalidJobOperation):
        raise OperationsError("That job is no longer among the failed ones.") from None
    except RedisError as exc:
        raise OperationsError(f"Redis did not answer: {exc}") from None
    _audit(actor, "operations.job_retry", "job", job_id, after={"job": job.func_name})
    db.session.commit()
    return job.func_name


def resend_mail(email_id: int, *, actor: Actor,
                transport: OutboxTransport | SMTPTransport) -> str | None:
    """Deliver one undelivered message now through ``transport``; returns the error if it
    failed again (kept on the message, which stays queued for ``flask mail send-pending``)."""
    row = db.session.get(OutboundEmail, email_id)
    if row is None:
        raise OperationsError("There is no such message.")
    if row.sent_at is not None:
        raise OperationsError("That message was delivered already.")
    target = {"to": row.recipient, "subject": row.subject, "attempts": row.attempts}
    error = None
    try:
        handed_over = send_email(email_id, transport)
    except Exception:  # send_email kept the error on the row and committed it
        db.session.rollback()
        error = db.session.get(OutboundEmail, email_id).last_error or "not delivered"
    else:
        if not handed_over:
            raise OperationsError("That message is being delivered right now by another "
                                  "sender (a job, or flask mail send-pending).")
    _audit(actor, "operations.mail_resend", "outbound_email", email_id, before=target,
           after={"delivered": error is None, "error": error})
    db.session.commit()
    return error


def run_sync(provider: PaymentProvider, *, actor: Actor,
             settings: events.EventSettings) -> sync.SyncReport:
    """The catch-up sync now (what the scheduler runs hourly): ``provider``'s events of the
    last three days that never arrived are applied. Audited with what it found."""
    try:
        report = sync.sync_missed_events(provider, settings=settings)
    except ProviderError as exc:
        db.session.rollback()
        raise OperationsError(f"The provider's events could not be listed: {exc}") from None
    _audit(actor, "operations.sync", "provider_event", "sync", after={
        "listed": report.listed, "applied": report.applied, "known": report.known,
        "waiting": len(report.waiting), "failed": len(report.failed)})
    db.session.commit()
    return report


def settle_fee(payment_id: int, *, actor: Actor) -> bool:
    """Ask the provider again for one charge's fee; True when it is known now."""
    charge = db.session.get(Payment, payment_id)
    if charge is None or charge.kind is not PaymentKind.CHARGE:
        raise OperationsError("There is no such charge.")
    if charge.provider not in FEE_REPORTING:
        raise OperationsError(f"{charge.provider} reports no fees.")
    if charge.fee is not None:
        raise OperationsError("This charge's fee is known already.")
    provider_name = charge.provider
    try:
        events.settle_charge_job(provider_name, payment_id)
    except ProviderError as exc:
        db.session.rollback()
        raise OperationsError(f"The provider could not say: {exc}") from None
    fee = db.session.scalar(select(Payment.fee).where(Payment.id == payment_id))
    _audit(actor, "operations.fee_settle", "payment", payment_id,
           after={"fee": fee, "known": fee is not None})
    db.session.commit()
    return fee is not None
