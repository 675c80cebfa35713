"""The administrator's distribution plan: a pure function of its inputs, serialised to one
canonical JSON form and hashed, so that anyone holding the same inputs can prove the plan.

    plan(inputs)            tier 1 (tier1.py), the valuation of what it leaves unpaid and of
                            the disputes, then tier 2 (tier2.py)
    replan(inputs, rulings) the same inputs with disputes resolved: the released reserves go
                            to the final-payment creditors
    canonical_json(plan)    sorted keys, amounts as integer minor units in strings
    plan_hash(plan)         SHA-256 of the canonical form
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from ledger.administration.inputs import (
    AssetPool,
    Claim,
    Dispute,
    Election,
    Option,
    Payment,
    PlanRules,
    Status,
    check_minor,
)
from ledger.administration.tier1 import MAX_CLAIMS, Tier1, Tier1Asset, Tier1Line, index_pools, tier1
from ledger.administration.tier2 import Tier2, Tier2Line, Valuation, index_elections, tier2, valuations
from ledger.errors import InputError, shown

__all__ = [
    "AssetPool", "Claim", "Dispute", "Election", "Option", "Payment", "Plan", "PlanInputs",
    "PlanRules", "Status", "Tier1", "Tier1Asset", "Tier1Line", "Tier2", "Tier2Line", "Valuation",
    "canonical_json", "plan", "plan_hash", "replan", "resolve", "tier1", "tier2", "valuations",
]

# Part of the canonical form, so a later change of the form changes every hash on purpose.
PLAN_FORMAT = "segledger-plan/1"


@dataclass(frozen=True)
class PlanInputs:
    """Everything a plan is a function of. `estate_minor` is the general estate available to
    tier 2, in the quote currency's minor unit."""

    claims: tuple[Claim, ...]
    pools: tuple[AssetPool, ...]
    rules: PlanRules
    estate_minor: int
    elections: tuple[Election, ...] = ()
    disputes: tuple[Dispute, ...] = ()

    def __post_init__(self) -> None:
        # Tuples whatever the caller passed: a plan must not change when a caller's list does.
        for name in ("claims", "pools", "elections", "disputes"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if not isinstance(self.rules, PlanRules):
            raise InputError("rules must be a PlanRules")
        check_minor(self.estate_minor, "estate_minor")


@dataclass(frozen=True)
class Plan:
    rules: PlanRules
    estate_minor: int
    disputes: tuple[Dispute, ...]  # by creditor, then asset
    tier1: Tier1
    valuations: tuple[Valuation, ...]  # by creditor, asset, source
    tier2: Tier2


def _index_disputes(disputes: Iterable[Dispute]) -> dict[tuple[str, str], Dispute]:
    indexed: dict[tuple[str, str], Dispute] = {}
    for dispute in disputes:
        if dispute.key in indexed:
            raise InputError(f"dispute of {shown(dispute.creditor)} in {dispute.asset} is given "
                             "twice; one dispute per creditor and asset")
        indexed[dispute.key] = dispute
    if len(indexed) > MAX_CLAIMS:
        raise InputError(f"{len(indexed)} disputes, more than one plan holds ({MAX_CLAIMS})")
    return indexed


def _check_dispute_assets(inputs: PlanInputs) -> None:
    # Checked for every dispute, not only the live ones valued, so that a rejected dispute
    # naming an asset nobody holds is caught the day it is entered, not never.
    held = {pool.asset for pool in inputs.pools}
    for dispute in inputs.disputes:
        if dispute.asset not in held:
            raise InputError(f"dispute of {shown(dispute.creditor)} in {dispute.asset}: no pool "
                             f"for {dispute.asset}; give its pool (0 if nothing is held)")


def _check_elections(inputs: PlanInputs) -> None:
    known = {claim.creditor for claim in inputs.claims}
    known.update(dispute.creditor for dispute in inputs.disputes)
    for creditor in index_elections(inputs.elections):
        if creditor not in known:
            raise InputError(f"election of {shown(creditor)}: no claim and no dispute of that "
                             "creditor (a typing mistake in the id?)")


def plan(inputs: PlanInputs) -> Plan:
    """The distribution plan: tier 1 in kind, then tier 2 from the general estate."""
    disputes = _index_disputes(inputs.disputes)
    _check_dispute_assets(inputs)
    _check_elections(inputs)
    first = tier1(inputs.claims, inputs.pools)
    values = valuations(first, index_pools(inputs.pools), inputs.rules, disputes.values())
    second = tier2(values, inputs.elections, inputs.rules, inputs.estate_minor)
    return Plan(inputs.rules, inputs.estate_minor,
                tuple(disputes[key] for key in sorted(disputes)), first, values, second)


def resolve(disputes: Iterable[Dispute], rulings: Iterable[Dispute]) -> tuple[Dispute, ...]:
    """The disputes with each ruling (the same dispute, now allowed or rejected) applied.

    A ruling must name an existing dispute by creditor and asset, with the same claimed
    amount; a dispute already resolved cannot be resolved differently (appeals are new inputs,
    not edits), but the same ruling given again changes nothing.
    """
    indexed = _index_disputes(disputes)
    for ruling in _index_disputes(rulings).values():
        what = f"ruling on {shown(ruling.creditor)} in {ruling.asset}"
        current = indexed.get(ruling.key)
        if current is None:
            raise InputError(f"{what}: there is no such dispute")
        if ruling.status == "open":
            raise InputError(f"{what}: a ruling allows or rejects, it cannot be open")
        if ruling.claimed_minor != current.claimed_minor:
            raise InputError(f"{what}: claimed_minor {ruling.claimed_minor} is not the "
                             f"disputed {current.claimed_minor}")
        if current.status != "open" and current != ruling:
            raise InputError(f"{what}: the dispute is already {current.status}")
        indexed[ruling.key] = ruling
    return tuple(indexed[key] for key in sorted(indexed))


def replan(inputs: PlanInputs, rulings: Iterable[Dispute]) -> Plan:
    """The plan again once disputes are resolved: what a ruling does not need of its reserve
    goes back to the estate, and so to the final-payment creditors."""
    return plan(replace(inputs, disputes=resolve(inputs.disputes, rulings)))


# --- the canonical form ------------------------------------------------------------------


def _decimal_text(value: Decimal) -> str:
    """Plain digits without trailing zeros ("749318.83", never "7.4931883E+5" or "749318.830"),
    so two equal prices always serialise, and hash, alike."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def _record(value: Any, fields: Iterable[str]) -> dict[str, Any]:
    """The named attributes of a value: ints ending in `_minor` as digit strings (JSON readers
    that parse numbers as doubles would round a 78-digit amount), Decimals as plain text."""
    record: dict[str, Any] = {}
    for name in fields:
        item = getattr(value, name)
        if name.endswith("_minor"):
            item = str(item)
        elif isinstance(item, Decimal):
            item = _decimal_text(item)
        record[name] = item
    return record


def _canonical(result: Plan) -> dict[str, Any]:
    rules = result.rules
    return {
        "format": PLAN_FORMAT,
        "rules": {**_record(rules, ("quote", "quote_scale", "basic_payment_minor", "early_share")),
                  "prices": {asset: _decimal_text(price) for asset, price in rules.prices.items()}},
        "estate_minor": str(result.estate_minor),
        "disputes": [_record(d, ("creditor", "asset", "claimed_minor", "status", "allowed_minor"))
                     for d in result.disputes],
        "tier1": {
            "assets": [_record(a, ("asset", "scale", "pool_minor", "claimed_minor", "paid_minor",
                                   "remainder_minor", "covered")) for a in result.tier1.assets],
            "lines": [_record(line, ("creditor", "asset", "claim_minor", "paid_minor",
                                     "shortfall_minor")) for line in result.tier1.lines]},
        "valuations": [_record(v, ("creditor", "asset", "source", "amount_minor", "price",
                                   "value_minor")) for v in result.valuations],
        "tier2": {
            **_record(result.tier2, ("estate_minor", "basic_prorated", "early_prorated",
                                     "final_pool_minor", "final_claims_minor", "allocated_minor",
                                     "left_minor")),
            "lines": [_record(line, ("creditor", "option", "payment", "elected", "claim_minor",
                                     "allowed_minor", "disputed_minor", "basic_minor",
                                     "early_minor", "final_minor", "reserved_minor",
                                     "payable_minor", "total_minor"))
                      for line in result.tier2.lines]},
    }


def canonical_json(result: Plan) -> bytes:
    """The plan as canonical JSON: sorted keys, no spaces, ASCII only, lists in code order."""
    return json.dumps(_canonical(result), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True, allow_nan=False).encode("ascii")


def plan_hash(result: Plan) -> str:
    """SHA-256 of the canonical JSON, in hex."""
    return hashlib.sha256(canonical_json(result)).hexdigest()
