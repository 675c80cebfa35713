"""SEG-EXCESS (CASS 7-style excess, J1/J4): company money standing in the customer pool — the
ledger's customer custody above customer liabilities, e.g. fees collected and not yet swept —
must be moved to a company account; up to `tolerance` per asset may wait."""

from reconcile.rules.params import ExcessParams
from reconcile.rules.segregation import seg_excess
from tests.rules.facts import by_asset, run_facts

NONE = ExcessParams.model_validate({"tolerance": {}})


def test_fees_left_in_the_customer_pool_fail() -> None:
    # Customers paid ¥50,000 of fees: their liabilities fell, the trust account did not.
    facts = run_facts([("cust:jpy:trust", "JPY", "customer", "bank_trust", "segregated",
                        "1000050000", "1000050000")], {"JPY": "1000000000"})
    check = by_asset(seg_excess(facts, NONE))["JPY"]
    assert (check.rule, check.status) == ("SEG-EXCESS", "fail")
    assert (check.value, check.threshold) == ("50000", "0")
    assert check.numbers == {"customer_custody_ledger": "1000050000",
                             "customer_liabilities": "1000000000"}
    assert "50000 of company money (fees, own funds) stands in the customer pool" in check.detail


def test_excess_within_the_tolerance_passes() -> None:
    facts = run_facts([("cust:jpy:trust", "JPY", "customer", "bank_trust", "segregated",
                        "1000050000", "1000050000")], {"JPY": "1000000000"})
    check = by_asset(seg_excess(facts, ExcessParams.model_validate(
        {"tolerance": {"JPY": "100000"}})))["JPY"]
    assert (check.status, check.value, check.threshold) == ("pass", "50000", "100000")
    assert "within the tolerance" in check.detail


def test_excess_exactly_at_the_tolerance_passes_and_one_unit_more_fails() -> None:
    params = ExcessParams.model_validate({"tolerance": {"BTC": "0.0001"}})
    at = run_facts([("cust:btc:cold", "BTC", "customer", "cold_wallet", "segregated",
                     "10.0001", "10.0001")], {"BTC": "10"})
    over = run_facts([("cust:btc:cold", "BTC", "customer", "cold_wallet", "segregated",
                       "10.00010001", "10.00010001")], {"BTC": "10"})
    at_check = by_asset(seg_excess(at, params))["BTC"]
    over_check = by_asset(seg_excess(over, params))["BTC"]
    assert (at_check.status, at_check.value, at_check.threshold) == (
        "pass", "0.00010000", "0.00010000")
    assert (over_check.status, over_check.value) == ("fail", "0.00010001")


def test_a_shortfall_is_not_an_excess() -> None:
    facts = run_facts([("cust:btc:cold", "BTC", "customer", "cold_wallet", "segregated", "9", "9")],
                      {"BTC": "10"})
    check = by_asset(seg_excess(facts, NONE))["BTC"]
    assert (check.status, check.value) == ("pass", "0.00000000")
    assert check.detail == "no company money in the customer pool"


def test_the_ledger_decides_not_the_evidence() -> None:
    # The bank shows ¥1,000 more than the ledger: a SEG-EXTERNAL break, not company money.
    facts = run_facts([("cust:jpy:trust", "JPY", "customer", "bank_trust", "segregated",
                        "1000000", "1001000")], {"JPY": "1000000"})
    check = by_asset(seg_excess(facts, NONE))["JPY"]
    assert (check.status, check.value) == ("pass", "0")


def test_company_accounts_are_not_in_the_customer_pool() -> None:
    facts = run_facts(
        [("cust:btc:cold", "BTC", "customer", "cold_wallet", "segregated", "10", "10"),
         ("co:btc:ops", "BTC", "company", "cold_wallet", "operating", "3", "3")],
        {"BTC": "10"})
    check = by_asset(seg_excess(facts, NONE))["BTC"]
    assert (check.status, check.value) == ("pass", "0.00000000")


def test_an_asset_with_no_custody_and_no_liabilities_gives_no_check() -> None:
    facts = run_facts([("cust:btc:cold", "BTC", "customer", "cold_wallet", "segregated", "1", "1")],
                      {"BTC": "1"})
    assert set(by_asset(seg_excess(facts, NONE))) == {"BTC"}
