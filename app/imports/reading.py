"""Reading an import's CSV: safely, row by row, with line numbers.

Everything that makes a whole file unusable is found before any row is handed on (size,
encoding of the header, the header itself) or, for an encoding error further down, stops the
import with the line named (:class:`ImportFileError`); :func:`app.imports.runner.run_import`
then rolls back what that batch wrote.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

#: Longest physical line read (a file with no line breaks is refused, not read into memory).
MAX_LINE_BYTES = 1024 * 1024
_BOM = b"\xef\xbb\xbf"
# A cell starting with one of these is a formula to a spreadsheet (OWASP's "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def inert(text: str | None) -> str:
    """Text someone typed (a donor's name, a link's utm_* values), made safe to open in a
    spreadsheet: a leading = + - @ would make Excel or LibreOffice run it as a formula, so such
    text gets a leading apostrophe. Exports write cells so; :func:`revive` undoes it."""
    if not text:
        return ""
    return "'" + text if text.startswith(_FORMULA_START) else text


def revive(cell: str) -> str:
    """A cell as the text it stands for: the apostrophe :func:`inert` put before formula-looking
    text is taken off. Nothing is ever evaluated: "=1+1" stays those four characters."""
    if len(cell) > 1 and cell[0] == "'" and cell[1] in "=+-@\t\r":
        return cell[1:]
    return cell


class ImportFileError(Exception):
    """A file that cannot be imported at all; the message says why, fit to show staff."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(slots=True)
class Row:
    """One data row: its first physical line (the header is line 1), its cells by column name
    (known columns only, as text, stripped, formula apostrophes taken off), and every cell in
    file order as it was (for ``errors.csv``). ``problem`` says why the row cannot be read (a
    wrong number of cells)."""

    line: int
    cells: dict[str, str]
    values: list[str] = field(repr=False)
    problem: str | None = None

    def get(self, name: str) -> str:
        """The cell, stripped; "" when the column is absent from this file."""
        return self.cells.get(name, "")


def _size(source: IO[bytes]) -> int | None:
    try:
        return os.fstat(source.fileno()).st_size
    except (AttributeError, OSError, ValueError):
        pass
    try:
        here = source.tell()
        end = source.seek(0, os.SEEK_END)
        source.seek(here)
        return end - here
    except (AttributeError, OSError, ValueError):
        return None


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:,.1f} MB" if size >= 100_000 else f"{size:,} bytes"


