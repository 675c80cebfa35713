"""Exact amounts: integers in minor units inside, `Decimal` only at the edges, never float."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from ledger.errors import InputError, shown
from ledger.json_input import kind_of

# NUMERIC(78,0) holds any uint256, so 18-decimal tokens fit on PostgreSQL.
POSTGRES_MAX_MINOR = 10**78 - 1
# SQLite stores a signed 64-bit integer; anything larger would silently become a REAL.
SQLITE_MAX_MINOR = 2**63 - 1
# Longest decimal text we accept for one amount: a limit on everything, even digits.
MAX_AMOUNT_CHARS = 100
PLAIN_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?", re.ASCII)


def parse_amount(text: object, scale: int, *, allow_zero: bool = False) -> int:
    """Parse a decimal amount in asset units into minor units.

    Accepts a JSON string ("0.5") or a JSON integer (5). Floats are refused: 0.1 as a binary
    float is not 0.1, and a ledger must never guess.
    """
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        given = f"the number {text} (write it in quotes)" if isinstance(text, float) \
            else kind_of(text)
        raise InputError(f"amount must be a decimal string such as \"0.5\", not {given}")
    raw = str(text)
    if not raw or len(raw) > MAX_AMOUNT_CHARS:
        raise InputError(f"amount {shown(raw, 40)} is empty or too long")
    if raw.startswith("-") and PLAIN_DECIMAL.fullmatch(raw[1:]):
        raise InputError(f"amount {raw} must be greater than zero")
    # Plain ASCII digits only: no exponent (1e999999999 would be a denial of service), no sign,
    # no spaces, underscores or non-ASCII digits that Decimal() would quietly accept.
    if not PLAIN_DECIMAL.fullmatch(raw):
        raise InputError(f"amount {shown(raw, 40)} is not a plain decimal number such as \"12.5\"")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise InputError(f"amount {shown(raw, 40)} is not a decimal number") from None
    # Integer arithmetic on the digits: Decimal's context arithmetic (normalize, scaleb)
    # rounds to 28 significant digits, and a uint256 amount has 78.
    sign, digit_tuple, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple)).lstrip("0") or "0"
    while exponent < 0 and digits.endswith("0") and digits != "0":
        digits, exponent = digits[:-1], exponent + 1
    decimals = max(0, -exponent) if digits != "0" else 0
    if decimals > scale:
        raise InputError(f"amount {raw} has {decimals} decimals, the asset allows {scale}")
    minor = int(digits) * 10 ** (exponent + scale) if digits != "0" else 0
    if sign:
        minor = -minor
    if minor < 0 or (minor == 0 and not allow_zero):
        raise InputError(f"amount {raw} must be greater than zero")
    return minor


def format_amount(minor: int, scale: int) -> str:
    """Minor units as a decimal string with exactly `scale` decimals ("0.50000000")."""
    sign = "-" if minor < 0 else ""
    digits = str(abs(minor)).rjust(scale + 1, "0")
    if scale == 0:
        return f"{sign}{digits}"
    return f"{sign}{digits[:-scale]}.{digits[-scale:]}"


def to_decimal(minor: int, scale: int) -> Decimal:
    """Exact: built from the digits, not by context arithmetic (which rounds at 28 digits)."""
    return Decimal(format_amount(minor, scale))
