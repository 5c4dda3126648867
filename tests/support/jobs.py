"""The job queue in tests: run it dry in this process, as a worker would."""

from __future__ import annotations

import signal

from app import jobs
from app.extensions import db


def work(flask_app):
    """Run the queue dry in this process, as ``flask jobs worker --burst`` would; returns the
    worker."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    worker = jobs.worker(flask_app)
    try:
        worker.work(burst=True)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    db.session.expire_all()
    return worker
