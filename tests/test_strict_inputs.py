"""What the readers refuse rather than read some way: each case a value a review found
accepted, now refused with one line naming the file, line and field, and no Python repr.

Through the parser functions for every case, and through the real `segledger` command for at
least one case of each format (exit 2, one line on stderr, nothing written).
"""

from __future__ import annotations

import io
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from ledger import files
from ledger.chart import parse_chart
from ledger.entries import MAX_LINE_BYTES, read_drafts
from ledger.errors import ErrorLog, InputError
from ledger.files import EntryLines
from ledger.money import parse_amount
from ledger.prices import parse_prices
from ledger.reserves import parse_register
from ledger.storage.chart_store import load_chart
from ledger.storage.engine import normalize_url
from ledger.views import entry as entry_view
from reconcile.adapters.observations import parse_csv, parse_json
from reconcile.chains import parse_chain_config
from reconcile.rules.rulebook import load_rulebook
from reconcile.service import read_evidence_files, read_input
from tests.helpers import CHART, cli, deposit, post, snapshot

TRUST, HOT = "custody:customer:trust:JPY", "custody:customer:hot:BTC"
AS_OF = "2025-11-25T23:59:59+09:00"
REPRS = ("Decimal(", "Input should", "'", "NoneType", "<class")


def _no_repr(message: str) -> None:
    for mark in REPRS:
        assert mark not in message, message


