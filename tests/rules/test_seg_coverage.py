"""SEG-COVERAGE: customer custody ≥ customer liabilities, per asset, counting what the evidence
shows where there is evidence and the ledger's figure where there is none (J1, J4)."""

from reconcile.rules.base import Check
from reconcile.rules.params import NoParams
from reconcile.rules.segregation import seg_coverage
from tests.rules.facts import Holding, by_asset, run_facts


def coverage(holdings: list[Holding], liabilities: dict[str, str]) -> dict[str, Check]:
    return by_asset(seg_coverage(run_facts(holdings, liabilities), NoParams()))


def test_custody_short_of_liabilities_fails_by_the_shortfall() -> None:
    # 9.5 cold + 0.4 hot = 9.9 BTC held for 10 BTC owed: 0.1 BTC short.
    btc = coverage([("cust:btc:cold", "BTC", "customer", "cold_wallet", "segregated", "9.5", "9.5"),
                    ("cust:btc:hot", "BTC", "customer", "hot_wallet", "segregated", "0.4", "0.4")],
                   {"BTC": "10"})["BTC"]
    assert btc.rule == "SEG-COVERAGE"
    assert btc.status == "fail"
    assert btc.value == "-0.10000000"
    assert btc.threshold == "0.00000000"
    assert btc.numbers == {"customer_custody": "9.90000000", "customer_liabilities": "10.00000000"}


def test_custody_equal_to_liabilities_passes_at_zero() -> None:
    btc = coverage([("cust:btc:cold", "BTC", "customer", "cold_wallet", "segregated", "10", "10")],
                   {"BTC": "10"})["BTC"]
    assert (btc.status, btc.value, btc.threshold) == ("pass", "0.00000000", "0.00000000")


def test_custody_above_liabilities_passes_with_the_surplus() -> None:
    jpy = coverage([("cust:jpy:trust", "JPY", "customer", "bank_trust", "segregated",
                     "1000050000", "1000050000")], {"JPY": "1000000000"})["JPY"]
    assert (jpy.status, jpy.value, jpy.threshold) == ("pass", "50000", "0")


def test_evidence_counts_over_the_ledger_figure() -> None:
    # The ledger says 10 BTC, the chain shows 9.99: the customers are 0.01 BTC short.
    btc = coverage([("cust:btc:cold", "BTC", "customer", "cold_wallet", "segregated", "10", "9.99")],
                   {"BTC": "10"})["BTC"]
    assert (btc.status, btc.value) == ("fail", "-0.01000000")
    assert btc.numbers["customer_custody"] == "9.99000000"


def test_without_evidence_the_ledger_figure_is_used_and_named() -> None:
    btc = coverage([("cust:btc:cold", "BTC", "customer", "cold_wallet", "segregated", "6", "6"),
                    ("cust:btc:transit", "BTC", "customer", "in_transit", "segregated", "4", None)],
                   {"BTC": "10"})["BTC"]
    assert (btc.status, btc.value) == ("pass", "0.00000000")
    assert "ledger figure used for cust:btc:transit (no evidence)" in btc.detail


def test_company_assets_do_not_cover_customer_liabilities() -> None:
    # 5 BTC of the company's own guarantee crypto stand next to a 1 BTC customer shortfall.
    btc = coverage([("cust:btc:cold", "BTC", "customer", "cold_wallet", "segregated", "9", "9"),
                    ("co:btc:guarantee", "BTC", "company", "cold_wallet", "guarantee", "5", "5")],
                   {"BTC": "10"})["BTC"]
    assert (btc.status, btc.value) == ("fail", "-1.00000000")
    assert btc.numbers["customer_custody"] == "9.00000000"


def test_each_asset_is_checked_on_its_own() -> None:
    checks = coverage([("cust:btc:cold", "BTC", "customer", "cold_wallet", "segregated", "11", "11"),
                       ("cust:eth:cold", "ETH", "customer", "cold_wallet", "segregated", "99", "99")],
                      {"BTC": "10", "ETH": "100"})
    assert checks["BTC"].status == "pass"
    assert checks["ETH"].status == "fail"
    assert checks["ETH"].value == "-1.000000000000000000"


def test_an_asset_nobody_holds_or_is_owed_passes_at_zero() -> None:
    # No n/a for this rule: nothing owed and nothing held is covered.
    jpy = coverage([], {})["JPY"]
    assert (jpy.status, jpy.value, jpy.threshold) == ("pass", "0", "0")
    assert jpy.numbers == {"customer_custody": "0", "customer_liabilities": "0"}
