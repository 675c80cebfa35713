"""JP-COLD-95 (J5, Ordinance Art. 27(2)): customer crypto held online is at most 5% of all
customer crypto, by JPY value, over all assets together. Each asset's own hot share is shown
but does not decide. With one asset only the share by value is the share by quantity."""

from reconcile.rules.params import ColdParams
from reconcile.rules.segregation import jp_cold_95
from tests.rules.facts import only_check, run_facts

JP = ColdParams.model_validate({"min_cold_share": "0.95"})
PRICES = {"BTC": "10000000", "ETH": "500000"}  # ¥ per coin


def test_aggregate_hot_share_above_five_percent_fails() -> None:
    # BTC: 0.2 of 10 hot (2%), ¥2m of ¥100m.  ETH: 20 of 200 hot (10%), ¥10m of ¥100m.
    # Together ¥12m of ¥200m hot = 6%: 94% cold, ¥2m too much online.
    facts = run_facts(
        [("cust:btc:cold", "BTC", "customer", "cold_wallet", "segregated", "9.8", "9.8"),
         ("cust:btc:hot", "BTC", "customer", "hot_wallet", "segregated", "0.2", "0.2"),
         ("cust:eth:cold", "ETH", "customer", "cold_wallet", "segregated", "180", "180"),
         ("cust:eth:hot", "ETH", "customer", "hot_wallet", "segregated", "20", "20")],
        {"BTC": "10", "ETH": "200"}, PRICES)
    check = only_check(jp_cold_95(facts, JP))
    assert (check.rule, check.asset, check.status) == ("JP-COLD-95", "*", "fail")
    assert (check.value, check.threshold) == ("0.9400", "0.95")
    assert check.numbers == {"BTC.hot_share": "2.00%", "ETH.hot_share": "10.00%",
                             "hot_value": "12000000", "total_value": "200000000"}
    assert "94.00% of customer crypto is cold, by JPY value" in check.detail
    assert "move 2000000 (value) from hot to cold" in check.detail


def test_shares_are_weighed_by_value_not_by_quantity() -> None:
    # ETH is 10% hot on its own, and by quantity the whole is (0.01 + 20) / 210 ≈ 9.5% hot;
    # by value it is (¥0.1m + ¥1m) / (¥100m + ¥10m) = 1% hot: 99% cold, a pass.
    facts = run_facts(
        [("cust:btc:cold", "BTC", "customer", "cold_wallet", "segregated", "9.99", "9.99"),
         ("cust:btc:hot", "BTC", "customer", "hot_wallet", "segregated", "0.01", "0.01"),
         ("cust:eth:cold", "ETH", "customer", "cold_wallet", "segregated", "180", "180"),
         ("cust:eth:hot", "ETH", "customer", "hot_wallet", "segregated", "20", "20")],
        {"BTC": "10", "ETH": "200"}, {"BTC": "10000000", "ETH": "50000"})
    check = only_check(jp_cold_95(facts, JP))
    assert (check.status, check.value) == ("pass", "0.9900")
    assert check.numbers == {"BTC.hot_share": "0.10%", "ETH.hot_share": "10.00%",
                             "hot_value": "1100000", "total_value": "110000000"}


def test_exactly_95_percent_cold_passes() -> None:
    # BTC 1 of 10 hot (¥10m of ¥100m), ETH all cold (¥100m): ¥10m of ¥200m = exactly 5% hot.
    facts = run_facts(
        [("cust:btc:cold", "BTC", "customer", "cold_wallet", "segregated", "9", "9"),
         ("cust:btc:hot", "BTC", "customer", "hot_wallet", "segregated", "1", "1"),
         ("cust:eth:cold", "ETH", "customer", "cold_wallet", "segregated", "200", "200")],
        {"BTC": "10", "ETH": "200"}, PRICES)
    check = only_check(jp_cold_95(facts, JP))
    assert (check.status, check.value, check.threshold) == ("pass", "0.9500", "0.95")
    assert check.numbers["hot_value"] == "10000000"
    assert check.numbers["total_value"] == "200000000"


def test_one_unit_more_online_than_the_boundary_fails() -> None:
    # 1 satoshi over 5% hot by value: the share is compared exactly, not after rounding.
    facts = run_facts(
        [("cust:btc:cold", "BTC", "customer", "cold_wallet", "segregated", "8.99999999",
          "8.99999999"),
         ("cust:btc:hot", "BTC", "customer", "hot_wallet", "segregated", "1.00000001", "1.00000001"),
         ("cust:eth:cold", "ETH", "customer", "cold_wallet", "segregated", "200", "200")],
        {"BTC": "10", "ETH": "200"}, PRICES)
    check = only_check(jp_cold_95(facts, JP))
    assert check.status == "fail"
    assert check.value == "0.9499"


