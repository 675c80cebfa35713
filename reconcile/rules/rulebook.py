"""Rulebooks: which rules apply and with which thresholds, as versioned data.

A preset (`jp-fsa`, the default, or `hk-sfc`) or a file. A file either lists every rule it
applies with every parameter, or `extends` a preset and changes what it names (`null`
removes a rule). Every value is checked against the rule's parameter model before a run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ledger.chart import load_document
from ledger.entries import from_pydantic
from ledger.errors import InputError
from reconcile.rules import reserve, segregation
from reconcile.rules.base import Check, RunFacts
from reconcile.rules.params import (
    ColdParams,
    ExcessParams,
    GuaranteeParams,
    InsuranceCoverParams,
    NoParams,
    Params,
    ReserveParams,
    TrustParams,
)

MAX_RULEBOOK_BYTES = 1_000_000


@dataclass(frozen=True)
class Rule:
    check: Callable[[RunFacts, Any], list[Check]]
    params: type[Params]


RULES: Mapping[str, Rule] = {
    "SEG-COVERAGE": Rule(segregation.seg_coverage, NoParams),
    "SEG-EXTERNAL": Rule(segregation.seg_external, NoParams),
    "JP-FIAT-TRUST": Rule(segregation.jp_fiat_trust, TrustParams),
    "JP-COLD-95": Rule(segregation.jp_cold_95, ColdParams),
    "JP-GUARANTEE": Rule(segregation.jp_guarantee, GuaranteeParams),
    "SEG-EXCESS": Rule(segregation.seg_excess, ExcessParams),
    "JP-RESERVE": Rule(reserve.jp_reserve, ReserveParams),
    "RESERVE-DRAW": Rule(reserve.reserve_draw, NoParams),
    "WALLET-DISJOINT": Rule(segregation.wallet_disjoint, NoParams),
    "HK-COLD-98": Rule(lambda facts, p: segregation.jp_cold_95(facts, p, "HK-COLD-98"),
                       ColdParams),
    "HK-INSURANCE": Rule(segregation.hk_insurance, InsuranceCoverParams),
}

# Sources and reasoning for each number: REGULATION.md. [U] values are parameters because no
# primary text fixes them.
PRESETS: Mapping[str, Mapping[str, Any]] = {
    "jp-fsa": {"name": "jp-fsa", "version": "2026.1", "rules": {
        "SEG-COVERAGE": {},
        "SEG-EXTERNAL": {},
        "JP-FIAT-TRUST": {"min_ratio": "1"},
        "JP-COLD-95": {"min_cold_share": "0.95"},
        "JP-GUARANTEE": {"min_ratio": "1"},
        "SEG-EXCESS": {"tolerance": {}},
        "JP-RESERVE": {"formula": "jp-reserve-v1", "currency": "JPY", "lookback_days": 365,
                       "rate": "0.0002", "incident_years": 3, "incident_weight": "5",
                       "risk_multiplier": "1", "floor": "2000000000", "insurance_cap": "0.5"},
        "RESERVE-DRAW": {},
        "WALLET-DISJOINT": {},
    }},
    "hk-sfc": {"name": "hk-sfc", "version": "2026.1", "rules": {
        "SEG-COVERAGE": {},
        "SEG-EXTERNAL": {},
        "HK-COLD-98": {"min_cold_share": "0.98"},
        "HK-INSURANCE": {"hot_cover": "1", "cold_cover": "0.5"},
        "SEG-EXCESS": {"tolerance": {}},
        "RESERVE-DRAW": {},
        "WALLET-DISJOINT": {},
    }},
}
ALIASES = {"jp": "jp-fsa", "hk": "hk-sfc"}


@dataclass(frozen=True)
class Rulebook:
    name: str
    version: str
    rules: Mapping[str, Params]
    extends: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Every parameter resolved: what a stored run needs to be evaluated again."""
        return {"name": self.name, "version": self.version, "extends": self.extends,
                "rules": {rule_id: json.loads(params.model_dump_json())
                          for rule_id, params in self.rules.items()}}

    def evaluate(self, facts: RunFacts) -> list[Check]:
        """In the registry's order, whatever the file's: a stored run's JSON sorts its keys,
        and a re-run must list the checks as the run did."""
        checks: list[Check] = []
        for rule_id, rule in RULES.items():
            if rule_id in self.rules:
                checks.extend(rule.check(facts, self.rules[rule_id]))
        return checks

    def evaluate_one(self, rule_id: str, facts: RunFacts) -> list[Check]:
        return RULES[rule_id].check(facts, self.rules[rule_id])

    def params(self, rule_id: str) -> Any:
        return self.rules.get(rule_id)


