"""The job that runs an import started from the staff pages: the dry run, then, once staff
confirm, the import itself. It owns the app (a job: it reads the settings and hands them to the
import's service) and is safe to run twice (a retried job finds the run no longer waiting, or
reruns an import, which adds nothing twice).

Progress goes to Redis when jobs run in a worker (the run's page reads it while it refreshes);
inline, the request that queued the job waits for it, and there is nothing to show meanwhile.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import delete, select

from app import jobs
from app.audit import Actor
from app.db import utcnow
from app.extensions import db
from app.imports.kinds import KINDS
from app.imports.models import ImportChunk, ImportRun, ImportStatus
from app.imports.reading import ImportFileError
from app.imports.report import ImportReport

log = logging.getLogger(__name__)
#: How long a run's progress is kept in Redis.
PROGRESS_TTL = 24 * 3600


def progress_key(run_id: int) -> str:
    return f"newsfund:import-progress:{run_id}"


def read_progress(run_id: int) -> tuple[int, int] | None:
    """(rows done, rows in the file) of a running import, when a worker reports it."""
    backend = jobs.backend()
    if not backend.deferred:
        return None
    try:
        value = backend.connection.get(progress_key(run_id))
    except RedisError:
        return None
    if not value:
        return None
    done, _, total = value.decode().partition("/")
    return int(done), int(total)


def _reporter(run_id: int) -> Callable[[ImportReport, int, int], None] | None:
    backend = jobs.backend()
    if not backend.deferred:
        return None

    def progress(report: ImportReport, done: int, total: int) -> None:
        try:
            backend.connection.set(progress_key(run_id), f"{done}/{total}", ex=PROGRESS_TTL)
        except RedisError:  # progress is a courtesy: the import goes on
            pass

    return progress


def run_import_job(run_id: int, dry_run: bool) -> None:
    run = db.session.get(ImportRun, run_id)
    waiting = ImportStatus.CHECKING if dry_run else ImportStatus.IMPORTING
    if run is None or run.status != waiting:
        return
    kind = KINDS[run.kind]
    actor = Actor(id=run.actor_id, label=run.actor_label)
    options, name = json.loads(run.options), run.filename
    with tempfile.TemporaryFile(prefix="newsfund-import-") as file:
        for data in db.session.scalars(select(ImportChunk.data).where(
                ImportChunk.run_id == run_id).order_by(ImportChunk.position)):
            file.write(data)
        file.seek(0)
        db.session.rollback()  # the import's transactions start here
        try:
            report = kind.run(file, dry_run=dry_run, actor=actor, config=current_app.config,
                              options=options, commit=jobs.commit, name=name,
                              progress=_reporter(run_id))
            error = None
        except ImportFileError as exc:
            report, error = None, exc.message
        except Exception:
            log.exception("import %s (%s) failed", run_id, run.kind)
            report, error = None, "The import stopped on an unexpected error (logged). " \
                                  "Rows already imported stay; upload the file again."
        db.session.rollback()
    run = db.session.get(ImportRun, run_id)
    run.finished_at = utcnow()
    if error is not None:
        run.status, run.error = ImportStatus.FAILED, error[:500]
    elif dry_run:
        run.status, run.dry_report = ImportStatus.CHECKED, json.dumps(report.to_dict())
    else:
        run.status, run.report = ImportStatus.DONE, json.dumps(report.to_dict())
    if run.status in (ImportStatus.DONE, ImportStatus.FAILED):
        # The donors' data in the file is not kept longer than the import needs it.
        db.session.execute(delete(ImportChunk).where(ImportChunk.run_id == run_id))
    jobs.commit()
