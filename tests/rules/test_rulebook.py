"""Rulebooks: the presets load; a file `extends` a preset and changes what it names (`null`
removes a rule), or lists every rule with every parameter; every value is checked against the
rule's parameter model, and a bad one is an InputError naming its path."""

import json
from decimal import Decimal
from typing import Any

import pytest

from ledger.errors import InputError
from reconcile.rules.params import ColdParams
from reconcile.rules.rulebook import PRESETS, RULES, from_json, load_rulebook, parse_rulebook, preset
from tests.rules.facts import only_check, run_facts

JP_RULES = ["SEG-COVERAGE", "SEG-EXTERNAL", "JP-FIAT-TRUST", "JP-COLD-95", "JP-GUARANTEE",
            "SEG-EXCESS", "JP-RESERVE", "RESERVE-DRAW", "WALLET-DISJOINT"]


def book(rules: dict[str, Any], extends: str | None = "jp-fsa") -> str:
    document: dict[str, Any] = {"name": "house-rules", "version": "7", "rules": rules}
    if extends is not None:
        document["extends"] = extends
    return json.dumps(document)


def refused(text: str) -> InputError:
    with pytest.raises(InputError) as raised:
        parse_rulebook(text, "house.json")
    assert raised.value.source == "house.json"
    return raised.value


def test_the_presets_load_with_every_parameter() -> None:
    jp = load_rulebook(None)
    assert (jp.name, jp.version, jp.extends) == ("jp-fsa", "2026.1", None)
    assert list(jp.rules) == JP_RULES
    assert jp.params("JP-COLD-95").min_cold_share == Decimal("0.95")
    assert jp.params("JP-RESERVE").floor == Decimal("2000000000")
    assert load_rulebook("jp").rules == jp.rules
    assert load_rulebook("hk").rules == preset("hk-sfc").rules
    assert all(rule_id in RULES for name in PRESETS for rule_id in PRESETS[name]["rules"])


def test_a_file_extending_jp_fsa_changes_one_threshold_and_keeps_the_rest() -> None:
    stricter = parse_rulebook(book({"JP-COLD-95": {"min_cold_share": "0.97"}}), "house.json")
    jp = preset("jp-fsa")
    assert (stricter.name, stricter.version, stricter.extends) == ("house-rules", "7", "jp-fsa")
    assert stricter.params("JP-COLD-95") == ColdParams.model_validate({"min_cold_share": "0.97"})
    assert {k: v for k, v in stricter.rules.items() if k != "JP-COLD-95"} == \
        {k: v for k, v in jp.rules.items() if k != "JP-COLD-95"}


def test_the_changed_threshold_decides_the_check() -> None:
    # 96% cold passes the preset's 95% and fails the file's 97%.
    facts = run_facts(
        [("cust:btc:cold", "BTC", "customer", "cold_wallet", "segregated", "9.6", "9.6"),
         ("cust:btc:hot", "BTC", "customer", "hot_wallet", "segregated", "0.4", "0.4")],
        {"BTC": "10"})
    stricter = parse_rulebook(book({"JP-COLD-95": {"min_cold_share": "0.97"}}), "house.json")
    assert only_check(preset("jp-fsa").evaluate_one("JP-COLD-95", facts)).status == "pass"
    assert only_check(stricter.evaluate_one("JP-COLD-95", facts)).status == "fail"


def test_extending_one_parameter_of_a_rule_keeps_its_other_parameters() -> None:
    cheaper = parse_rulebook(book({"JP-RESERVE": {"floor": "0"}}), "house.json")
    assert cheaper.params("JP-RESERVE").floor == Decimal("0")
    assert cheaper.params("JP-RESERVE").rate == Decimal("0.0002")


def test_null_removes_a_rule() -> None:
    without = parse_rulebook(book({"JP-RESERVE": None}), "house.json")
    assert "JP-RESERVE" not in without.rules
    assert list(without.rules) == [r for r in JP_RULES if r != "JP-RESERVE"]


