"""Every rounding of the plan, in one place, and every one of them down.

Rounding down is what keeps a distribution inside what exists: a sum of floors never exceeds
the floor of the sum, so no asset pool and no estate is ever paid out beyond its last minor
unit. What the floors leave over is listed (tier-1 remainders, the estate left), never lost.
All arithmetic is on Python integers: a Decimal is turned into its exact fraction first,
because Decimal's own context arithmetic rounds at 28 significant digits and a uint256 amount
has 78.
"""

from __future__ import annotations

from decimal import Decimal


def pro_rata(part_minor: int, total_minor: int, available_minor: int) -> int:
    """`part`'s share of `available` when `available` is shared over `total`, rounded down;
    the whole part when `available` covers `total` (nobody is paid more than is owed)."""
    assert 0 <= part_minor <= total_minor and available_minor >= 0
    if total_minor <= available_minor:
        return part_minor
    return part_minor * available_minor // total_minor


def times(amount_minor: int, factor: Decimal) -> int:
    """`amount × factor`, rounded down to the minor unit, exactly."""
    numerator, denominator = factor.as_integer_ratio()
    assert amount_minor >= 0 and numerator >= 0 and denominator > 0
    return amount_minor * numerator // denominator


def value_in_quote(amount_minor: int, scale: int, price: Decimal, quote_scale: int) -> int:
    """An asset amount valued in the quote currency's minor unit, rounded down:
    amount_minor × price / 10^scale is the value in quote units; × 10^quote_scale in its minor."""
    numerator, denominator = price.as_integer_ratio()
    assert amount_minor >= 0 and numerator > 0 and denominator > 0
    # Named ints: `10 ** variable` is typed Any (a negative exponent would give a float).
    quote_unit: int = 10**quote_scale
    asset_unit: int = 10**scale
    return amount_minor * numerator * quote_unit // (denominator * asset_unit)
