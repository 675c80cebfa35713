"""The hk-sfc preset (SFC VATP terms): HK-COLD-98 — at most 2% of client virtual assets hot, by
value; HK-INSURANCE — insurance in force covers 100% of client crypto held hot and 50% of the
rest."""

from datetime import UTC, datetime

from ledger.reserves import Policy
from reconcile.rules.base import Check
from reconcile.rules.params import ColdParams, InsuranceCoverParams
from reconcile.rules.rulebook import preset
from tests.rules.facts import AS_OF, Holding, only_check, policy, reserve_facts, run_facts

HK = preset("hk-sfc")
PRICES = {"BTC": "10000000", "ETH": "500000"}


def btc(cold: str, hot: str) -> list[Holding]:
    return [("cust:btc:cold", "BTC", "customer", "cold_wallet", "segregated", cold, cold),
            ("cust:btc:hot", "BTC", "customer", "hot_wallet", "segregated", hot, hot)]


def cold_98(holdings: list[Holding]) -> Check:
    return only_check(HK.evaluate_one("HK-COLD-98", run_facts(holdings, {"BTC": "100"}, PRICES)))


def insurance(holdings: list[Holding], policies: list[Policy], price_table: dict[str, str] | None
              = PRICES) -> Check:
    facts = run_facts(holdings, {"BTC": "100"}, price_table,
                      reserve=reserve_facts(policies=policies))
    return only_check(HK.evaluate_one("HK-INSURANCE", facts))


def test_the_preset_sets_98_percent_cold_and_full_hot_half_cold_cover() -> None:
    assert HK.params("HK-COLD-98") == ColdParams.model_validate({"min_cold_share": "0.98"})
    assert HK.params("HK-INSURANCE") == InsuranceCoverParams.model_validate(
        {"hot_cover": "1", "cold_cover": "0.5"})
    assert HK.params("JP-COLD-95") is None
    assert HK.params("JP-RESERVE") is None


def test_exactly_98_percent_cold_passes() -> None:
    check = cold_98(btc("98", "2"))
    assert (check.rule, check.status, check.value, check.threshold) == (
        "HK-COLD-98", "pass", "0.9800", "0.98")


def test_below_98_percent_cold_fails_though_it_would_pass_in_japan() -> None:
    check = cold_98(btc("97.99", "2.01"))
    assert (check.rule, check.status, check.value) == ("HK-COLD-98", "fail", "0.9799")


def test_insurance_covering_all_hot_and_half_cold_exactly_passes() -> None:
    # Hot 2 BTC = ¥20m at 100%; cold 98 BTC = ¥980m at 50%: ¥510m of cover required.
    check = insurance(btc("98", "2"), [policy("P1", "510000000", "1")])
    assert (check.rule, check.asset, check.status) == ("HK-INSURANCE", "*", "pass")
    assert (check.value, check.threshold) == ("510000000", "510000000")
    assert check.numbers == {"hot_value": "20000000", "cold_value": "980000000"}


def test_insurance_one_yen_short_fails() -> None:
    check = insurance(btc("98", "2"), [policy("P1", "509999999", "1")])
    assert (check.status, check.value, check.threshold) == ("fail", "509999999", "510000000")


def test_a_policy_counts_only_its_covered_share_of_the_exposure() -> None:
    # min(¥1bn, 0.5 × ¥510m) = ¥255m, + min(¥300m, 1 × ¥510m) = ¥300m: ¥555m ≥ ¥510m.
    half = insurance(btc("98", "2"), [policy("HALF", "1000000000", "0.5")])
    assert (half.status, half.value) == ("fail", "255000000")
    both = insurance(btc("98", "2"), [policy("HALF", "1000000000", "0.5"),
                                      policy("REST", "300000000", "1")])
    assert (both.status, both.value) == ("pass", "555000000")


def test_a_policy_out_of_its_period_does_not_count() -> None:
    expired = policy("OLD", "1000000000", "1", start=datetime(2025, 1, 1, tzinfo=UTC), end=AS_OF)
    check = insurance(btc("98", "2"), [expired])
    assert (check.status, check.value) == ("fail", "0")


def test_without_prices_the_cover_cannot_be_valued() -> None:
    check = insurance(btc("98", "2"), [policy("P1", "510000000", "1")], None)
    assert (check.status, check.value, check.threshold) == ("n/a", "n/a", "1 hot + 0.5 cold")
    assert "BTC cannot be valued in JPY" in check.detail
