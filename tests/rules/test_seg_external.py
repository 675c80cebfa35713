"""SEG-EXTERNAL: per custody account, the ledger equals the outside evidence (bank statement,
chain, custodian) exactly; an account without evidence is reported, not assumed right."""

from reconcile.rules.base import Check
from reconcile.rules.params import NoParams
from reconcile.rules.segregation import seg_external
from tests.rules.facts import Holding, run_facts


def external(*holdings: Holding) -> dict[str | None, Check]:
    return {c.account: c for c in seg_external(run_facts(list(holdings)), NoParams())}


def test_ledger_equal_to_evidence_passes() -> None:
    check = external(("cust:btc:cold", "BTC", "customer", "cold_wallet", "segregated", "9.5",
                      "9.5"))["cust:btc:cold"]
    assert (check.rule, check.asset, check.status) == ("SEG-EXTERNAL", "BTC", "pass")
    assert (check.value, check.threshold) == ("0.00000000", "0.00000000")
    assert check.numbers == {"ledger": "9.50000000", "external": "9.50000000"}


def test_less_outside_than_in_the_ledger_fails_as_too_little() -> None:
    check = external(("cust:btc:hot", "BTC", "customer", "hot_wallet", "segregated", "1",
                      "0.99"))["cust:btc:hot"]
    assert (check.status, check.value) == ("fail", "-0.01000000")
    assert "(too little outside)" in check.detail


def test_more_outside_than_in_the_ledger_fails_as_too_much() -> None:
    check = external(("cust:jpy:trust", "JPY", "customer", "bank_trust", "segregated", "1000",
                      "1500"))["cust:jpy:trust"]
    assert (check.status, check.value) == ("fail", "500")
    assert "(too much outside)" in check.detail


def test_an_account_without_evidence_fails_as_no_evidence() -> None:
    check = external(("co:btc:ops", "BTC", "company", "cold_wallet", "operating", "2",
                      None))["co:btc:ops"]
    assert (check.status, check.value, check.account) == ("fail", "no evidence", "co:btc:ops")
    assert "ledger 2.00000000, no evidence to compare with" in check.detail


def test_an_empty_in_transit_account_is_not_checked() -> None:
    assert external(("cust:btc:transit", "BTC", "customer", "in_transit", "segregated", "0",
                     None)) == {}
