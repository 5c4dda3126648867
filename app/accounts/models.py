"""Supporters: the readers who give, and their accounts.

A guest who gives is a ``Supporter`` with no password and an unverified email. The same row
becomes an account when its owner proves the address (a verification, sign-in or reset link);
only then can anyone sign in as it, so a gift made with an email is seen only by whoever reads
that inbox.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import UTCDateTime, utcnow
from app.extensions import db


class Supporter(db.Model):
    """A reader who gave or signed up. ``email`` is stored lowercased, so it is unique
    case-insensitively; the database refuses anything else."""

    __tablename__ = "supporter"
    __table_args__ = (CheckConstraint("email = lower(email)", name="email_lowercase"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # The account. A guest has no password; an address is proven by following a link we sent.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A new address waiting for its owner to follow the confirmation link sent to it.
    pending_email: Mapped[str | None] = mapped_column(String(254))
    # Raised whenever every sign-in of the account ends (``sessions.end_all_sessions``: sign out
    # everywhere, a reset, a password or address change, erasure); the links we email carry it.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # The postal address printed on receipts.
    address_line1: Mapped[str | None] = mapped_column(String(200))
    address_line2: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str | None] = mapped_column(String(100))
    region: Mapped[str | None] = mapped_column(String(100))
    postal_code: Mapped[str | None] = mapped_column(String(20))
    country: Mapped[str | None] = mapped_column(String(2))  # ISO 3166-1 alpha-2

    # Staff's own notes and labels (comma-separated, Ghost's way), brought in by
    # ``flask supporters import`` from another platform.
    note: Mapped[str | None] = mapped_column(Text)
    labels: Mapped[str | None] = mapped_column(String(500))
    # A membership given, not paid for (Ghost's complimentary plan): until then the supporter
    # holds MEMBERSHIP_COMPED_LEVEL at least (app.accounts.membership).
    comped_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # Set when the person asked to be erased: the row stays for the gifts finance must keep,
    # with every personal field blanked.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # -- what Flask-Login asks of a user ------------------------------------------------------
    # Roles (staff) are a later addition; they will sit beside these, not in them.

    @property
    def is_verified(self) -> bool:
        return self.email_verified_at is not None

    @property
    def is_active(self) -> bool:
        """Only a proven address can be signed in as; an erased supporter never."""
        return self.is_verified and self.erased_at is None

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    # The key of the sign-in this object was signed in or loaded under (``app.accounts.sessions``
    # sets it; not a column): Flask-Login keeps ``get_id()`` in the session and remember cookies.
    session_key = None

    def get_id(self) -> str:
        if self.session_key is None:
            raise RuntimeError("no sign-in opened for this supporter: sessions.open_session first")
        return f"{self.id}:{self.session_key}"

    @property
    def postal_address(self) -> list[str]:
        """The address as the lines of an envelope (empty lines left out)."""
        locality = " ".join(p for p in (self.city, self.region, self.postal_code) if p)
        return [line for line in (self.address_line1, self.address_line2, locality,
                                  self.country) if line]

    def __repr__(self) -> str:
        return f"<Supporter {self.id}>"


class AccountSession(db.Model):
    """One sign-in, in one browser: the server's half of its session and "remember me" cookies.

    The cookies carry a random key; only its SHA-256 is stored, so this table alone cannot be
    turned back into a cookie. Deleting the row signs that browser out, whatever copies of its
    cookies exist (``app.accounts.sessions``).
    """

    __tablename__ = "account_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    supporter_id: Mapped[int] = mapped_column(ForeignKey("supporter.id"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class UsedAccountLink(db.Model):
    """Each emailed link (sign-in, verification, reset, email change) once followed.

    The link carries a random id (``jti``); inserting it here under a unique constraint is what
    makes the link single-use, even when two requests race to follow it.
    """

    __tablename__ = "used_account_link"

    id: Mapped[int] = mapped_column(primary_key=True)
    jti: Mapped[str] = mapped_column(String(32), unique=True)
    purpose: Mapped[str] = mapped_column(String(20))
    supporter_id: Mapped[int] = mapped_column(ForeignKey("supporter.id"), index=True)
    used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LatestAccountLink(db.Model):
    """The newest link of each purpose sent to a supporter: only it can be followed.

    Making a link (``tokens.AccountLinks.make``) writes its random id here, replacing the one
    before, so every older link of the purpose answers "stale", whether or not the newer one was
    ever followed.
    """

    __tablename__ = "latest_account_link"

    supporter_id: Mapped[int] = mapped_column(ForeignKey("supporter.id"), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(20), primary_key=True)
    jti: Mapped[str] = mapped_column(String(32))
