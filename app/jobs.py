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
  cannot be reached after the commit, the work is logged as not queued and runs in this
  process instead, once the response has been sent (outside a request, right away), so a
  reader still gets their sign-in link and receipt; one that fails there is left, like any
  failed inline job, to the sweeps the scheduler runs (``flask payments process-pending`` for
  webhook events, ``flask payments settle-fees`` for fees, ``flask mail send-pending`` for
  mail).

A job marked :func:`coalesced` finds its work itself (the stored webhook events not applied
yet): while one waits on the queue, queuing another changes nothing, so a burst of webhooks
makes one job, not one each (on RQ, each job costs about 20 Redis commands of bookkeeping). A
job marked :func:`gathered` takes a list: what one transaction queues of it runs as one job
with all the arguments (the receipt mails of a batch of events, delivered together).
:func:`retry_later` queues a job whose first attempt was made elsewhere (an event a batch could
not apply yet): it runs after the first retry interval, with the retries left.

A job marked :func:`after_response` is one whose time must not show in the answer to the
request that queued it (account mail: whether it is sent tells whether an address has an
account). On RQ it is queued like any other (and, if Redis cannot be reached, runs in this
process after the response, as every job then does); inline, it runs once the response has
been sent (:class:`AfterResponse`), in an
application context of its own. Outside a request (the command line, a worker) it runs right
after the commit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta

import click
from flask import Flask, current_app, g, has_request_context, request
from flask.cli import AppGroup
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry, SimpleWorker

from app import logs
from app.db import expect_writes
from app.extensions import db

log = logging.getLogger(__name__)

_KEY = "after_commit_jobs"


def _run_now(jobs: list[tuple[Callable, tuple]]) -> list[tuple[Callable, tuple]]:
    """Run jobs in this process, each on its own; returns those that raised (logged)."""
    failed = []
    for func, args in jobs:
        try:
            with logs.job(func.__qualname__):
                func(*args)
        except Exception:  # a failed job must not turn a committed request into an error
            log.exception("job %s%r failed", func.__qualname__, args)
            db.session.rollback()
            failed.append((func, args))
    return failed


class Secret(str):
    """A job argument kept out of the logs and of the queue's job descriptions (a password's
    hash): its repr says nothing."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'<secret>'"


def after_response(func: Callable) -> Callable:
    """Mark a job whose time must not show in the answer of the request that queues it: inline,
    it runs after the response is sent rather than right after the commit."""
    func.after_response = True
    return func


def coalesced(func: Callable) -> Callable:
    """Mark a job that takes no arguments and looks for its work when it runs: on RQ, it is
    queued only if none waits on the queue already (a flag in Redis, set when it is queued
    and cleared when a worker starts it, so work committed before the flag was seen is found
    by the job that is then waiting or starting)."""
    func.coalesced = True
    _COALESCED[f"{func.__module__}.{func.__qualname__}"] = func
    return func


#: The coalesced jobs by the name RQ gives a job's function.
_COALESCED: dict[str, Callable] = {}


def gathered(func: Callable) -> Callable:
    """Mark a job that takes one list: each :func:`enqueue` of it in a transaction (one
    argument each) adds to that list, and the job runs once, after the commit, with them
    all."""
    func.gathered = True
    return func


def _later(jobs: list[tuple[Callable, tuple]]):
    """Split jobs into those to run now and those marked :func:`after_response`."""
    now = [job for job in jobs if not getattr(job[0], "after_response", False)]
    return now, [job for job in jobs if getattr(job[0], "after_response", False)]


_AFTER_RESPONSE = "newsfund.after_response"


def _run_after_response(jobs: list[tuple[Callable, tuple]]) -> None:
    """Run jobs once this request's response has been sent (:class:`AfterResponse`), in an
    application context of their own; outside a request, now."""
    if not jobs:
        return
    if not has_request_context():
        _run_now(jobs)
        return
    app = current_app._get_current_object()

    def run() -> None:
        with app.app_context():
            expect_writes()
            _run_now(jobs)

    request.environ.setdefault(_AFTER_RESPONSE, []).append(run)


class AfterResponse:
    """WSGI middleware: the work a request left for after its response (``_AFTER_RESPONSE``
    in its environ) runs once the server has sent the last chunk of the body, or when it
    closes the response, whichever comes first. (Werkzeug's development server skips closing
    when the client has reset the connection, but has taken every chunk by then.)"""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        body = self.wsgi_app(environ, start_response)
        work = environ.get(_AFTER_RESPONSE)
        return ThenRun(body, work) if work else body


class ThenRun:
    """A response body that runs ``work`` once the server is done with it: taken its last
    chunk, or closed it (whichever comes first; once)."""

    def __init__(self, body, work: list[Callable[[], None]]):
        self._body = body
        self._work = work

    def __iter__(self):
        yield from self._body
        self._run()

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._run()

    def _run(self) -> None:
        work, self._work = self._work, []
        for run in work:
            run()


class InlineBackend:
    deferred = False

    def health(self) -> str | None:
        """The queue's state for /healthz: there is none."""
        return None

    def retry_later(self, func: Callable, *args) -> None:
        """Inline jobs are not retried: the sweeps take their work up."""

    def dispatch(self, jobs: list[tuple[Callable, tuple]]) -> None:
        now, later = _later(jobs)
        _run_now(now)  # a failed one is dropped: the sweeps pick its work up
        _run_after_response(later)


