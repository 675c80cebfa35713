"""The administrator's distribution plan: a pure function of its inputs, serialised to one
canonical JSON form and hashed, so that anyone holding the same inputs can prove the plan.

    plan(inputs)            tier 1 (tier1.py), the valuation of what it leaves unpaid and of
                            the disputes, then tier 2 (tier2.py); without rules, tier 1 only
    replan(inputs, rulings) the same inputs with disputes resolved: the released reserves go
                            to the final-payment creditors
    canonical_json(plan)    sorted keys, amounts as integer minor units in strings, and the
                            basis (cut-off, case, run, price table) the inputs came from
    plan_hash(plan)         SHA-256 of the canonical form
    first_difference(a, b)  where two plan documents differ first, in words
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

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
from ledger.json_input import decimal_text
from ledger.model import ACCOUNT_CODE

__all__ = [
    "AssetPool", "Claim", "Dispute", "Election", "Option", "Payment", "Plan", "PlanBasis",
    "PlanInputs", "PlanRules", "Status", "Tier1", "Tier1Asset", "Tier1Line", "Tier2", "Tier2Line",
    "Valuation", "canonical_json", "first_difference", "plan", "plan_hash", "replan", "resolve",
    "tier1", "tier2", "valuations",
]

# Part of the canonical form, so a later change of the form changes every hash on purpose.
PLAN_FORMAT = "segledger-plan/1"


PoolSource = Literal["run", "ledger"]
SHA256_HEX = re.compile(r"[0-9a-f]{64}", re.ASCII)


@dataclass(frozen=True)
class PlanBasis:
    """What the inputs were taken from, so that the plan's hash commits to it: the ledger's
    freeze (cut-off, administrator, case), the pools' source (a reconciliation run's verified
    external balances, or the ledger's own figures), the commencement price table, and the
    accounts tier 2 is paid from and charged to (the rules file's; none for tier 1 only)."""

    cutoff: datetime
    administrator: str
    case_no: str | None
    run_id: str | None  # the reconciliation run the pools come from; None: ledger figures
    prices_sha256: str | None  # the recorded commencement price table; None: tier 1 only
    pay_from: str | None = None
    charge_to: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.cutoff, datetime) or self.cutoff.tzinfo is None:
            raise InputError("basis: the cut-off must be a time with its UTC offset")
        if not isinstance(self.administrator, str) or not self.administrator.strip():
            raise InputError("basis: the administrator must be named")
        if self.prices_sha256 is not None and not SHA256_HEX.fullmatch(self.prices_sha256):
            raise InputError(f"basis: prices_sha256 {shown(self.prices_sha256)} is not a "
                             "SHA-256 in lower-case hex")
        if (self.pay_from is None) != (self.charge_to is None):
            raise InputError("basis: pay_from and charge_to go together (both or neither)")
        for name in ("pay_from", "charge_to"):
            code = getattr(self, name)
            if code is not None and (not isinstance(code, str) or not ACCOUNT_CODE.fullmatch(code)):
                raise InputError(f"basis: {name} {shown(code)} is not an account code")

    @property
    def pool_source(self) -> PoolSource:
        return "ledger" if self.run_id is None else "run"


