from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import UTCDateTime, enum_column, utcnow
from app.extensions import db

if TYPE_CHECKING:
    from app.giving.models import Gift


class ReceiptStatus(enum.StrEnum):
    ISSUED = "issued"
    VOID = "void"


class Receipt(db.Model):
    """A tax receipt. Numbers run without gaps per calendar year in the organisation's time
    zone (``2026-000042``). A receipt is never deleted: a refund voids it, and a corrected one
    takes a new number and names the receipt it replaces."""

    __tablename__ = "receipt"
    __table_args__ = (
        UniqueConstraint("year", "sequence"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("sequence > 0", name="sequence_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    gift_id: Mapped[int] = mapped_column(ForeignKey("gift.id"), index=True)
    year: Mapped[int] = mapped_column(Integer)
    sequence: Mapped[int] = mapped_column(Integer)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    amount: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[ReceiptStatus] = mapped_column(enum_column(ReceiptStatus),
                                                  default=ReceiptStatus.ISSUED)
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    void_reason: Mapped[str | None] = mapped_column(String(300))
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("receipt.id"))
    # Issued by the platform the gift was imported from (`flask finance import`): its number
    # is that platform's, and no receipt was made or mailed here. It counts like any other
    # (year-end statements list it) until the gift's money changes here.
    issued_elsewhere: Mapped[bool] = mapped_column(Boolean, default=False,
                                                   server_default=false())

    gift: Mapped[Gift] = relationship()
    replaces: Mapped[Receipt | None] = relationship(remote_side=[id])


class ReceiptCounter(db.Model):
    """The last receipt number used in each year; bumped in the transaction that issues the
    receipt, so a rolled-back gift leaves no gap."""

    __tablename__ = "receipt_counter"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_sequence: Mapped[int] = mapped_column(Integer, default=0)
