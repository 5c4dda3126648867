"""Background work that must happen only after the database commit succeeds.

Services call :func:`enqueue`; whoever owns the transaction calls :func:`commit`, which commits
and then runs what was queued. Work queued in a transaction that rolls back is dropped. Jobs run
inline, in the same process, after the commit; a job must be safe to run more than once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from app.extensions import db

log = logging.getLogger(__name__)

_KEY = "after_commit_jobs"


def enqueue(func: Callable, *args) -> None:
    db.session.info.setdefault(_KEY, []).append((func, args))


def discard() -> None:
    db.session.info.pop(_KEY, None)


def commit() -> None:
    """Commit the session, then run the jobs its transaction queued."""
    jobs = db.session.info.pop(_KEY, [])
    db.session.commit()
    for func, args in jobs:
        try:
            func(*args)
        except Exception:  # a failed job must not turn a committed request into an error
            log.exception("job %s%r failed", func.__qualname__, args)
            db.session.rollback()
