"""The password policy and the Argon2id hasher (no database needed)."""

from __future__ import annotations

import pytest

from app.accounts.passwords import Hasher, PasswordPolicy, WeakPassword, common_passwords

POLICY = PasswordPolicy(min_length=10)


@pytest.mark.parametrize("password, message", [
    ("short", "Use at least 10 characters."),
    ("123456789", "Use at least 10 characters."),
    ("x" * 201, "Use at most 200 characters."),
    ("aaaaaaaaaaaa", "more than one or two different characters"),
    ("abababababab", "more than one or two different characters"),
    ("1234567890", "one of the most common"),
    ("Password123", "one of the most common"),
    ("qwertyuiop", "one of the most common"),
    ("iloveyou123", "one of the most common"),
    ("noa.levi@example.org", "name or email address"),
    ("NOA.LEVI@EXAMPLE.ORG", "name or email address"),
    ("noa.levi", "Use at least 10 characters."),
    ("Noa Katz Levi", "name or email address"),
])
def test_weak_passwords_are_refused_with_a_reason(password, message):
    with pytest.raises(WeakPassword, match=message):
        POLICY.check(password, email="noa.levi@example.org", name="Noa Katz Levi")


@pytest.mark.parametrize("password", ["correct horse battery staple", "olive-tram-Hebron-42",
                                      "ŝtelita ĉevalo kuras", "x7#Qm2!pLz0"])
def test_good_passwords_pass(password):
    POLICY.check(password, email="noa@example.org", name="Noa Levi")


def test_the_minimum_is_configurable():
    PasswordPolicy(min_length=8).check("kx7w2qpz")
    with pytest.raises(WeakPassword, match="at least 16"):
        PasswordPolicy(min_length=16).check("kx7w2qpz-ab")


def test_the_common_list_is_shipped_and_lowercased():
    common = common_passwords()
    assert len(common) > 8000
    assert "password1" in common and "football" in common
    assert all(p == p.lower() for p in common)
    assert not any(p.startswith("# ") for p in common)


def test_hashes_are_argon2id_salted_and_verified():
    hasher = Hasher(time_cost=1, memory_kib=8, parallelism=1)
    first, second = hasher.hash("correct horse"), hasher.hash("correct horse")
    assert first.startswith("$argon2id$") and first != second
    assert hasher.verify(first, "correct horse")
    assert not hasher.verify(first, "correct horsE")
    assert not hasher.verify("not a hash", "correct horse")


def test_no_hash_never_verifies_but_does_the_work():
    hasher = Hasher(time_cost=1, memory_kib=8, parallelism=1)
    assert not hasher.verify(None, "")
    assert not hasher.verify(None, "not a real password")  # the dummy's own text


def test_a_hash_with_old_costs_is_flagged_for_rehash():
    old = Hasher(time_cost=1, memory_kib=8, parallelism=1).hash("correct horse")
    assert Hasher(time_cost=2, memory_kib=16, parallelism=1).needs_rehash(old)
    assert not Hasher(time_cost=1, memory_kib=8, parallelism=1).needs_rehash(old)
