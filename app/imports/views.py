"""The staff import pages: upload a CSV, read the dry run's report (counts, refused rows,
errors.csv), confirm, watch the import run. One set of pages per import (``app.imports.kinds``),
each for its role: /staff/imports/<kind>.

The upload's header is checked at once (a wrong file is the form again, with the message); the
file is stored in the database and the dry run, then the import, run as jobs (in a worker with
Redis, the run's page refreshing with the progress until it is done; inline otherwise)."""

from __future__ import annotations

import json
from datetime import timedelta

from flask import Blueprint, Response, abort, current_app, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import insert, select

from app import jobs
from app.core import accepts_uploads
from app.db import utcnow
from app.extensions import db
from app.imports.background import read_progress, run_import_job
from app.imports.forms import ConfirmForm, upload_form
from app.imports.kinds import KINDS, ImportKind
from app.imports.models import ImportChunk, ImportRun, ImportStatus, forget_old_runs
from app.imports.reading import ImportFileError, open_csv
from app.imports.report import ImportReport
from app.staff.roles import roles_required, staff_pages

bp = staff_pages(Blueprint("imports", __name__))
#: Bytes per stored piece of an upload.
CHUNK = 1024 * 1024
#: Refused rows listed on the page (all of them are in errors.csv).
SHOWN = 100
#: Seconds between refreshes of a running import's page.
REFRESH = 2


def _run(kind: ImportKind, run_id: int) -> ImportRun:
    run = db.session.get(ImportRun, run_id)
    if run is None or run.kind != kind.name:
        abort(404)
    return run


def _report(run: ImportRun) -> ImportReport | None:
    data = run.report or run.dry_report
    return ImportReport.from_dict(json.loads(data)) if data else None


def _recent(kind: ImportKind) -> list[ImportRun]:
    return list(db.session.scalars(select(ImportRun).where(ImportRun.kind == kind.name)
                                   .order_by(ImportRun.id.desc()).limit(10)))


def _store(run_id: int, stream) -> int:
    """The upload into the database, a piece at a time (memory stays flat); returns its size."""
    size = position = 0
    while data := stream.read(CHUNK):
        db.session.execute(insert(ImportChunk).values(run_id=run_id, position=position,
                                                      data=data))
        position += 1
        size += len(data)
    return size


def _pages(kind: ImportKind) -> None:
    """The routes of one import, for its role."""
    guard = roles_required(kind.role)

    def upload():
        form = upload_form(kind.options)
        status = 200
        if form.is_submitted():
            if form.validate():
                upload = form.file.data
                try:
                    # The header now, the rows in the dry run.
                    open_csv(upload.stream, columns=kind.columns, required=kind.required,
                             allow_unknown=kind.allow_unknown,
                             max_bytes=current_app.config["IMPORT_MAX_BYTES"])
                except ImportFileError as exc:
                    form.file.errors = [exc.message]
                else:
                    forget_old_runs(before=utcnow() - timedelta(
                        days=current_app.config["IMPORT_KEEP_DAYS"]))
                    upload.stream.seek(0)
                    options = {name: bool(getattr(form, f"option_{name}").data)
                               for name, _ in kind.options}
                    run = ImportRun(kind=kind.name, filename=(upload.filename or "import.csv")
                                    [-255:], size=0, actor_id=current_user.id,
                                    actor_label=current_user.email, options=json.dumps(options))
                    db.session.add(run)
                    db.session.flush()
                    run.size = _store(run.id, upload.stream)
                    run_id = run.id
                    jobs.enqueue(run_import_job, run_id, True)
                    jobs.commit()
                    return redirect(url_for(f"imports.{kind.name}_run", run_id=run_id))
            status = 422
        return render_template("imports/upload.html", kind=kind, form=form,
                               recent=_recent(kind)), status

    def show(run_id: int):
        run = _run(kind, run_id)
        running = run.status in ImportStatus.RUNNING
        response = Response(render_template(
            "imports/run.html", kind=kind, run=run, report=_report(run), shown=SHOWN,
            progress=read_progress(run.id) if running else None, refresh=REFRESH,
            confirm_form=ConfirmForm()))
        if running:
            response.headers["Refresh"] = str(REFRESH)
        return response

    def confirm(run_id: int):
        run = _run(kind, run_id)
        if not ConfirmForm().validate_on_submit():
            abort(400)
        if run.status == ImportStatus.CHECKED:
            run.status = ImportStatus.IMPORTING
            run.actor_id, run.actor_label = current_user.id, current_user.email
            jobs.enqueue(run_import_job, run.id, False)
            jobs.commit()
        return redirect(url_for(f"imports.{kind.name}_run", run_id=run_id))

    def errors(run_id: int):
        run = _run(kind, run_id)
        report = _report(run)
        if report is None:
            abort(404)
        stem = _stem(run.filename)
        return Response(report.errors_csv(), mimetype="text/csv", headers={
            "Content-Disposition": f'attachment; filename="{stem}.errors.csv"'})

    base = f"/staff/imports/{kind.name}"
    bp.add_url_rule(base, f"{kind.name}", accepts_uploads("IMPORT_MAX_BYTES")(guard(upload)),
                    methods=["GET", "POST"])
    bp.add_url_rule(f"{base}/<int:run_id>", f"{kind.name}_run", guard(show))
    bp.add_url_rule(f"{base}/<int:run_id>/confirm", f"{kind.name}_confirm", guard(confirm),
                    methods=["POST"])
    bp.add_url_rule(f"{base}/<int:run_id>/errors.csv", f"{kind.name}_errors", guard(errors))


def _stem(filename: str) -> str:
    stem = filename.rsplit(".", 1)[0] or "import"
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in stem)[:80]


for _kind in KINDS.values():
    _pages(_kind)
