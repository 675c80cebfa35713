"""Rulebooks: which rules apply and with which thresholds, as versioned data.

A preset (`jp-fsa`, the default, or `hk-sfc`) or a file. A file either lists every rule it
applies with every parameter, or `extends` a preset and changes what it names (`null`
removes a rule). Every value is checked against the rule's parameter model before a run.

Besides its rules a rulebook sets the currency values are compared in, the time zone whose
calendar dates and business days a run counts in, how statement lines are matched
(`matching`) and how old evidence may be (`evidence`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ledger import files
from ledger.chart import load_document
from ledger.errors import InputError, shown
from ledger.json_input import from_pydantic, locate, meaning
from reconcile.engine import ComparePolicy, Freshness
from reconcile.rules import reserve, segregation
from reconcile.rules.base import Check, RunFacts
from reconcile.rules.params import (
    AssetCode,
    ColdParams,
    DrawParams,
    EvidenceParams,
    ExcessParams,
    GuaranteeParams,
    InsuranceCoverParams,
    MatchingParams,
    NoParams,
    Params,
    ReserveParams,
    TrustParams,
    Zone,
)


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
    "RESERVE-DRAW": Rule(reserve.reserve_draw, DrawParams),
    "WALLET-DISJOINT": Rule(segregation.wallet_disjoint, NoParams),
    "HK-COLD-98": Rule(lambda facts, p: segregation.jp_cold_95(facts, p, "HK-COLD-98"),
                       ColdParams),
    "HK-INSURANCE": Rule(segregation.hk_insurance, InsuranceCoverParams),
}

# Evidence age: one business day for statements and custodian snapshots (yesterday's closing
# balance is what a bank gives a daily job); an hour for chain answers, asked at run time, whose
# block should be at or after the as-of (a Bitcoin block interval over an hour is rare).
EVIDENCE_AGE = {"statement_max_age_business_days": 1, "snapshot_max_age_business_days": 1,
                "chain_max_age_s": 3600}
MATCHING = {"window_days": 3, "amount_tolerance": {}}

# Sources and reasoning for each number: REGULATION.md. [U] values are parameters because no
# primary text fixes them. hk-sfc values in JPY as it always has: the SFC terms the preset
# follows name no currency; a platform valuing in HKD extends it with `currency: HKD`.
PRESETS: Mapping[str, Mapping[str, Any]] = {
    "jp-fsa": {"name": "jp-fsa", "version": "2026.1", "currency": "JPY",
               "timezone": "Asia/Tokyo", "matching": MATCHING, "evidence": EVIDENCE_AGE,
               "rules": {
        "SEG-COVERAGE": {},
        "SEG-EXTERNAL": {},
        "JP-FIAT-TRUST": {"min_ratio": "1"},
        "JP-COLD-95": {"min_cold_share": "0.95"},
        "JP-GUARANTEE": {"min_ratio": "1"},
        "SEG-EXCESS": {"tolerance": {}},
        "JP-RESERVE": {"formula": "jp-reserve-v1", "currency": "JPY", "lookback_days": 365,
                       "rate": "0.0002", "incident_years": 3, "incident_weight": "5",
                       "risk_multiplier": "1", "floor": "2000000000", "insurance_cap": "0.5"},
        "RESERVE-DRAW": {"window_business_days": 1},
        "WALLET-DISJOINT": {},
    }},
    "hk-sfc": {"name": "hk-sfc", "version": "2026.1", "currency": "JPY",
               "timezone": "Asia/Hong_Kong", "matching": MATCHING, "evidence": EVIDENCE_AGE,
               "rules": {
        "SEG-COVERAGE": {},
        "SEG-EXTERNAL": {},
        "HK-COLD-98": {"min_cold_share": "0.98"},
        "HK-INSURANCE": {"hot_cover": "1", "cold_cover": "0.5"},
        "SEG-EXCESS": {"tolerance": {}},
        "RESERVE-DRAW": {"window_business_days": 1},
        "WALLET-DISJOINT": {},
    }},
}
ALIASES = {"jp": "jp-fsa", "hk": "hk-sfc"}


class Settings(BaseModel):
    """What a rulebook sets besides its rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: AssetCode  # of valuation: a price file must quote in it
    timezone: Zone  # whose calendar dates and business days a run counts in
    matching: MatchingParams
    evidence: EvidenceParams | None  # None only in a rulebook stored before it existed


# A rulebook file that extends no preset and leaves a setting out gets jp-fsa's.
DEFAULT_SETTINGS: Mapping[str, Any] = {
    key: PRESETS["jp-fsa"][key] for key in ("currency", "timezone", "matching", "evidence")}
# A rulebook stored with a run made before these settings existed: what that run did (values
# in JPY unless the price file quoted otherwise, a three-day matching window, exact amounts,
# evidence of any age compared), so that its rerun evaluates the same.
STORED_BEFORE_SETTINGS: Mapping[str, Any] = {
    "currency": "JPY", "timezone": "Asia/Tokyo", "matching": MATCHING, "evidence": None}


