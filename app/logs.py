"""Logs: one JSON line per record on stderr, one per request and one per job, each request with
its id.

Every request gets an id: the ``X-Request-ID`` its proxy sent when the app stands behind trusted
proxies (``TRUSTED_PROXIES``; nginx sets ``$request_id``), else one made here. It is returned in
the response's ``X-Request-ID`` header and carried by every record logged while the request is
served. A line names the route (the URL rule, ``/account/signin/<token>``), never the path or
the query string, which may hold a token; no form field, header or cookie is ever logged.

``LOG_FORMAT=json`` (the default) or ``text``; ``LOG_LEVEL`` (``INFO``). Logging is set up once
per process, on the root logger, unless something else (a test runner, ``--log-config``) set it
up already.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from flask import Flask, g, has_request_context, request, request_started

request_log = logging.getLogger("newsfund.request")
job_log = logging.getLogger("newsfund.job")

#: What an incoming X-Request-ID may look like to be kept (nginx's $request_id is 32 hex digits);
#: anything else is replaced, so a client cannot write into the logs through it.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_STARTED = "newsfund.started"
_REQUEST_ID = "newsfund.request_id"
#: The job being run in this thread (its function, RQ id, and the id of the request that queued
#: it), for the records it logs.
_job: ContextVar[tuple[str, str | None, str | None] | None] = ContextVar("newsfund_job",
                                                                         default=None)

#: The fields a record may carry besides its message, in the order they are written.
FIELDS = ("request_id", "method", "route", "status", "duration_ms", "user_id", "job", "job_id")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, the request's
    or job's fields, and the exception's traceback, if any."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        line = {"time": moment.isoformat(timespec="milliseconds"), "level": record.levelname,
                "logger": record.name, "message": record.getMessage()}
        job, job_id, _ = getattr(record, "newsfund_job", None) or (None, None, None)
        context = {"request_id": getattr(record, "newsfund_request_id", None), "job": job,
                   "job_id": job_id}
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is None:
                value = context.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def _context_record_factory(base):
    """Each record, wherever it is handled, carries the current request's id, or the current
    job's name and id."""

    def make(*args, **kwargs) -> logging.LogRecord:
        record = base(*args, **kwargs)
        # Names of our own: a logger's ``extra`` may not overwrite them (RQ's has "job_id").
        record.newsfund_request_id = request_id()
        record.newsfund_job = _job.get()
        return record

    make.newsfund = True
    return make


if not getattr(logging.getLogRecordFactory(), "newsfund", False):
    logging.setLogRecordFactory(_context_record_factory(logging.getLogRecordFactory()))


def configure(log_format: str = "json", level: str = "INFO") -> None:
    """Send the root logger's records to stderr, one JSON line each (``text``: readable lines),
    once per process; nothing when logging was set up already."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s [%(newsfund_request_id)s] %(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Stripe's SDK logs two lines at INFO per API call (a webhook's job makes one or two):
    # its warnings and errors are kept, its calls only when debugging.
    if root.level > logging.DEBUG:
        logging.getLogger("stripe").setLevel(logging.WARNING)


def init_app(app: Flask) -> None:
    """Request ids, and one line per request. Registered before the other hooks, so that the
    line sees the final response."""
    if not app.testing:
        configure(app.config["LOG_FORMAT"], app.config["LOG_LEVEL"])
    request_started.connect(_request_started, app)
    app.after_request(_request_finished)

    def log_exception(exc_info) -> None:
        """Flask's, naming the route rather than the path (which may hold a token)."""
        app.logger.error("Exception on %s %s", request.method, route() or "(no route)",
                         exc_info=exc_info)

    app.log_exception = log_exception


def _request_started(app: Flask, **_) -> None:
    environ = request.environ
    environ[_STARTED] = time.perf_counter()
    environ[_REQUEST_ID] = request_id_from(
        request.headers.get("X-Request-ID", "") if app.config["TRUSTED_PROXIES"] else "")


def request_id_from(sent: str) -> str:
    """The id of a request whose trusted proxy sent ``sent`` (``""``: none, or not trusted):
    that, if it looks like an id, else a new one."""
    return sent if REQUEST_ID.fullmatch(sent) else uuid.uuid4().hex


def request_id() -> str | None:
    """The current request's id; in a job, the id of the request that queued it (if one
    did); else None."""
    if has_request_context():
        return request.environ.get(_REQUEST_ID)
    job = _job.get()
    return job[2] if job is not None else None


def route() -> str | None:
    """The URL rule that answered the current request (None: no route matched)."""
    return request.url_rule.rule if request.url_rule is not None else None


def request_seconds() -> float:
    """How long the current request has been served."""
    return time.perf_counter() - request.environ.get(_STARTED, time.perf_counter())


def _signed_in_user_id() -> int | None:
    """The id of the signed-in person, if the request looked them up (never a query here)."""
    user = g.get("_login_user")  # Flask-Login's, loaded by whatever read current_user
    # Its id, not get_id(): that is the sign-in's id, which the session cookie carries.
    return user.id if user is not None and user.is_authenticated else None


def _request_finished(response):
    log_request(request.method, route(), response.status_code, request_seconds(),
                user_id=_signed_in_user_id())
    response.headers["X-Request-ID"] = request.environ.setdefault(_REQUEST_ID, uuid.uuid4().hex)
    return response


def log_request(method: str, route: str | None, status: int, seconds: float, *,
                user_id: int | None = None, request_id: str | None = None) -> None:
    """The line of one answered request (also of one the edge answered, ``app.edge``, which
    passes the request's id: no Flask request is there to carry it)."""
    request_log.log(
        logging.ERROR if status >= 500 else logging.INFO, "%s %s %s", method,
        route or "(no route)", status,
        extra={"method": method, "route": route, "status": status,
               "duration_ms": round(seconds * 1000, 1), "user_id": user_id,
               "request_id": request_id})


@contextmanager
def job(name: str, job_id: str | None = None, request_id: str | None = None) -> Iterator[dict]:
    """Run a job under this: its records carry its name and id (and ``request_id``, the id of
    the request that queued it, if not run in that request), and one line says how it ended
    (``status`` "ok" or "failed"; a caller that catches the failure itself sets
    ``outcome["ok"] = False``) and how long it took."""
    outcome = {"ok": True}
    outer = _job.get()  # a job's follow-ups, run in the same worker: the same request
    token = _job.set((name, job_id, request_id or (outer[2] if outer else None)))
    started = time.perf_counter()
    try:
        yield outcome
    except BaseException:
        outcome["ok"] = False
        raise
    finally:
        status = "ok" if outcome["ok"] else "failed"
        job_log.log(logging.INFO if outcome["ok"] else logging.ERROR, "job %s %s", name, status,
                    extra={"status": status,
                           "duration_ms": round((time.perf_counter() - started) * 1000, 1)})
        _job.reset(token)
