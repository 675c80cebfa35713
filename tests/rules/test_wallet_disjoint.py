"""WALLET-DISJOINT (J4, NYDFS omnibus rule): no address, descriptor or bank account is used
by both the customer pool and the company pool. Hex and bech32 addresses compare without
regard to case, base58 with it; an IBAN compares without its spaces."""

from typing import Any

from reconcile.rules.params import NoParams
from reconcile.rules.segregation import wallet_disjoint
from tests.rules.facts import only_check, run_facts

CUSTOMER_BTC = ("cust:btc:hot", "BTC", "customer", "hot_wallet", "segregated", "1", "1")
COMPANY_BTC = ("co:btc:ops", "BTC", "company", "hot_wallet", "operating", "1", "1")
CUSTOMER_ETH = ("cust:eth:hot", "ETH", "customer", "hot_wallet", "segregated", "1", "1")
COMPANY_ETH = ("co:eth:ops", "ETH", "company", "hot_wallet", "operating", "1", "1")
CUSTOMER_JPY = ("cust:jpy:trust", "JPY", "customer", "bank_trust", "segregated", "1", "1")
COMPANY_JPY = ("co:jpy:ops", "JPY", "company", "bank", "operating", "1", "1")

BECH32 = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
HEX = "0x52908400098527886E0F7030069857D2E4169EE7"
BASE58 = "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"


def check_with(holdings: list[Any], external: dict[str, dict[str, Any]]) -> Any:
    return only_check(wallet_disjoint(run_facts(holdings, {}, external=external), NoParams()))


def test_the_same_address_in_both_pools_fails() -> None:
    check = check_with([CUSTOMER_BTC, COMPANY_BTC],
                       {"cust:btc:hot": {"addresses": [BECH32]}, "co:btc:ops": {"address": BECH32}})
    assert (check.rule, check.asset, check.status, check.value, check.threshold) == (
        "WALLET-DISJOINT", "*", "fail", "1", "0")
    assert check.detail == (f"{BECH32} is used by customer ['cust:btc:hot'] and company "
                            "['co:btc:ops']")


def test_bech32_addresses_match_whatever_their_case() -> None:
    check = check_with([CUSTOMER_BTC, COMPANY_BTC],
                       {"cust:btc:hot": {"address": BECH32.upper()},
                        "co:btc:ops": {"address": BECH32}})
    assert (check.status, check.value) == ("fail", "1")


def test_hex_addresses_match_whatever_their_case() -> None:
    check = check_with([CUSTOMER_ETH, COMPANY_ETH],
                       {"cust:eth:hot": {"address": HEX}, "co:eth:ops": {"address": HEX.lower()}})
    assert (check.status, check.value) == ("fail", "1")
    assert HEX.lower() in check.detail


def test_base58_addresses_differing_in_case_are_different_addresses() -> None:
    check = check_with([CUSTOMER_BTC, COMPANY_BTC],
                       {"cust:btc:hot": {"address": BASE58}, "co:btc:ops": {"address": BASE58.lower()}})
    assert (check.status, check.value) == ("pass", "0")


def test_an_iban_with_spaces_is_the_same_bank_account() -> None:
    check = check_with([CUSTOMER_JPY, COMPANY_JPY],
                       {"cust:jpy:trust": {"iban": "DE89 3704 0044 0532 0130 00"},
                        "co:jpy:ops": {"iban": "de89370400440532013000"}})
    assert (check.status, check.value) == ("fail", "1")
    assert "iban:DE89370400440532013000" in check.detail


def test_disjoint_pools_pass() -> None:
    check = check_with([CUSTOMER_BTC, COMPANY_BTC],
                       {"cust:btc:hot": {"address": BECH32}, "co:btc:ops": {"address": BASE58}})
    assert (check.status, check.value, check.threshold) == ("pass", "0", "0")
    assert check.detail == "2 addresses and accounts, none shared by the two pools"


def test_an_address_shared_within_one_pool_is_not_a_mix() -> None:
    second = ("cust:btc:hot2", "BTC", "customer", "hot_wallet", "segregated", "1", "1")
    check = check_with([CUSTOMER_BTC, second],
                       {"cust:btc:hot": {"address": BECH32}, "cust:btc:hot2": {"address": BECH32}})
    assert check.status == "pass"
