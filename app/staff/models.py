"""Staff roles: who may do what beyond giving. A supporter holds any number of roles, each
granted once (a unique pair); supporters without a row are plain readers."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.accounts.models import Supporter
from app.db import UTCDateTime, enum_column, utcnow
from app.extensions import db


class Role(enum.StrEnum):
    FUNDRAISER = "fundraiser"  # campaigns, dashboards, supporter lookup
    FINANCE = "finance"  # exports, receipts, refunds, offline gifts, reconciliation
    ADMIN = "admin"  # everything, roles, settings

    @property
    def label(self) -> str:
        return self.value.capitalize()


class StaffRole(db.Model):
    __tablename__ = "staff_role"
    __table_args__ = (UniqueConstraint("supporter_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # The unique (supporter_id, role) pair also serves lookups by supporter.
    supporter_id: Mapped[int] = mapped_column(ForeignKey("supporter.id", ondelete="CASCADE"))
    role: Mapped[Role] = mapped_column(enum_column(Role))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Who granted it; None for the command line.
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("supporter.id",
                                                                 ondelete="SET NULL"))

    supporter: Mapped[Supporter] = relationship(foreign_keys=[supporter_id])
    granted_by: Mapped[Supporter | None] = relationship(foreign_keys=[granted_by_id])
