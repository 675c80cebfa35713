"""Segregation rules: customer assets covered, in the right places, apart from company assets.

One function per rule id; each returns checks with the value, the threshold and the numbers
behind them, so that an auditor can redo the arithmetic from the output alone.
"""

from __future__ import annotations

import math
from collections import defaultdict
from decimal import Decimal
from fractions import Fraction

from ledger.model import Pool, Purpose
from ledger.money import format_amount
from ledger.reserves import show
from reconcile.engine import to_minor
from reconcile.rules.base import (
    Check,
    RunFacts,
    Valuer,
    ceil_minor,
    crypto_assets,
    customer_custody,
    fiat_assets,
    fmt,
    held_minor,
    is_hot,
    is_purpose,
    not_applicable,
    only,
    percent,
    sum_by_asset,
)
from reconcile.rules.params import (
    ColdParams,
    ExcessParams,
    GuaranteeParams,
    InsuranceCoverParams,
    NoParams,
    TrustParams,
)


def seg_coverage(facts: RunFacts, params: NoParams) -> list[Check]:
    """Customer custody ≥ customer liabilities, per asset (evidence where there is some)."""
    custody = sum_by_asset(customer_custody(facts))
    unevidenced: dict[str, list[str]] = defaultdict(list)
    stale: dict[str, list[str]] = defaultdict(list)
    for comparison in customer_custody(facts):
        if comparison.stale is not None:
            stale[comparison.asset].append(comparison.account)
        elif comparison.external_minor is None:
            unevidenced[comparison.asset].append(comparison.account)
    checks = []
    for asset in sorted(facts.ledger.scales):
        liabilities = facts.ledger.liabilities_minor.get(asset, 0)
        coverage = custody[asset] - liabilities
        detail = (f"customer custody {fmt(facts, asset, custody[asset])} vs customer "
                  f"liabilities {fmt(facts, asset, liabilities)}")
        if unevidenced[asset] and any(c.external_minor is not None or c.stale
                                      for c in facts.comparisons):
            detail += f"; ledger figure used for {', '.join(unevidenced[asset])} (no evidence)"
        if stale[asset]:
            detail += (f"; ledger figure used for {', '.join(stale[asset])} (its evidence is "
                       "too old to compare)")
        checks.append(Check(
            "SEG-COVERAGE", asset, "pass" if coverage >= 0 else "fail",
            fmt(facts, asset, coverage), fmt(facts, asset, 0), detail,
            {"customer_custody": fmt(facts, asset, custody[asset]),
             "customer_liabilities": fmt(facts, asset, liabilities)}))
    return checks


def seg_external(facts: RunFacts, params: NoParams) -> list[Check]:
    """Ledger = evidence, per custody account (dust below the ledger's scale aside)."""
    checks = []
    for comparison in facts.comparisons:
        scale = comparison.scale
        if comparison.stale is not None:
            checks.append(Check(
                "SEG-EXTERNAL", comparison.asset, "fail", "stale evidence",
                format_amount(0, scale),
                f"{comparison.account}: ledger {format_amount(comparison.ledger_minor, scale)}, "
                f"{comparison.source} too old to compare: {comparison.stale.reason}",
                account=comparison.account))
            continue
        if comparison.difference_minor is None:
            if comparison.ledger_minor == 0 and comparison.location == "in_transit":
                continue
            checks.append(Check(
                "SEG-EXTERNAL", comparison.asset, "fail", "no evidence",
                format_amount(0, scale),
                f"{comparison.account}: ledger {format_amount(comparison.ledger_minor, scale)}, "
                "no evidence to compare with", account=comparison.account))
            continue
        difference = comparison.difference_minor
        checks.append(Check(
            "SEG-EXTERNAL", comparison.asset, "pass" if difference == 0 else "fail",
            format_amount(difference, scale), format_amount(0, scale),
            f"{comparison.account}: ledger {format_amount(comparison.ledger_minor, scale)}, "
            f"{comparison.source} {format_amount(comparison.external_minor or 0, scale)}"
            + ("" if difference == 0 else (" (too little outside)" if difference < 0
                                            else " (too much outside)")),
            {"ledger": format_amount(comparison.ledger_minor, scale),
             "external": format_amount(comparison.external_minor or 0, scale)},
            account=comparison.account))
    return checks


def jp_fiat_trust(facts: RunFacts, params: TrustParams, rule: str = "JP-FIAT-TRUST"
                  ) -> list[Check]:
    """Customer money in trust (location bank_trust) ≥ min_ratio × customer fiat liabilities."""
    checks = []
    for asset in fiat_assets(facts):
        held = only(customer_custody(facts), asset)
        liabilities = facts.ledger.liabilities_minor.get(asset, 0)
        if not held and not liabilities:
            continue
        in_trust = sum(held_minor(c) for c in held if c.location == "bank_trust")
        elsewhere = {c.account: held_minor(c) for c in held
                     if c.location != "bank_trust" and held_minor(c)}
        required = ceil_minor(liabilities, Fraction(params.min_ratio))
        detail = (f"customer money in trust {fmt(facts, asset, in_trust)} vs "
                  f"{percent(Fraction(params.min_ratio))} of customer liabilities "
                  f"{fmt(facts, asset, liabilities)}")
        if in_trust < required:
            detail += f": too little in trust by {fmt(facts, asset, required - in_trust)}"
        if elsewhere:
            detail += "; customer money outside trust: " + ", ".join(
                f"{code} {fmt(facts, asset, minor)}" for code, minor in sorted(elsewhere.items()))
        checks.append(Check(rule, asset, "pass" if in_trust >= required else "fail",
                            fmt(facts, asset, in_trust), fmt(facts, asset, required), detail,
                            {"in_trust": fmt(facts, asset, in_trust),
                             "customer_liabilities": fmt(facts, asset, liabilities),
                             "outside_trust": fmt(facts, asset, sum(elsewhere.values()))}))
    return checks


