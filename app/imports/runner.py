"""Driving one import file through a row handler: savepoints, batches, duplicates, dry runs."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator

from app.extensions import db
from app.imports.reading import CsvFile, ImportFileError, Row
from app.imports.report import ImportReport, Outcome, RowRefused

#: Rows committed together: a file stopped half way keeps its whole batches, and its rerun
#: finds them "unchanged".
BATCH = 500


class SeenKeys:
    """The keys met so far in a file, each with the line it was first on, kept in a private
    temporary SQLite database on disk (``sqlite3.connect("")``, removed when closed) whose page
    cache is bounded: memory stays flat however many rows a file has (a million gift references
    in a dict took about 200 MB)."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("")
        self._db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY, line INTEGER) WITHOUT ROWID")

    def first_line(self, key: str) -> int | None:
        found = self._db.execute("SELECT line FROM seen WHERE key = ?", (key,)).fetchone()
        return found[0] if found else None

    def add(self, key: str, line: int) -> None:
        self._db.execute("INSERT OR IGNORE INTO seen VALUES (?, ?)", (key, line))

    def close(self) -> None:
        self._db.close()


def run_import(csv_file: CsvFile, handle: Callable[[Row], Outcome], *, dry_run: bool,
               commit: Callable[[], None], key: Callable[[Row], str | None] | None = None,
               key_name: str = "key", batch: int = BATCH,
               progress: Callable[[ImportReport, int, int], None] | None = None,
               before_commit: Callable[[], None] | None = None, savepoints: bool = True,
               prepare: Callable[[list[Row]], None] | None = None) -> ImportReport:
    """Import ``csv_file`` row by row through ``handle`` and return the report.

    The file is read through once first (:meth:`CsvFile.scan`): a file with an encoding or CSV
    error anywhere is refused whole (:class:`ImportFileError`) before any row is written, and
    the row count is known for ``progress(report, rows_done, rows_total)``, called after each
    batch. Each row runs in a savepoint: a handler raising :class:`RowRefused` leaves nothing of
    it. ``key(row)`` names what makes a row unique (an email, a gift reference): a second row with
    a key seen earlier in the file is refused as a duplicate, naming the line of the first.

    For real, ``commit()`` is called after every ``batch`` rows and at the end; a dry run takes
    the same path (flushing, so later rows see earlier ones) and rolls everything back at the
    end. Any other exception rolls back the batch under way and propagates.

    ``before_commit()`` runs before each batch's commit (and a dry run's flush): for what a
    handler writes once per batch rather than per row. ``savepoints=False`` is for a handler
    that checks a row whole before it writes anything (so a refused row has written nothing):
    two statements a row fewer.

    ``prepare(rows)`` is called with each batch's readable rows before any of them is handled:
    for a handler that looks up what is here for a whole batch at once (one query for 500
    rows, not one per row). The rows are then handled one by one, in file order, as without it.
    """
    total = csv_file.scan()
    if total == 0:
        raise ImportFileError("The file has a header row but no rows to import.")
    report = ImportReport(header=list(csv_file.header), dry_run=dry_run)
    seen = SeenKeys()
    session = db.session
    done = 0
    try:
        for rows in _batches(csv_file, batch):
            if prepare:
                prepare([row for row in rows if not row.problem])
            for row in rows:
                done += 1
                if row.problem:
                    report.refuse(row.line, f"this row {row.problem}", row.values)
                else:
                    _one(row, handle, key, key_name, seen, report, session, savepoints)
            if len(rows) == batch:
                if before_commit:
                    before_commit()
                session.flush() if dry_run else commit()
                if progress:
                    progress(report, done, total)
        if before_commit:
            before_commit()
        if dry_run:
            session.rollback()
        else:
            commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        seen.close()
    report.finished = True
    if progress:
        progress(report, done, total)
    return report


def _batches(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _one(row: Row, handle, key, key_name: str, seen: SeenKeys, report: ImportReport,
         session, savepoints: bool) -> None:
    try:
        value = key(row) if key else None
        first = seen.first_line(value) if value is not None else None
        if first is not None:
            raise RowRefused(f"a duplicate: the same {key_name} as line {first}")
        if savepoints:
            with session.begin_nested():
                outcome = handle(row)
        else:
            outcome = handle(row)
    except RowRefused as exc:
        report.refuse(row.line, exc.reason, row.values)
        return
    if value is not None:
        seen.add(value, row.line)
    report.count(outcome)
