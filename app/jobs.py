"""Background work that must happen only after the database commit succeeds.

Services call :func:`enqueue`; whoever owns the transaction calls :func:`commit`, which commits
and then hands what was queued to the backend. Work queued in a transaction that rolls back is
dropped. A job is a module-level function with plain arguments (ids, names), and it must be safe
to run more than once.

Two backends, chosen by ``REDIS_URL``:

- **inline** (the default): each job runs in this process right after the commit, and a job that
  fails is logged and dropped (the sweeps below pick its work up again);
- **RQ on Redis**: the jobs of one commit go to the queue in one pipelined round trip, and
  ``flask jobs worker`` runs them, each in an application context of its own, retrying one that
  raises with backoff (``JOBS_RETRY_INTERVALS``). The jobs a job queues (a webhook event's
  receipt mail and fee, say) run right after its commit in the same worker, since it is
  already in the background; only one that fails goes to the queue, for its retries. If Redis
  cannot be reached after the commit, the work is logged as not queued; what it was for is
  still in the database and the sweeps finish it (``flask payments process-pending`` for
  webhook events, ``flask payments settle-fees`` for fees, ``flask mail send-pending`` for
  mail).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask, current_app, g
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry, SimpleWorker

from app.db import expect_writes
from app.extensions import db

log = logging.getLogger(__name__)

_KEY = "after_commit_jobs"


def _run_now(jobs: list[tuple[Callable, tuple]]) -> list[tuple[Callable, tuple]]:
    """Run jobs in this process, each on its own; returns those that raised (logged)."""
    failed = []
    for func, args in jobs:
        try:
            func(*args)
        except Exception:  # a failed job must not turn a committed request into an error
            log.exception("job %s%r failed", func.__qualname__, args)
            db.session.rollback()
            failed.append((func, args))
    return failed


class InlineBackend:
    deferred = False

    def health(self) -> str | None:
        """The queue's state for /healthz: there is none."""
        return None

    def dispatch(self, jobs: list[tuple[Callable, tuple]]) -> None:
        _run_now(jobs)  # a failed one is dropped: the sweeps pick its work up


class RQBackend:
    """Jobs for ``flask jobs worker`` through an RQ queue on Redis."""

    deferred = True

    def __init__(self, url: str, queue_name: str, retry_intervals: list[int]):
        self.connection = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.queue = Queue(queue_name, connection=self.connection)
        self.retry = Retry(max=len(retry_intervals), interval=retry_intervals) \
            if retry_intervals else None

    def health(self) -> str:
        try:
            self.connection.ping()
        except RedisError:
            return "unreachable"
        return "ok"

    def dispatch(self, jobs: list[tuple[Callable, tuple]]) -> None:
        if g.get("in_worker"):  # a job's follow-ups: run here, queue only those that fail
            jobs = _run_now(jobs)
        if not jobs:
            return
        try:
            with self.connection.pipeline() as pipe:
                for func, args in jobs:
                    # No result is kept: jobs report through the database.
                    self.queue.enqueue(func, *args, retry=self.retry, result_ttl=0,
                                       pipeline=pipe)
                pipe.execute()
        except RedisError:  # committed already: the sweeps pick the work up
            log.exception("%d job(s) committed but not queued: %s", len(jobs),
                          ", ".join(f"{func.__qualname__}{args!r}" for func, args in jobs))


def init_app(app: Flask) -> None:
    url = app.config.get("REDIS_URL")
    app.extensions["jobs"] = RQBackend(url, app.config["JOBS_QUEUE"],
                                       app.config["JOBS_RETRY_INTERVALS"]) \
        if url else InlineBackend()


def backend() -> InlineBackend | RQBackend:
    return current_app.extensions["jobs"]


def deferred() -> bool:
    """True when queued jobs run later in a worker rather than right after the commit."""
    return backend().deferred


def enqueue(func: Callable, *args) -> None:
    db.session.info.setdefault(_KEY, []).append((func, args))


def discard() -> None:
    db.session.info.pop(_KEY, None)


def commit() -> None:
    """Commit the session, then hand the jobs its transaction queued to the backend."""
    jobs = db.session.info.pop(_KEY, [])
    db.session.commit()
    if jobs:
        backend().dispatch(jobs)


class AppWorker(SimpleWorker):
    """Runs each job in this process (no fork), in an application context of its own, so each
    job has a fresh database session; jobs write, so on SQLite they take the write lock up
    front, as a POST request does, and wait their turn beside the web processes."""

    app: Flask

    def perform_job(self, job, queue):
        with self.app.app_context():
            expect_writes()
            g.in_worker = True
            return super().perform_job(job, queue)


def worker(app: Flask) -> AppWorker:
    """A worker on the app's queue; ``.work()`` it."""
    rq_backend = app.extensions["jobs"]
    if not isinstance(rq_backend, RQBackend):
        raise RuntimeError("REDIS_URL is not set: jobs run inline and there is no queue")
    result = AppWorker([rq_backend.queue], connection=rq_backend.connection)
    result.app = app
    return result
