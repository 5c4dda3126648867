"""What the feature packages' commands share. Each package owns its commands, in its own
``cli.py`` (``app/finance/cli.py``, ``app/news/cli.py``...; the job worker in ``app/jobs.py``,
``mail send-pending`` in ``app/mail.py``, ``seed-demo`` in ``app/demo.py``), registered by the
factory through the package's ``init_app``."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from app.db import utcnow


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