def _refused(result: Any, where: str, reason: str) -> None:
    """Exit 2, nothing on stdout, one line on stderr: `error: <where>…<reason>…`."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {where}"), line
    assert reason in line, line
    _no_repr(line.removeprefix(f"error: {where}"))


@pytest.fixture
def ledger(engine: Engine) -> Engine:
    load_chart(engine, parse_chart(json.dumps(CHART), "chart.json"), "chart.json")
    post(engine, [deposit("d1", "c-1", "100000"), deposit("d2", "c-1", "0.5", asset="BTC")])
    return engine


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _run(engine: Engine, *args: str) -> Any:
    return cli("--db", _url(engine), "reconcile", "run", "--as-of", AS_OF, *args)


# --- Observation files ---------------------------------------------------------------------

CSV_HEADER = "account,as_of,amount,source\n"


def _observation_csv(amount: str = "1", as_of: str = AS_OF) -> bytes:
    return (CSV_HEADER + f'{TRUST},{as_of},"{amount}",bank\n').encode()


def _observation_json(**changes: Any) -> bytes:
    item = {"account": TRUST, "as_of": AS_OF, "amount": "1", "source": "bank", **changes}
    return json.dumps({"observations": [item]}).encode()


@pytest.mark.parametrize("amount", [
    "1e5", "1E+999999999", "1_000", " 3", "3 ", "\u0663", "\uff13", "+3", ".5", "5.", "NaN",
    "Infinity", "0x10", "1,5",
])
def test_an_observed_amount_is_plain_ascii_digits_or_refused(amount: str) -> None:
    for parse, content, line, field in (
            (parse_csv, _observation_csv(amount), 2, "amount"),
            (parse_json, _observation_json(amount=amount), 1, "observations[0].amount")):
        with pytest.raises(InputError) as refused:
            parse(content, "seen")
        assert (refused.value.line, refused.value.field) == (line, field)
        assert "is not a plain decimal number" in refused.value.reason
        _no_repr(refused.value.reason)


def test_a_negative_custodian_balance_is_refused() -> None:
    with pytest.raises(InputError) as refused:
        parse_csv(_observation_csv("-3"), "seen.csv")
    assert str(refused.value) == \
        "seen.csv:2: amount: -3 is negative: a custodian balance is never below zero"


@pytest.mark.parametrize(("amount", "value"), [("0", "0"), ("0.485", "0.485"),
                                               ("00012", "12"), ("1000000.00", "1000000")])
def test_a_plain_observed_amount_is_read_exactly(amount: str, value: str) -> None:
    [seen] = parse_csv(_observation_csv(amount), "seen.csv")
    assert seen.amount == Decimal(value)


@pytest.mark.parametrize(("as_of", "reason"), [
    ("2025-11-25T23:59:59", "has no UTC offset"),
    ("1899-12-31T23:59:59Z", "the year must be between 1900 and 2999"),
    ("3000-01-01T00:00:00Z", "the year must be between 1900 and 2999"),
    ("1764082799", "is not an ISO 8601 time"),
])
def test_an_observation_time_is_iso_text_with_an_offset_in_a_sane_year(
    as_of: str, reason: str
) -> None:
    with pytest.raises(InputError) as refused:
        parse_csv(_observation_csv(as_of=as_of), "seen.csv")
    assert (refused.value.line, refused.value.field) == (2, "as_of")
    assert reason in refused.value.reason


def test_an_observation_time_as_a_json_number_is_refused() -> None:
    with pytest.raises(InputError) as refused:
        parse_json(_observation_json(as_of=1764082799), "seen.json")
    assert refused.value.field == "observations[0].as_of"
    assert "as text in quotes" in refused.value.reason


def test_an_empty_observation_list_is_refused_like_an_empty_csv() -> None:
    with pytest.raises(InputError) as from_json:
        parse_json(b'{"observations": []}', "seen.json")
    with pytest.raises(InputError) as from_csv:
        parse_csv(CSV_HEADER.encode(), "seen.csv")
    assert str(from_json.value) == "seen.json:1: observations: no observations in the file"
    assert from_csv.value.reason == from_json.value.reason


def test_an_exponent_amount_is_exit_2_through_the_cli(ledger: Engine, tmp_path: Path) -> None:
    """1E+999999999 once reached the engine and hung its conversion to minor units."""
    path = tmp_path / "custodian.json"
    path.write_text(json.dumps({"observations": [
        {"account": TRUST, "as_of": AS_OF, "amount": "1", "source": "bank"},
        {"account": HOT, "as_of": AS_OF, "amount": "1E+999999999", "source": "bank"}]},
        indent=1))
    before = snapshot(ledger)
    _refused(_run(ledger, "--evidence", str(path)), f"{path}:", "observations[1].amount: "
             '"1E+999999999" is not a plain decimal number')
    empty = tmp_path / "empty.json"
    empty.write_text('{"observations": []}')
    _refused(_run(ledger, "--evidence", str(empty)), f"{empty}:1: observations: ",
             "no observations in the file")
    assert snapshot(ledger) == before


# --- Chain config ----------------------------------------------------------------------------

def _chains(**changes: Any) -> bytes:
    chain = {"kind": "ethereum", "url": "http://127.0.0.1:8545", **changes}
    return json.dumps({"chains": {"eth": chain}}).encode()


@pytest.mark.parametrize(("changes", "field", "reason"), [
    ({"block": -5}, "block", "must be a block number or one of latest, finalized, safe, not -5"),
    ({"block": True}, "block", "not true"),
    ({"block": 5.0}, "block", "not 5.0"),
    ({"block": "5"}, "block", 'not "5"'),
    ({"block": None}, "block", "not null"),
    ({"descriptor_range": True}, "descriptor_range", "must be a whole number such as 1000, "
                                                     "not true"),
    ({"descriptor_range": "5"}, "descriptor_range", 'not "5"'),
    ({"descriptor_range": 5.0}, "descriptor_range", "not 5.0"),
    ({"descriptor_range": 0}, "descriptor_range", "must be at least 1, not 0"),
    ({"timeout_s": "10"}, "timeout_s", 'must be a number of seconds such as 30, not "10"'),
    ({"timeout_s": True}, "timeout_s", "not true"),
    ({"timeout_s": 0}, "timeout_s", "must be greater than 0"),
    ({"url": "http://"}, "url", '"http://" names no host'),
    ({"url": "https:///rpc"}, "url", "names no host"),
    ({"url": "http://node 1:8545"}, "url", "holds a space or a control character"),
    ({"url": "http://node\u0007:8545"}, "url", "holds a space or a control character"),
    ({"url": "http://node:85x5"}, "url", "has a port that is not a number"),
    ({"url": "http://[::1:8545"}, "url", "is not a well-formed URL"),
    ({"url": "ftp://127.0.0.1:8545"}, "url", "is not a node URL starting with http://"),
    ({"url": 8545}, "url", "must be text in quotes, not a number"),
])
def test_a_chain_config_value_of_the_wrong_kind_is_refused(
    changes: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(InputError) as refused:
        parse_chain_config(_chains(**changes), "chains.json")
    assert refused.value.field == f"chains.eth.{field}"
    assert reason in refused.value.reason
    _no_repr(refused.value.reason)


def test_a_node_url_with_a_password_is_refused_without_showing_it() -> None:
    with pytest.raises(InputError) as refused:
        parse_chain_config(_chains(url="http://rpc:hunter2@127.0.0.1:8545"), "chains.json")
    assert refused.value.field == "chains.eth.url"
    assert "user_env and password_env" in refused.value.reason
    assert "hunter2" not in str(refused.value)


def test_a_good_chain_config_still_reads() -> None:
    configs = parse_chain_config(_chains(block=0, timeout_s=2.5, url="http://[::1]:8545/rpc"),
                                 "chains.json")
    assert (configs["eth"].block, configs["eth"].timeout_s) == (0, 2.5)
    assert parse_chain_config(_chains(block="finalized", descriptor_range=7),
                              "chains.json")["eth"].descriptor_range == 7


def test_a_negative_block_is_exit_2_through_the_cli(ledger: Engine, tmp_path: Path) -> None:
    path = tmp_path / "chains.json"
    path.write_bytes(_chains(block=-5))
    before = snapshot(ledger)
    _refused(_run(ledger, "--chain-config", str(path)), f"{path}:1: chains.eth.block: ",
             "not -5")
    assert snapshot(ledger) == before


# --- Chart: external, customer, chain ---------------------------------------------------------

YAML_ACCOUNT = """\
assets:
  - {{code: JPY, kind: fiat, scale: 0}}