class CsvFile:
    """An open import file. Iterate it for :class:`Row` objects; ``header`` is the file's own
    header, ``bytes_read``/``size`` tell how far along it is (for progress)."""

    def __init__(self, source: IO[bytes], *, columns: Sequence[str], required: Sequence[str],
                 allow_unknown: bool, max_bytes: int, close: bool):
        self._source = source
        self._close = close
        self.size = _size(source)
        self.max_bytes = max_bytes
        if self.size is not None and self.size > max_bytes:
            raise ImportFileError(f"The file is {_megabytes(self.size)}: more than the "
                                  f"{_megabytes(max_bytes)} an import takes. Split it into "
                                  "smaller files and import each.")
        self._start()
        header = self._next_record()
        if header is None:
            raise ImportFileError("The file is empty: it has no header row and no rows.")
        self.header = [name.strip() for name in header[0]]
        self._check_header(columns, required, allow_unknown)

    def _start(self) -> None:
        self.bytes_read = 0
        self._line = 0
        self._reader = csv.reader(self._lines(), strict=True)

    def scan(self) -> int:
        """Read the whole file once without keeping it (encoding and CSV errors anywhere
        raise here, before anything is written), go back to its first row, and return the
        number of rows."""
        rows = sum(1 for _ in self._records())
        try:
            self._source.seek(0)
        except (AttributeError, OSError, ValueError):
            raise ImportFileError("The file cannot be read twice (not a seekable file).") \
                from None
        self._start()
        self._next_record()  # the header
        return rows

    def _check_header(self, columns, required, allow_unknown) -> None:
        known = {name.lower(): name for name in columns}
        seen: dict[str, int] = {}
        self._index: list[tuple[int, str]] = []
        unknown, repeated = [], []
        for i, name in enumerate(self.header):
            canonical = known.get(name.lower())
            if canonical is None:
                if name:
                    unknown.append(name)
                continue
            if canonical in seen:
                repeated.append(name)
                continue
            seen[canonical] = i
            self._index.append((i, canonical))
        missing = [name for name in required if name not in seen]
        problems = []
        if missing:
            problems.append("missing column" + ("s " if len(missing) > 1 else " ")
                            + ", ".join(missing))
        if repeated:
            problems.append("repeated column" + ("s " if len(repeated) > 1 else " ")
                            + ", ".join(repeated))
        if unknown and not allow_unknown:
            problems.append("unknown column" + ("s " if len(unknown) > 1 else " ")
                            + ", ".join(unknown[:10]) + (" ..." if len(unknown) > 10 else ""))
        if problems:
            raise ImportFileError("The header row (line 1) does not fit this import: "
                                  + "; ".join(problems) + ". The columns are listed in README.")
        self.columns = [name for _, name in self._index]

    def _lines(self) -> Iterator[str]:
        first = True
        while True:
            data = self._source.readline(MAX_LINE_BYTES + 1)
            if not data:
                return
            self._line += 1
            self.bytes_read += len(data)
            if self.bytes_read > self.max_bytes:
                raise ImportFileError(f"The file is more than the {_megabytes(self.max_bytes)} "
                                      "an import takes. Split it into smaller files.")
            if len(data) > MAX_LINE_BYTES:
                raise ImportFileError(f"Line {self._line} is longer than "
                                      f"{_megabytes(MAX_LINE_BYTES)}: this is not a CSV file "
                                      "of this import.")
            if first:
                first = False
                if data.startswith((b"\xff\xfe", b"\xfe\xff")):
                    raise ImportFileError("The file is UTF-16 text: save it as UTF-8 (\"CSV "
                                          "UTF-8\" in Excel) and import it again.")
                data = data.removeprefix(_BOM)
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ImportFileError(
                    f"Line {self._line} is not UTF-8 text (byte 0x{data[exc.start]:02x} at "
                    f"character {exc.start + 1}): save the file as UTF-8 (\"CSV UTF-8\" in "
                    "Excel) and import it again.") from None
            yield text

    def _next_record(self) -> tuple[list[str], str] | None:
        """The next record that is not blank, with its cells joined (for the checks on the
        whole row, one string operation each rather than one per cell)."""
        try:
            while True:
                record = next(self._reader, None)
                if record is None:
                    return None
                joined = "".join(record)
                if joined and not joined.isspace():
                    return record, joined
        except csv.Error as exc:
            raise ImportFileError(f"Line {self._line} cannot be read as CSV: {exc}.") from None

    def _records(self) -> Iterator[tuple[list[str], str]]:
        while (found := self._next_record()) is not None:
            yield found

    def __iter__(self) -> Iterator[Row]:
        width = len(self.header)
        for record, joined in self._records():
            # Where the row ends, less the line breaks inside its quoted cells (blank lines
            # before it were skipped).
            start = self._line - joined.count("\n")
            values = [revive(cell) for cell in record] if "'" in joined else record
            problem = None
            if len(values) != width:
                problem = (f"has {len(values)} cells where the header has {width} columns")
            cells = {name: values[i].strip() for i, name in self._index if i < len(values)}
            yield Row(line=start, cells=cells, values=values, problem=problem)

    def close(self) -> None:
        if self._close:
            self._source.close()

    def __enter__(self) -> CsvFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_csv(source: str | os.PathLike | IO[bytes], *, columns: Sequence[str],
             required: Sequence[str] | None = None, allow_unknown: bool = False,
             max_bytes: int) -> CsvFile:
    """Open an import file (a path, or a binary file object such as an upload's stream) and
    check its size and header. ``columns`` are the names the import knows (matched without
    regard to case or surrounding spaces), ``required`` those a file must have (default: all);
    other columns refuse the file unless ``allow_unknown`` (another platform's export with
    columns we do not use). Raises :class:`ImportFileError`."""
    required = list(columns) if required is None else list(required)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ImportFileError(f"There is no file {str(path)!r}.")
        handle = path.open("rb")
        try:
            return CsvFile(handle, columns=columns, required=required,
                           allow_unknown=allow_unknown, max_bytes=max_bytes, close=True)
        except BaseException:
            handle.close()
            raise
    return CsvFile(source, columns=columns, required=required, allow_unknown=allow_unknown,
                   max_bytes=max_bytes, close=False)
