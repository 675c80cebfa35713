"""JP-RESERVE (R1, formula jp-reserve-v1 in ledger/reserves.py): reserve held + eligible
insurance ≥ the required liability reserve (責任準備金), where

    V = quote-currency trade legs + ½ × the valued legs of trades with no quote leg
    B = V × rate;  L = losses ÷ customer assets (valued);  F = 1 + incident_weight × L
    R = max(floor, ⌈B × F × risk_multiplier⌉ to the yen)
    insurance: each policy in force counts min(limit, covered_share × R), all ≤ insurance_cap × R
"""

from datetime import UTC, datetime
from typing import Any

from reconcile.rules.base import ReserveFacts
from reconcile.rules.params import ReserveParams
from reconcile.rules.reserve import assess, jp_reserve
from tests.rules.facts import (
    AS_OF,
    Holding,
    only_check,
    policy,
    prices,
    reserve_facts,
    run_facts,
)

PRICES = {"BTC": "10000000", "ETH": "500000"}


def params(**changes: Any) -> ReserveParams:
    values: dict[str, Any] = {"formula": "jp-reserve-v1", "currency": "JPY", "lookback_days": 365,
                              "rate": "0.0002", "incident_years": 3, "incident_weight": "5",
                              "risk_multiplier": "1.5", "floor": "1000000", "insurance_cap": "0.5"}
    return ReserveParams.model_validate({**values, **changes})


def reserve_held(jpy: str, btc: str = "0") -> list[Holding]:
    return [("co:jpy:reserve", "JPY", "company", "bank", "reserve", jpy, jpy),
            ("co:btc:reserve", "BTC", "company", "cold_wallet", "reserve", btc, btc)]


def test_formula_end_to_end() -> None:
    # V = ¥50,000,000,000 of JPY legs + ½ × (100 BTC × ¥10m + 2,000 ETH × ¥0.5m) = ¥51bn
    # B = ¥51bn × 0.0002 = ¥10,200,000
    # L = 1 BTC lost (¥10m) ÷ customer assets (¥900m + 10 BTC = ¥1bn) = 0.01; F = 1.05
    # R = max(¥1m, ⌈10,200,000 × 1.05 × 1.5⌉) = ¥16,065,000
    # held: ¥8,000,000 + 0.1 BTC (¥1,000,000) = ¥9,000,000
    # insurance: A min(¥5m, 0.2 × R = ¥3,213,000) + B min(¥2m, 1 × R) = ¥5,213,000 ≤ ½R
    # covered ¥14,213,000 < R: short by ¥1,852,000.
    reserve = reserve_facts(quote_traded="50000000000", unquoted={"BTC": "100", "ETH": "2000"},
                            losses={"BTC": "1"},
                            policies=[policy("A", "5000000", "0.2"), policy("B", "2000000", "1")])
    facts = run_facts(reserve_held("8000000", "0.1"), {"JPY": "900000000", "BTC": "10"}, PRICES,
                      reserve=reserve)
    check = only_check(jp_reserve(facts, params()))
    assert (check.rule, check.asset, check.status) == ("JP-RESERVE", "JPY", "fail")
    assert (check.value, check.threshold) == ("14213000", "16065000")
    assert check.numbers == {
        "traded_value": "51000000000", "base": "10200000", "loss_ratio": "0.01000000",
        "incident_factor": "1.05000000", "computed": "16065000", "required": "16065000",
        "held": "9000000", "insurance_eligible": "5213000", "formula": "jp-reserve-v1"}
    assert "short by 1852000" in check.detail
    assessed = assess(facts, params())
    assert [(p["policy_id"], p["counted"]) for p in assessed.insurance_in_force] == [
        ("A", "3213000"), ("B", "2000000")]
    assert assessed.held_by_asset == {"BTC": "0.10000000", "JPY": "8000000"}
    assert assessed.gap == 1852000


def no_losses(quote_traded: str = "0", **kwargs: Any) -> ReserveFacts:
    return reserve_facts(quote_traded=quote_traded, **kwargs)


def test_the_requirement_is_rounded_up_to_the_yen_and_met_exactly_passes() -> None:
    # ¥1,234,567 × 0.0002 = ¥246.9134 → ¥247 required.
    facts = run_facts(reserve_held("247"), {"JPY": "1000"}, reserve=no_losses("1234567"))
    check = only_check(jp_reserve(facts, params(floor="0", risk_multiplier="1")))
    assert (check.status, check.value, check.threshold) == ("pass", "247", "247")
    assert check.numbers["computed"] == "246"  # shown rounded down; the requirement is not
    short = run_facts(reserve_held("246"), {"JPY": "1000"}, reserve=no_losses("1234567"))
    assert only_check(jp_reserve(short, params(floor="0", risk_multiplier="1"))).status == "fail"


def test_the_risk_multiplier_scales_the_base() -> None:
    # ¥1bn × 0.0002 = ¥200,000; × 2.5 = ¥500,000.
    facts = run_facts(reserve_held("0"), {"JPY": "1000"}, reserve=no_losses("1000000000"))
    check = only_check(jp_reserve(facts, params(floor="0", risk_multiplier="2.5")))
    assert (check.threshold, check.numbers["base"], check.numbers["incident_factor"]) == (
        "500000", "200000", "1.00000000")


