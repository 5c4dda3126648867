"""The periodic work, and the scheduler that starts it (``flask jobs scheduler``).

Each task runs at an interval (``SCHEDULE_*_SECONDS``) or once a day at a local time in
``ORG_TIMEZONE`` (``SCHEDULE_DAILY_EMAIL_AT``); ``0`` or an empty time turns a task off. Time is
cut into *slots*: an interval task's slot is the interval it falls in, counted from the epoch
(so every scheduler agrees on it), a daily task's is the local date once that day's time has
come (a scheduler started later that day still runs it). On each tick the scheduler claims
every due slot by inserting (task, slot) into ``scheduled_run`` under its primary key: only one
insert wins, so however many schedulers run (two hosts, a restart overlapping the old one),
each slot is handed over once. The winner hands the task to the jobs backend: the RQ queue
for a worker, or, with no ``REDIS_URL`` or Redis unreachable, runs it in the scheduler's own
process. Every task is safe to run twice and finishes what an earlier, failed run left.

A slot claimed by a scheduler that died before handing it over is lost; the task's next slot
does its work (a day later for the daily email: run ``flask news send-digest`` by hand).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from zoneinfo import ZoneInfo

from flask import Flask, current_app
from redis.exceptions import RedisError
from sqlalchemy import String, delete
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, mapped_column

from app import jobs
from app.db import UTCDateTime, expect_writes, insert, this_process, utcnow
from app.extensions import db

log = logging.getLogger(__name__)

#: Claims older than this are deleted (they only ever stop a slot from running twice).
KEEP_CLAIMS = timedelta(days=14)
#: How long a sweep leaves a webhook event or a charge to the queue before taking it up itself.
SWEEP_GRACE = timedelta(seconds=60)
#: ... and a message to the job delivering it (whose first retries come within this time).
MAIL_GRACE = timedelta(minutes=5)


class ScheduledRun(db.Model):
    """One slot of one task, claimed by one scheduler."""

    __tablename__ = "scheduled_run"

    task: Mapped[str] = mapped_column(String(40), primary_key=True)
    slot: Mapped[str] = mapped_column(String(40), primary_key=True)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str] = mapped_column(String(200))


# -- the tasks: module-level functions with no arguments, run in an application context ------


def daily_email_job() -> None:
    """Today's news email to every confirmed subscriber not sent it yet."""
    from app.news.digest import DigestAborted, send_configured_digest

    try:
        report = send_configured_digest(now=utcnow())
    except DigestAborted as exc:
        raise RuntimeError(f"the daily email stopped: {exc}; it is retried") from None
    log.info("daily email %s: %d sent, %d failed, %d sent earlier", report.digest_date,
             report.sent, report.failed, report.sent_before)
    if report.failed:
        raise RuntimeError(f"the daily email failed for {report.failed} subscriber(s); "
                           "it is retried")


def sandbox_renew_job() -> None:
    """Charge every sandbox plan that is due (the sandbox has no billing clock of its own)."""
    from app.payments.renewals import renew_due_plans

    log.info("sandbox renewals: %d plan period(s) charged", renew_due_plans(utcnow()))


def settle_fees_job() -> None:
    """Ask the provider again for the fees it had not reported."""
    from app.payments.events import settle_pending
    from app.payments.providers import current_provider

    settled, unknown = settle_pending(current_provider(), occurred_before=utcnow() - SWEEP_GRACE)
    log.info("settle-fees: %d settled, %d still unknown", settled, unknown)


def process_pending_job() -> None:
    """Apply the stored webhook events no job applied (Redis was down, a worker died)."""
    from app.payments.events import event_settings, process_pending

    report = process_pending(received_before=utcnow() - SWEEP_GRACE,
                             settings=event_settings(current_app.config))
    log.info("process-pending: %d applied, %d waiting, %d failed", report.applied,
             report.waiting, len(report.failed))
    if report.failed:
        raise RuntimeError("process-pending: " + "; ".join(
            f"{failure.event_id} ({failure.type}): {failure.reason}"
            for failure in report.failed))


def send_mail_job() -> None:
    """Deliver the mail an outage left queued (the mail server, or the job that was to send
    it, failed): ``flask mail send-pending``, for messages queued a while ago."""
    from app.mail import current_mailer, deliver_pending

    sent, failed = deliver_pending(transport=current_mailer().transport,
                                   created_before=utcnow() - MAIL_GRACE)
    (log.warning if failed else log.info)("send-mail: %d sent, %d still queued", sent, failed)


def rollup_job() -> None:
    """Rebuild the dashboards' snapshot of each live campaign, so that a dashboard reads few
    ledger rows past it."""
    from app.staff.rollup import refresh_live
    from app.templating import org_zone

    log.info("rollup: %d campaign snapshot(s) rebuilt", refresh_live(utcnow(), zone=org_zone()))


def stripe_sync_job() -> None:
    """List and apply the Stripe events that never arrived as webhooks (the catch-up sync)."""
    from app.payments.events import event_settings
    from app.payments.providers import current_provider
    from app.payments.sync import sync_missed_events

    report = sync_missed_events(current_provider(),
                                settings=event_settings(current_app.config))
    if report.failed:
        raise RuntimeError("stripe sync: " + "; ".join(
            f"{event_id}: {reason}" for event_id, reason in report.failed))


