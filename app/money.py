"""The one place amounts are parsed, computed and formatted.

Money is an integer number of minor units plus an ISO 4217 code. Parsing goes through
``Decimal`` from the text the person typed; nothing here ever touches a float.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from functools import lru_cache

from babel.numbers import format_currency, get_currency_precision, list_currencies

KNOWN_CURRENCIES = frozenset(list_currencies())
# Digits with an optional decimal part: no signs, exponents, NaN or infinity.
_PLAIN_NUMBER = re.compile(r"(?:\d{1,12}(?:\.\d{0,12})?|\.\d{1,12})")


class AmountError(ValueError):
    """Input that is not a usable amount; the message is fit to show the person."""


@dataclass(frozen=True, order=True)
class Money:
    minor: int
    currency: str

    def __post_init__(self):
        if not isinstance(self.minor, int) or isinstance(self.minor, bool):
            raise TypeError("Money.minor must be an int")
        if self.currency not in KNOWN_CURRENCIES:
            raise ValueError(f"unknown currency {self.currency!r}")

    def __add__(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise ValueError("cannot add amounts in different currencies")
        return Money(self.minor + other.minor, self.currency)

    def format(self, locale: str = "en_US") -> str:
        return format_money(self.minor, self.currency, locale)


@lru_cache(maxsize=256)
def minor_digits(currency: str) -> int:
    """How many decimal places the currency has (2 for USD, 0 for JPY, 3 for KWD)."""
    return get_currency_precision(currency)


def parse_amount(text: str | None, currency: str) -> int:
    """Parse what a person typed ("25", "25.50", "$1,000") into minor units.

    Refuses empty, non-numeric, zero, negative and over-precise input with a message fit for the
    form. Range checks belong to the caller, who knows the limits.
    """
    cleaned = (text or "").strip()
    for symbol in ("$", "€", "£", "₪", "\u00a0", " ", ","):
        cleaned = cleaned.replace(symbol, "")
    cleaned = cleaned.removeprefix(currency).removesuffix(currency).strip()
    if not cleaned:
        raise AmountError("Enter an amount.")
    if cleaned.startswith("-") and _PLAIN_NUMBER.fullmatch(cleaned[1:]):
        raise AmountError("The amount must be more than zero.")
    if not _PLAIN_NUMBER.fullmatch(cleaned):
        raise AmountError("Enter the amount as a number, like 25 or 25.50.")
    value = Decimal(cleaned)
    if value <= 0:
        raise AmountError("The amount must be more than zero.")
    digits = minor_digits(currency)
    scaled = value.scaleb(digits)
    if scaled != scaled.to_integral_value():
        if digits == 0:
            raise AmountError(f"{currency} amounts have no fractional part.")
        raise AmountError(f"Use at most {digits} decimal places.")
    return int(scaled)


@lru_cache(maxsize=4096)
def parse_exact(text: str, currency: str) -> int:
    """Read an amount a machine wrote (an export's "50.00", "0", "-12.5"): a plain decimal in
    at most the currency's precision, zero and a leading minus allowed, nothing else (no
    symbols, separators or exponents); exactly, as minor units.

    Memoised: an import reads six amounts a row, and a file's amounts repeat (0.00 most)."""
    cleaned = text.strip()
    negative = cleaned.startswith("-")
    number = cleaned.removeprefix("-")
    if not _PLAIN_NUMBER.fullmatch(number):
        raise AmountError(f"{text!r} is not an amount written as a plain decimal (50.00).")
    # In whole numbers, not Decimal (an import reads six amounts a row): the places past the
    # currency's may only be zeros ("50.000" is 50.00 USD).
    places = minor_digits(currency)
    whole, _, fraction = number.partition(".")
    if fraction[places:].strip("0"):
        raise AmountError(f"{text!r} has more decimal places than {currency} has "
                          f"({places}).")
    minor = int(whole or "0") * 10 ** places + int(fraction[:places].ljust(places, "0") or "0")
    return -minor if negative else minor


def to_decimal(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-minor_digits(currency))


def amount_text(minor: int, currency: str) -> str:
    """The amount as a person types it into a form, and as ``parse_amount`` reads it back:
    "50.00", "1234.50" (no symbol, no separators); for a prefilled field or a link's amount."""
    return format(to_decimal(minor, currency), "f")


@lru_cache(maxsize=4096, typed=True)
def format_money(minor: int, currency: str, locale: str = "en_US", *, whole: bool = False) -> str:
    """Format for people through Babel; ``whole`` drops ``.00`` from round amounts.

    Memoised: a pure function of its arguments, and Babel takes ~20 µs a call (a campaign page
    formats about ten amounts).
    """
    value = to_decimal(minor, currency)
    if whole and value == value.to_integral_value():
        return format_currency(value, currency, locale=locale, format="¤#,##0",
                               currency_digits=False)
    return format_currency(value, currency, locale=locale)


def cover_fee(amount: int, *, percent_bp: int, fixed: int) -> int:
    """The extra a donor adds so that, after the provider takes its fee, ``amount`` arrives.

    Solves ``(amount + extra) * (1 - rate) - fixed >= amount`` for the smallest whole ``extra``.
    """
    if amount <= 0:
        raise ValueError("amount must be positive")
    rate = Decimal(percent_bp) / Decimal(10_000)
    gross = ((Decimal(amount) + fixed) / (1 - rate)).to_integral_value(rounding=ROUND_CEILING)
    return int(gross) - amount
