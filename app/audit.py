"""The audit log: every staff change to money, campaigns, roles, plans and receipts, with who,
when, what, and the values before and after. Rows are only ever added."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import UTCDateTime, utcnow
from app.extensions import db


@dataclass(frozen=True)
class Actor:
    """Who acted: a staff member (their supporter id and email), or the command line or the
    system (no id, a label such as ``cli``)."""

    id: int | None
    label: str

    @classmethod
    def of(cls, supporter) -> Actor:
        return cls(id=supporter.id, label=supporter.email)


class AuditEntry(db.Model):
    __tablename__ = "audit_entry"
    __table_args__ = (Index("ix_audit_entry_target", "target_type", "target_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # The staff member who acted; None for the system or the command line.
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("supporter.id"), index=True)
    actor_label: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(80), index=True)
    target_type: Mapped[str] = mapped_column(String(40))
    target_id: Mapped[str] = mapped_column(String(80))
    before: Mapped[str | None] = mapped_column(Text)  # JSON
    after: Mapped[str | None] = mapped_column(Text)  # JSON


def record(*, actor_id: int | None, actor_label: str, action: str, target_type: str,
           target_id: Any, before: dict | None = None, after: dict | None = None,
           now: datetime | None = None) -> AuditEntry:
    """Add one entry to the log, in the caller's transaction."""
    entry = AuditEntry(
        actor_id=actor_id, actor_label=actor_label, action=action, target_type=target_type,
        target_id=str(target_id), at=now or utcnow(),
        before=json.dumps(before, sort_keys=True, default=str) if before is not None else None,
        after=json.dumps(after, sort_keys=True, default=str) if after is not None else None,
    )
    db.session.add(entry)
    return entry


def record_change(actor: Actor, action: str, target_type: str, target_id: Any, *,
                  before: dict | None = None, after: dict | None = None) -> AuditEntry:
    """:func:`record` for an :class:`Actor`."""
    return record(actor_id=actor.id, actor_label=actor.label, action=action,
                  target_type=target_type, target_id=target_id, before=before, after=after)


def find_entries(*, actor: str = "", action: str = "", target: str = "",
                 since: datetime | None = None, until: datetime | None = None,
                 limit: int = 200) -> list[AuditEntry]:
    """Entries newest first. ``actor`` matches the label (an email) in part; ``action`` is a
    prefix ("campaign." or "role.grant"); ``target`` is a type or ``type:id``."""
    from sqlalchemy import select

    query = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    if actor:
        query = query.where(AuditEntry.actor_label.contains(actor.lower(), autoescape=True))
    if action:
        query = query.where(AuditEntry.action.startswith(action, autoescape=True))
    if target:
        kind, _, ident = target.partition(":")
        query = query.where(AuditEntry.target_type == kind)
        if ident:
            query = query.where(AuditEntry.target_id == ident)
    if since:
        query = query.where(AuditEntry.at >= since)
    if until:
        query = query.where(AuditEntry.at < until)
    return list(db.session.scalars(query.limit(limit)))
