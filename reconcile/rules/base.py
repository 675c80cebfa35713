"""What every rule shares: the check result, the facts of a run, and exact valuation."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction

from ledger.model import AssetKind, Location, Pool, Purpose
from ledger.money import format_amount
from ledger.prices import PriceTable
from ledger.reserves import Policy
from reconcile.engine import Comparison, LedgerFacts


@dataclass(frozen=True)
class Check:
    rule: str
    asset: str
    status: str  # pass | fail | n/a
    value: str
    threshold: str
    detail: str
    numbers: Mapping[str, str] = field(default_factory=dict)
    account: str | None = None


@dataclass(frozen=True)
class Draw:
    """One entry that took from the liability reserve."""

    entry_key: str
    entry_type: str
    effective_at: datetime
    asset: str
    amount_minor: int
    incident: str | None
    incident_kind: str | None
    memo: str | None
    recorded_at: datetime | None = None  # when the ledger took it in (system time)


@dataclass(frozen=True)
class ReserveFacts:
    """What the reserve rules read from the ledger, for the windows the rulebook asks for."""

    quote_traded_minor: int  # quote-currency legs of trades: the traded value itself
    unquoted_traded_minor: Mapping[str, int]  # legs of trades that have no quote leg
    losses_minor: Mapping[str, int]  # incident losses per asset over the incident window
    policies: Sequence[Policy]
    # The draws of the window (draws_after, as-of]: effective in it, or effective before it
    # and recorded in it (a draw booked late, which the run for its own day could not see).
    draws: Sequence[Draw]
    draws_after: datetime  # where the window starts (excluded)


@dataclass(frozen=True)
class RunFacts:
    ledger: LedgerFacts
    comparisons: Sequence[Comparison]
    prices: PriceTable | None = None
    reserve: ReserveFacts | None = None
    currency: str = "JPY"  # of valuation: the rulebook's (Rulebook.evaluate sets it)


def held_minor(comparison: Comparison) -> int:
    """What the evidence shows where there is evidence, the ledger's figure where there is none."""
    return comparison.ledger_minor if comparison.external_minor is None else comparison.external_minor


def customer_custody(facts: RunFacts) -> list[Comparison]:
    return [c for c in facts.comparisons if c.pool == Pool.CUSTOMER.value]


def is_hot(comparison: Comparison) -> bool:
    return comparison.location == Location.HOT_WALLET.value


def is_purpose(comparison: Comparison, purpose: Purpose) -> bool:
    return comparison.pool == Pool.COMPANY.value and comparison.purpose == purpose.value


def crypto_assets(facts: RunFacts) -> list[str]:
    return sorted(a for a, kind in facts.ledger.kinds.items() if kind == AssetKind.CRYPTO.value)


def fiat_assets(facts: RunFacts) -> list[str]:
    return sorted(a for a, kind in facts.ledger.kinds.items() if kind == AssetKind.FIAT.value)


def sum_by_asset(comparisons: Iterable[Comparison]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for comparison in comparisons:
        totals[comparison.asset] += held_minor(comparison)
    return totals


def fmt(facts: RunFacts, asset: str, minor: int) -> str:
    return format_amount(minor, facts.ledger.scales[asset])


def ceil_minor(minor: int, ratio: Fraction) -> int:
    """A threshold in minor units, rounded up: a requirement is never rounded away."""
    return math.ceil(minor * ratio)


class Valuer:
    """Values in the quote currency, exactly, remembering which assets had no price."""

    def __init__(self, prices: PriceTable | None, quote: str, scales: Mapping[str, int]):
        self.prices = prices
        self.quote = prices.quote if prices else quote
        self.scales = scales
        self.missing: set[str] = set()

    def value(self, asset: str, amount_minor: int) -> Fraction | None:
        if amount_minor == 0:
            return Fraction(0)
        scale = self.scales[asset]
        if asset == self.quote:
            return Fraction(amount_minor, 10**scale)
        price = self.prices.price(asset) if self.prices else None
        if price is None:
            self.missing.add(asset)
            return None
        return Fraction(amount_minor, 10**scale) * Fraction(price)

    def total(self, amounts: Mapping[str, int]) -> Fraction | None:
        values = [self.value(asset, minor) for asset, minor in sorted(amounts.items())]
        if any(v is None for v in values):
            return None
        return sum((v for v in values if v is not None), Fraction(0))

    def why_not(self) -> str:
        if self.prices is None:
            return (f"no price file: {', '.join(sorted(self.missing))} cannot be valued in "
                    f"{self.quote} (give --prices)")
        return f"no {self.quote} price for {', '.join(sorted(self.missing))}"


def not_applicable(rule: str, asset: str, threshold: str, reason: str) -> Check:
    return Check(rule, asset, "n/a", "n/a", threshold, reason)


def percent(share: Fraction) -> str:
    """A share for display (0.9512 → "95.12%"), rounded down."""
    hundredths = math.floor(share * 10000)
    return f"{hundredths // 100}.{hundredths % 100:02d}%"


def as_strings(mapping: Mapping[str, object]) -> dict[str, str]:
    return {key: str(value) for key, value in mapping.items()}


def only(comparisons: Sequence[Comparison], asset: str) -> list[Comparison]:
    return [c for c in comparisons if c.asset == asset]