class RQBackend:
    """Jobs for ``flask jobs worker`` through an RQ queue on Redis."""

    deferred = True

    def __init__(self, url: str, queue_name: str, retry_intervals: list[int]):
        self.connection = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.queue = Queue(queue_name, connection=self.connection)
        self.retry_intervals = list(retry_intervals)
        self.retry = Retry(max=len(retry_intervals), interval=retry_intervals) \
            if retry_intervals else None

    def health(self) -> str:
        try:
            self.connection.ping()
        except RedisError:
            return "unreachable"
        return "ok"

    def dispatch(self, jobs: list[tuple[Callable, tuple]]) -> None:
        if in_worker():  # a job's follow-ups: run here, queue only those that fail
            jobs = _run_now(jobs)
        if not jobs:
            return
        try:
            jobs = self._not_waiting(jobs)
            with self.connection.pipeline() as pipe:
                for func, args in jobs:
                    # No result is kept: jobs report through the database.
                    self.queue.enqueue(func, *args, retry=self.retry, result_ttl=0,
                                       meta={"request_id": logs.request_id()}, pipeline=pipe)
                pipe.execute()
        except RedisError:  # committed already: done here instead, after the response
            for func, _ in jobs:
                if getattr(func, "coalesced", False):
                    self._forget_waiting(func)
            log.exception("%d job(s) committed but not queued, run here: %s", len(jobs),
                          ", ".join(f"{func.__qualname__}{args!r}" for func, args in jobs))
            _run_after_response(jobs)

    #: How long a coalesced job's flag outlives a job that never started (Redis lost it): then
    #: the next commit queues one again. One queued meanwhile beside it finds nothing to do.
    WAITING_TTL = 300

    def _waiting_key(self, func: Callable) -> str:
        return f"newsfund:waiting:{self.queue.name}:{func.__module__}.{func.__qualname__}"

    def _not_waiting(self, jobs: list[tuple[Callable, tuple]]) -> list[tuple[Callable, tuple]]:
        """The jobs less the :func:`coalesced` ones of which one waits on the queue already
        (each flagged as waiting from here on: one Redis round trip for them all)."""
        coalesced = [func for func, _ in jobs if getattr(func, "coalesced", False)]
        if not coalesced:
            return jobs
        with self.connection.pipeline(transaction=False) as pipe:
            for func in coalesced:
                pipe.set(self._waiting_key(func), 1, nx=True, ex=self.WAITING_TTL)
            flagged = {func for func, new in zip(coalesced, pipe.execute(), strict=True) if new}
        return [(func, args) for func, args in jobs
                if not getattr(func, "coalesced", False) or func in flagged]

    def _forget_waiting(self, func: Callable) -> None:
        """A coalesced job is starting (or could not be queued): the next commit queues one."""
        try:
            self.connection.delete(self._waiting_key(func))
        except RedisError:
            pass

    def retry_later(self, func: Callable, *args) -> None:
        """Queue a job whose first attempt was made and failed elsewhere: it runs after the
        first retry interval, then has the retries left."""
        intervals = self.retry_intervals
        rest = intervals[1:]
        retry = Retry(max=len(rest), interval=rest) if rest else None
        options = {"retry": retry, "result_ttl": 0, "meta": {"request_id": logs.request_id()}}
        try:
            if intervals and intervals[0]:
                self.queue.enqueue_in(timedelta(seconds=intervals[0]), func, *args, **options)
            elif intervals:
                self.queue.enqueue(func, *args, **options)
        except RedisError:  # the sweeps take it up
            log.exception("job %s%r not queued for its retry", func.__qualname__, args)