accounts:
  - code: custody:customer:trust:JPY
    asset: JPY
    pool: customer
    role: custody
    location: bank_trust
    external: {external}
"""


@pytest.mark.parametrize(("external", "field", "reason"), [
    ("{bank_account: 0012345}", "bank_account", "must be text in quotes, not the number 5349"),
    ("{bank_account: 1234567}", "bank_account", "write the account number in quotes"),
    ("{iban: 12}", "iban", "must be text in quotes, not the number 12"),
    ("{iban: null}", "iban", "must be text in quotes, not null"),
    ("{iban: '  '}", "iban", "must not be blank"),
    ("{bank_account: [1]}", "bank_account", "must be text in quotes, not a list"),
    ("{addresses: bc1qcold}", "addresses", "must be a list of text"),
    ("{addresses: ['']}", "addresses[0]", "must not be blank"),
    ("{descriptors: ['wpkh(x)', 5]}", "descriptors[1]", "must be text in quotes, not a number"),
    ("{addresses: [{a: b}]}", "addresses[0]", "must be text in quotes, not an object"),
])
def test_external_values_reconciliation_reads_are_typed(
    external: str, field: str, reason: str
) -> None:
    with pytest.raises(InputError) as refused:
        parse_chart(YAML_ACCOUNT.format(external=external), "chart.yaml")
    assert (refused.value.line, refused.value.field) == (9, f"accounts[0].external.{field}")
    assert reason in refused.value.reason
    _no_repr(refused.value.reason)


def test_other_external_keys_are_kept_as_given() -> None:
    chart = parse_chart(YAML_ACCOUNT.format(
        external="{bank_account: '0012345', addresses: [], note: 5, branch: {code: 12}}"),
        "chart.yaml")
    assert chart.accounts[0].external == {"bank_account": "0012345", "addresses": [],
                                          "note": 5, "branch": {"code": 12}}


@pytest.mark.parametrize(("document", "field", "reason"), [
    ({"assets": [{"code": "JPY", "kind": "fiat", "scale": 0}],
      "accounts": [{"code": "custody:customer:trust:JPY", "asset": "JPY", "pool": "customer",
                    "role": "custody", "location": "bank_trust", "customer": "c-1"}]},
     "accounts[0]", "only a customer_liability account names a customer, not a custody account"),
    ({"assets": [{"code": "JPY", "kind": "fiat", "scale": 0, "chain": "bitcoin"}]},
     "assets[0]", "a fiat asset has no chain or contract; only crypto assets name one"),
    ({"assets": [{"code": "JPY", "kind": "fiat", "scale": 0, "contract": "0xA0b8"}]},
     "assets[0]", "(this one names a contract)"),
])
def test_customer_chain_and_contract_only_where_they_mean_something(
    document: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(InputError) as refused:
        parse_chart(json.dumps(document, indent=1), "chart.json")
    assert refused.value.field == field
    assert reason in refused.value.reason


def test_an_unquoted_yaml_account_number_is_exit_2_through_the_cli(
    ledger: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "chart.yaml"
    path.write_text(YAML_ACCOUNT.format(external="{bank_account: 0012345}"))
    before = snapshot(ledger)
    _refused(cli("--db", _url(ledger), "chart", "load", str(path)),
             f"{path}:9: accounts[0].external.bank_account: ", '("0012345")')
    assert snapshot(ledger) == before


# --- Prices --------------------------------------------------------------------------------

def _prices(prices: dict[str, Any]) -> bytes:
    return json.dumps({"quote": "JPY", "as_of": AS_OF, "prices": prices}).encode()


@pytest.mark.parametrize("price", ["150", "0.5", "2"])
def test_a_price_of_the_quote_currency_other_than_1_is_refused(price: str) -> None:
    with pytest.raises(InputError) as refused:
        parse_prices(_prices({"BTC": "15000000", "JPY": price}), "prices.json")
    assert str(refused.value) == \
        f"prices.json:1: prices.JPY: JPY is the quote currency: its price is 1, not {price}"


@pytest.mark.parametrize("price", ["1", "1.00", 1])
def test_a_price_of_1_for_the_quote_currency_is_accepted(price: Any) -> None:
    table = parse_prices(_prices({"BTC": "15000000", "JPY": price}), "prices.json")
    assert table.price("JPY") == 1
    assert table.value("JPY", 500, 0) == 500


def test_a_quote_price_is_exit_2_through_the_cli(ledger: Engine, tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_bytes(_prices({"BTC": "15000000", "JPY": "150"}))
    _refused(_run(ledger, "--prices", str(path)), f"{path}:1: prices.JPY: ",
             "JPY is the quote currency: its price is 1, not 150")


# --- Entry lines: a byte limit, checked as the line is read -------------------------------------

class _EndlessLine(io.RawIOBase):
    """stdin holding one line that never ends; counts what is read, and fails the test if the
    reader goes far past the limit (a reader that reads the whole line never returns)."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self.read_bytes += len(buffer)
        assert self.read_bytes <= 4 * MAX_LINE_BYTES, "the whole line is being read"
        buffer[:] = b"x" * len(buffer)
        return len(buffer)


