"""The links we email: signed, expiring, single-use, and bound to the account's state.

A link's token is an itsdangerous payload signed with the app's secret under a salt per purpose
(a reset token cannot be used as a sign-in token). It names the supporter, a random id, and the
account as it stood when the link was made: its address, a fingerprint of its password and its
``session_version``. A link of any purpose stops working when

- it is altered (the signature fails) or older than its purpose's maximum age;
- it has been followed once (its id is stored in ``used_account_link`` under a unique key);
- a newer link of the same purpose was made for the account, followed or not: only the newest
  one works (its id is kept in ``latest_account_link``);
- the account changed since: another address, another password (set, changed or reset), or
  every sign-in ended (sign out everywhere, a reset, a password or address change, erasure:
  ``sessions.end_all_sessions`` raises ``session_version``);
- for an address change, the address waiting for confirmation is no longer the link's (the
  change was called off).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from app.accounts.models import LatestAccountLink, Supporter, UsedAccountLink
from app.config import signing_keys
from app.extensions import db

SIGNIN = "signin"
VERIFY = "verify"
RESET = "reset"
EMAIL_CHANGE = "email_change"
PURPOSES = (SIGNIN, VERIFY, RESET, EMAIL_CHANGE)


class LinkError(Exception):
    """A link that cannot be followed. ``kind`` is invalid, expired, used or stale; the message
    is fit to show the person."""

    MESSAGES = {
        "invalid": "This link is not valid. It may have been cut short when it was copied: "
                   "open it straight from the email, or ask for a new one.",
        "expired": "This link has expired. Links we email work for a limited time; ask for a "
                   "new one.",
        "used": "This link has already been used. Each link works once; ask for a new one if "
                "you need it.",
        "stale": "This link no longer works because a newer one was sent or your account "
                 "changed since. Use the most recent email, or ask for a new link.",
    }

    def __init__(self, kind: str):
        super().__init__(self.MESSAGES[kind])
        self.kind = kind
        self.message = self.MESSAGES[kind]


def password_fingerprint(password_hash: str | None) -> str:
    """A short digest of the password hash: changes whenever the password does, reveals
    nothing about it."""
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Link:
    purpose: str
    supporter: Supporter
    jti: str
    claims: dict


class AccountLinks:
    def __init__(self, secret_key: str | list[str], max_ages: dict[str, int]):
        self._secret_key = secret_key
        self.max_ages = max_ages

    @classmethod
    def from_config(cls, config) -> AccountLinks:
        return cls(signing_keys(config), {
            SIGNIN: config["SIGNIN_LINK_MAX_AGE"],
            VERIFY: config["VERIFY_LINK_MAX_AGE"],
            RESET: config["RESET_LINK_MAX_AGE"],
            EMAIL_CHANGE: config["EMAIL_CHANGE_LINK_MAX_AGE"],
        })

    def _serializer(self, purpose: str) -> URLSafeTimedSerializer:
        if purpose not in PURPOSES:
            raise ValueError(f"unknown link purpose {purpose!r}")
        return URLSafeTimedSerializer(self._secret_key, salt=f"account-link-{purpose}")

    def make(self, purpose: str, supporter: Supporter, **claims) -> str:
        """A new link of ``purpose`` for ``supporter`` (flushed: it needs its id); every older
        link of that purpose stops working."""
        payload = {"sid": supporter.id, "jti": secrets.token_urlsafe(16), **_state(supporter),
                   **claims}
        token = self._serializer(purpose).dumps(payload)
        _make_latest(supporter, purpose, payload["jti"])
        return token

    def check(self, purpose: str, token: str) -> Link:
        """The link's supporter and claims if it can still be followed; raises LinkError.
        Reading does not use it up (:meth:`spend` does)."""
        try:
            data = self._serializer(purpose).loads(token, max_age=self.max_ages[purpose])
        except SignatureExpired:
            raise LinkError("expired") from None
        except BadSignature:
            raise LinkError("invalid") from None
        if not isinstance(data, dict) or not {"sid", "jti", "email"} <= data.keys():
            raise LinkError("invalid")
        supporter = db.session.get(Supporter, data["sid"])
        if supporter is None or supporter.erased_at is not None:
            raise LinkError("invalid")
        if _already_used(data["jti"]):
            raise LinkError("used")
        # A link made before this revision carries no state: stale, like any older link.
        if any(data.get(name) != value for name, value in _state(supporter).items()):
            raise LinkError("stale")
        if not _is_latest(supporter, purpose, data["jti"]):
            raise LinkError("stale")
        if purpose == EMAIL_CHANGE and data.get("new") != supporter.pending_email:
            raise LinkError("stale")
        return Link(purpose=purpose, supporter=supporter, jti=data["jti"], claims=data)

    def spend(self, link: Link, *, now: datetime) -> None:
        """Mark the link used; raises LinkError("used") when another request got there first.

        Used links of the same purpose past its maximum age are forgotten on the way: such a
        link fails on its signature's age before its id is ever looked up, so the table holds
        only the links that could still be replayed."""
        try:
            with db.session.begin_nested():
                db.session.add(UsedAccountLink(jti=link.jti, purpose=link.purpose,
                                               supporter_id=link.supporter.id, used_at=now))
        except IntegrityError:
            raise LinkError("used") from None
        db.session.execute(delete(UsedAccountLink).where(
            UsedAccountLink.purpose == link.purpose,
            UsedAccountLink.used_at < now - timedelta(seconds=self.max_ages[link.purpose])))


def _state(supporter: Supporter) -> dict:
    """What a link is bound to: it works only while the account still matches."""
    return {"email": supporter.email, "pw": password_fingerprint(supporter.password_hash),
            "sv": supporter.session_version}


def _make_latest(supporter: Supporter, purpose: str, jti: str) -> None:
    key = {"supporter_id": supporter.id, "purpose": purpose}
    latest = db.session.get(LatestAccountLink, key)
    if latest is None:
        try:
            with db.session.begin_nested():
                db.session.add(LatestAccountLink(**key, jti=jti))
            return
        except IntegrityError:  # a link of this purpose made at the same moment: ours is newer
            latest = db.session.get(LatestAccountLink, key, populate_existing=True)
    latest.jti = jti


def _is_latest(supporter: Supporter, purpose: str, jti: str) -> bool:
    return db.session.scalar(select(LatestAccountLink.jti).where(
        LatestAccountLink.supporter_id == supporter.id,
        LatestAccountLink.purpose == purpose)) == jti


def _already_used(jti: str) -> bool:
    return db.session.scalar(select(UsedAccountLink.id).where(UsedAccountLink.jti == jti)) \
        is not None
