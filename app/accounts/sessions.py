"""Sign-ins kept on the server: what a session or "remember me" cookie names, and how it ends.

Each sign-in (by password, by an emailed link, after a reset or an address change) opens an
``AccountSession`` row holding the SHA-256 of a random key. Flask-Login's id for the browser is
``"<supporter id>:<key>"``; it travels in the signed session cookie and, with "remember me", in
the remember cookie. A request is signed in only while that row exists, so

- signing out deletes this browser's row: a copy of its session or remember cookie, taken
  before, stops working, while the account's other browsers stay signed in;
- :func:`end_all_sessions` (sign out everywhere, a reset, a password or address change,
  erasure) deletes every row of the account, and raises ``session_version``, to which the links
  we email are bound (``tokens``), so those stop working as well;
- a row lasts at most ``max_age`` from its sign-in (the remember cookie's lifetime,
  ``REMEMBER_DAYS``), remembered or not; rows past it are deleted whenever anyone signs in.

The rows live in the database, so a sign-out is seen at once by every app process.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from app.accounts.models import AccountSession, Supporter
from app.extensions import db


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _key_of(login_id: str) -> tuple[str, str]:
    supporter_id, _, key = login_id.partition(":")
    return supporter_id, key


def open_session(supporter: Supporter, *, now: datetime, max_age: timedelta) -> str:
    """Open a sign-in for ``supporter``: returns the id Flask-Login keeps in the browser's
    cookies (also ``supporter.get_id()`` from now on)."""
    db.session.execute(delete(AccountSession).where(AccountSession.created_at <= now - max_age))
    key = secrets.token_urlsafe(32)
    db.session.add(AccountSession(supporter_id=supporter.id, key_hash=_digest(key),
                                  created_at=now))
    supporter.session_key = key
    return supporter.get_id()


def session_supporter(login_id: str, *, now: datetime, max_age: timedelta) -> Supporter | None:
    """The supporter a cookie's id signs in, while its sign-in is open and not past
    ``max_age``, and the account can be signed in to (``Supporter.is_active``); else None."""
    supporter_id, key = _key_of(login_id)
    if not supporter_id.isdigit() or not key:
        return None
    found = db.session.execute(
        select(Supporter, AccountSession.created_at)
        .join(AccountSession, AccountSession.supporter_id == Supporter.id)
        .where(AccountSession.key_hash == _digest(key))).first()
    if found is None:
        return None
    supporter, opened_at = found
    if str(supporter.id) != supporter_id or opened_at <= now - max_age \
            or not supporter.is_active:
        return None
    supporter.session_key = key
    return supporter


def end_session(login_id: str | None) -> None:
    """Sign out the browser whose cookies carry ``login_id`` (nothing if it is not open)."""
    if not login_id:
        return
    _, key = _key_of(login_id)
    db.session.execute(delete(AccountSession).where(AccountSession.key_hash == _digest(key)))


def end_all_sessions(supporter: Supporter) -> None:
    """Sign the account out everywhere: every browser, every remember cookie, and every link
    emailed so far."""
    db.session.execute(delete(AccountSession).where(
        AccountSession.supporter_id == supporter.id))
    supporter.session_version += 1
