"""Work racing itself on a real, committed database: the same callable in several threads at
once, each with its own app context and session."""

from __future__ import annotations

import sqlite3
import threading

from app.extensions import db


def run_concurrently(app, work, *, threads: int = 8, timeout: float = 60) -> list[Exception]:
    """Run ``work()`` in ``threads`` threads released together by a barrier, each inside its own
    app context (its session removed after); the exceptions they raised, for the test to
    assert on."""
    errors: list[Exception] = []
    barrier = threading.Barrier(threads)

    def worker():
        with app.app_context():
            try:
                barrier.wait()
                work()
            except Exception as exc:  # collected and asserted on by the test
                errors.append(exc)
            finally:
                db.session.remove()

    started = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join(timeout)
    return errors


def sqlite_write_lock(path) -> str:
    """Whether another connection could take SQLite's write lock on the database file at
    ``path`` right now, without waiting: "free", or what SQLite said ("database is
    locked")."""
    other = sqlite3.connect(path, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.rollback()
        return "free"
    except sqlite3.OperationalError as exc:
        return str(exc)
    finally:
        other.close()
