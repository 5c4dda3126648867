"""``GET /metrics``: the app's figures in Prometheus' text format, names prefixed ``newsfund_``.

Two kinds of figures:

- **per process**, counted as requests are answered: requests by route (the URL rule, never
  the raw path), method and status, and their durations. Under gunicorn every worker counts
  its own; with ``PROMETHEUS_MULTIPROC_DIR`` set (prometheus-client's multiprocess mode: an
  empty folder, emptied at each start, shared by the web processes of one host) every worker
  writes its counts there and any of them answers with the sum. Without it, each process
  answers with its own counts only (fine for one process: ``make run``).
- **read at scrape time** from the database and the job queue (:class:`StateCollector`), so
  every process and every host answers the same: gifts by status, webhook events received,
  applied, ignored, waiting, parked and failed, the age of the oldest one not applied, the job
  queue and its failed jobs (with ``REDIS_URL``), mail queued and failing, the last daily
  email's progress and the year-end statements'.

Only loopback clients (a Prometheus on the same host; behind a proxy, the client's address as
``TRUSTED_PROXIES`` reads it) or a request with ``Authorization: Bearer <METRICS_TOKEN>`` get
them; anyone else gets a 404, as if there were no such page.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from collections.abc import Iterator

from flask import Blueprint, Flask, Response, abort, current_app, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
)
from prometheus_client import generate_latest as _generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from redis.exceptions import RedisError
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from sqlalchemy import case, func, select
from sqlalchemy.exc import SQLAlchemyError

from app import jobs, logs
from app.db import utcnow
from app.extensions import db, limiter

log = logging.getLogger(__name__)

bp = Blueprint("metrics", __name__)

EVENT_STATES = ("applied", "ignored", "waiting", "parked", "failed")

disable_created_metrics()  # no "_created" series beside each counter: nothing reads them
#: This process's own counters (in multiprocess mode, also written to the shared folder).
PROCESS_REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter("newsfund_http_requests", "Requests answered, by route (URL rule), method "
                   "and status.", ["route", "method", "status"], registry=PROCESS_REGISTRY)
REQUEST_SECONDS = Histogram(
    "newsfund_http_request_duration_seconds", "Time to answer a request, by route (URL rule).",
    ["route"], registry=PROCESS_REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))


def init_app(app: Flask) -> None:
    app.after_request(_count_request)
    app.register_blueprint(bp)


def _count_request(response):
    count_request(logs.route() or "(no route)", request.method, response.status_code,
                  logs.request_seconds())
    return response


def count_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request (also one the edge answered: ``app.edge``)."""
    REQUESTS.labels(route, method, str(status)).inc()
    REQUEST_SECONDS.labels(route).observe(seconds)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def _allowed() -> bool:
    """A loopback client, or the bearer token (compared in constant time)."""
    token = current_app.config["METRICS_TOKEN"]
    if token:
        scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(),
                                                              token.encode()):
            return True
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


@bp.get("/metrics")
@limiter.exempt
def metrics():
    if not _allowed():
        abort(404)
    body = generate_latest()
    return Response(body, content_type=CONTENT_TYPE_LATEST,
                    headers={"Cache-Control": "no-store"})


def generate_latest() -> bytes:
    """Every figure, as the text /metrics answers (in an application context)."""
    return _generate_latest(_Scrape())


class _Scrape:
    """What one scrape reads: the request counters (this process's, or every process's in
    multiprocess mode) and the state read now."""

    def collect(self) -> Iterator[Metric]:
        folder = multiprocess_dir()
        if folder:
            yield from MultiProcessCollector(None, path=folder).collect()
        else:
            yield from PROCESS_REGISTRY.collect()
        yield from StateCollector().collect()


def _gauge(name: str, documentation: str, value: float | None = None,
           labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value, labels=labels or None)


