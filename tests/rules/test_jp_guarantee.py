"""JP-GUARANTEE (J6, PSA 63-11-2(1)): for each crypto asset, the exchange holds as its own,
segregated and kept cold, guarantee crypto (履行保証暗号資産) of at least min_ratio × the
customer crypto it holds in hot wallets. Guarantee crypto in a hot wallet does not count."""

from reconcile.rules.params import GuaranteeParams
from reconcile.rules.segregation import jp_guarantee
from tests.rules.facts import by_asset, run_facts

FULL = GuaranteeParams.model_validate({"min_ratio": "1"})


def test_guarantee_in_a_hot_wallet_is_not_counted() -> None:
    # 0.5 BTC of customer crypto online; 0.3 guarantee cold + 0.3 guarantee hot: only 0.3 counts.
    facts = run_facts(
        [("cust:btc:hot", "BTC", "customer", "hot_wallet", "segregated", "0.5", "0.5"),
         ("co:btc:guarantee:cold", "BTC", "company", "cold_wallet", "guarantee", "0.3", "0.3"),
         ("co:btc:guarantee:hot", "BTC", "company", "hot_wallet", "guarantee", "0.3", "0.3")],
        {"BTC": "0.5"})
    check = by_asset(jp_guarantee(facts, FULL))["BTC"]
    assert (check.rule, check.status) == ("JP-GUARANTEE", "fail")
    assert (check.value, check.threshold) == ("0.30000000", "0.50000000")
    assert check.numbers == {"guarantee_cold": "0.30000000", "customer_hot": "0.50000000",
                             "guarantee_hot_not_counted": "0.30000000"}
    assert "too little by 0.20000000" in check.detail
    assert "0.30000000 of guarantee crypto sits in a hot wallet and does not count" in check.detail


def test_guarantee_equal_to_hot_customer_crypto_passes() -> None:
    facts = run_facts(
        [("cust:btc:hot", "BTC", "customer", "hot_wallet", "segregated", "0.5", "0.5"),
         ("co:btc:guarantee", "BTC", "company", "cold_wallet", "guarantee", "0.5", "0.5")],
        {"BTC": "0.5"})
    check = by_asset(jp_guarantee(facts, FULL))["BTC"]
    assert (check.status, check.value, check.threshold) == ("pass", "0.50000000", "0.50000000")


def test_each_asset_needs_its_own_guarantee() -> None:
    # Plenty of ETH guarantee does not make up for too little BTC guarantee.
    facts = run_facts(
        [("cust:btc:hot", "BTC", "customer", "hot_wallet", "segregated", "1", "1"),
         ("cust:eth:hot", "ETH", "customer", "hot_wallet", "segregated", "10", "10"),
         ("co:btc:guarantee", "BTC", "company", "cold_wallet", "guarantee", "0.9", "0.9"),
         ("co:eth:guarantee", "ETH", "company", "cold_wallet", "guarantee", "1000", "1000")],
        {"BTC": "1", "ETH": "10"})
    checks = by_asset(jp_guarantee(facts, FULL))
    assert (checks["BTC"].status, checks["BTC"].value, checks["BTC"].threshold) == (
        "fail", "0.90000000", "1.00000000")
    assert (checks["ETH"].status, checks["ETH"].threshold) == ("pass", "10.000000000000000000")


def test_operating_crypto_is_not_guarantee_crypto() -> None:
    facts = run_facts(
        [("cust:btc:hot", "BTC", "customer", "hot_wallet", "segregated", "1", "1"),
         ("co:btc:ops", "BTC", "company", "cold_wallet", "operating", "5", "5"),
         ("co:btc:guarantee", "BTC", "company", "cold_wallet", "guarantee", "0", "0")],
        {"BTC": "1"})
    check = by_asset(jp_guarantee(facts, FULL))["BTC"]
    assert (check.status, check.value) == ("fail", "0.00000000")


def test_the_evidence_decides_what_is_held() -> None:
    # The ledger says 1 BTC of guarantee, the chain shows 0.99.
    facts = run_facts(
        [("cust:btc:hot", "BTC", "customer", "hot_wallet", "segregated", "1", "1"),
         ("co:btc:guarantee", "BTC", "company", "cold_wallet", "guarantee", "1", "0.99")],
        {"BTC": "1"})
    check = by_asset(jp_guarantee(facts, FULL))["BTC"]
    assert (check.status, check.value) == ("fail", "0.99000000")


def test_min_ratio_scales_the_requirement_and_rounds_it_up() -> None:
    # 110% of 0.00000005 BTC is 0.000000055: 6 satoshi required.
    facts = run_facts(
        [("cust:btc:hot", "BTC", "customer", "hot_wallet", "segregated", "0.00000005", "0.00000005"),
         ("co:btc:guarantee", "BTC", "company", "cold_wallet", "guarantee", "0.00000005",
          "0.00000005")],
        {"BTC": "0.00000005"})
    check = by_asset(jp_guarantee(facts, GuaranteeParams.model_validate({"min_ratio": "1.1"})))["BTC"]
    assert (check.status, check.threshold) == ("fail", "0.00000006")


def test_no_hot_customer_crypto_and_no_guarantee_account_gives_no_check() -> None:
    facts = run_facts([("cust:btc:cold", "BTC", "customer", "cold_wallet", "segregated", "10", "10")],
                      {"BTC": "10"})
    assert jp_guarantee(facts, FULL) == []


def test_a_guarantee_account_with_nothing_online_passes_at_zero() -> None:
    facts = run_facts([("co:eth:guarantee", "ETH", "company", "cold_wallet", "guarantee", "1", "1")],
                      {})
    check = by_asset(jp_guarantee(facts, FULL))["ETH"]
    assert (check.status, check.threshold) == ("pass", "0.000000000000000000")