@dataclass(frozen=True)
class Task:
    name: str
    func: Callable[[], None]
    every: int = 0  # seconds; or
    at: clock_time | None = None  # a local time of day
    timeout: int = 600  # seconds a worker lets it run

    def slot(self, now: datetime, zone: ZoneInfo) -> str | None:
        """The slot due at ``now``, or None (a daily task before its time)."""
        if self.every:
            start = int(now.timestamp()) // self.every * self.every
            return datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        today = now.astimezone(zone).date()
        return today.isoformat() if now >= datetime.combine(today, self.at, zone) else None


def parse_time_of_day(text: str) -> clock_time | None:
    """``HH:MM`` (24-hour), or None for an empty setting."""
    if not text.strip():
        return None
    try:
        hours, minutes = text.strip().split(":")
        return clock_time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"a time of day is HH:MM (24-hour), not {text!r}") from None


def tasks(app: Flask) -> list[Task]:
    """The tasks the settings turn on."""
    config = app.config
    result = []
    at = parse_time_of_day(config["SCHEDULE_DAILY_EMAIL_AT"])
    if at is not None:
        result.append(Task("daily-email", daily_email_job, at=at, timeout=4 * 3600))
    provider = app.extensions["payment_provider"].name
    for name, func, setting, runs_on in (
            ("sandbox-renew", sandbox_renew_job, "SCHEDULE_SANDBOX_RENEW_SECONDS", "sandbox"),
            ("settle-fees", settle_fees_job, "SCHEDULE_SETTLE_FEES_SECONDS", None),
            ("process-pending", process_pending_job, "SCHEDULE_PROCESS_PENDING_SECONDS", None),
            ("send-mail", send_mail_job, "SCHEDULE_SEND_MAIL_SECONDS", None),
            ("rollup", rollup_job, "SCHEDULE_ROLLUP_SECONDS", None),
            ("stripe-sync", stripe_sync_job, "SCHEDULE_STRIPE_SYNC_SECONDS", "stripe")):
        if config[setting] and runs_on in (None, provider):
            result.append(Task(name, func, every=config[setting]))
    return result


# -- claiming and handing over -------------------------------------------------------------


def claim(task: str, slot: str, *, now: datetime, by: str) -> bool:
    """Claim one slot of a task for this scheduler; False when another has it. Commits."""
    won = db.session.execute(
        insert(ScheduledRun).values(task=task, slot=slot, claimed_at=now, claimed_by=by)
        .on_conflict_do_nothing(index_elements=["task", "slot"])
        .returning(ScheduledRun.task)).scalar() is not None
    if won:
        db.session.execute(delete(ScheduledRun).where(ScheduledRun.claimed_at < now - KEEP_CLAIMS))
    db.session.commit()
    return won


def hand_over(task: Task) -> str:
    """Queue the task for a worker; with no queue, or Redis unreachable, run it here. Returns
    "queued" or "ran here"."""
    backend = jobs.backend()
    if backend.deferred:
        try:
            # A daily task is retried like any job (its next slot is a day away); an interval
            # task's next slot is its retry.
            backend.queue.enqueue(task.func, job_timeout=task.timeout, result_ttl=0,
                                  retry=backend.retry if task.at else None,
                                  description=f"scheduled: {task.name}")
            return "queued"
        except RedisError:
            log.warning("scheduler: Redis unreachable, running %s here", task.name)
    expect_writes()
    try:
        task.func()
    except Exception:  # logged; the task's next run finishes its work
        log.exception("scheduled task %s failed", task.name)
        db.session.rollback()
    return "ran here"


class Scheduler:
    """Claims and hands over the due slots, one tick at a time (``run_due``), or until
    stopped (``run``)."""

    def __init__(self, app: Flask, name: str | None = None):
        self.app = app
        self.name = name or this_process()
        self.stop = threading.Event()
        self._done: dict[str, str] = {}  # task -> the last slot this one settled
        with app.app_context():
            self.tasks = tasks(app)
            self.zone = ZoneInfo(app.config["ORG_TIMEZONE"])

    def run_due(self, now: datetime | None = None) -> list[tuple[str, str, str]]:
        """Claim each due slot not settled yet and hand over those won: a list of (task,
        slot, "queued" / "ran here" / "taken" by another scheduler)."""
        now = now or utcnow()
        done = []
        with self.app.app_context():
            for task in self.tasks:
                slot = task.slot(now, self.zone)
                if slot is None or self._done.get(task.name) == slot:
                    continue
                try:
                    won = claim(task.name, slot, now=now, by=self.name)
                except SQLAlchemyError:  # the database is down: the next tick tries again
                    log.exception("scheduler: could not claim %s %s", task.name, slot)
                    db.session.rollback()
                    continue
                self._done[task.name] = slot
                how = hand_over(task) if won else "taken"
                log.info("scheduler: %s %s %s", task.name, slot, how)
                done.append((task.name, slot, how))
        return done

    def run(self, tick: float) -> None:
        log.info("scheduler %s: %s", self.name, ", ".join(
            f"{t.name} every {t.every} s" if t.every else f"{t.name} daily at {t.at:%H:%M}"
            for t in self.tasks) or "no task is turned on")
        while not self.stop.is_set():
            self.run_due()
            self.stop.wait(tick)