class StateCollector:
    """The figures read from the database and the job queue at each scrape."""

    def collect(self) -> Iterator[Metric]:
        try:
            figures = list(self._database())
        except SQLAlchemyError:
            log.exception("metrics: the database could not be read")
            db.session.rollback()
            figures = []
        yield _gauge("newsfund_database_up", "1 when the database answered this scrape.",
                     1 if figures else 0)
        yield from figures
        yield from self._queue()

    def _database(self) -> Iterator[Metric]:
        yield from self._gifts()
        yield from self._events()
        yield from self._mail()
        yield from self._digest()
        yield from self._statements()
        db.session.rollback()  # read only: end the transaction the reads began

    def _gifts(self) -> Iterator[Metric]:
        from app.giving.models import Gift, GiftStatus

        counts = dict(db.session.execute(
            select(Gift.status, func.count()).group_by(Gift.status)).all())
        gauge = _gauge("newsfund_gifts", "Gifts by status.", labels=("status",))
        for status in GiftStatus:
            gauge.add_metric([status.value], counts.get(status, 0))
        yield gauge

    def _events(self) -> Iterator[Metric]:
        from app.payments.models import ProviderEvent

        waits = ProviderEvent.processed_at.is_(None)
        state = case((waits & ProviderEvent.last_error.is_not(None), "failed"),
                     (waits & ProviderEvent.parked_at.is_not(None), "parked"),
                     (waits, "waiting"),
                     (ProviderEvent.note.is_(None), "applied"), else_="ignored")
        rows = db.session.execute(select(ProviderEvent.provider, state, func.count())
                                  .group_by(ProviderEvent.provider, state)).all()
        received = CounterMetricFamily(
            "newsfund_webhook_events_received", "Webhook events received and stored (each "
            "event once), by provider.", labels=["provider"])
        by_state = _gauge("newsfund_webhook_events", "Webhook events by provider and state: "
                          "applied; ignored (changed nothing: not ours, or at odds with our "
                          "records; the reason is on the event); not applied yet: waiting (for "
                          "its turn, or for an event it depends on), parked (waited too long "
                          "for that event: see /staff/operations), failed (the last attempt "
                          "raised an error: see /staff/operations).",
                          labels=("provider", "state"))
        totals: dict[str, int] = {}
        seen = {(provider, name): count for provider, name, count in rows}
        providers = sorted({provider for provider, _ in seen} | {_provider_name()})
        for provider in providers:
            for name in EVENT_STATES:
                count = seen.get((provider, name), 0)
                by_state.add_metric([provider, name], count)
                totals[provider] = totals.get(provider, 0) + count
            received.add_metric([provider], totals[provider])
        yield received
        yield by_state
        oldest = db.session.scalar(select(func.min(ProviderEvent.received_at))
                                   .where(ProviderEvent.processed_at.is_(None)))
        yield _gauge("newsfund_webhook_oldest_waiting_event_age_seconds",
                     "Seconds since the oldest event not applied yet (waiting, parked or failed) "
                     "was received (0: none).",
                     (utcnow() - oldest).total_seconds() if oldest else 0)

    def _mail(self) -> Iterator[Metric]:
        from app.mail import OutboundEmail

        unsent, failing, sent = db.session.execute(select(
            func.count().filter(OutboundEmail.sent_at.is_(None)),
            func.count().filter(OutboundEmail.sent_at.is_(None), OutboundEmail.attempts > 0),
            func.count().filter(OutboundEmail.sent_at.is_not(None)))).one()
        yield _gauge("newsfund_mail_queued", "Messages not delivered yet (failing ones too).",
                     unsent)
        yield _gauge("newsfund_mail_failed", "Messages not delivered yet whose last delivery "
                     "attempt failed (retried by `flask mail send-pending`).", failing)
        counter = CounterMetricFamily("newsfund_mail_sent", "Messages delivered.")
        counter.add_metric([], sent)
        yield counter

    def _digest(self) -> Iterator[Metric]:
        from app.news.models import Digest, DigestSend, SendStatus

        last = db.session.execute(select(Digest.digest_date, Digest.finished_at)
                                  .order_by(Digest.digest_date.desc()).limit(1)).first()
        sends = _gauge("newsfund_digest_sends", "The last daily email's messages by state "
                       "(claimed: being built and handed over; sent; failed: a later run "
                       "retries).", labels=("state",))
        counts = dict(db.session.execute(
            select(DigestSend.status, func.count()).where(DigestSend.digest_date == last[0])
            .group_by(DigestSend.status)).all()) if last else {}
        for status in SendStatus:
            sends.add_metric([status.value], counts.get(status, 0))
        yield sends
        yield _gauge("newsfund_digest_finished", "1 when the last daily email's run finished.",
                     1 if last and last[1] else 0)

    def _statements(self) -> Iterator[Metric]:
        from app.finance.statements import count_donors
        from app.mail import OutboundEmail

        key = OutboundEmail.dedupe_key  # statement:<year>:<supporter>[:c<n> when corrected]
        year = db.session.scalar(select(func.max(func.substr(key, 11, 4)))
                                 .where(key.like("statement:%")))
        labels = ("year", "kind")
        queued = _gauge("newsfund_statements_queued", "The latest year's statements not "
                        "delivered yet: first ones, and corrected ones.", labels=labels)
        sent = _gauge("newsfund_statements_sent", "The latest year's statements delivered: "
                      "first ones, and corrected ones.", labels=labels)
        donors = _gauge("newsfund_statements_donors", "Donors with a statement for the latest "
                        "year statements were made for.", labels=("year",))
        if year and year.isdigit():
            kind = case((key.like(f"statement:{year}:%:%"), "corrected"), else_="first")
            counts = {row[0]: row[1:] for row in db.session.execute(
                select(kind, func.count().filter(OutboundEmail.sent_at.is_(None)),
                       func.count().filter(OutboundEmail.sent_at.is_not(None)))
                .where(key.like(f"statement:{year}:%")).group_by(kind))}
            for name in ("first", "corrected"):
                waiting, delivered = counts.get(name, (0, 0))
                queued.add_metric([year, name], waiting)
                sent.add_metric([year, name], delivered)
            donors.add_metric([year], _donors(count_donors, int(year)))
        yield from (queued, sent, donors)

    def _queue(self) -> Iterator[Metric]:
        backend = jobs.backend()
        if not isinstance(backend, jobs.RQBackend):
            return
        queue = backend.queue
        try:
            figures = (queue.count, StartedJobRegistry(queue=queue).count,
                       ScheduledJobRegistry(queue=queue).count,
                       FailedJobRegistry(queue=queue).count)
        except RedisError:
            log.warning("metrics: the job queue could not be read", exc_info=True)
            yield _gauge("newsfund_jobs_queue_up", "1 when Redis answered this scrape.", 0)
            return
        yield _gauge("newsfund_jobs_queue_up", "1 when Redis answered this scrape.", 1)
        for name, documentation, value in zip(
                ("queued", "running", "retrying", "failed"),
                ("Jobs waiting for a worker.", "Jobs a worker is running.",
                 "Jobs that failed and wait for their next try.",
                 "Jobs that failed every try (RQ's failed job registry)."), figures,
                strict=True):
            yield _gauge(f"newsfund_jobs_{name}", documentation, value)


def _provider_name() -> str:
    return current_app.extensions["payment_provider"].name


def _donors(count_donors, year: int) -> int:
    from app.finance.common import FinanceError

    try:
        return count_donors(year)
    except FinanceError:  # no receipted gift that year (all refunded since)
        return 0
