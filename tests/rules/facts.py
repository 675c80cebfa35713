"""Run facts for the rule tests, from a compact description: plain values, no database.

A holding is one custody account, written as a tuple

    (account code, asset, pool, location, purpose, ledger amount, evidence amount or None)

with amounts in the asset's units as text ("9.5"), scaled here to minor units. The facts mirror
what `reconcile.store.load_ledger_facts` and `reconcile.engine.compare` give a rule: every
asset of the ledger in `scales` and `kinds`, one comparison per custody account, sorted by code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ledger.model import Account, Location, Pool, Purpose, Role
from ledger.prices import PriceTable
from ledger.reserves import Policy
from reconcile.engine import Comparison, CustodyFacts, LedgerFacts, to_minor
from reconcile.rules.base import Check, Draw, ReserveFacts, RunFacts

AS_OF = datetime(2026, 3, 31, 15, 0, tzinfo=UTC)
EVIDENCE = "evidence.json"

# The ledger's assets: code → (kind, scale).
ASSETS: Mapping[str, tuple[str, int]] = {
    "JPY": ("fiat", 0),
    "BTC": ("crypto", 8),
    "ETH": ("crypto", 18),
}

Holding = tuple[str, str, str, str, str, str, str | None]


def minor(asset: str, amount: str, assets: Mapping[str, tuple[str, int]] = ASSETS) -> int:
    """"9.5" BTC → 950000000; an amount finer than the asset's scale is a mistake in the test."""
    whole, dust = to_minor(Decimal(amount), assets[asset][1])
    assert dust == 0, f"{amount} {asset} is finer than the scale of {asset}"
    return whole


def account(code: str, asset: str, pool: str, location: str, purpose: str,
            external: Mapping[str, Any] | None = None) -> Account:
    return Account(code, asset, Pool(pool), Role.CUSTODY, Location(location), Purpose(purpose),
                   external=dict(external or {}))


def prices(table: Mapping[str, str], quote: str = "JPY", as_of: datetime = AS_OF) -> PriceTable:
    return PriceTable(quote, as_of, {asset: Decimal(price) for asset, price in table.items()},
                      "test prices")


def run_facts(holdings: Iterable[Holding], liabilities: Mapping[str, str] | None = None,
              price_table: Mapping[str, str] | PriceTable | None = None, *,
              external: Mapping[str, Mapping[str, Any]] | None = None,
              reserve: ReserveFacts | None = None,
              appropriation: Mapping[str, str] | None = None,
              assets: Mapping[str, tuple[str, int]] = ASSETS, as_of: datetime = AS_OF) -> RunFacts:
    """`external` gives an account's identifiers (addresses, iban, …) by account code."""
    custody: list[CustodyFacts] = []
    comparisons: list[Comparison] = []
    for code, asset, pool, location, purpose, ledger, evidence in holdings:
        scale = assets[asset][1]
        held = account(code, asset, pool, location, purpose, (external or {}).get(code))
        ledger_minor = minor(asset, ledger, assets)
        custody.append(CustodyFacts(held, scale, ledger_minor))
        comparisons.append(Comparison(
            account=code, asset=asset, scale=scale, pool=pool, location=location,
            purpose=purpose, ledger_minor=ledger_minor,
            external_minor=None if evidence is None else minor(asset, evidence, assets),
            dust=Decimal(0), source=None if evidence is None else EVIDENCE,
            evidence_as_of=None if evidence is None else as_of.isoformat()))
    facts = LedgerFacts(
        as_of=as_of,
        custody=tuple(sorted(custody, key=lambda c: c.account.code)),
        liabilities_minor={a: minor(a, amount, assets) for a, amount in (liabilities or {}).items()},
        scales={code: scale for code, (_, scale) in assets.items()},
        kinds={code: kind for code, (kind, _) in assets.items()},
        appropriation_minor={a: minor(a, amount, assets)
                             for a, amount in (appropriation or {}).items()})
    table = prices(price_table) if isinstance(price_table, Mapping) else price_table
    return RunFacts(facts, sorted(comparisons, key=lambda c: c.account), table, reserve)


def policy(policy_id: str, limit: str, covered_share: str, *, currency: str = "JPY",
           start: datetime = datetime(2026, 1, 1, tzinfo=UTC),
           end: datetime = datetime(2027, 1, 1, tzinfo=UTC)) -> Policy:
    return Policy(policy_id, f"insurer of {policy_id}", currency, minor(currency, limit),
                  Decimal(covered_share), start, end)


def reserve_facts(*, quote_traded: str = "0", quote: str = "JPY",
                  unquoted: Mapping[str, str] | None = None,
                  losses: Mapping[str, str] | None = None,
                  policies: Sequence[Policy] = (), draws: Sequence[Draw] = (),
                  draws_after: datetime = AS_OF - timedelta(days=1)) -> ReserveFacts:
    """Trade legs, losses and policies as the reserve rules read them (amounts in units);
    `draws` are those of the window (draws_after, AS_OF] (one day back by default)."""
    unquoted_minor = {a: minor(a, amount) for a, amount in (unquoted or {}).items()}
    return ReserveFacts(minor(quote, quote_traded), unquoted_minor,
                        {a: minor(a, amount) for a, amount in (losses or {}).items()},
                        tuple(policies), tuple(draws), draws_after)


def by_asset(checks: Sequence[Check]) -> dict[str, Check]:
    """Checks keyed by asset; each asset checked at most once."""
    keyed = {check.asset: check for check in checks}
    assert len(keyed) == len(checks), f"more than one check per asset: {checks}"
    return keyed


def only_check(checks: Sequence[Check]) -> Check:
    assert len(checks) == 1, f"expected one check, got {checks}"
    return checks[0]