@dataclass(frozen=True)
class PlanInputs:
    """Everything a plan is a function of. `estate_minor` is the general estate available to
    tier 2, in the quote currency's minor unit. Without `rules` the plan is tier 1 only: no
    valuation, no tier 2, so no estate (0), elections or disputes either."""

    claims: tuple[Claim, ...]
    pools: tuple[AssetPool, ...]
    rules: PlanRules | None
    estate_minor: int
    elections: tuple[Election, ...] = ()
    disputes: tuple[Dispute, ...] = ()
    basis: PlanBasis | None = None

    def __post_init__(self) -> None:
        # Tuples whatever the caller passed: a plan must not change when a caller's list does.
        for name in ("claims", "pools", "elections", "disputes"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.rules is not None and not isinstance(self.rules, PlanRules):
            raise InputError("rules must be a PlanRules")
        if self.basis is not None and not isinstance(self.basis, PlanBasis):
            raise InputError("basis must be a PlanBasis")
        check_minor(self.estate_minor, "estate_minor")
        if self.rules is None and (self.estate_minor or self.elections or self.disputes):
            # Silently dropping them would print a plan that looks as if it had used them.
            raise InputError("a plan without rules is tier 1 only: the estate, elections and "
                             "disputes belong to tier 2, which needs the rules")


@dataclass(frozen=True)
class Plan:
    rules: PlanRules | None  # None: tier 1 only
    estate_minor: int | None  # None: tier 1 only
    disputes: tuple[Dispute, ...]  # by creditor, then asset
    tier1: Tier1
    valuations: tuple[Valuation, ...]  # by creditor, asset, source
    tier2: Tier2 | None  # None: tier 1 only
    basis: PlanBasis | None = None


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


def _check_priced(first: Tier1, rules: PlanRules, disputes: Iterable[Dispute]) -> None:
    """Every amount tier 2 values has a commencement price: each shortfall and each live
    dispute (open, or allowed), checked in the order they are valued."""
    owed = [(line.creditor, line.asset) for line in first.lines if line.shortfall_minor > 0]
    owed += [(dispute.creditor, dispute.asset) for dispute in disputes
             if dispute.status in ("open", "allowed")]
    for creditor, asset in sorted(owed):
        if rules.price_of(asset) is None:
            raise InputError(f"no commencement price for {asset} (owed to {shown(creditor)} "
                             f"among others): the commencement price table has no price for "
                             f"{asset}, so what is owed in it cannot be valued in {rules.quote}")


def plan(inputs: PlanInputs) -> Plan:
    """The distribution plan: tier 1 in kind, then tier 2 from the general estate (tier 1
    only when the inputs have no rules)."""
    disputes = _index_disputes(inputs.disputes)
    _check_dispute_assets(inputs)
    _check_elections(inputs)
    first = tier1(inputs.claims, inputs.pools)
    if inputs.rules is None:
        return Plan(None, None, (), first, (), None, inputs.basis)
    _check_priced(first, inputs.rules, disputes.values())
    values = valuations(first, index_pools(inputs.pools), inputs.rules, disputes.values())
    second = tier2(values, inputs.elections, inputs.rules, inputs.estate_minor)
    return Plan(inputs.rules, inputs.estate_minor,
                tuple(disputes[key] for key in sorted(disputes)), first, values, second,
                inputs.basis)


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


def _record(value: Any, fields: Iterable[str]) -> dict[str, Any]:
    """The named attributes of a value: ints ending in `_minor` as digit strings (JSON readers
    that parse numbers as doubles would round a 78-digit amount), Decimals as plain text."""
    record: dict[str, Any] = {}
    for name in fields:
        item = getattr(value, name)
        if name.endswith("_minor"):
            item = str(item)
        elif isinstance(item, Decimal):
            item = decimal_text(item)
        record[name] = item
    return record


def _rules_record(rules: PlanRules | None) -> dict[str, Any] | None:
    if rules is None:
        return None
    return {**_record(rules, ("quote", "quote_scale", "basic_payment_minor", "early_share")),
            "prices": {asset: decimal_text(price) for asset, price in rules.prices.items()}}


def _basis_record(basis: PlanBasis | None) -> dict[str, Any] | None:
    if basis is None:
        return None
    # In UTC, so the same instant written with another offset is the same plan.
    return {"cutoff": basis.cutoff.astimezone(UTC).isoformat(), "case": basis.case_no,
            "administrator": basis.administrator, "run_id": basis.run_id,
            "pool_source": basis.pool_source, "prices_sha256": basis.prices_sha256,
            "pay_from": basis.pay_from, "charge_to": basis.charge_to}


def _tier2_record(second: Tier2 | None) -> dict[str, Any] | None:
    if second is None:
        return None
    return {
        **_record(second, ("estate_minor", "basic_prorated", "early_prorated",
                           "final_pool_minor", "final_claims_minor", "allocated_minor",
                           "left_minor")),
        "lines": [_record(line, ("creditor", "option", "payment", "elected", "claim_minor",
                                 "allowed_minor", "disputed_minor", "basic_minor",
                                 "early_minor", "final_minor", "reserved_minor",
                                 "payable_minor", "total_minor"))
                  for line in second.lines]}


def _canonical(result: Plan) -> dict[str, Any]:
    return {
        "format": PLAN_FORMAT,
        "basis": _basis_record(result.basis),
        "rules": _rules_record(result.rules),
        "estate_minor": None if result.estate_minor is None else str(result.estate_minor),
        "disputes": [_record(d, ("creditor", "asset", "claimed_minor", "status", "allowed_minor"))
                     for d in result.disputes],
        "tier1": {
            "assets": [_record(a, ("asset", "scale", "pool_minor", "claimed_minor", "paid_minor",
                                   "remainder_minor", "covered")) for a in result.tier1.assets],
            "lines": [_record(line, ("creditor", "asset", "claim_minor", "paid_minor",
                                     "shortfall_minor")) for line in result.tier1.lines]},
        "valuations": [_record(v, ("creditor", "asset", "source", "amount_minor", "price",
                                   "value_minor")) for v in result.valuations],
        "tier2": _tier2_record(result.tier2),
    }


def canonical_json(result: Plan) -> bytes:
    """The plan as canonical JSON: sorted keys, no spaces, ASCII only, lists in code order."""
    return json.dumps(_canonical(result), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True, allow_nan=False).encode("ascii")


def plan_hash(result: Plan) -> str:
    """SHA-256 of the canonical JSON, in hex."""
    return hashlib.sha256(canonical_json(result)).hexdigest()


# --- comparing two plan documents -------------------------------------------------------

# The lists of records, and the fields that tell one record from another in each: a record
# added, dropped or given twice is named by them rather than by its position.
_RECORD_KEYS: Mapping[str, tuple[str, ...]] = {
    "disputes": ("creditor", "asset"), "tier1.assets": ("asset",),
    "tier1.lines": ("creditor", "asset"), "valuations": ("creditor", "asset", "source"),
    "tier2.lines": ("creditor",)}
_DIGITS = re.compile(r"[0-9]+", re.ASCII)


def first_difference(given: Any, stored: Any, other: str = "the stored plan",
                     path: str = "") -> str | None:
    """Where the plan document `given` (JSON values, as read from a file) first differs from
    `stored` (which the message calls `other`), in words naming the field; None when equal."""
    if isinstance(given, dict) and isinstance(stored, dict):
        for key in sorted(set(given) | set(stored)):
            where = f"{path}.{key}" if path else str(key)
            if key not in stored:
                return f"{where}: not a field of a plan"
            if key not in given:
                return f"{where}: missing ({other} has {_shown(stored[key])})"
            found = first_difference(given[key], stored[key], other, where)
            if found is not None:
                return found
        return None
    if isinstance(given, list) and isinstance(stored, list):
        keys = _RECORD_KEYS.get(path)
        if keys is not None:
            found = _records_difference(given, stored, other, path, keys)
            if found is not None:
                return found
        for index, (mine, theirs) in enumerate(zip(given, stored, strict=False)):
            found = first_difference(mine, theirs, other, f"{path}[{index}]")
            if found is not None:
                return found
        if len(given) != len(stored):
            return f"{path}: {len(given)} items, {other} has {len(stored)}"
        return None
    if type(given) is type(stored) and given == stored:
        return None
    return f"{path} is {_shown(given)}{_why(path, given)}, {other} has {_shown(stored)}"


def _identity(record: Any, keys: tuple[str, ...]) -> tuple[Any, ...] | None:
    if not isinstance(record, dict):
        return None
    return tuple(str(record.get(key)) for key in keys)


def _records_difference(given: list[Any], stored: list[Any], other: str, path: str,
                        keys: tuple[str, ...]) -> str | None:
    known = {_identity(record, keys) for record in stored}
    seen: set[tuple[Any, ...]] = set()
    for index, record in enumerate(given):
        identity = _identity(record, keys)
        if identity is None:
            continue
        named = " ".join(f"{key} {shown(value)}" for key, value in zip(keys, identity, strict=True))
        if identity in seen:
            return f"{path}[{index}]: {named} appears twice"
        if identity not in known:
            return f"{path}[{index}]: {named} is not in {other}"
        seen.add(identity)
    missing = [identity for identity in (_identity(r, keys) for r in stored)
               if identity is not None and identity not in seen]
    if missing:
        named = " ".join(f"{key} {shown(value)}" for key, value in zip(keys, missing[0], strict=True))
        return f"{path}: {named} of {other} is missing"
    return None


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"the float {value!r}"
    if isinstance(value, (dict, list)) or value is None or isinstance(value, (bool, int)):
        return shown(value)
    return shown(value, 40)


def _why(path: str, value: Any) -> str:
    """What is wrong with an amount as such, beyond differing from the stored one."""
    if not path.endswith("_minor"):
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return " (a number; an amount is a whole number of minor units written in quotes)"
    if isinstance(value, str) and value.startswith("-") and _DIGITS.fullmatch(value[1:]):
        return " (negative)"
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        return " (not a whole number of minor units)"
    return ""
