import re
from decimal import Decimal

import pytest

from app.money import (
    AmountError,
    amount_text,
    cover_fee,
    format_money,
    parse_amount,
    to_decimal,
)


@pytest.mark.parametrize("text, currency, minor", [
    ("25", "USD", 2500), ("25.5", "USD", 2550), ("$1,000.00", "USD", 100000), (".5", "EUR", 50),
    ("1000", "JPY", 1000), ("1.234", "KWD", 1234), ("  40 ", "ILS", 4000),
])
def test_parse_amount(text, currency, minor):
    assert parse_amount(text, currency) == minor


@pytest.mark.parametrize("text", ["1.5", "1.05"])
def test_yen_has_no_fraction(text):
    with pytest.raises(AmountError, match="JPY amounts have no fractional part"):
        parse_amount(text, "JPY")


def test_amounts_never_go_through_float():
    # 0.1 + 0.2 style errors cannot happen: 19.99 is exactly 1999 cents.
    assert parse_amount("19.99", "USD") == 1999
    assert to_decimal(1999, "USD") == Decimal("19.99")


@pytest.mark.parametrize("amount, extra",
                         [(2500, 106), (5000, 181), (100, 34), (1_000_000, 29_898)])
def test_cover_fee_makes_the_net_whole(amount, extra):
    assert cover_fee(amount, percent_bp=290, fixed=30) == extra
    gross = amount + extra
    fee = Decimal(gross) * Decimal("0.029") + 30
    assert gross - fee >= amount  # the organisation receives at least the gift
    assert (gross - 1) - (Decimal(gross - 1) * Decimal("0.029") + 30) < amount  # and no more


def test_format_money_goes_through_babel():
    assert format_money(250000, "USD") == "$2,500.00"
    assert format_money(250000, "USD", whole=True) == "$2,500"
    assert format_money(250050, "USD", whole=True) == "$2,500.50"
    assert format_money(250000, "EUR", "de_DE") == "2.500,00\xa0€"


@pytest.mark.parametrize(("minor", "currency", "text"), [
    (5000, "USD", "50.00"), (123450, "EUR", "1234.50"), (1, "USD", "0.01"),
    (5000, "JPY", "5000"), (12345, "KWD", "12.345"), (500_000_000, "USD", "5000000.00"),
])
def test_amount_text_is_what_parse_amount_reads_back(minor, currency, text):
    assert amount_text(minor, currency) == text
    assert parse_amount(text, currency) == minor


def test_parse_exact_reads_plain_decimals_exactly_as_decimal_would():
    """An export's amounts, read in whole numbers: the same minor units as Decimal scaled by
    the currency's places, and the same refusals."""
    from app.money import AmountError, minor_digits, parse_exact

    texts = ["0", "-0", "5", "5.", ".5", "50.00", "50.000", "50.001", "-12.5", "0.07",
             "1234567.89", "000123.4500", "5000.5", "5000.0", "7.1234", "999999999999.99",
             " 42.10 ", "1e3", "1,000", "", "-", ".", "+5", "--5"]
    for currency in ("USD", "JPY", "KWD"):
        for text in texts:
            try:
                ours = parse_exact(text, currency)
            except AmountError:
                ours = None
            # As it was read before: the plain-decimal pattern, then Decimal.
            cleaned = text.strip().removeprefix("-")
            expected = None
            if re.fullmatch(r"(?:\d{1,12}(?:\.\d{0,12})?|\.\d{1,12})", cleaned):
                scaled = Decimal(cleaned).scaleb(minor_digits(currency))
                if scaled == scaled.to_integral_value():
                    expected = int(scaled) * (-1 if text.strip().startswith("-") else 1)
            assert ours == expected, (text, currency)
    assert parse_exact("50.00", "USD") == 5000 and parse_exact("5000", "JPY") == 5000
    with pytest.raises(AmountError, match="more decimal places than USD has"):
        parse_exact("50.001", "USD")
    with pytest.raises(AmountError, match="plain decimal"):
        parse_exact("1e3", "USD")