def test_a_line_without_end_is_refused_after_the_limit_not_read_whole(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    endless = _EndlessLine()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(endless)))
    with EntryLines("-") as lines, pytest.raises(InputError) as refused:
        list(read_drafts(lines, lines.source))
    assert str(refused.value) == (f"<stdin>:1: the line is longer than {MAX_LINE_BYTES} bytes; "
                                  "an entry is one line of at most that size")
    assert endless.read_bytes < 2 * MAX_LINE_BYTES


def _entry_line(key: str, memo: str = "") -> bytes:
    item = deposit(key, "c-1", "1")
    return json.dumps({**item, "memo": memo} if memo else item, ensure_ascii=False).encode()


def test_the_limit_is_on_bytes_not_characters() -> None:
    """400,000 characters of Japanese text are 1,200,000 bytes: over the limit."""
    memo_line = _entry_line("k1", memo="\u3042" * 400_000).decode()
    assert len(memo_line) < MAX_LINE_BYTES < len(memo_line.encode())
    with pytest.raises(InputError) as refused:
        list(read_drafts([memo_line], "day.jsonl"))
    assert refused.value.line == 1
    assert f"longer than {MAX_LINE_BYTES} bytes" in refused.value.reason


def test_check_skips_an_over_long_line_and_reads_on(tmp_path: Path) -> None:
    path = tmp_path / "day.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + _entry_line("k1") + b"\n" + b"x" * (3 * MAX_LINE_BYTES)
                     + b"\n" + _entry_line("k3") + b"\r\n" + b"y" * MAX_LINE_BYTES + b"\n"
                     + _entry_line("k5"))
    errors = ErrorLog(10)
    with EntryLines(str(path)) as lines:
        drafts = list(read_drafts(lines, lines.source, errors))
        assert lines.bytes_read == path.stat().st_size  # the batch's SHA-256 covers every byte
    assert [(d.line_no, d.key) for d in drafts] == [(1, "k1"), (3, "k3"), (5, "k5")]
    # Line 4 is exactly at the limit: not too long, only not JSON.
    assert [(e.line, e.reason.split(":")[0]) for e in errors.errors] == [
        (2, f"the line is longer than {MAX_LINE_BYTES} bytes; an entry is one line of at most "
            "that size"), (4, "malformed JSON")]