def init_app(app: Flask) -> None:
    app.wsgi_app = AfterResponse(app.wsgi_app)
    url = app.config.get("REDIS_URL")
    app.extensions["jobs"] = RQBackend(url, app.config["JOBS_QUEUE"],
                                       app.config["JOBS_RETRY_INTERVALS"]) \
        if url else InlineBackend()
    app.cli.add_command(jobs_cli)


def backend() -> InlineBackend | RQBackend:
    return current_app.extensions["jobs"]


def in_worker() -> bool:
    """True in a job ``flask jobs worker`` runs; False where a job runs inline (a request's,
    or one Redis could not take)."""
    return bool(g.get("in_worker"))


def deferred() -> bool:
    """True when queued jobs run later in a worker rather than right after the commit."""
    return backend().deferred


def enqueue(func: Callable, *args) -> None:
    queued = db.session.info.setdefault(_KEY, [])
    if getattr(func, "coalesced", False) and any(job_func is func for job_func, _ in queued):
        return
    queued.append((func, args))


def _gathered(jobs: list[tuple[Callable, tuple]]) -> list[tuple[Callable, tuple]]:
    """The jobs of a commit, each :func:`gathered` one made one job with the list of its
    arguments (where it was first queued)."""
    merged: list[tuple[Callable, tuple]] = []
    lists: dict[Callable, list] = {}
    for func, args in jobs:
        if not getattr(func, "gathered", False):
            merged.append((func, args))
        elif func in lists:
            lists[func].append(args[0])
        else:
            lists[func] = [args[0]]
            merged.append((func, (lists[func],)))
    return merged


def queued_mark() -> int:
    """Where the jobs queued so far end: :func:`drop_since` drops what is queued after it (a
    savepoint's, rolled back)."""
    return len(db.session.info.get(_KEY, ()))


def drop_since(mark: int) -> None:
    del db.session.info.get(_KEY, [])[mark:]


def retry_later(func: Callable, *args) -> None:
    """Hand the backend, now, a job whose first attempt (in a batch) failed: on RQ it runs
    after the first retry interval with the retries left; inline, the sweeps take it up."""
    backend().retry_later(func, *args)


def submit(func: Callable, *args) -> None:
    """Hand one job to the backend now, with no transaction to wait for: for a request that
    writes nothing (a GET) but leaves work behind, such as a cache to store. Mark the job
    :func:`after_response`, or inline it runs within the request."""
    backend().dispatch([(func, args)])


def discard() -> None:
    db.session.info.pop(_KEY, None)


def commit() -> None:
    """Commit the session, then hand the jobs its transaction queued to the backend."""
    jobs = _gathered(db.session.info.pop(_KEY, []))
    db.session.commit()
    if jobs:
        backend().dispatch(jobs)


#: How long a worker's command channel (``rq`` commands: shutdown, kill) waits per read.
COMMAND_WAIT = 1