def test_yaml_is_read_as_well() -> None:
    text = ("name: house-rules\nversion: '7'\nextends: jp\nrules:\n"
            "  JP-COLD-95:\n    min_cold_share: '0.97'\n  JP-RESERVE: null\n")
    parsed = parse_rulebook(text, "house.yaml")
    assert parsed.extends == "jp-fsa"
    assert parsed.params("JP-COLD-95").min_cold_share == Decimal("0.97")
    assert parsed.params("JP-RESERVE") is None


def test_a_rulebook_round_trips_through_its_stored_json() -> None:
    stricter = parse_rulebook(book({"JP-COLD-95": {"min_cold_share": "0.97"}}), "house.json")
    again = from_json(stricter.to_json())
    assert (again.name, again.version, again.extends, again.rules) == (
        stricter.name, stricter.version, stricter.extends, stricter.rules)


def test_an_unknown_rule_is_refused() -> None:
    error = refused(book({"JP-COLD-99": {"min_cold_share": "0.95"}}))
    assert error.field == "rules.JP-COLD-99"
    assert error.reason.startswith('unknown rule "JP-COLD-99"')


def test_a_share_above_one_is_refused() -> None:
    error = refused(book({"JP-COLD-95": {"min_cold_share": "1.5"}}))
    assert error.field == "rules.JP-COLD-95.min_cold_share"


def test_a_negative_share_is_refused() -> None:
    assert refused(book({"JP-COLD-95": {"min_cold_share": "-0.1"}})).field == \
        "rules.JP-COLD-95.min_cold_share"


def test_a_missing_parameter_without_extends_is_refused() -> None:
    error = refused(book({"JP-COLD-95": {}}, extends=None))
    assert (error.field, error.reason) == ("rules.JP-COLD-95.min_cold_share",
                                           "missing: this field is required")


def test_a_float_instead_of_a_decimal_string_is_refused() -> None:
    error = refused(book({"JP-COLD-95": {"min_cold_share": 0.95}}))
    assert error.field == "rules.JP-COLD-95.min_cold_share"
    assert error.reason == ('must be a decimal number as text, such as "0.95", not the number '
                            '0.95 (write it in quotes)')


def test_a_yaml_float_is_refused_as_well() -> None:
    text = "name: h\nversion: '1'\nextends: jp-fsa\nrules:\n  JP-COLD-95:\n    min_cold_share: 0.95\n"
    with pytest.raises(InputError) as raised:
        parse_rulebook(text, "house.yaml")
    assert raised.value.field == "rules.JP-COLD-95.min_cold_share"


def test_a_day_count_as_text_is_refused() -> None:
    assert refused(book({"JP-RESERVE": {"lookback_days": "365"}})).field == \
        "rules.JP-RESERVE.lookback_days"


def test_an_unknown_parameter_is_refused() -> None:
    assert refused(book({"JP-COLD-95": {"min_cold_shares": "0.95"}})).field == \
        "rules.JP-COLD-95.min_cold_shares"


def test_an_unknown_preset_is_refused() -> None:
    error = refused(book({}, extends="eu-mica"))
    assert error.field == "extends"
    assert error.reason == 'unknown preset "eu-mica" (known: jp-fsa, hk-sfc)'


def test_a_rulebook_with_no_rule_left_is_refused() -> None:
    assert refused(book({}, extends=None)).field == "rules"


def test_an_unknown_rulebook_name_is_refused() -> None:
    with pytest.raises(InputError) as raised:
        load_rulebook("/nonexistent/eu-mica")
    assert raised.value.field == "--rulebook"


def test_a_rulebook_with_tiny_thresholds_reads_back_as_it_was_stored() -> None:
    """A stored run keeps its resolved rulebook; digits, not "1E-7", or a rerun cannot read it."""
    book = parse_rulebook(json.dumps({
        "name": "fine", "version": "1", "extends": "jp-fsa",
        "rules": {"SEG-EXCESS": {"tolerance": {"BTC": "0.0000001"}},
                  "JP-RESERVE": {"rate": "0.00000001"}}}), "fine.json")
    stored = book.to_json()
    assert stored["rules"]["SEG-EXCESS"]["tolerance"] == {"BTC": "0.0000001"}
    assert stored["rules"]["JP-RESERVE"]["rate"] == "0.00000001"
    again = from_json(json.loads(json.dumps(stored)))
    assert again.to_json() == stored
