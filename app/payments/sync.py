"""The catch-up sync: the provider's events of the types the app handles, listed from its API
and applied when not stored yet, exactly as a delivered webhook would be
(:func:`app.payments.events.accept_event`: the same shape check, the same store-once, the
same handlers, queued the same way with ``REDIS_URL``). It repairs webhooks missed while the
endpoint was down, its secret rotated or a deploy went wrong. ``flask payments sync`` runs it;
the scheduler runs :func:`sync_missed_events` hourly.

Events are applied oldest first, each in its own transaction. One that must wait for another
(``RetryLater``) is tried again after the others, until a pass changes nothing; what still
waits is left to the next sync or to the provider's own retries, or parked once overdue, as a
delivered one would be. One that fails is reported, and the others are applied all the same.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app import jobs
from app.db import utcnow
from app.extensions import db
from app.payments.base import PaymentProvider
from app.payments.events import HANDLERS, EventSettings, RetryLater, accept_event

log = logging.getLogger(__name__)

#: How far back a sync looks unless told otherwise: Stripe retries a webhook for about three
#: days, so an event older than that which never arrived was missed for good (Stripe keeps
#: events listable for 30 days: ``flask payments sync --since 720h`` reaches them all).
DEFAULT_WINDOW = timedelta(hours=72)


@dataclass
class SyncReport:
    listed: int = 0
    applied: int = 0  # stored now, and applied (or queued)
    known: int = 0  # stored already: delivered, or an earlier sync's
    waiting: list[str] = field(default_factory=list)  # ids still waiting for another event
    failed: list[tuple[str, str]] = field(default_factory=list)  # (id, what went wrong)


def sync_events(provider: PaymentProvider, *, since: datetime,
                settings: EventSettings) -> SyncReport:
    """List the provider's events of the handled types created since ``since`` (every page)
    and accept each one not stored yet (``settings``: as ``accept_event``). Raises
    ProviderError when they cannot be listed."""
    events = list(provider.list_events(since=int(since.timestamp()), types=HANDLERS.keys()))
    db.session.rollback()  # each event below in a transaction of its own
    report = SyncReport(listed=len(events))
    pending, waiting = events, []
    while pending:
        waiting = []
        for event in pending:
            try:
                stored = accept_event(provider, event, json.dumps(event).encode(),
                                      settings=settings)
            except RetryLater:
                db.session.rollback()
                waiting.append(event)
                continue
            except Exception as exc:  # reported; the other events are applied all the same
                db.session.rollback()
                log.exception("%s event %s could not be applied", provider.name,
                              event.get("id"))
                report.failed.append((str(event.get("id")), f"{type(exc).__name__}: {exc}"))
                continue
            jobs.commit()
            if stored:
                report.applied += 1
            else:
                report.known += 1
        if len(waiting) == len(pending):  # a pass that changed nothing
            break
        pending = waiting
    report.waiting = [str(event["id"]) for event in waiting]
    return report


def sync_missed_events(provider: PaymentProvider, *, settings: EventSettings,
                       window: timedelta = DEFAULT_WINDOW) -> SyncReport:
    """The scheduler's catch-up: ``provider``'s events of the last ``window``, logged."""
    report = sync_events(provider, since=utcnow() - window, settings=settings)
    log.info("sync: %d listed, %d applied, %d already stored, %d waiting, %d failed",
             report.listed, report.applied, report.known, len(report.waiting),
             len(report.failed))
    return report