def test_a_missing_price_with_two_assets_is_not_applicable_and_names_the_asset() -> None:
    facts = run_facts(
        [("cust:btc:cold", "BTC", "customer", "cold_wallet", "segregated", "9.8", "9.8"),
         ("cust:btc:hot", "BTC", "customer", "hot_wallet", "segregated", "0.2", "0.2"),
         ("cust:eth:cold", "ETH", "customer", "cold_wallet", "segregated", "200", "200")],
        {"BTC": "10", "ETH": "200"}, {"BTC": "10000000"})
    check = only_check(jp_cold_95(facts, JP))
    assert (check.status, check.value, check.threshold) == ("n/a", "n/a", "0.95")
    assert check.detail == "no JPY price for ETH"


def test_no_price_file_with_two_assets_is_not_applicable() -> None:
    facts = run_facts(
        [("cust:btc:cold", "BTC", "customer", "cold_wallet", "segregated", "10", "10"),
         ("cust:eth:hot", "ETH", "customer", "hot_wallet", "segregated", "1", "1")],
        {"BTC": "10", "ETH": "1"})
    check = only_check(jp_cold_95(facts, JP))
    assert check.status == "n/a"
    assert check.detail == "no price file: BTC, ETH cannot be valued in JPY (give --prices)"


def test_one_asset_without_prices_is_computed_by_quantity() -> None:
    # 0.6 of 10 BTC hot: 94% cold whatever the price; 0.1 BTC must move to cold storage.
    facts = run_facts(
        [("cust:btc:cold", "BTC", "customer", "cold_wallet", "segregated", "9.4", "9.4"),
         ("cust:btc:hot", "BTC", "customer", "hot_wallet", "segregated", "0.6", "0.6")],
        {"BTC": "10"})
    check = only_check(jp_cold_95(facts, JP))
    assert (check.status, check.value) == ("fail", "0.9400")
    assert check.numbers == {"BTC.hot_share": "6.00%"}
    assert "by quantity of BTC" in check.detail


def test_by_quantity_the_amount_to_move_is_given_in_the_assets_units() -> None:
    # 0.6 − 5% × 10 = 0.1 BTC to move; a reader must not take 10,000,000 satoshi for 10m BTC.
    facts = run_facts(
        [("cust:btc:cold", "BTC", "customer", "cold_wallet", "segregated", "9.4", "9.4"),
         ("cust:btc:hot", "BTC", "customer", "hot_wallet", "segregated", "0.6", "0.6")],
        {"BTC": "10"})
    check = only_check(jp_cold_95(facts, JP))
    assert "0.10000000 BTC" in check.detail


def test_one_asset_with_a_price_is_computed_by_value() -> None:
    facts = run_facts(
        [("cust:btc:cold", "BTC", "customer", "cold_wallet", "segregated", "9.5", "9.5"),
         ("cust:btc:hot", "BTC", "customer", "hot_wallet", "segregated", "0.5", "0.5")],
        {"BTC": "10"}, PRICES)
    check = only_check(jp_cold_95(facts, JP))
    assert (check.status, check.value) == ("pass", "0.9500")
    assert check.numbers["hot_value"] == "5000000"
    assert "by JPY value" in check.detail


def test_the_evidence_decides_how_much_is_online() -> None:
    # The ledger says 0.5 BTC hot; the chain shows 0.6: 94% cold by the chain.
    facts = run_facts(
        [("cust:btc:cold", "BTC", "customer", "cold_wallet", "segregated", "9.4", "9.4"),
         ("cust:btc:hot", "BTC", "customer", "hot_wallet", "segregated", "0.5", "0.6")],
        {"BTC": "10"}, PRICES)
    check = only_check(jp_cold_95(facts, JP))
    assert (check.status, check.value) == ("fail", "0.9400")


def test_company_hot_wallets_and_customer_money_do_not_count() -> None:
    facts = run_facts(
        [("cust:btc:cold", "BTC", "customer", "cold_wallet", "segregated", "10", "10"),
         ("co:btc:hot", "BTC", "company", "hot_wallet", "operating", "50", "50"),
         ("cust:jpy:trust", "JPY", "customer", "bank_trust", "segregated", "1000000", "1000000")],
        {"BTC": "10", "JPY": "1000000"}, PRICES)
    check = only_check(jp_cold_95(facts, JP))
    assert (check.status, check.value) == ("pass", "1.0000")
    assert check.numbers["total_value"] == "100000000"


def test_no_customer_crypto_passes_with_nothing_to_check() -> None:
    check = only_check(jp_cold_95(run_facts([], {}), JP))
    assert (check.status, check.value, check.threshold) == ("pass", "1", "0.95")
    assert check.detail == "no customer crypto held"
