"""CSV imports: what every import shares (the gift history's, the supporters').

An import is a file read row by row, each row handed to a function that checks it and writes it
(or says it would change nothing), and a report of what happened. Three small pieces:

- :func:`app.imports.reading.open_csv` reads an uploaded or named CSV safely: a size limit
  checked before anything is read, UTF-8 with or without a BOM (anything else refused, naming
  the line), the header checked (missing, unknown and repeated columns named), an empty file
  refused, the apostrophe our exports put before formula-looking text taken off again (a cell is
  only ever text: nothing is evaluated), rows streamed with their line numbers. Its errors are
  :class:`ImportFileError`: the whole file is refused before anything is written.
- :class:`app.imports.report.ImportReport`: rows to create, to update, unchanged, and each
  refused row with its line and reason; :meth:`~app.imports.report.ImportReport.write_errors`
  writes ``errors.csv`` (the refused rows' own columns plus ``error``), which can be fixed and
  imported again.
- :func:`app.imports.runner.run_import` drives one file through a row handler: one savepoint per
  row (a refused row leaves nothing behind), a commit per batch (a file stopped half way is run
  again: handlers are idempotent, so the rows already in say "unchanged"), duplicates in the
  file reported, and a dry run taking the very same path and rolling back at the end.

A row handler is ``handle(row: Row) -> Outcome``: it raises :class:`RowRefused` with a reason fit
for staff to refuse the row, and returns ``Outcome.CREATE``, ``UPDATE`` or ``UNCHANGED``.
Handlers live beside their domain (``app.finance.imports``, ``app.accounts``'s supporters import).
Both work a batch at a time: ``prepare(rows)`` looks up what is here of a batch's rows (a query
per table, not per row), each row is then checked in Python and its writes queued (no savepoint:
a refused row has queued nothing), and ``before_commit()`` writes the batch together
(``app.db.insert_many``: COPY on PostgreSQL).
"""

from app.imports.reading import CsvFile, ImportFileError, Row, open_csv
from app.imports.report import ImportReport, Outcome, Refusal, RowRefused
from app.imports.runner import run_import

__all__ = ["CsvFile", "ImportFileError", "ImportReport", "Outcome", "Refusal", "Row",
           "RowRefused", "open_csv", "run_import"]
