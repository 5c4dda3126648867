"""What an import did, or would do in a dry run: counts per outcome, and the refused rows with
their line numbers and reasons, also as ``errors.csv``."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from enum import StrEnum
from typing import IO

from app.imports.reading import inert

#: Refused rows kept for the report and errors.csv; past this only counted (a file that is all
#: wrong says so in its first rows already).
MAX_REFUSED = 50_000


class Outcome(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    REFUSED = "refused"


class RowRefused(Exception):
    """Raised by a row handler: this row is not imported, for this reason (fit for staff)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Refusal:
    line: int
    reason: str
    values: list[str]


@dataclass
class ImportReport:
    header: list[str]
    dry_run: bool
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))
    refused: list[Refusal] = field(default_factory=list)
    #: False until every row has been read (a file refused half way, or still running).
    finished: bool = False
    #: Set when the whole file was refused (after some rows were read): the message.
    error: str | None = None

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    def count(self, outcome: Outcome) -> None:
        self.counts[outcome] += 1

    def refuse(self, line: int, reason: str, values: list[str]) -> None:
        self.counts[Outcome.REFUSED] += 1
        if len(self.refused) < MAX_REFUSED:
            self.refused.append(Refusal(line, reason, values))

    def summary(self) -> str:
        """One line: "3 to create, 1 to update, 0 unchanged, 2 refused" (a dry run), or
        "3 created, ..." once done."""
        c = self.counts
        if self.dry_run:
            words = (f"{c[Outcome.CREATE]:,} to create", f"{c[Outcome.UPDATE]:,} to update")
        else:
            words = (f"{c[Outcome.CREATE]:,} created", f"{c[Outcome.UPDATE]:,} updated")
        return ", ".join((*words, f"{c[Outcome.UNCHANGED]:,} unchanged",
                          f"{c[Outcome.REFUSED]:,} refused"))

    def write_errors(self, out: IO[str]) -> int:
        """``errors.csv``: the file's header plus ``error``, then each refused row as it was
        (formula-looking text made inert again) with its reason and line. Fix the rows and
        import this file: the ``error`` column is ignored. Returns the rows written."""
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow([*self.header, "error"])
        for refusal in self.refused:
            writer.writerow([*(inert(v) for v in refusal.values),
                             f"line {refusal.line}: {refusal.reason}"])
        return len(self.refused)

    def errors_csv(self) -> str:
        buffer = io.StringIO()
        self.write_errors(buffer)
        return buffer.getvalue()

    def to_dict(self) -> dict:
        """Plain data (JSON) for a job's status; :meth:`from_dict` reads it back."""
        return {"header": self.header, "dry_run": self.dry_run,
                "counts": {str(k): v for k, v in self.counts.items()},
                "refused": [[r.line, r.reason, r.values] for r in self.refused],
                "finished": self.finished, "error": self.error}

    @classmethod
    def from_dict(cls, data: dict) -> ImportReport:
        return cls(header=data["header"], dry_run=data["dry_run"],
                   counts={Outcome(k): v for k, v in data["counts"].items()},
                   refused=[Refusal(line, reason, values)
                            for line, reason, values in data["refused"]],
                   finished=data["finished"], error=data["error"])