@dataclass(frozen=True)
class Rulebook:
    name: str
    version: str
    rules: Mapping[str, Params]
    extends: str | None = None
    settings: Settings = field(default_factory=lambda: Settings.model_validate(DEFAULT_SETTINGS))

    @property
    def currency(self) -> str:
        return self.settings.currency

    def to_json(self) -> dict[str, Any]:
        """Every parameter resolved: what a stored run needs to be evaluated again."""
        return {"name": self.name, "version": self.version, "extends": self.extends,
                **json.loads(self.settings.model_dump_json()),
                "rules": {rule_id: json.loads(params.model_dump_json())
                          for rule_id, params in self.rules.items()}}

    def compare_policy(self) -> ComparePolicy:
        """The settings a comparison of ledger and evidence takes, as plain values."""
        evidence = self.settings.evidence
        freshness = None if evidence is None else Freshness(
            self.settings.timezone, evidence.statement_max_age_business_days,
            evidence.snapshot_max_age_business_days, evidence.chain_max_age_s)
        return ComparePolicy(self.settings.matching.window_days,
                             dict(self.settings.matching.amount_tolerance), freshness)

    def evaluate(self, facts: RunFacts) -> list[Check]:
        """In the registry's order, whatever the file's: a stored run's JSON sorts its keys,
        and a re-run must list the checks as the run did."""
        facts = self._valued(facts)
        checks: list[Check] = []
        for rule_id, rule in RULES.items():
            if rule_id in self.rules:
                checks.extend(rule.check(facts, self.rules[rule_id]))
        return checks

    def evaluate_one(self, rule_id: str, facts: RunFacts) -> list[Check]:
        return RULES[rule_id].check(self._valued(facts), self.rules[rule_id])

    def _valued(self, facts: RunFacts) -> RunFacts:
        """The facts with this rulebook's currency of valuation, which every rule values in."""
        return replace(facts, currency=self.currency)

    def params(self, rule_id: str) -> Any:
        return self.rules.get(rule_id)


class _RulebookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(pattern=meaning(
        r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$", "a rulebook name: 1 to 100 ASCII letters, digits "
        "and the characters . _ -, starting with a letter or a digit"))]
    version: Annotated[str, Field(min_length=1, max_length=50)]
    extends: str | None = None
    currency: str | None = None
    timezone: str | None = None
    matching: dict[str, Any] | None = None
    evidence: dict[str, Any] | None = None
    rules: dict[str, dict[str, Any] | None]


def preset(name: str) -> Rulebook:
    return _build(PRESETS[ALIASES.get(name, name)], None, "preset", DEFAULT_SETTINGS)


DEFAULT = "jp-fsa"


def load_rulebook(name_or_path: str | None) -> Rulebook:
    """A preset by name, or a rulebook file."""
    name = ALIASES.get(name_or_path or DEFAULT, name_or_path or DEFAULT)
    if name in PRESETS:
        return preset(name)
    if not Path(name).exists():
        raise InputError(f"no rulebook {shown(name_or_path)}: neither a preset "
                         f"({', '.join(PRESETS)}) nor a file", field="--rulebook")
    return parse_rulebook(files.read_text(name), name)


def parse_rulebook(text: str, source: str) -> Rulebook:
    try:
        return _parse_rulebook(text, source)
    except InputError as error:
        raise locate(error, text) from None


def _parse_rulebook(text: str, source: str) -> Rulebook:
    raw = load_document(text, source)
    try:
        parsed = _RulebookIn.model_validate(raw)
    except ValidationError as error:
        raise from_pydantic(error, _RulebookIn).located(source=source) from None
    base = None
    if parsed.extends is not None:
        extends = ALIASES.get(parsed.extends, parsed.extends)
        if extends not in PRESETS:
            raise InputError(f"unknown preset {shown(parsed.extends)} (known: "
                             f"{', '.join(PRESETS)})", source=source, field="extends")
        base = PRESETS[extends]
    document = {"name": parsed.name, "version": parsed.version, "rules": parsed.rules,
                "currency": parsed.currency, "timezone": parsed.timezone,
                "matching": parsed.matching, "evidence": parsed.evidence}
    return _build(document, base, source, DEFAULT_SETTINGS)


def from_json(document: Mapping[str, Any]) -> Rulebook:
    """Back from `Rulebook.to_json` (a stored run's rulebook, perhaps one stored before the
    settings existed: it gets what its run did)."""
    book = _build(document, None, "stored rulebook", STORED_BEFORE_SETTINGS)
    return replace(book, extends=document.get("extends"))


def _build(document: Mapping[str, Any], base: Mapping[str, Any] | None, source: str,
           defaults: Mapping[str, Any]) -> Rulebook:
    rules: dict[str, Any] = dict(base["rules"]) if base else {}
    for rule_id, params in document["rules"].items():
        if rule_id not in RULES:
            raise InputError(f"unknown rule {shown(rule_id)} (known: "
                             f"{', '.join(sorted(RULES))})", source=source,
                             field=f"rules.{rule_id}")
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
            problem = from_pydantic(error, RULES[rule_id].params)
            raise InputError(problem.reason, source=source,
                             field=f"rules.{rule_id}.{problem.field}" if problem.field
                             else f"rules.{rule_id}") from None
    return Rulebook(str(document["name"]), str(document["version"]), checked,
                    base["name"] if base else None,
                    _settings(document, base or defaults, source))


def _settings(document: Mapping[str, Any], base: Mapping[str, Any], source: str) -> Settings:
    """The base's settings with what the document names over them; `matching` and `evidence`
    change only the parameters they name, like a rule's."""
    merged = {key: base[key] for key in Settings.model_fields}
    for key in Settings.model_fields:
        given = document.get(key)
        if given is None:
            continue
        merged[key] = ({**merged[key], **given} if isinstance(given, Mapping)
                       and isinstance(merged[key], Mapping) else given)
    try:
        return Settings.model_validate(merged)
    except ValidationError as error:
        problem = from_pydantic(error, Settings)
        raise InputError(problem.reason, source=source, field=problem.field) from None
