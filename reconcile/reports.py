"""The auditor's daily statements, from the ledger alone: segregation and liability reserve.

Both evaluate the same rule functions as a reconciliation run, on the ledger's own figures
(no outside evidence), so a statement and a run can never disagree on the arithmetic.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from fractions import Fraction
from typing import Any

from sqlalchemy import Connection, Engine

from ledger.model import Purpose
from ledger.money import format_amount
from ledger.prices import check_covers, parse_prices
from ledger.reserves import show
from ledger.storage import reserve_store
from ledger.storage.engine import for_reading
from ledger.storage.rows import load_assets
from reconcile import store
from reconcile.engine import compare
from reconcile.rules import Rulebook, RunFacts, preset
from reconcile.rules.base import Valuer, is_hot, is_purpose
from reconcile.rules.params import ReserveParams
from reconcile.rules.reserve import assess
from reconcile.service import check_json, check_quote, held_assets, read_input

SEGREGATION_RULES = ("SEG-COVERAGE", "JP-FIAT-TRUST", "JP-COLD-95", "HK-COLD-98", "JP-GUARANTEE",
                     "SEG-EXCESS", "WALLET-DISJOINT", "HK-INSURANCE")


def _facts(connection: Connection, as_of: datetime, prices_path: str | None,
           rulebook: Rulebook) -> RunFacts:
    """The run's facts from the ledger alone (no evidence), in the caller's snapshot."""
    prices = None
    if prices_path is not None:
        prices = parse_prices(read_input(prices_path), prices_path)
    ledger = store.load_ledger_facts(connection, as_of)
    if prices is not None:
        check_covers(prices, held_assets(ledger), load_assets(connection), prices_path or "")
        check_quote(prices, rulebook, prices_path or "")
    reserve = store.load_reserve_facts(connection, as_of, None, rulebook)
    comparisons, _ = compare(ledger, [])
    return RunFacts(ledger, comparisons, prices, reserve, rulebook.currency)


def segregation(engine: Engine, as_of: datetime, prices_path: str | None,
                rulebook: Rulebook | None = None) -> dict[str, Any]:
    rulebook = rulebook or preset("jp-fsa")
    with for_reading(engine).connect() as connection:
        facts = _facts(connection, as_of, prices_path, rulebook)
        open_breach = store.open_breach_assets(connection)
    scales = facts.ledger.scales
    valuer = Valuer(facts.prices, rulebook.currency, scales)
    by_location: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    guarantee: dict[str, int] = defaultdict(int)
    hot: dict[str, int] = defaultdict(int)
    for comparison in facts.comparisons:
        if comparison.pool == "customer":
            by_location[comparison.asset][comparison.location] += comparison.ledger_minor
            if is_hot(comparison):
                hot[comparison.asset] += comparison.ledger_minor
        elif is_purpose(comparison, Purpose.GUARANTEE) and not is_hot(comparison):
            guarantee[comparison.asset] += comparison.ledger_minor
    assets = []
    for asset in sorted(scales):
        scale = scales[asset]
        custody = sum(by_location[asset].values())
        liabilities = facts.ledger.liabilities_minor.get(asset, 0)
        if not custody and not liabilities and not guarantee[asset]:
            continue
        value = valuer.value(asset, liabilities)
        row: dict[str, Any] = {
            "asset": asset, "kind": facts.ledger.kinds.get(asset),
            "customer_liabilities": format_amount(liabilities, scale),
            "customer_custody": {loc: format_amount(m, scale)
                                 for loc, m in sorted(by_location[asset].items())},
            "customer_custody_total": format_amount(custody, scale),
            "coverage": format_amount(custody - liabilities, scale),
            "excess": format_amount(max(custody - liabilities, 0), scale),
            "open_breach": asset in open_breach,
            "liabilities_value": None if value is None else show(value, 0),
        }
        if facts.ledger.kinds.get(asset) == "crypto":
            row["hot_share"] = (show(Fraction(hot[asset], custody), 6) if custody else None)
            row["guarantee_cold"] = format_amount(guarantee[asset], scale)
            row["guarantee_coverage"] = (show(Fraction(guarantee[asset], hot[asset]), 6)
                                         if hot[asset] else None)
        else:
            row["in_trust"] = format_amount(by_location[asset].get("bank_trust", 0), scale)
        assets.append(row)
    checks = [c for rule in SEGREGATION_RULES if rule in rulebook.rules
              for c in rulebook.evaluate_one(rule, facts)]
    return {"report": "segregation", "as_of": as_of.isoformat(),
            "rulebook": {"name": rulebook.name, "version": rulebook.version},
            "currency": valuer.quote,  # of liabilities_value: the rulebook's
            "prices": facts.prices.to_json() if facts.prices else None,
            "basis": "ledger balances at the as-of time (no outside evidence)",
            "assets": assets, "checks": [check_json(c) for c in checks],
            "failed": sum(c.status == "fail" for c in checks)}


def reserve(engine: Engine, as_of: datetime, prices_path: str | None,
            rulebook: Rulebook | None = None) -> dict[str, Any]:
    rulebook = rulebook or preset("jp-fsa")
    # A rulebook without JP-RESERVE (hk-sfc) still gets the statement, by Japan's formula.
    source = rulebook if "JP-RESERVE" in rulebook.rules else preset("jp-fsa")
    params: ReserveParams = source.params("JP-RESERVE")
    with for_reading(engine).connect() as connection:
        facts = _facts(connection, as_of, prices_path, rulebook)
        draws = reserve_store.draws(connection, as_of, None)
        incidents = reserve_store.incident_records(connection, as_of)
    assessment = assess(facts, params)
    scale = facts.ledger.scales.get(params.currency, 0)
    [check] = source.evaluate_one("JP-RESERVE", facts)

    def amount(asset: str, minor: int) -> str:
        return format_amount(minor, facts.ledger.scales[asset])

    requirement = assessment.requirement
    return {
        "report": "reserve", "as_of": as_of.isoformat(),
        "rulebook": {"name": rulebook.name, "version": rulebook.version},
        "currency": params.currency,
        "formula": {"version": params.formula,
                    "parameters": params.model_dump(mode="json"),
                    "numbers": requirement.numbers(scale) if requirement else None,
                    "not_computed_because": assessment.missing},
        "required": None if assessment.required is None else show(assessment.required, scale),
        "held": None if assessment.held is None else show(assessment.held, scale),
        "held_by_asset": assessment.held_by_asset,
        "appropriation_by_asset": assessment.appropriation_by_asset,
        "insurance": {"in_force": assessment.insurance_in_force,
                      "eligible": None if assessment.insurance_eligible is None
                      else show(assessment.insurance_eligible, scale),
                      "cap": str(params.insurance_cap)},
        "gap": None if assessment.gap is None else show(assessment.gap, scale),
        "losses_in_window": assessment.losses_by_asset,
        "draws": [{"entry": d.entry_key, "type": d.entry_type,
                   "effective_at": d.effective_at.isoformat(),
                   "recorded_at": d.recorded_at.isoformat(), "asset": d.asset,
                   "amount": amount(d.asset, d.amount_minor), "incident": d.incident,
                   "incident_kind": d.incident_kind, "memo": d.memo} for d in draws],
        "incidents": [{"incident": r.incident_id, "kind": r.kind,
                       "opened_at": r.opened_at.isoformat(), "opened_by": r.opened_entry,
                       "links": [{**{k: v for k, v in link.items() if k != "amount_minor"},
                                  "amount": amount(link["asset"], link["amount_minor"])}
                                 for link in r.links],
                       "breaches": [{**{k: v for k, v in b.items()
                                        if k != "opened_coverage_minor"},
                                     "opened_coverage": amount(b["asset"],
                                                               b["opened_coverage_minor"])}
                                    for b in r.breaches]}
                      for r in incidents],
        "check": check_json(check),
    }


def insurance_register(engine: Engine) -> list[dict[str, Any]]:
    """Every registered policy, its limit in units of its currency, times with offset."""
    with for_reading(engine).connect() as connection:
        policies = reserve_store.policies(connection)
        scales = {code: asset.scale for code, asset in load_assets(connection).items()}
    return [{"policy_id": p.policy_id, "insurer": p.insurer, "currency": p.currency,
             "limit": format_amount(p.limit_minor, scales[p.currency]),
             "covered_share": str(p.covered_share),
             "period_start": p.period_start.isoformat(), "period_end": p.period_end.isoformat()}
            for p in policies]
