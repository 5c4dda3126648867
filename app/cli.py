"""What the feature packages' commands share. Each package owns its commands, in its own
``cli.py`` (``app/finance/cli.py``, ``app/news/cli.py``...; the job worker in ``app/jobs.py``,
``mail send-pending`` in ``app/mail.py``, ``seed-demo`` in ``app/demo.py``), registered by the
factory through the package's ``init_app``. A command that writes is marked
``@app.db.writing_command`` (SQLite's write lock up front; ``tests/test_cli_writes.py`` holds
which command is which)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from app.db import utcnow
from app.imports import Outcome


def parse_now(text: str | None) -> datetime:
    """A ``--now`` option's time in UTC (read as UTC when it names no zone); now without one."""
    if not text:
        return utcnow()
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 date and time, e.g. "
                                 "2026-12-31T23:30:00-05:00", param_hint="'--now'") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def import_progress(report, done: int, total: int) -> None:
    """An import's progress on stderr (its ``progress``): about every 10,000 rows, and at the
    end."""
    if done % 10_000 < 500 or done == total:
        click.echo(f"  {done:,}/{total:,} rows: {report.summary()}", err=True)


def finish_import(report, *, dry_run: bool, file: str | Path,
                  errors_path: str | Path | None) -> None:
    """Say what an import did (or, on a dry run, would do). When rows were refused: the first
    20 of them, all of them written to ``errors_path`` (default: FILE's name with
    .errors.csv) to be fixed and imported again, and exit 1."""
    click.echo(("dry run, nothing written: " if dry_run else "imported: ") + report.summary())
    if not report.counts[Outcome.REFUSED]:
        return
    for refusal in report.refused[:20]:
        click.echo(f"  line {refusal.line}: {refusal.reason}")
    if len(report.refused) > 20:
        click.echo(f"  ... and {report.counts[Outcome.REFUSED] - 20:,} more")
    file = Path(file)
    errors_path = Path(errors_path or file.with_name(file.stem + ".errors.csv"))
    with errors_path.open("w", encoding="utf-8", newline="") as out:
        report.write_errors(out)
    click.echo(f"the refused rows are in {errors_path}: fix them there and import that file")
    raise SystemExit(1)