def test_an_over_long_line_is_exit_2_through_the_cli(ledger: Engine, tmp_path: Path) -> None:
    path = tmp_path / "day.jsonl"
    path.write_bytes(_entry_line("k1") + b"\n" + _entry_line("k2", memo="x" * MAX_LINE_BYTES))
    before = snapshot(ledger)
    _refused(cli("--db", _url(ledger), "post", str(path)), f"{path}:2: ",
             f"the line is longer than {MAX_LINE_BYTES} bytes")
    assert snapshot(ledger) == before


# --- Rulebook ---------------------------------------------------------------------------------

def test_a_rulebook_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rulebook.yaml"
    path.write_bytes(b'name: acme\nversion: "1"\nextends: jp-fsa\n# Gesch\xe4ftsjahr\n')
    with pytest.raises(InputError) as refused:
        load_rulebook(str(path))
    assert str(refused.value) == (f"{path}:4: not UTF-8 text (byte 8 of the line); save the "
                                  "file as UTF-8")


def test_a_latin1_rulebook_is_exit_2_through_the_cli(ledger: Engine, tmp_path: Path) -> None:
    path = tmp_path / "rulebook.yaml"
    path.write_bytes(b'name: acme\nversion: "1"\nextends: jp-fsa\n# Gesch\xe4ftsjahr\n')
    _refused(_run(ledger, "--rulebook", str(path)), f"{path}:4: ", "not UTF-8 text")


# --- Insurance register -------------------------------------------------------------------------

def _register(**changes: Any) -> bytes:
    policy = {"policy_id": "P-1", "insurer": "Example Fire & Marine", "limit": "1000000000",
              "covered_share": "0.8", "period_start": "2025-04-01T00:00:00+09:00",
              "period_end": "2026-04-01T00:00:00+09:00", **changes}
    return json.dumps({"policies": [policy]}, indent=1).encode()