def hot_and_total(facts: RunFacts) -> tuple[dict[str, int], dict[str, int]]:
    """Customer crypto per asset: held in hot wallets, and held anywhere."""
    hot: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    crypto = set(crypto_assets(facts))
    for comparison in customer_custody(facts):
        if comparison.asset not in crypto:
            continue
        total[comparison.asset] += held_minor(comparison)
        if is_hot(comparison):
            hot[comparison.asset] += held_minor(comparison)
    return hot, total


def jp_cold_95(facts: RunFacts, params: ColdParams, rule: str = "JP-COLD-95") -> list[Check]:
    """Customer crypto in hot wallets ≤ (1 − min_cold_share) of all customer crypto, by value,
    over all assets together; each asset's own share is shown in the numbers."""
    hot, total = hot_and_total(facts)
    threshold = str(params.min_cold_share)
    held = {asset: minor for asset, minor in total.items() if minor}
    if not held:
        return [Check(rule, "*", "pass", "1", threshold, "no customer crypto held")]
    numbers = {f"{asset}.hot_share": percent(Fraction(hot[asset], minor))
               for asset, minor in sorted(held.items())}
    valuer = Valuer(facts.prices, facts.currency, facts.ledger.scales)
    hot_value = valuer.total({a: hot[a] for a in held})
    total_value = valuer.total(held)
    by_quantity = None  # the one asset whose minor units the shares are counted in, if so
    if hot_value is None or total_value is None:
        if len(held) > 1:
            return [not_applicable(rule, "*", threshold, valuer.why_not())]
        # One asset only: the share by value is the share by quantity, whatever the price.
        (by_quantity, minor), = held.items()
        hot_value, total_value = Fraction(hot[by_quantity]), Fraction(minor)
        basis = f"by quantity of {by_quantity}, the only customer crypto held (no price needed)"
    else:
        basis = f"by {valuer.quote} value"
        numbers.update({"hot_value": show(hot_value, 0), "total_value": show(total_value, 0)})
    cold_share = 1 - hot_value / total_value
    passed = cold_share >= Fraction(params.min_cold_share)
    detail = (f"{percent(cold_share)} of customer crypto is cold, {basis}; at least "
              f"{percent(Fraction(params.min_cold_share))} must be")
    if not passed:
        excess_hot = hot_value - (1 - Fraction(params.min_cold_share)) * total_value
        # Rounded up: moving less than this would still leave the share short.
        # Rounded up: moving less than this would leave the share short.
        amount = (f"{math.ceil(excess_hot)} (value)" if by_quantity is None else
                  f"{fmt(facts, by_quantity, ceil_minor(1, excess_hot))} {by_quantity}")
        detail += f"; move {amount} from hot to cold"
    return [Check(rule, "*", "pass" if passed else "fail", show(cold_share, 4), threshold,
                  detail, numbers)]


def jp_guarantee(facts: RunFacts, params: GuaranteeParams) -> list[Check]:
    """Per crypto asset, the company's own guarantee crypto, kept cold, ≥ min_ratio × the
    customer crypto held in hot wallets (履行保証暗号資産)."""
    hot, _ = hot_and_total(facts)
    checks = []
    for asset in crypto_assets(facts):
        guarantee = [c for c in only(facts.comparisons, asset)
                     if is_purpose(c, Purpose.GUARANTEE)]
        counted = sum(held_minor(c) for c in guarantee if not is_hot(c))
        not_counted = sum(held_minor(c) for c in guarantee if is_hot(c))
        if not hot[asset] and not guarantee:
            continue
        required = ceil_minor(hot[asset], Fraction(params.min_ratio))
        detail = (f"guarantee crypto (cold) {fmt(facts, asset, counted)} vs customer crypto in "
                  f"hot wallets {fmt(facts, asset, hot[asset])}")
        if counted < required:
            detail += f": too little by {fmt(facts, asset, required - counted)}"
        if not_counted:
            detail += (f"; {fmt(facts, asset, not_counted)} of guarantee crypto sits in a hot "
                       "wallet and does not count")
        checks.append(Check("JP-GUARANTEE", asset, "pass" if counted >= required else "fail",
                            fmt(facts, asset, counted), fmt(facts, asset, required), detail,
                            {"guarantee_cold": fmt(facts, asset, counted),
                             "customer_hot": fmt(facts, asset, hot[asset]),
                             "guarantee_hot_not_counted": fmt(facts, asset, not_counted)}))
    return checks


