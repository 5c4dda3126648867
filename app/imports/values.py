"""Reading a cell's value the same way in every import: moments, dates, yes/no. Each raises
:class:`~app.imports.report.RowRefused` naming the column, so a handler just calls it."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, tzinfo

from app.imports.report import RowRefused

_TRUE = frozenset({"true", "yes", "y", "1", "t"})
_FALSE = frozenset({"false", "no", "n", "0", "f", ""})


def parse_moment(text: str, zone: tzinfo, column: str) -> datetime:
    """A moment as ISO 8601 text, in UTC. With a zone ("2026-11-25T14:03:12Z",
    "...+02:00") it is that moment; without one ("2026-11-25 09:03") it is read in ``zone``
    (the organisation's, ORG_TIMEZONE); a bare date is noon there (as offline gifts are)."""
    text = text.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(12), zone).astimezone(UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise RowRefused(f"{column} {text!r} is not a date and time (write it as ISO 8601: "
                         "2026-11-25T14:03:12Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def parse_bool(text: str, column: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise RowRefused(f"{column} {text!r} is neither true nor false")
