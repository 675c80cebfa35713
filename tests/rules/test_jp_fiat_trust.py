"""JP-FIAT-TRUST (J1, PSA 63-11(1)): customer money is placed in trust with a trust bank.
Customer money in trust ≥ min_ratio × customer fiat liabilities; customer money anywhere else
(an ordinary bank account, in transit) does not count."""

from reconcile.rules.params import TrustParams
from reconcile.rules.segregation import jp_fiat_trust
from tests.rules.facts import by_asset, only_check, run_facts

FULL = TrustParams.model_validate({"min_ratio": "1"})


def test_money_outside_trust_does_not_count() -> None:
    # ¥990m in trust + ¥50m in an ordinary bank account for ¥1,000m owed: ¥10m too little in
    # trust, although ¥1,040m of customer money is held.
    facts = run_facts(
        [("cust:jpy:trust", "JPY", "customer", "bank_trust", "segregated", "990000000",
          "990000000"),
         ("cust:jpy:bank", "JPY", "customer", "bank", "segregated", "50000000", "50000000")],
        {"JPY": "1000000000"})
    check = only_check(jp_fiat_trust(facts, FULL))
    assert (check.rule, check.asset, check.status) == ("JP-FIAT-TRUST", "JPY", "fail")
    assert (check.value, check.threshold) == ("990000000", "1000000000")
    assert check.numbers == {"in_trust": "990000000", "customer_liabilities": "1000000000",
                             "outside_trust": "50000000"}
    assert "too little in trust by 10000000" in check.detail
    assert "customer money outside trust: cust:jpy:bank 50000000" in check.detail


def test_trust_exactly_equal_to_liabilities_passes() -> None:
    facts = run_facts([("cust:jpy:trust", "JPY", "customer", "bank_trust", "segregated",
                        "1000000000", "1000000000")], {"JPY": "1000000000"})
    check = only_check(jp_fiat_trust(facts, FULL))
    assert (check.status, check.value, check.threshold) == ("pass", "1000000000", "1000000000")
    assert check.numbers["outside_trust"] == "0"


def test_the_trust_banks_statement_counts_over_the_ledger() -> None:
    facts = run_facts([("cust:jpy:trust", "JPY", "customer", "bank_trust", "segregated",
                        "1000000000", "999999999")], {"JPY": "1000000000"})
    check = only_check(jp_fiat_trust(facts, FULL))
    assert (check.status, check.value) == ("fail", "999999999")
    assert "too little in trust by 1" in check.detail


def test_min_ratio_above_one_requires_more_and_rounds_the_requirement_up() -> None:
    # 105% of ¥1,001 is ¥1,051.05: the requirement is ¥1,052, never rounded away.
    params = TrustParams.model_validate({"min_ratio": "1.05"})
    short = run_facts([("cust:jpy:trust", "JPY", "customer", "bank_trust", "segregated", "1051",
                        "1051")], {"JPY": "1001"})
    enough = run_facts([("cust:jpy:trust", "JPY", "customer", "bank_trust", "segregated", "1052",
                         "1052")], {"JPY": "1001"})
    short_check = only_check(jp_fiat_trust(short, params))
    enough_check = only_check(jp_fiat_trust(enough, params))
    assert (short_check.status, short_check.value, short_check.threshold) == ("fail", "1051", "1052")
    assert (enough_check.status, enough_check.threshold) == ("pass", "1052")
    assert "105.00% of customer liabilities" in enough_check.detail


def test_company_money_in_trust_does_not_count_for_customers() -> None:
    facts = run_facts(
        [("cust:jpy:trust", "JPY", "customer", "bank_trust", "segregated", "900", "900"),
         ("co:jpy:trust", "JPY", "company", "bank_trust", "operating", "100", "100")],
        {"JPY": "1000"})
    check = only_check(jp_fiat_trust(facts, FULL))
    assert (check.status, check.value, check.threshold) == ("fail", "900", "1000")


def test_crypto_is_not_checked_for_trust() -> None:
    facts = run_facts([("cust:btc:cold", "BTC", "customer", "cold_wallet", "segregated", "1",
                        "1")], {"BTC": "1"})
    assert jp_fiat_trust(facts, FULL) == []


def test_no_customer_money_and_nothing_owed_gives_no_check() -> None:
    assert by_asset(jp_fiat_trust(run_facts([], {}), FULL)) == {}