def test_losses_with_no_customer_assets_left_count_as_a_full_loss_ratio() -> None:
    # L = 1, F = 1 + 5 × 1 = 6: ¥200,000 × 6 = ¥1,200,000.
    facts = run_facts(reserve_held("1200000"), {},
                      reserve=reserve_facts(quote_traded="1000000000", losses={"JPY": "1"}))
    check = only_check(jp_reserve(facts, params(floor="0", risk_multiplier="1")))
    assert (check.status, check.threshold) == ("pass", "1200000")
    assert (check.numbers["loss_ratio"], check.numbers["incident_factor"]) == (
        "1.00000000", "6.00000000")


def test_the_floor_applies_when_the_formula_gives_less() -> None:
    facts = run_facts(reserve_held("1000000"), {"JPY": "1000"}, reserve=no_losses())
    check = only_check(jp_reserve(facts, params()))
    assert (check.status, check.value, check.threshold) == ("pass", "1000000", "1000000")
    assert (check.numbers["traded_value"], check.numbers["computed"]) == ("0", "0")


def test_insurance_counts_at_most_the_cap_share_of_the_requirement() -> None:
    # R = floor ¥1,000,000; a ¥10m policy covering 100% counts min(¥10m, R) = R, capped at ½R.
    facts = run_facts(reserve_held("500000"), {"JPY": "1000"},
                      reserve=no_losses(policies=[policy("BIG", "10000000", "1")]))
    check = only_check(jp_reserve(facts, params()))
    assert (check.status, check.value, check.threshold) == ("pass", "1000000", "1000000")
    assert check.numbers["insurance_eligible"] == "500000"
    assert assess(facts, params()).insurance_in_force[0]["counted"] == "1000000"


def test_insurance_counts_its_covered_share_or_its_limit_whichever_is_less() -> None:
    # R = ¥1,000,000: 0.3 × R = ¥300,000 of a ¥10m policy; all of a ¥100,000 policy.
    facts = run_facts(reserve_held("0"), {"JPY": "1000"},
                      reserve=no_losses(policies=[policy("SHARE", "10000000", "0.3"),
                                                  policy("LIMIT", "100000", "1")]))
    check = only_check(jp_reserve(facts, params()))
    assert (check.status, check.value) == ("fail", "400000")
    assert check.numbers["insurance_eligible"] == "400000"


def test_a_policy_out_of_its_period_is_not_counted() -> None:
    ended = policy("ENDED", "10000000", "1", start=datetime(2025, 1, 1, tzinfo=UTC), end=AS_OF)
    future = policy("FUTURE", "10000000", "1", start=datetime(2026, 4, 1, tzinfo=UTC))
    facts = run_facts(reserve_held("500000"), {"JPY": "1000"},
                      reserve=no_losses(policies=[ended, future]))
    check = only_check(jp_reserve(facts, params()))
    assert (check.status, check.value, check.threshold) == ("fail", "500000", "1000000")
    assert check.numbers["insurance_eligible"] == "0"
    assert assess(facts, params()).insurance_in_force == []


def test_without_prices_a_crypto_loss_cannot_be_valued_and_the_check_is_not_applicable() -> None:
    facts = run_facts(reserve_held("50000000"), {"JPY": "1000", "BTC": "10"},
                      reserve=reserve_facts(quote_traded="1000000", losses={"BTC": "1"}))
    check = only_check(jp_reserve(facts, params()))
    assert (check.status, check.value, check.threshold) == ("n/a", "n/a", "n/a")
    assert check.detail == ("the required reserve cannot be computed: no price file: BTC cannot "
                            "be valued in JPY (give --prices)")


def test_without_prices_unquoted_trades_cannot_be_valued() -> None:
    facts = run_facts(reserve_held("50000000"), {"JPY": "1000"}, {"BTC": "10000000"},
                      reserve=reserve_facts(unquoted={"BTC": "1", "ETH": "20"}))
    check = only_check(jp_reserve(facts, params()))
    assert check.status == "n/a"
    assert check.detail == "the required reserve cannot be computed: no JPY price for ETH"


def test_without_prices_a_yen_only_ledger_is_still_checked() -> None:
    facts = run_facts(reserve_held("1000000"), {"JPY": "1000"},
                      reserve=reserve_facts(quote_traded="1000000", losses={"JPY": "10"}))
    assert only_check(jp_reserve(facts, params())).status == "pass"


def test_a_reserve_held_in_crypto_without_a_price_is_not_applicable() -> None:
    facts = run_facts(reserve_held("1000000", "1"), {"JPY": "1000"}, reserve=no_losses())
    check = only_check(jp_reserve(facts, params()))
    assert (check.status, check.threshold) == ("n/a", "1000000")
    assert "the reserve held cannot be valued" in check.detail


def test_a_price_file_in_another_currency_is_not_applicable() -> None:
    facts = run_facts(reserve_held("1000000"), {"JPY": "1000"},
                      prices({"BTC": "70000"}, quote="USD"), reserve=no_losses())
    check = only_check(jp_reserve(facts, params()))
    assert (check.status, check.value) == ("n/a", "n/a")
    assert "the formula's floor is in JPY, the price file quotes USD" in check.detail
