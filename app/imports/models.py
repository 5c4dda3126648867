"""An import started from the staff pages: the uploaded file (in the database, in chunks, so
that a worker on another machine reads the same bytes), its state, and its reports."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from app.db import UTCDateTime, utcnow
from app.extensions import db


class ImportStatus:
    CHECKING = "checking"  # the dry run is queued or running
    CHECKED = "checked"  # its report is ready: staff confirm, or upload again
    IMPORTING = "importing"  # confirmed: the import is queued or running
    DONE = "done"
    FAILED = "failed"  # the file could not be imported at all (``error`` says why)
    RUNNING = frozenset({CHECKING, IMPORTING})


class ImportRun(db.Model):
    __tablename__ = "import_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)  # app.imports.kinds.KINDS
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default=ImportStatus.CHECKING)
    # Who uploaded and who confirmed (their label is kept: the audit log names them so).
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("supporter.id"))
    actor_label: Mapped[str] = mapped_column(String(254))
    # The switches staff chose with the upload (JSON object of booleans).
    options: Mapped[str] = mapped_column(Text, default="{}")
    # ImportReport.to_dict() as JSON: the dry run's, then the import's.
    dry_report: Mapped[str | None] = mapped_column(Text)
    report: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def forget_old_runs(*, before: datetime) -> int:
    """Drop the uploaded files of the imports started before ``before``, and the refused rows
    their reports list (they hold donors' data), keeping each run's state and counts; returns
    how many runs had something to drop. The staff pages call it at each upload
    (``IMPORT_KEEP_DAYS``)."""
    # (Reports are stored by json.dumps: a refused row starts its list so.)
    runs = list(db.session.scalars(select(ImportRun).where(
        ImportRun.created_at < before,
        ImportRun.dry_report.contains('"refused": [[') | ImportRun.report.contains('"refused": [[')
        | ImportRun.id.in_(select(ImportChunk.run_id)))))
    for run in runs:
        run.dry_report, run.report = _without_rows(run.dry_report), _without_rows(run.report)
        db.session.execute(delete(ImportChunk).where(ImportChunk.run_id == run.id))
    return len(runs)


def _without_rows(data: str | None) -> str | None:
    if data is None:
        return None
    report = json.loads(data)
    report["refused"] = []
    return json.dumps(report)


class ImportChunk(db.Model):
    """A piece of an uploaded file, deleted once the import is done."""

    __tablename__ = "import_chunk"

    run_id: Mapped[int] = mapped_column(ForeignKey("import_run.id", ondelete="CASCADE"),
                                        primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)
