"""Tier 1, the priority right (PSA 63-19-2): each asset's pool paid in kind, pro rata.

Within one asset every customer is paid the same fraction of the claim, pool ÷ Σ claims,
rounded down to the asset's minor unit; a pool that covers every claim pays each claim
exactly. Assets never mix here: a BTC shortfall is not made up from a JPY surplus, because the
priority right attaches to the assets of the same kind (what is left over is for tier 2).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ledger.administration.inputs import AssetPool, Claim
from ledger.administration.rounding import pro_rata
from ledger.errors import InputError, shown

# FTX had millions of customers; one plan holds ten million (creditor, asset) claims at most,
# so a runaway export is a clear error rather than a machine out of memory.
MAX_CLAIMS = 10_000_000


@dataclass(frozen=True)
class Tier1Line:
    """One creditor's claim in one asset and what the pool pays on it, in the asset's unit."""

    creditor: str
    asset: str
    claim_minor: int
    paid_minor: int

    @property
    def shortfall_minor(self) -> int:
        """What the pool does not cover: tier 2 carries it as a claim on the general estate."""
        return self.claim_minor - self.paid_minor


@dataclass(frozen=True)
class Tier1Asset:
    """One asset's pool, the claims on it and what is left of it after the payouts."""

    asset: str
    scale: int
    pool_minor: int
    claimed_minor: int
    paid_minor: int

    @property
    def covered(self) -> bool:
        return self.pool_minor >= self.claimed_minor

    @property
    def remainder_minor(self) -> int:
        """Kept in the pool: the rounding crumbs of a short pool, or the surplus of a full one."""
        return self.pool_minor - self.paid_minor


@dataclass(frozen=True)
class Tier1:
    lines: tuple[Tier1Line, ...]  # by creditor, then asset
    assets: tuple[Tier1Asset, ...]  # by asset


def index_pools(pools: Iterable[AssetPool]) -> dict[str, AssetPool]:
    indexed: dict[str, AssetPool] = {}
    for pool in pools:
        if pool.asset in indexed:
            raise InputError(f"pool of {pool.asset} is given twice; give one pool per asset")
        indexed[pool.asset] = pool
    return indexed


def _claims_by_asset(claims: Iterable[Claim], pools: Mapping[str, AssetPool]) -> dict[str, list[Claim]]:
    grouped: dict[str, list[Claim]] = {asset: [] for asset in pools}
    seen: set[tuple[str, str]] = set()
    for claim in claims:
        if claim.asset not in pools:
            raise InputError(f"claim of {shown(claim.creditor)} in {claim.asset}: no pool for "
                             f"{claim.asset}; give its pool (0 if nothing is held)")
        if (claim.creditor, claim.asset) in seen:
            # Summing two claims would hide a double export; one claim per account is the rule.
            raise InputError(f"claim of {shown(claim.creditor)} in {claim.asset} is given twice")
        seen.add((claim.creditor, claim.asset))
        grouped[claim.asset].append(claim)
    return grouped


def _pay_asset(pool: AssetPool, claims: list[Claim]) -> tuple[Tier1Asset, list[Tier1Line]]:
    claimed = sum(claim.amount_minor for claim in claims)
    lines = [Tier1Line(claim.creditor, claim.asset, claim.amount_minor,
                       pro_rata(claim.amount_minor, claimed, pool.pool_minor))
             for claim in claims]
    paid = sum(line.paid_minor for line in lines)
    # The pool is never overdrawn, and a short pool leaves less than one minor unit per
    # claimant unpaid (each floor drops less than one): anything else is a bug here.
    assert paid <= pool.pool_minor
    assert paid == claimed or pool.pool_minor - paid < max(1, len(claims))
    return Tier1Asset(pool.asset, pool.scale, pool.pool_minor, claimed, paid), lines


def tier1(claims: Iterable[Claim], pools: Iterable[AssetPool]) -> Tier1:
    """Pay every asset's pool to its claims, pro rata, in kind."""
    claims = tuple(claims)
    if len(claims) > MAX_CLAIMS:
        raise InputError(f"{len(claims)} claims, more than one plan holds ({MAX_CLAIMS})")
    indexed = index_pools(pools)
    grouped = _claims_by_asset(claims, indexed)
    assets: list[Tier1Asset] = []
    lines: list[Tier1Line] = []
    for asset in sorted(indexed):
        outcome, paid = _pay_asset(indexed[asset], grouped[asset])
        assets.append(outcome)
        lines.extend(paid)
    lines.sort(key=lambda line: (line.creditor, line.asset))
    return Tier1(tuple(lines), tuple(assets))