class _RulebookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]
    version: Annotated[str, Field(min_length=1, max_length=50)]
    extends: str | None = None
    rules: dict[str, dict[str, Any] | None]


def preset(name: str) -> Rulebook:
    return _build(PRESETS[ALIASES.get(name, name)], None, "preset")


DEFAULT = "jp-fsa"


def load_rulebook(name_or_path: str | None) -> Rulebook:
    """A preset by name, or a rulebook file."""
    name = ALIASES.get(name_or_path or DEFAULT, name_or_path or DEFAULT)
    if name in PRESETS:
        return preset(name)
    path = Path(name)
    if not path.exists():
        raise InputError(f"no rulebook {name_or_path!r}: neither a preset "
                         f"({', '.join(PRESETS)}) nor a file", field="--rulebook")
    try:
        content = path.read_bytes()
    except OSError as error:
        raise InputError(f"cannot read: {error.strerror}", source=name) from None
    if len(content) > MAX_RULEBOOK_BYTES:
        raise InputError(f"larger than {MAX_RULEBOOK_BYTES} bytes", source=name)
    return parse_rulebook(content.decode("utf-8", errors="replace"), name)


def parse_rulebook(text: str, source: str) -> Rulebook:
    raw = load_document(text, source)
    try:
        parsed = _RulebookIn.model_validate(raw)
    except ValidationError as error:
        raise from_pydantic(error).located(source=source) from None
    base = None
    if parsed.extends is not None:
        extends = ALIASES.get(parsed.extends, parsed.extends)
        if extends not in PRESETS:
            raise InputError(f"unknown preset {parsed.extends!r} (known: {', '.join(PRESETS)})",
                             source=source, field="extends")
        base = PRESETS[extends]
    return _build({"name": parsed.name, "version": parsed.version, "rules": parsed.rules},
                  base, source)


def from_json(document: Mapping[str, Any]) -> Rulebook:
    """Back from `Rulebook.to_json` (a stored run's rulebook)."""
    book = _build(document, None, "stored rulebook")
    return Rulebook(book.name, book.version, book.rules, document.get("extends"))


def _build(document: Mapping[str, Any], base: Mapping[str, Any] | None, source: str) -> Rulebook:
    rules: dict[str, Any] = dict(base["rules"]) if base else {}
    for rule_id, params in document["rules"].items():
        if rule_id not in RULES:
            raise InputError(f"unknown rule {rule_id!r} (known: {', '.join(sorted(RULES))})",
                             source=source, field=f"rules.{rule_id}")
        if params is None:
            rules.pop(rule_id, None)
        else:
            rules[rule_id] = {**rules.get(rule_id, {}), **params}
    if not rules:
        raise InputError("a rulebook applies at least one rule", source=source, field="rules")
    checked: dict[str, Params] = {}
    for rule_id, params in rules.items():
        try:
            checked[rule_id] = RULES[rule_id].params.model_validate(params)
        except ValidationError as error:
            problem = from_pydantic(error)
            # pydantic writes bounds as Decimal('1'); a user reads 1.
            reason = re.sub(r"Decimal\('([^']*)'\)", r"\1", problem.reason)
            raise InputError(reason, source=source,
                             field=f"rules.{rule_id}.{problem.field}" if problem.field
                             else f"rules.{rule_id}") from None
    return Rulebook(str(document["name"]), str(document["version"]), checked,
                    base["name"] if base else None)
