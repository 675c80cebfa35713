"""Rule checks: plain functions over a run's numbers, one function per rule id.

Every rule takes the run's facts and its parameters and returns check results in the shape
of CONTRACT.md (rule, asset, status, value, threshold, detail). The rulebook issue adds its
rules through the same `RULES` table.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger.model import Pool
from ledger.money import format_amount
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
class RunFacts:
    ledger: LedgerFacts
    comparisons: Sequence[Comparison]


Rule = Callable[[RunFacts, Mapping[str, Any]], list[Check]]


def seg_coverage(facts: RunFacts, params: Mapping[str, Any]) -> list[Check]:
    """Customer custody ≥ customer liabilities, per asset.

    Custody counts what the evidence shows where there is evidence, and the ledger's figure
    (said so in the detail) where there is none.
    """
    custody: dict[str, int] = defaultdict(int)
    unevidenced: dict[str, list[str]] = defaultdict(list)
    for comparison in facts.comparisons:
        if comparison.pool != Pool.CUSTOMER.value:
            continue
        if comparison.external_minor is None:
            custody[comparison.asset] += comparison.ledger_minor
            unevidenced[comparison.asset].append(comparison.account)
        else:
            custody[comparison.asset] += comparison.external_minor
    checks = []
    for asset in sorted(facts.ledger.scales):
        scale = facts.ledger.scales[asset]
        liabilities = facts.ledger.liabilities_minor.get(asset, 0)
        coverage = custody[asset] - liabilities
        detail = (f"customer custody {format_amount(custody[asset], scale)} vs customer "
                  f"liabilities {format_amount(liabilities, scale)}")
        if unevidenced[asset]:
            detail += f"; ledger figure used for {', '.join(unevidenced[asset])} (no evidence)"
        checks.append(Check(
            "SEG-COVERAGE", asset, "pass" if coverage >= 0 else "fail",
            format_amount(coverage, scale), format_amount(0, scale), detail,
            {"customer_custody": format_amount(custody[asset], scale),
             "customer_liabilities": format_amount(liabilities, scale)}))
    return checks


def seg_external(facts: RunFacts, params: Mapping[str, Any]) -> list[Check]:
    """Ledger = evidence, per custody account (dust below the ledger's scale aside)."""
    checks = []
    for comparison in facts.comparisons:
        scale = comparison.scale
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


RULES: dict[str, Rule] = {
    "SEG-COVERAGE": seg_coverage,
    "SEG-EXTERNAL": seg_external,
}
DEFAULT_RULEBOOK: dict[str, Any] = {"name": "jp-fsa", "version": "2026.1", "rules": {
    "SEG-COVERAGE": {}, "SEG-EXTERNAL": {}}}


def evaluate(facts: RunFacts, rulebook: Mapping[str, Any] = DEFAULT_RULEBOOK) -> list[Check]:
    checks: list[Check] = []
    for rule_id, params in rulebook["rules"].items():
        checks.extend(RULES[rule_id](facts, params))
    return checks
