"""Rulebook, price and insurance-register files through the real `segledger` command, on SQLite
and PostgreSQL: a bad file is exit 2 with one line naming the file and the field, and nothing is
stored (no reconciliation run, no policy); a good file is used and stored with the run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from ledger.chart import parse_chart
from ledger.storage.chart_store import load_chart
from tests.helpers import AS_OF, CHART, POLICY, PRICES, cli, deposit, post, snapshot


@pytest.fixture
def ledger(engine: Engine) -> Engine:
    """The test chart plus ETH, an asset the ledger knows but does not hold: customers hold
    JPY and BTC."""
    chart = json.loads(json.dumps(CHART))
    chart["assets"].append({"code": "ETH", "kind": "crypto", "scale": 18, "chain": "ethereum"})
    load_chart(engine, parse_chart(json.dumps(chart), "chart.json"), "chart.json")
    post(engine, [deposit("d1", "c-1", "100000"), deposit("d2", "c-1", "0.5", asset="BTC")])
    return engine


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _runs(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM recon_runs")).scalar_one())


def _policy_ids(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(
            text("SELECT policy_id FROM insurance_policies ORDER BY policy_id")).scalars())


def _write(path: Path, document: Any) -> Path:
    path.write_text(document if isinstance(document, str) else json.dumps(document, indent=2),
                    "utf-8")
    return path


def _reconcile(engine: Engine, *args: str) -> Any:
    return cli("--db", _url(engine), "reconcile", "run", "--as-of", AS_OF, *args,
               "--format", "json")


def _assert_refused(refused: Any, where: str, reason: str) -> None:
    """Exit 2, nothing on stdout, one line `error: <where>...<reason>...` on stderr."""
    assert refused.returncode == 2, refused.stderr + refused.stdout[:300]
    assert refused.stdout == ""
    lines = refused.stderr.splitlines()
    assert len(lines) == 1, refused.stderr
    assert lines[0].startswith(f"error: {where}"), lines[0]
    assert reason in lines[0], lines[0]


def _book(rules: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"name": "small-exchange", "version": "2026-11", "extends": "jp-fsa", **top,
            "rules": rules}


# Rulebooks: (file name, content, what follows the file name, reason)
BAD_RULEBOOKS: dict[str, tuple[str, Any, str, str]] = {
    "unknown_rule": ("book.json", _book({"JP-COLD-99": {"min_cold_share": "0.97"}}),
                     ":6: rules.JP-COLD-99: ", 'unknown rule "JP-COLD-99"'),
    "cold_share_above_one": ("book.json", _book({"JP-COLD-95": {"min_cold_share": "1.5"}}),
                             ":7: rules.JP-COLD-95.min_cold_share: ", "must be at most 1, not 1.5"),
    "negative_rate": ("book.json", _book({"JP-RESERVE": {"rate": "-0.0002"}}),
                      ":7: rules.JP-RESERVE.rate: ", "not a plain decimal number"),
    "negative_floor": ("book.json", _book({"JP-RESERVE": {"floor": "-1"}}),
                       ":7: rules.JP-RESERVE.floor: ", "not a plain decimal number"),
    "zero_risk_multiplier": ("book.json", _book({"JP-RESERVE": {"risk_multiplier": "0"}}),
                             ":7: rules.JP-RESERVE.risk_multiplier: ", "greater than"),
    "missing_parameter": ("book.json", {"name": "own", "version": "1",
                                        "rules": {"SEG-COVERAGE": {}, "JP-COLD-95": {}}},
                          ":6: rules.JP-COLD-95.min_cold_share: ",
                          "missing: this field is required"),
    "unknown_parameter": ("book.json", _book({"JP-COLD-95": {"min_cold": "0.97"}}),
                          ":7: rules.JP-COLD-95.min_cold: ",
                          "unknown field (did you mean min_cold_share?"),
    "float_threshold": ("book.json", _book({"JP-COLD-95": {"min_cold_share": 0.97}}),
                        ":7: rules.JP-COLD-95.min_cold_share: ", "decimal number as text"),
    "float_in_yaml": ("book.yaml", "name: own\nversion: '1'\nextends: jp-fsa\n"
                      "rules:\n  JP-COLD-95: {min_cold_share: 0.97}\n",
                      ":5: rules.JP-COLD-95.min_cold_share: ", "decimal number as text"),
    "unknown_preset": ("book.json", _book({}, extends="us-sec"), ":4: extends: ",
                       'unknown preset "us-sec"'),
    "no_rules_left": ("book.json", {"name": "own", "version": "1",
                                    "rules": {"JP-COLD-95": None}}, ":4: rules: ",
                      "at least one rule"),
    "malformed_json": ("book.json", '{"name": "own", "version": "1",\n "rules": {', ":2: ",
                       "malformed JSON"),
    "rule_twice_in_json": ("book.json", '{"name": "own", "version": "1", "extends": "jp-fsa",'
                           ' "rules": {"JP-COLD-95": {"min_cold_share": "0.97"},'
                           ' "JP-COLD-95": {"min_cold_share": "0.5"}}}', ": ",
                           'the key "JP-COLD-95" appears twice'),
    # YAML must refuse what JSON refuses: here the looser threshold, written last, would win.
    "rule_twice_in_yaml": ("book.yaml", "name: own\nversion: '1'\nextends: jp-fsa\nrules:\n"
                           "  JP-COLD-95: {min_cold_share: '0.97'}\n"
                           "  JP-COLD-95: {min_cold_share: '0.5'}\n", ":",
                           '"JP-COLD-95" appears twice'),
    "malformed_yaml": ("book.yaml", "name: own\nversion: '1'\nrules:\n  JP-COLD-95: [0.9\n",
                       ":", "malformed YAML"),  # at the line the parser noticed
}


@pytest.mark.parametrize("case", sorted(BAD_RULEBOOKS))
def test_bad_rulebook_file_is_exit_2_naming_the_field_and_stores_no_run(
    case: str, ledger: Engine, tmp_path: Path
) -> None:
    name, content, where, reason = BAD_RULEBOOKS[case]
    path = _write(tmp_path / name, content)
    before = snapshot(ledger)
    refused = _reconcile(ledger, "--rulebook", str(path))
    _assert_refused(refused, f"{path}{where}", reason)
    assert _runs(ledger) == 0
    assert snapshot(ledger) == before


def test_unknown_rulebook_name_is_exit_2_and_stores_no_run(ledger: Engine) -> None:
    refused = _reconcile(ledger, "--rulebook", "jp-fsa-2031")
    _assert_refused(refused, "--rulebook: ", 'no rulebook "jp-fsa-2031"')
    assert "jp-fsa, hk-sfc" in refused.stderr
    assert _runs(ledger) == 0


@pytest.mark.parametrize("command", ["segregation", "reserve"])
def test_reports_refuse_a_bad_rulebook_and_a_bad_price_file(
    command: str, ledger: Engine, tmp_path: Path
) -> None:
    book = _write(tmp_path / "book.json", _book({"JP-COLD-95": {"min_cold_share": "1.5"}}))
    refused = cli("--db", _url(ledger), "report", command, "--as-of", AS_OF,
                  "--rulebook", str(book), "--format", "json")
    _assert_refused(refused, f"{book}:7: rules.JP-COLD-95.min_cold_share: ", "must be at most 1")
    prices = _write(tmp_path / "prices.json", {**PRICES, "prices": {"BTC": "0"}})
    refused = cli("--db", _url(ledger), "report", command, "--as-of", AS_OF,
                  "--prices", str(prices), "--format", "json")
    _assert_refused(refused, f"{prices}:5: prices.BTC: ", "greater than zero")


def test_a_rulebook_file_extending_jp_fsa_is_used_and_stored_with_the_run(
    ledger: Engine, tmp_path: Path
) -> None:
    path = _write(tmp_path / "book.yaml", (
        "name: strict-cold\nversion: '2026-11'\nextends: jp-fsa\nrules:\n"
        "  JP-COLD-95: {min_cold_share: '0.97'}\n  WALLET-DISJOINT: null\n"))
    done = _reconcile(ledger, "--rulebook", str(path))
    assert done.returncode in (0, 1), done.stderr
    result = json.loads(done.stdout)
    book = result["rulebook"]
    assert (book["name"], book["version"], book["extends"]) == ("strict-cold", "2026-11", "jp-fsa")
    assert book["rules"]["JP-COLD-95"] == {"min_cold_share": "0.97"}
    assert book["rules"]["JP-RESERVE"]["floor"] == "2000000000"  # the preset's, unchanged
    assert "WALLET-DISJOINT" not in book["rules"]
    rules = {c["rule"] for c in result["checks"]}
    assert "JP-COLD-95" in rules and "WALLET-DISJOINT" not in rules
    [cold] = [c for c in result["checks"] if c["rule"] == "JP-COLD-95"]
    assert cold["threshold"] == "0.97"
    assert _runs(ledger) == 1
    shown = cli("--db", _url(ledger), "reconcile", "show", result["run_id"], "--format", "json")
    assert json.loads(shown.stdout)["rulebook"] == book


def test_hk_sfc_preset_runs_the_hong_kong_rules(ledger: Engine) -> None:
    done = _reconcile(ledger, "--rulebook", "hk-sfc")
    assert done.returncode in (0, 1), done.stderr
    result = json.loads(done.stdout)
    assert (result["rulebook"]["name"], result["rulebook"]["extends"]) == ("hk-sfc", None)
    rules = {c["rule"] for c in result["checks"]}
    assert {"HK-COLD-98", "HK-INSURANCE"} <= rules
    assert not rules & {"JP-COLD-95", "JP-RESERVE", "JP-FIAT-TRUST"}
    [cold] = [c for c in result["checks"] if c["rule"] == "HK-COLD-98"]
    assert cold["threshold"] == "0.98"
    assert _runs(ledger) == 1


# Price files: (content, field after the file name, reason). Customers hold JPY and BTC.
BAD_PRICES: dict[str, tuple[Any, str, str]] = {
    "missing_held_asset": ({**PRICES, "prices": {"ETH": "520000"}}, "prices.BTC",
                           "no price for BTC, which the ledger holds"),
    "zero_price": ({**PRICES, "prices": {"BTC": "0"}}, "prices.BTC", "greater than zero"),
    "negative_price": ({**PRICES, "prices": {"BTC": "-1"}}, "prices.BTC",
                       "not a plain decimal number"),
    "unknown_asset": ({**PRICES, "prices": {"BTC": "15000000", "DOGE": "30"}}, "prices.DOGE",
                      "DOGE is not an asset of the ledger"),
    "float_price": ({**PRICES, "prices": {"BTC": 15000000.5}}, "prices.BTC",
                    "decimal number as text"),
    "unknown_quote": ({**PRICES, "quote": "USD"}, "quote", "not an asset of the ledger"),
    "missing_as_of": ({"quote": "JPY", "prices": {"BTC": "15000000"}}, "as_of",
                      "missing: this field is required"),
    "malformed_json": ('{"quote": "JPY", "prices": {"BTC": "1"', "", "malformed JSON"),
}


@pytest.mark.parametrize("case", sorted(BAD_PRICES))
def test_bad_price_file_is_exit_2_naming_the_field_and_stores_no_run(
    case: str, ledger: Engine, tmp_path: Path
) -> None:
    content, field, reason = BAD_PRICES[case]
    path = _write(tmp_path / "prices.json", content)
    before = snapshot(ledger)
    refused = _reconcile(ledger, "--prices", str(path))
    # Errors found while reading the file name its line; those found against the ledger
    # afterwards (an asset it does not know or holds without a price) name the field only.
    line = {"float_price": ":5", "missing_as_of": ":1", "negative_price": ":5",
            "zero_price": ":5"}.get(case, "")
    _assert_refused(refused, f"{path}{line}: {field}: " if field else f"{path}: ", reason)
    assert _runs(ledger) == 0
    assert snapshot(ledger) == before


def test_a_price_file_is_stored_with_the_run(ledger: Engine, tmp_path: Path) -> None:
    path = _write(tmp_path / "prices.json", PRICES)
    done = _reconcile(ledger, "--prices", str(path))
    assert done.returncode in (0, 1), done.stderr
    result = json.loads(done.stdout)
    assert result["prices"]["quote"] == "JPY"
    assert result["prices"]["prices"] == {"BTC": "15000000"}
    assert [e["format"] for e in result["evidence"]] == ["prices"]
    # With a price the cold share is computed by value, not "n/a".
    [cold] = [c for c in result["checks"] if c["rule"] == "JP-COLD-95"]
    assert cold["status"] != "n/a", cold
    assert _runs(ledger) == 1
    rerun = cli("--db", _url(ledger), "reconcile", "rerun", result["run_id"], "--format", "json")
    assert json.loads(rerun.stdout)["same"] is True, rerun.stdout


# Insurance registers: a valid P-0 comes first, so "nothing written" covers it too.
def _policy(**changes: Any) -> dict[str, Any]:
    return {**POLICY, **changes}


BAD_REGISTERS: dict[str, tuple[dict[str, Any], str, str]] = {
    "inverted_period": (_policy(period_start="2026-04-01T00:00:00+09:00",
                                period_end="2025-04-01T00:00:00+09:00"),
                        "policies[1].period_end", "before it starts"),
    "empty_period": (_policy(period_end=POLICY["period_start"]), "policies[1].period_end",
                     "before it starts"),
    "zero_share": (_policy(covered_share="0"), "policies[1].covered_share",
                   "above 0 and at most 1"),
    "share_above_one": (_policy(covered_share="1.5"), "policies[1].covered_share",
                        "above 0 and at most 1"),
    "float_share": (_policy(covered_share=0.8), "policies[1].covered_share",
                    "decimal number as text"),
    "limit_too_many_decimals": (_policy(limit="1000000.5"), "policies[1].limit",
                                "has 1 decimals, the asset allows 0"),
    "float_limit": (_policy(limit=1000000.0), "policies[1].limit", "decimal string"),
    "zero_limit": (_policy(limit="0"), "policies[1].limit", "greater than zero"),
    "unknown_currency": (_policy(currency="USD"), "policies[1].currency",
                         'unknown currency "USD"'),
    "same_policy_twice": (_policy(policy_id="P-0", insurer="Other"), "policies[1].policy_id",
                          'policy "P-0" appears twice'),
    "no_utc_offset": (_policy(period_end="2026-04-01T00:00:00"), "policies[1].period_end",
                      "has no UTC offset"),
}


@pytest.mark.parametrize("case", sorted(BAD_REGISTERS))
def test_bad_insurance_register_is_exit_2_naming_the_field_and_stores_no_policy(
    case: str, ledger: Engine, tmp_path: Path
) -> None:
    bad, field, reason = BAD_REGISTERS[case]
    path = _write(tmp_path / "register.json", {"policies": [_policy(policy_id="P-0"), bad]})
    before = snapshot(ledger)
    refused = cli("--db", _url(ledger), "insurance", "load", str(path))
    # The line of the field in the second policy, for errors found while reading the file;
    # those found against the ledger (currency, the limit's decimals) name the field only.
    line = {"empty_period": ":19", "inverted_period": ":19", "no_utc_offset": ":19",
            "float_share": ":17", "share_above_one": ":17", "zero_share": ":17",
            "float_limit": ":16", "zero_limit": ":16",
            "same_policy_twice": ":13"}.get(case, "")
    _assert_refused(refused, f"{path}{line}: {field}: ", reason)
    assert _policy_ids(ledger) == []
    assert snapshot(ledger) == before


def test_reloading_a_policy_with_other_terms_is_exit_2_and_keeps_the_first(
    ledger: Engine, tmp_path: Path
) -> None:
    db = _url(ledger)
    first = _write(tmp_path / "register.json", {"policies": [POLICY]})
    loaded = cli("--db", db, "insurance", "load", str(first))
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "insurance register: 1 policies added, 0 unchanged"
    listed = cli("--db", db, "insurance", "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    registered = json.loads(listed.stdout)
    assert [(p["policy_id"], p["limit"], p["covered_share"]) for p in registered] == [
        ("P-1", "1000000000", "0.8")]

    # A new policy next to a changed one: the whole file is refused, the new one too.
    changed = _write(tmp_path / "changed.json", {"policies": [
        _policy(policy_id="P-2"), _policy(limit="2000000000")]})
    before = snapshot(ledger)
    refused = cli("--db", db, "insurance", "load", str(changed))
    _assert_refused(refused, f"{changed}: policies[1].policy_id: ",
                    'policy "P-1" is already registered with other terms')
    assert snapshot(ledger) == before
    assert json.loads(cli("--db", db, "insurance", "list", "--format", "json").stdout) == registered


def test_a_limit_written_with_trailing_zeros_is_the_same_policy(
    ledger: Engine, tmp_path: Path
) -> None:
    """The same terms are the same policy however the numbers are written, as they already are
    for the covered share ("0.80") and the times (any offset): the limit is 1,000,000,000 JPY
    both times, so reloading it is "unchanged", not "other terms"."""
    db = _url(ledger)
    first = _write(tmp_path / "register.json", {"policies": [POLICY]})
    assert cli("--db", db, "insurance", "load", str(first)).returncode == 0
    again = _write(tmp_path / "again.json", {"policies": [_policy(limit="1000000000.0")]})
    reloaded = cli("--db", db, "insurance", "load", str(again))
    assert reloaded.returncode == 0, reloaded.stderr
    assert reloaded.stdout.strip() == "insurance register: 0 policies added, 1 unchanged"
    assert _policy_ids(ledger) == ["P-1"]


def test_loading_the_same_register_twice_changes_nothing(migrated_db_url: str, tmp_path: Path) -> None:
    chart = _write(tmp_path / "chart.json", CHART)
    assert cli("--db", migrated_db_url, "init", "--chart", str(chart)).returncode == 0
    path = _write(tmp_path / "register.json", {"policies": [POLICY]})
    first = cli("--db", migrated_db_url, "insurance", "load", str(path))
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "insurance register: 1 policies added, 0 unchanged"
    # The same terms written differently (another offset, trailing zero) are the same policy.
    same = _write(tmp_path / "same.json", {"policies": [_policy(
        covered_share="0.80", period_start="2025-03-31T15:00:00+00:00")]})
    for again in (path, same):
        second = cli("--db", migrated_db_url, "insurance", "load", str(again))
        assert second.returncode == 0, second.stderr
        assert second.stdout.strip() == "insurance register: 0 policies added, 1 unchanged"
    listed = json.loads(cli("--db", migrated_db_url, "insurance", "list", "--format", "json").stdout)
    assert [(p["policy_id"], p["insurer"], p["currency"], p["limit"]) for p in listed] == [
        ("P-1", "Tokio Marine", "JPY", "1000000000")]