@pytest.mark.parametrize(("changes", "field", "reason"), [
    ({"limit": "-5"}, "limit", "the limit must be greater than zero, not -5"),
    ({"limit": -5}, "limit", "the limit must be greater than zero, not -5"),
    ({"limit": "0.00"}, "limit", "the limit must be greater than zero, not 0.00"),
    ({"limit": "1e9"}, "limit", '"1e9" is not a plain decimal number'),
    ({"limit": "1_000"}, "limit", '"1_000" is not a plain decimal number'),
    ({"limit": " 1000"}, "limit", '" 1000" is not a plain decimal number'),
    ({"limit": 1e9}, "limit", "not the number 1000000000.0 (write it in quotes)"),
    ({"limit": True}, "limit", "not true/false"),
    ({"limit": None}, "limit", "not null"),
    ({"insurer": "   "}, "insurer", "must not be blank"),
])
def test_a_policy_limit_and_insurer_are_checked_when_the_file_is_read(
    changes: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(InputError) as refused:
        parse_register(_register(**changes), "register.json")
    assert refused.value.field == f"policies[0].{field}"
    assert refused.value.line is not None
    assert reason in refused.value.reason
    _no_repr(refused.value.reason)


def test_a_negative_limit_is_exit_2_through_the_cli(ledger: Engine, tmp_path: Path) -> None:
    path = tmp_path / "register.json"
    path.write_bytes(_register(limit="-5"))
    before = snapshot(ledger)
    _refused(cli("--db", _url(ledger), "insurance", "load", str(path)),
             f"{path}:6: policies[0].limit: ", "greater than zero, not -5")
    missing = tmp_path / "nope.json"
    _refused(cli("--db", _url(ledger), "insurance", "load", str(missing)), f"{missing}: ",
             "cannot read: no such file")
    assert snapshot(ledger) == before


# --- Messages: values in quotes, never Python's repr ------------------------------------------

@pytest.mark.parametrize(("amount", "reason"), [
    ("1e5", 'amount "1e5" is not a plain decimal number such as "12.5"'),
    ("x" * 150, 'amount "' + "x" * 40 + '…" is empty or too long'),
    (0.5, 'amount must be a decimal string such as "0.5", not the number 0.5 (write it in '
          'quotes)'),
    (None, 'amount must be a decimal string such as "0.5", not null'),
    ({"v": 1}, 'amount must be a decimal string such as "0.5", not an object'),
])
def test_amount_messages_quote_the_value_as_written(amount: Any, reason: str) -> None:
    with pytest.raises(InputError) as refused:
        parse_amount(amount, 8)
    assert refused.value.reason == reason


def test_an_unknown_entry_key_is_quoted_as_written(ledger: Engine) -> None:
    with pytest.raises(InputError) as refused:
        entry_view(ledger, "it's")
    assert refused.value.reason == 'no entry has the key "it\'s"'


def test_a_redefined_asset_names_the_field_and_both_values(ledger: Engine) -> None:
    changed = json.loads(json.dumps(CHART))
    changed["assets"][1]["scale"] = 6
    with pytest.raises(InputError) as refused:
        load_chart(ledger, parse_chart(json.dumps(changed, indent=1), "chart.json"), "chart.json")
    assert (refused.value.field, refused.value.reason) == (
        "assets.scale", "redefines asset BTC: scale is 8 in the ledger, 6 in the chart")


def test_a_redefined_account_shows_values_as_json(ledger: Engine) -> None:
    changed = json.loads(json.dumps(CHART))
    changed["accounts"][0]["external"] = {"bank_account": "7654321"}
    changed["accounts"][3]["location"] = "cold_wallet"
    with pytest.raises(InputError) as refused:
        load_chart(ledger, parse_chart(json.dumps(changed, indent=1), "chart.json"), "chart.json")
    assert refused.value.reason == (
        f'redefines account {TRUST}: external is {{"bank_account": "1234567"}} in the ledger, '
        '{"bank_account": "7654321"} in the chart')


@pytest.mark.parametrize(("url", "reason"), [
    ("postgresql://segledger:hunter2@db.internal:54x2/ledger",
     "the port of the database URL is not a number"),
    ("postgresql//segledger:hunter2@db.internal/ledger", "not a database URL"),
    ("mysql://segledger:hunter2@db.internal/ledger", 'unsupported database "mysql"'),
])
def test_a_bad_database_url_is_refused_without_its_password(url: str, reason: str) -> None:
    with pytest.raises(InputError) as refused:
        normalize_url(url)
    assert refused.value.field == "--db"
    assert reason in refused.value.reason
    assert "hunter2" not in str(refused.value)
    _no_repr(refused.value.reason)


def test_a_database_url_with_a_bad_port_is_exit_2_through_the_cli() -> None:
    done = cli("--db", "postgresql://segledger:hunter2@db.internal:54x2/ledger", "balances")
    _refused(done, "--db: ", "the port of the database URL is not a number")
    assert "hunter2" not in done.stderr
    done = cli("--db", "postgresql//segledger:hunter2@db.internal/ledger", "balances")
    _refused(done, "--db: ", "not a database URL")
    assert "hunter2" not in done.stderr


# --- One reader for every file ------------------------------------------------------------------

def test_evidence_prices_and_chain_configs_are_read_by_the_one_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing, folder = str(tmp_path / "nope.xml"), str(tmp_path)
    for read in (read_evidence_files, lambda path: read_input(path[0])):
        with pytest.raises(InputError) as refused:
            read([missing])
        assert str(refused.value) == f"{missing}: cannot read: no such file"
        with pytest.raises(InputError) as refused:
            read([folder])
        assert str(refused.value) == f"{folder}: cannot read: a directory, not a file"
    large = tmp_path / "statement.xml"
    large.write_bytes(b"<x/>" * 10)
    monkeypatch.setattr(files, "MAX_FILE_BYTES", 39)
    with pytest.raises(InputError) as refused:
        read_evidence_files([str(large)])
    assert "larger than" in refused.value.reason and refused.value.source == str(large)
    monkeypatch.setattr(files, "MAX_FILE_BYTES", 40)
    [evidence] = read_evidence_files([str(large)])
    assert evidence.content == b"<x/>" * 10


def test_a_missing_evidence_file_is_exit_2_through_the_cli(ledger: Engine, tmp_path: Path) -> None:
    missing = tmp_path / "statement.xml"
    _refused(_run(ledger, "--evidence", str(missing)), f"{missing}: ", "cannot read: no such file")
    _refused(_run(ledger, "--prices", str(tmp_path)), f"{tmp_path}: ",
             "cannot read: a directory, not a file")

