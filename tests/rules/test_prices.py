"""Price files: every price a positive decimal given as text, every asset code valid; and the
table must price every asset the ledger holds, and only assets the ledger knows."""

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from ledger.errors import InputError
from ledger.prices import check_covers, parse_prices

LEDGER_ASSETS = {"JPY", "BTC", "ETH"}


def price_file(prices: dict[str, Any], **more: Any) -> bytes:
    return json.dumps({"as_of": "2026-04-01T00:00:00+09:00", "prices": prices, **more}).encode()


def refused(content: bytes) -> InputError:
    with pytest.raises(InputError) as raised:
        parse_prices(content, "prices.json")
    assert raised.value.source == "prices.json"
    return raised.value


def test_a_price_file_is_read_exactly() -> None:
    table = parse_prices(price_file({"BTC": "10000000", "ETH": "500000.123"}, source="exchange"),
                         "prices.json")
    assert table.quote == "JPY"
    assert table.as_of == datetime(2026, 3, 31, 15, 0, tzinfo=UTC)
    assert table.price("ETH") == Decimal("500000.123")
    assert table.price("JPY") == Decimal(1)
    assert table.price("DOGE") is None
    assert table.value("ETH", 2_000_000_000_000_000_000, 18) == Decimal("1000000.246")


def test_a_zero_price_is_refused() -> None:
    error = refused(price_file({"BTC": "0.000"}))
    assert (error.field, error.reason) == ("prices.BTC", "the price of BTC must be greater than zero")


def test_a_negative_price_is_refused() -> None:
    assert refused(price_file({"BTC": "-5"})).field == "prices.BTC"


def test_a_float_price_is_refused() -> None:
    error = refused(price_file({"BTC": 10000000.5}))
    assert error.field == "prices.BTC"
    assert error.reason == ('must be a decimal number as text, such as "0.95", not the number '
                            '10000000.5 (write it in quotes)')


def test_an_exponent_is_refused() -> None:
    assert refused(price_file({"BTC": "1e7"})).field == "prices.BTC"


def test_a_lower_case_asset_code_is_refused() -> None:
    error = refused(price_file({"btc": "1"}))
    assert (error.field, error.reason) == (
        "prices.btc", '"btc" is not an asset code (1 to 20 capital letters, digits and . _ -)')


def test_a_time_without_offset_is_refused() -> None:
    content = json.dumps({"as_of": "2026-04-01T00:00:00", "prices": {"BTC": "1"}}).encode()
    assert refused(content).field == "as_of"


def test_malformed_json_is_refused_with_the_file_named() -> None:
    error = refused(b'{"as_of": "2026-04-01T00:00:00+09:00", "prices": {"BTC": "1"}')
    assert error.reason.startswith("malformed JSON")
    assert error.field is None  # no field to name: the file as a whole cannot be read


def test_a_price_given_twice_is_refused() -> None:
    error = refused(b'{"as_of": "2026-04-01T00:00:00+09:00", "prices": {"BTC": "1", "BTC": "2"}}')
    assert error.reason == 'the key "BTC" appears twice in one object'


def test_the_table_must_price_every_asset_the_ledger_holds() -> None:
    table = parse_prices(price_file({"BTC": "10000000"}), "prices.json")
    with pytest.raises(InputError) as raised:
        check_covers(table, {"JPY", "BTC", "ETH"}, LEDGER_ASSETS, "prices.json")
    assert raised.value.field == "prices.ETH"
    assert raised.value.reason == "no price for ETH, which the ledger holds at the as-of time"
    check_covers(table, {"JPY", "BTC"}, LEDGER_ASSETS, "prices.json")  # the quote needs no price


def test_a_price_for_an_asset_the_ledger_does_not_know_is_refused() -> None:
    table = parse_prices(price_file({"BTC": "10000000", "DOGE": "20"}), "prices.json")
    with pytest.raises(InputError) as raised:
        check_covers(table, {"BTC"}, LEDGER_ASSETS, "prices.json")
    assert (raised.value.field, raised.value.reason) == (
        "prices.DOGE", "DOGE is not an asset of the ledger")


def test_a_quote_currency_the_ledger_does_not_know_is_refused() -> None:
    table = parse_prices(price_file({"BTC": "70000"}, quote="USD"), "prices.json")
    with pytest.raises(InputError) as raised:
        check_covers(table, {"BTC"}, LEDGER_ASSETS, "prices.json")
    assert raised.value.field == "quote"