def seg_excess(facts: RunFacts, params: ExcessParams) -> list[Check]:
    """Company money standing in the customer pool (the ledger's coverage above zero) must be
    swept out; up to `tolerance` of it may wait."""
    custody: dict[str, int] = defaultdict(int)
    for comparison in customer_custody(facts):
        custody[comparison.asset] += comparison.ledger_minor
    checks = []
    for asset in sorted(custody.keys() | facts.ledger.liabilities_minor.keys()):
        scale = facts.ledger.scales[asset]
        # Exact at any length; a tolerance finer than the asset's scale rounds down.
        tolerance_minor, _ = to_minor(params.tolerance.get(asset, Decimal(0)), scale)
        excess = custody[asset] - facts.ledger.liabilities_minor.get(asset, 0)
        if excess <= tolerance_minor:
            detail = ("no company money in the customer pool" if excess <= 0 else
                      f"{fmt(facts, asset, excess)} of company money in the customer pool, "
                      "within the tolerance")
        else:
            detail = (f"{fmt(facts, asset, excess)} of company money (fees, own funds) stands "
                      f"in the customer pool; sweep it to a company account")
        checks.append(Check("SEG-EXCESS", asset, "pass" if excess <= tolerance_minor else "fail",
                            fmt(facts, asset, max(excess, 0)),
                            fmt(facts, asset, tolerance_minor), detail,
                            {"customer_custody_ledger": fmt(facts, asset, custody[asset]),
                             "customer_liabilities": fmt(
                                 facts, asset, facts.ledger.liabilities_minor.get(asset, 0))}))
    return checks


IDENTIFIER_KEYS = ("addresses", "descriptors", "address", "iban", "bank_account")


def _identifiers(external: object) -> list[str]:
    found: list[str] = []
    if not isinstance(external, dict):
        return found
    for key in IDENTIFIER_KEYS:
        value = external.get(key)
        for item in (value if isinstance(value, list) else [value]):
            if isinstance(item, str) and item.strip():
                found.append(_normalise(key, item.strip()))
    return found


def _normalise(key: str, value: str) -> str:
    # Hex and bech32 addresses are case-insensitive; base58 and descriptors are not.
    lowered = value.lower()
    if lowered.startswith(("0x", "bc1", "tb1", "bcrt1", "ltc1", "tltc1", "rltc1")):
        return lowered
    if key in ("iban", "bank_account"):
        return f"{key}:{''.join(value.split()).upper()}"
    return value


def wallet_disjoint(facts: RunFacts, params: NoParams) -> list[Check]:
    """No address, descriptor or bank account is used by both pools."""
    users: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for custody in facts.ledger.custody:
        for identifier in _identifiers(custody.account.external):
            users[identifier][custody.account.pool.value].add(custody.account.code)
    shared = {identifier: pools for identifier, pools in users.items()
              if len(pools) == len(Pool)}
    if not shared:
        return [Check("WALLET-DISJOINT", "*", "pass", "0", "0",
                      f"{len(users)} addresses and accounts, none shared by the two pools")]
    detail = "; ".join(
        f"{identifier} is used by customer {sorted(pools['customer'])} and company "
        f"{sorted(pools['company'])}" for identifier, pools in sorted(shared.items()))
    return [Check("WALLET-DISJOINT", "*", "fail", str(len(shared)), "0", detail)]


def hk_insurance(facts: RunFacts, params: InsuranceCoverParams) -> list[Check]:
    """Insurance in force covers hot_cover × customer crypto in hot wallets plus cold_cover ×
    the rest, by value (SFC VATP terms)."""
    hot, total = hot_and_total(facts)
    threshold_text = f"{params.hot_cover} hot + {params.cold_cover} cold"
    valuer = Valuer(facts.prices, facts.currency, facts.ledger.scales)
    hot_value = valuer.total(hot)
    cold_value = valuer.total({a: total[a] - hot.get(a, 0) for a in total})
    if hot_value is None or cold_value is None:
        return [not_applicable("HK-INSURANCE", "*", threshold_text, valuer.why_not())]
    exposure = Fraction(params.hot_cover) * hot_value + Fraction(params.cold_cover) * cold_value
    policies = facts.reserve.policies if facts.reserve else ()
    counted = Fraction(0)
    unvalued = []
    for policy in policies:
        if not policy.in_force(facts.ledger.as_of):
            continue
        limit = valuer.value(policy.currency, policy.limit_minor)
        if limit is None:
            unvalued.append(policy.policy_id)
            continue
        counted += min(limit, Fraction(policy.covered_share) * exposure)
    detail = (f"insurance in force {show(counted, 0)} vs required cover {show(exposure, 0)} "
              f"{valuer.quote}")
    if unvalued:
        detail += f"; not counted (no price for their currency): {', '.join(unvalued)}"
    return [Check("HK-INSURANCE", "*", "pass" if counted >= exposure else "fail",
                  show(counted, 0), show(exposure, 0), detail,
                  {"hot_value": show(hot_value, 0), "cold_value": show(cold_value, 0)})]
