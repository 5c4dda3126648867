"""Password guessing is slowed down without locking the owner out (ASVS 2.2.1).

Failed sign-ins are counted per account (the email typed, whether or not it has an account) and
client (its address; IPv6 by its /64, which one machine can hold whole), in the limits of
``RATELIMIT_SIGNIN_FAILURES`` (by default 5 a minute, 10 in 15 minutes, 20 a day). An owner's
few typos cost nothing; a client that keeps failing on an account waits longer and longer: once
one of its limits is used up, its password attempts on that account are refused, unchecked,
until the limit frees up, with a message saying how long and offering an emailed sign-in link
instead. No other client is held back by it: the owner signs in from theirs.

A guesser spread over many addresses meets a soft limit per account, the failures from anywhere
(``RATELIMIT_SIGNIN_ACCOUNT``): past it, a client that has failed on that account within its
window is asked to sign in with an emailed link rather than try again, while a client that has
not failed signs in with the right password as always. Attempts per client across accounts
(credential stuffing) are limited by the sign-in view itself (``RATELIMIT_SIGNIN``). A success
forgets the client's failures on that account.

The answers are the same for an address with an account or without, and a refused attempt is
refused before its password is checked, so a throttled guesser learns nothing. The counts live in
the rate limiter's storage: Redis when ``REDIS_URL`` is set, shared by every process; this
process's memory otherwise, and while Redis cannot be reached (``RouteLimiter.call``). Accounts
are named there by a keyed hash of the address, not the address.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from time import time

from limits import RateLimitItem, parse_many

WAIT = "wait"  # this client failed too often on this account: wait, or use an emailed link
USE_LINK = "use_link"  # the account failed too often from anywhere, this client among them


@dataclass(frozen=True)
class Refusal:
    """Why a password attempt is refused before it is checked, and for how many seconds."""

    reason: str
    seconds: float


def client_key(address: str | None) -> str:
    """The client a sign-in attempt comes from: its IPv4 address, or its IPv6 /64."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return address or "unknown"
    if ip.version == 6:
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class SignInGuard:
    """The counts of failed sign-ins, and the refusals they lead to. ``store`` runs a rate
    limiting strategy's method by name (``app.extensions.RouteLimiter.call``)."""

    def __init__(self, store, *, secret: str, per_client: str, per_account: str):
        self._store = store
        self._secret = secret.encode()
        self.per_client: list[RateLimitItem] = parse_many(per_client)
        self.per_account: list[RateLimitItem] = parse_many(per_account)

    @classmethod
    def from_config(cls, config, store) -> SignInGuard:
        return cls(store, secret=config["SECRET_KEY"],
                   per_client=config["RATELIMIT_SIGNIN_FAILURES"],
                   per_account=config["RATELIMIT_SIGNIN_ACCOUNT"])

    def _account(self, email: str) -> str:
        normalized = email.strip().lower().encode()
        return hmac.new(self._secret, normalized, hashlib.sha256).hexdigest()[:32]

    def _used_up(self, items: list[RateLimitItem], *identifiers: str) -> list[float]:
        """Seconds until each of these limits that is used up frees up."""
        waits = []
        for item in items:
            if not self._store("test", item, *identifiers):
                reset, _ = self._store("get_window_stats", item, *identifiers)
                waits.append(max(0.0, reset - time()))
        return waits

    def check(self, email: str, client: str) -> Refusal | None:
        """A refusal if this client may not try a password on this account now."""
        account = self._account(email)
        waits = self._used_up(self.per_client, "signin-failures", account, client)
        if waits:
            return Refusal(WAIT, max(waits))
        waits = self._used_up(self.per_account, "signin-failures-account", account)
        if waits and self._has_failed(account, client):
            return Refusal(USE_LINK, max(waits))
        return None

    def _has_failed(self, account: str, client: str) -> bool:
        """Whether this client failed on this account within the account limits' windows."""
        for item in self.per_account:
            _, remaining = self._store("get_window_stats", item, "signin-failures-seen",
                                       account, client)
            if remaining < item.amount:
                return True
        return False

    def failed(self, email: str, client: str) -> None:
        account = self._account(email)
        for item in self.per_client:
            self._store("hit", item, "signin-failures", account, client)
        for item in self.per_account:
            self._store("hit", item, "signin-failures-account", account)
            self._store("hit", item, "signin-failures-seen", account, client)

    def succeeded(self, email: str, client: str) -> None:
        """The client signed in: its failures on this account are forgotten (the account's
        count from anywhere stays)."""
        account = self._account(email)
        for item in self.per_client:
            self._store("clear", item, "signin-failures", account, client)
        for item in self.per_account:
            self._store("clear", item, "signin-failures-seen", account, client)
