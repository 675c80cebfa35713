"""What `admin claims` and `admin pool` show: the claims at the cut-off valued at the
commencement prices, the items in flight at the cut-off, and per asset the pool against the
claims. Plain values with their JSON form; the CLI (and later the HTTP views) only format."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import Connection

from ledger.administration import in_flight
from ledger.administration.case import (
    CommencementPrices,
    Pools,
    Unidentified,
    load_claims,
    load_prices,
    unidentified_at,
)
from ledger.administration.in_flight import InFlight
from ledger.administration.inputs import Claim
from ledger.administration.rounding import value_in_quote
from ledger.book import Freeze
from ledger.json_input import decimal_text
from ledger.money import format_amount
from ledger.storage.rows import load_assets

# A coverage ratio is shown rounded down at this many decimals (never overstated); the JSON
# also gives the exact fraction.
RATIO_DECIMALS = 6


def freeze_json(freeze: Freeze) -> dict[str, Any]:
    return {"cutoff": freeze.cutoff.isoformat(), "case": freeze.case_no,
            "administrator": freeze.administrator}


@dataclass(frozen=True)
class ClaimLine:
    creditor: str
    asset: str
    scale: int
    amount_minor: int
    price: Decimal | None  # None: no price table recorded yet
    value_minor: int | None  # in the quote's minor unit, rounded down


@dataclass(frozen=True)
class AssetTotal:
    asset: str
    scale: int
    creditors: int
    amount_minor: int
    price: Decimal | None
    value_minor: int | None  # Σ of the creditors' values (each rounded down)


@dataclass(frozen=True)
class UnidentifiedLine:
    account: str
    asset: str
    scale: int
    amount_minor: int
    price: Decimal | None
    value_minor: int | None


@dataclass(frozen=True)
class ClaimsReport:
    freeze: Freeze
    prices: CommencementPrices | None
    lines: tuple[ClaimLine, ...]  # by creditor, then asset
    totals: tuple[AssetTotal, ...]  # by asset
    in_flight: InFlight
    # Customer-pool suspense balances at the cut-off: owed, to no identified creditor; a plan
    # is refused until the administrator records who they belong to.
    unidentified: tuple[UnidentifiedLine, ...] = ()

    @property
    def value_total_minor(self) -> int | None:
        if self.prices is None:
            return None
        return sum(total.value_minor or 0 for total in self.totals)

    def to_json(self) -> dict[str, Any]:
        quote_scale = self.prices.quote_scale if self.prices else 0

        def value(minor: int | None) -> str | None:
            return None if minor is None else format_amount(minor, quote_scale)

        def price(found: Decimal | None) -> str | None:
            return None if found is None else decimal_text(found)

        return {
            **freeze_json(self.freeze),
            "prices": self.prices.to_json() if self.prices else None,
            "quote": self.prices.quote if self.prices else None,
            "claims": [{"creditor": line.creditor, "asset": line.asset,
                        "amount": format_amount(line.amount_minor, line.scale),
                        "price": price(line.price), "value": value(line.value_minor)}
                       for line in self.lines],
            "totals": [{"asset": total.asset, "creditors": total.creditors,
                        "amount": format_amount(total.amount_minor, total.scale),
                        "price": price(total.price), "value": value(total.value_minor)}
                       for total in self.totals],
            "value_total": value(self.value_total_minor),
            "unidentified": [{"account": line.account, "asset": line.asset,
                              "amount": format_amount(line.amount_minor, line.scale),
                              "price": price(line.price), "value": value(line.value_minor)}
                             for line in self.unidentified],
            **self.in_flight.to_json(),
        }


def claims_report(connection: Connection, freeze: Freeze) -> ClaimsReport:
    scales = {code: asset.scale for code, asset in load_assets(connection).items()}
    prices = load_prices(connection)
    lines = tuple(_line(claim, scales[claim.asset], prices)
                  for claim in load_claims(connection, freeze))
    by_asset: dict[str, list[ClaimLine]] = defaultdict(list)
    for line in lines:
        by_asset[line.asset].append(line)
    totals = tuple(
        AssetTotal(asset, scales[asset], len(items), sum(item.amount_minor for item in items),
                   items[0].price,
                   None if prices is None else sum(item.value_minor or 0 for item in items))
        for asset, items in sorted(by_asset.items()))
    held = tuple(_unidentified_line(item, scales[item.asset], prices)
                 for item in unidentified_at(connection, freeze))
    return ClaimsReport(freeze, prices, lines, totals, in_flight.at_cutoff(connection, freeze),
                        held)


def _value(amount_minor: int, asset: str, scale: int, prices: CommencementPrices | None
           ) -> tuple[Decimal | None, int | None]:
    price = None if prices is None else prices.price_of(asset)
    # A table is recorded only if it prices every asset with a claim, and claims change only
    # by the administrator's records: a claim in a new asset is priced at nothing (None).
    value = None if price is None or prices is None else \
        value_in_quote(amount_minor, scale, price, prices.quote_scale)
    return price, value


def _unidentified_line(item: Unidentified, scale: int, prices: CommencementPrices | None
                       ) -> UnidentifiedLine:
    # value_in_quote takes a non-negative amount; a debit balance in suspense is shown unvalued.
    price, value = _value(max(item.amount_minor, 0), item.asset, scale, prices)
    return UnidentifiedLine(item.account, item.asset, scale, item.amount_minor, price,
                            value if item.amount_minor >= 0 else None)


def _line(claim: Claim, scale: int, prices: CommencementPrices | None) -> ClaimLine:
    price, value = _value(claim.amount_minor, claim.asset, scale, prices)
    return ClaimLine(claim.creditor, claim.asset, scale, claim.amount_minor, price, value)


@dataclass(frozen=True)
class PoolLine:
    asset: str
    scale: int
    pool_minor: int
    claims_minor: int  # the creditors' claims and the unidentified receipts
    creditors: int
    unidentified_minor: int = 0  # held in customer-pool suspense: owed, to no known creditor

    @property
    def coverage(self) -> Fraction | None:
        """pool ÷ claims, exactly; None when nothing is claimed."""
        return Fraction(self.pool_minor, self.claims_minor) if self.claims_minor else None

    @property
    def shortfall_minor(self) -> int:
        return max(self.claims_minor - self.pool_minor, 0)

    @property
    def surplus_minor(self) -> int:
        return max(self.pool_minor - self.claims_minor, 0)


def ratio_text(ratio: Fraction | None, decimals: int = RATIO_DECIMALS) -> str | None:
    """A ratio rounded down at `decimals` ("0.750000"): never shown above what it is."""
    if ratio is None:
        return None
    return format_amount(ratio.numerator * 10**decimals // ratio.denominator, decimals)


@dataclass(frozen=True)
class PoolReport:
    freeze: Freeze
    pools: Pools
    lines: tuple[PoolLine, ...]  # by asset

    @property
    def basis(self) -> str:
        if self.pools.verified:
            return f"verified by run {self.pools.run_id}"
        return "ledger figures at the cut-off, not verified"

    def to_json(self) -> dict[str, Any]:
        return {
            **freeze_json(self.freeze), "run_id": self.pools.run_id,
            "verified": self.pools.verified, "basis": self.basis,
            "assets": [{
                "asset": line.asset, "pool": format_amount(line.pool_minor, line.scale),
                "claims": format_amount(line.claims_minor, line.scale),
                "unidentified": format_amount(line.unidentified_minor, line.scale),
                "creditors": line.creditors, "coverage": ratio_text(line.coverage),
                "coverage_fraction": None if line.coverage is None else
                f"{line.coverage.numerator}/{line.coverage.denominator}",
                "shortfall": format_amount(line.shortfall_minor, line.scale),
                "surplus": format_amount(line.surplus_minor, line.scale),
                "accounts": [{"account": account.code, "purpose": account.purpose,
                              "amount": format_amount(account.amount_minor, line.scale)}
                             for account in self._accounts(line.asset)]}
                for line in self.lines],
        }

    def _accounts(self, asset: str) -> Sequence[Any]:
        found = self.pools.of(asset)
        return found.accounts if found else ()


def pool_report(freeze: Freeze, pools: Pools, claims: Sequence[Claim]) -> PoolReport:
    owed: dict[str, list[int]] = defaultdict(list)
    for claim in claims:
        owed[claim.asset].append(claim.amount_minor)
    # The suspense balances count in the claims: the pool stands for them as well, so the
    # coverage is the ledger's (`Account.is_customer_liability`), not flattered.
    held: dict[str, int] = defaultdict(int)
    for item in pools.unidentified:
        held[item.asset] += item.amount_minor
    lines = tuple(PoolLine(item.asset, item.scale, item.pool_minor,
                           sum(owed[item.asset]) + held[item.asset], len(owed[item.asset]),
                           held[item.asset]) for item in pools.assets)
    return PoolReport(freeze, pools, lines)