class AppWorker(SimpleWorker):
    """Runs each job in this process (no fork), in an application context of its own, so each
    job has a fresh database session; jobs write, so on SQLite they take the write lock up
    front, as a POST request does, and wait their turn beside the web processes."""

    app: Flask

    def subscribe(self):
        """RQ's, with its command channel read at most :data:`COMMAND_WAIT` seconds at a time,
        not 60. RQ stops a worker by unsubscribing, then stopping the channel's thread, and
        redis-py (8.2) waits for that thread to end: a thread that came round after the
        unsubscribe waits for a subscription as long as it reads, so the worker took 60 s to
        stop, now and then (a `--burst` run, a SIGTERM)."""
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(
            sleep_time=COMMAND_WAIT, daemon=True,
            exception_handler=self._pubsub_exception_handler)

    def perform_job(self, job, queue):
        if (coalesced := _COALESCED.get(job.func_name)) is not None:
            self.app.extensions["jobs"]._forget_waiting(coalesced)  # a commit queues another
        with self.app.app_context():
            expect_writes()
            g.in_worker = True
            with logs.job(job.func_name, job.id, job.meta.get("request_id")) as outcome:
                outcome["ok"] = super().perform_job(job, queue)  # False: it raised
            return outcome["ok"]


NO_QUEUE = "REDIS_URL is not set: jobs run inline and there is no queue"


def worker(app: Flask) -> AppWorker:
    """A worker on the app's queue; ``.work()`` it."""
    rq_backend = app.extensions["jobs"]
    if not isinstance(rq_backend, RQBackend):
        raise RuntimeError(NO_QUEUE)
    result = AppWorker([rq_backend.queue], connection=rq_backend.connection)
    result.app = app
    return result


jobs_cli = AppGroup("jobs", help="Background jobs (with REDIS_URL).")


@jobs_cli.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]))
def jobs_worker_command(burst: bool, log_level: str) -> None:
    """Run queued jobs (webhook events, mail, fees) until stopped; retries wait their turn.

    RQ rides out Redis going away while it waits for a job, but not while it runs one: it
    then quits (raising, or not if Redis is back by then). Unless it was asked to stop, a new
    worker waits for Redis and takes over, rather than the process ending (which would stop
    every process `make serve` runs)."""
    flask_app = current_app._get_current_object()
    if not isinstance(backend(), RQBackend):
        raise click.ClickException(NO_QUEUE)
    while True:
        _wait_for_redis(backend().connection)
        try:
            rq_worker = worker(flask_app)
            rq_worker.work(burst=burst, with_scheduler=True, logging_level=log_level)
        except RedisError as exc:
            log.warning("Redis lost while a job ran (%s); starting the worker again", exc)
            if rq_worker.pubsub_thread is not None:  # RQ leaves its command channel's reader
                rq_worker.pubsub_thread.stop()  # retrying a lost connection for ever
        else:
            if burst or rq_worker._shutdown_requested_date:  # SIGTERM, SIGINT
                return
            log.warning("the worker quit on an error; starting it again")
            time.sleep(1)


def _wait_for_redis(connection: Redis, every: float = 5) -> None:
    """Return once Redis answers: a worker started while it is down (a reboot, a restart)
    waits for it rather than exit."""
    while True:
        try:
            connection.ping()
            return
        except RedisError as exc:
            log.warning("Redis unreachable (%s); trying again in %s s", exc, every)
            time.sleep(every)


@jobs_cli.command("scheduler")
@click.option("--tick", type=click.FloatRange(min=0.1), metavar="SECONDS",
              help="How often to look for due work (default: SCHEDULER_TICK_SECONDS).")
@click.option("--once", is_flag=True,
              help="Look once, start what is due, and stop (to run it from cron instead).")
def jobs_scheduler_command(tick: float | None, once: bool) -> None:
    """Start the periodic work when it is due (the SCHEDULE_* settings): on the queue for a
    worker, or here without one. Each slot is started once however many schedulers run."""
    import signal

    from app.schedule import Scheduler

    flask_app = current_app._get_current_object()
    scheduler = Scheduler(flask_app)
    if once:
        for task, slot, how in scheduler.run_due():
            click.echo(f"{task} {slot}: {how}")
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: scheduler.stop.set())
    scheduler.run(tick or flask_app.config["SCHEDULER_TICK_SECONDS"])
