"""Passwords: hashing with Argon2id, and the policy a new password must meet.

The hasher is built from the settings (its cost is configurable, and the tests make it cheap);
a hash made with older settings is replaced at the next successful sign-in.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MAX_LENGTH = 200  # long passphrases are welcome; a megabyte "password" is not

COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")


class WeakPassword(ValueError):
    """A password the policy refuses; the message is fit to show beside the field."""


@cache
def common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("# "))


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int = 10

    @classmethod
    def from_config(cls, config) -> PasswordPolicy:
        return cls(min_length=config["PASSWORD_MIN_LENGTH"])

    def check(self, password: str, *, email: str = "", name: str = "") -> None:
        """Raise WeakPassword with the first reason this password will not do."""
        if len(password) < self.min_length:
            raise WeakPassword(f"Use at least {self.min_length} characters.")
        if len(password) > MAX_LENGTH:
            raise WeakPassword(f"Use at most {MAX_LENGTH} characters.")
        folded = password.casefold().strip()
        if len(set(folded)) < 3:
            raise WeakPassword("Use more than one or two different characters.")
        email = email.casefold()
        personal = {email, email.partition("@")[0], name.casefold().strip(),
                    name.casefold().replace(" ", "")} - {""}
        if folded in personal:
            raise WeakPassword("Do not use your name or email address as your password.")
        if folded in common_passwords():
            raise WeakPassword("This password is one of the most common ones, which are tried "
                               "first. Choose another: a few unrelated words work well.")


class Hasher:
    """Argon2id hashing with the configured cost."""

    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int):
        self._argon = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib,
                                     parallelism=parallelism)
        self._dummy: str | None = None

    @classmethod
    def from_config(cls, config) -> Hasher:
        return _hasher(config["ARGON2_TIME_COST"], config["ARGON2_MEMORY_KIB"],
                       config["ARGON2_PARALLELISM"])

    def hash(self, password: str) -> str:
        return self._argon.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches. With no hash (a guest, or no such account) the same
        work is done against a dummy hash, so the answer takes as long either way."""
        if password_hash is None:
            if self._dummy is None:
                self._dummy = self._argon.hash("not a real password")
            password_hash = self._dummy
            password = "\x00" + password  # never matches the dummy
        try:
            return self._argon.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._argon.check_needs_rehash(password_hash)


@lru_cache(maxsize=8)
def _hasher(time_cost: int, memory_kib: int, parallelism: int) -> Hasher:
    return Hasher(time_cost=time_cost, memory_kib=memory_kib, parallelism=parallelism)
