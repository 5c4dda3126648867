"""Driving one import file through a row handler: savepoints, batches, duplicates, dry runs."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator

from app.extensions import db
from app.imports.reading import CsvFile, ImportFileError, Row
from app.imports.report import ImportReport, Outcome, RowRefused

#: Rows committed together: a file stopped half way keeps its whole batches, and its rerun
#: finds them "unchanged".
BATCH = 2000


class SeenKeys:
    """The keys met so far in a file, each with the line it was first on, kept in a private
    temporary SQLite database on disk (``sqlite3.connect("")``, removed when closed) whose page
    cache is bounded: memory stays flat however many rows a file has (a million gift references
    in a dict took about 200 MB)."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("")
        self._db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY, line INTEGER) WITHOUT ROWID")

    def first_lines(self, keys: Iterable[str]) -> dict[str, int]:
        """Those of ``keys`` met already, each with its first line: one query for a batch."""
        keys = list(keys)
        found: dict[str, int] = {}
        for start in range(0, len(keys), 10_000):  # under SQLite's limit of parameters
            chunk = keys[start:start + 10_000]
            found.update(self._db.execute(
                f"SELECT key, line FROM seen WHERE key IN ({','.join('?' * len(chunk))})",
                chunk))
        return found

    def add(self, lines: dict[str, int]) -> None:
        self._db.executemany("INSERT OR IGNORE INTO seen VALUES (?, ?)", lines.items())

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
    for a handler that looks up what is here for a whole batch at once (one query for a
    batch, not one per row). The rows are then handled one by one, in file order, as without it.
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
            readable = [row for row in rows if not row.problem]
            if prepare:
                prepare(readable)
            keys = {row.line: key(row) for row in readable} if key else {}
            # The batch's keys met in earlier batches; then those of its own rows, as they go.
            first = seen.first_lines({value for value in keys.values() if value is not None})
            for row in rows:
                done += 1
                if row.problem:
                    report.refuse(row.line, f"this row {row.problem}", row.values)
                else:
                    _one(row, handle, keys.get(row.line), key_name, first, report, session,
                         savepoints)
            # Kept for the batches to come: the keys first met in this one (lines from its
            # first on; those from earlier batches are kept already).
            seen.add({value: line for value, line in first.items() if line >= rows[0].line})
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


def _one(row: Row, handle, value: str | None, key_name: str, first: dict[str, int],
         report: ImportReport, session, savepoints: bool) -> None:
    """Handle one row; ``first``: the line each key was first met on (this row's, once it is
    not refused)."""
    try:
        if value is not None and value in first:
            raise RowRefused(f"a duplicate: the same {key_name} as line {first[value]}")
        if savepoints:
            with session.begin_nested():
                outcome = handle(row)
        else:
            outcome = handle(row)
    except RowRefused as exc:
        report.refuse(row.line, exc.reason, row.values)
        return
    if value is not None:
        first[value] = row.line
    report.count(outcome)
