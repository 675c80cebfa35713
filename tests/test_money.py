"""Amounts are exact integers in minor units; decimals only at the edges, never floats."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InputError
from ledger.money import format_amount, parse_amount


@pytest.mark.parametrize(("text", "scale", "minor"), [
    ("0.5", 8, 50_000_000),
    ("0.50000000", 8, 50_000_000),
    ("1", 0, 1),
    (12345, 0, 12345),
    ("0.00000001", 8, 1),
    ("1.000000000000000001", 18, 10**18 + 1),
    ("115792089237316195423570985008687907853269984665640564039457.584007913129639935", 18,
     2**256 - 1),
])
def test_parses_decimal_text_exactly(text: str, scale: int, minor: int) -> None:
    assert parse_amount(text, scale) == minor


@pytest.mark.parametrize(("text", "scale", "reason"), [
    ("0.123456789", 8, "has 9 decimals, the asset allows 8"),
    ("1.5", 0, "has 1 decimals, the asset allows 0"),
    ("0", 8, "greater than zero"),
    ("-1", 8, "greater than zero"),
    ("abc", 8, "not a plain decimal number"),
    ("NaN", 8, "not a plain decimal number"),
    ("Infinity", 8, "not a plain decimal number"),
    # Forms Decimal() would accept, refused: a ledger takes one spelling of a number.
    ("1e999999999", 8, "not a plain decimal number"),
    ("1e3", 0, "not a plain decimal number"),
    ("+5", 0, "not a plain decimal number"),
    (" 5 ", 0, "not a plain decimal number"),
    ("1_000", 0, "not a plain decimal number"),
    ("\u0663", 0, "not a plain decimal number"),
    ("\uff11", 0, "not a plain decimal number"),
    (".5", 8, "not a plain decimal number"),
    ("5.", 8, "not a plain decimal number"),
    ("", 8, "empty or too long"),
    ("1" * 101, 0, "empty or too long"),
])
def test_refuses_what_is_not_an_exact_positive_amount(text: str, scale: int, reason: str) -> None:
    with pytest.raises(InputError, match=reason):
        parse_amount(text, scale)


@pytest.mark.parametrize("value", [0.5, True, None, [1], {"a": 1}])
def test_refuses_floats_and_other_json_types(value: object) -> None:
    with pytest.raises(InputError, match="decimal string"):
        parse_amount(value, 8)


@pytest.mark.parametrize(("minor", "scale", "text"), [
    (50_000_000, 8, "0.50000000"),
    (1, 8, "0.00000001"),
    (-125, 2, "-1.25"),
    (0, 8, "0.00000000"),
    (1000, 0, "1000"),
])
def test_formats_with_exactly_the_asset_scale(minor: int, scale: int, text: str) -> None:
    assert format_amount(minor, scale) == text


@given(st.integers(min_value=1, max_value=10**40), st.integers(min_value=0, max_value=36))
def test_format_then_parse_is_identity(minor: int, scale: int) -> None:
    assert parse_amount(format_amount(minor, scale), scale) == minor
