"""Reading the ledger from the command line: `balances`, `register`, `entry show`, `period`.

One small exchange, worked out by hand (JPY has scale 0, BTC scale 8; times are JST):

    T1 11-24 09:00  cap   operating JPY <- equity          1,000,000
    T1              d1    trust <- customer:c-001:JPY        100,000
    T2 11-25 09:00  d2    trust <- customer:c-002:JPY        250,000
    T2              d3    hot BTC <- customer:c-001:BTC          0.5
    T2              d5    trust <- customer:c-003:JPY          7,000   (reversed by r5)
    T3 11-26 09:00  f1    customer:c-001:JPY -> fees             500
    T3              w1    customer:c-002:JPY -> trust         50,000
    T3              r5    reversal of d5                       7,000
    T3              rent  rent expense <- operating JPY       30,000
    T4 11-27 09:00  x1    customer:c-001:JPY -> fees      100 and 200 (two lines)
    T4              d4    trust <- customer:c-001:JPY         20,000   (a later batch)

d4 is posted in a second batch, so at T4 it sorts after x1 by entry id, although its key
sorts first: the register's tie order is the entry id, then the line.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from sqlalchemy import Engine

from ledger.chart import parse_chart
from ledger.storage.chart_store import load_chart
from tests.helpers import CHART, cli, deposit, entry, post, snapshot

T1, T2 = "2025-11-24T09:00:00+09:00", "2025-11-25T09:00:00+09:00"
T3, T4 = "2025-11-26T09:00:00+09:00", "2025-11-27T09:00:00+09:00"
TRUST, OPERATING, HOT = ("custody:customer:trust:JPY", "custody:company:operating:JPY",
                         "custody:customer:hot:BTC")
C1, C2, C3 = "customer:c-001:JPY", "customer:c-002:JPY", "customer:c-003:JPY"
FEES, COLD = "revenue:fees:JPY", "custody:customer:cold:BTC"

FIRST_BATCH = [
    entry("cap", "adjustment", (OPERATING, "equity:capital:JPY", "1000000"), at=T1),
    deposit("d1", "c-001", "100000", at=T1),
    deposit("d2", "c-002", "250000", at=T2),
    deposit("d3", "c-001", "0.5", asset="BTC", at=T2),
    deposit("d5", "c-003", "7000", at=T2),
    entry("f1", "fee", (C1, FEES, "500"), at=T3),
    entry("w1", "withdrawal", (C2, TRUST, "50000"), at=T3),
    {"key": "r5", "type": "reversal", "effective_at": T3, "reverses": "d5",
     "memo": "deposit booked to the wrong customer"},
    entry("rent", "adjustment", ("expense:rent:JPY", OPERATING, "30000"), at=T3),
    entry("x1", "fee", (C1, FEES, "100"), (C1, FEES, "200"), at=T4, memo="trading fees",
          metadata={"trades": ["t-1", "t-2"], "venue": "spot"}),
]
SECOND_BATCH = [deposit("d4", "c-001", "20000", at=T4)]

# Every account with a posting, at the end of the story (normal side).
ALL_NOW = {
    HOT: ("BTC", "0.50000000"),
    OPERATING: ("JPY", "970000"),          # 1,000,000 - 30,000
    TRUST: ("JPY", "320000"),              # 100,000 + 250,000 + 7,000 - 50,000 - 7,000 + 20,000
    "customer:c-001:BTC": ("BTC", "0.50000000"),
    C1: ("JPY", "119200"),                 # 100,000 - 500 - 100 - 200 + 20,000
    C2: ("JPY", "200000"),                 # 250,000 - 50,000
    C3: ("JPY", "0"),                      # 7,000 reversed
    "equity:capital:JPY": ("JPY", "1000000"),
    "expense:rent:JPY": ("JPY", "30000"),
    FEES: ("JPY", "800"),                  # 500 + 100 + 200
}


@pytest.fixture
def ledger(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    # Tables written to a pipe take $COLUMNS as their width: wide enough that no row folds.
    monkeypatch.setenv("COLUMNS", "200")
    load_chart(engine, parse_chart(json.dumps(CHART), "chart.json"), "chart.json")
    post(engine, FIRST_BATCH)
    post(engine, SECOND_BATCH)
    return engine


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _ok(*args: str) -> str:
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _json(db: str, *args: str) -> object:
    return json.loads(_ok("--db", db, *args, "--format", "json"))


def _balances(db: str, *args: str) -> dict[str, tuple[str, str]]:
    rows = _json(db, "balances", *args)
    assert isinstance(rows, list)
    return {row["account"]: (row["asset"], row["balance"]) for row in rows}


def _totals(db: str, *args: str) -> list[tuple[str, int, str]]:
    rows = _json(db, "balances", "--totals", *args)
    assert isinstance(rows, list)
    return [(row["asset"], row["accounts"], row["total"]) for row in rows]


def test_balances_filters_pick_the_accounts(ledger: Engine) -> None:
    db = _url(ledger)
    assert _balances(db) == ALL_NOW
    assert _balances(db, "--prefix", "customer:c-001:") == {
        "customer:c-001:BTC": ("BTC", "0.50000000"), C1: ("JPY", "119200")}
    assert _balances(db, "--account", C2, "--account", "equity:capital:JPY") == {
        C2: ("JPY", "200000"), "equity:capital:JPY": ("JPY", "1000000")}
    assert _balances(db, "--asset", "BTC") == {
        HOT: ("BTC", "0.50000000"), "customer:c-001:BTC": ("BTC", "0.50000000")}
    assert _balances(db, "--pool", "company") == {
        key: ALL_NOW[key] for key in (OPERATING, "equity:capital:JPY", "expense:rent:JPY", FEES)}
    assert _balances(db, "--role", "custody") == {
        key: ALL_NOW[key] for key in (HOT, OPERATING, TRUST)}
    assert _balances(db, "--pool", "customer", "--role", "customer_liability", "--asset",
                     "JPY") == {C1: ("JPY", "119200"), C2: ("JPY", "200000"), C3: ("JPY", "0")}
    assert _balances(db, "--pool", "customer", "--role", "customer_liability", "--non-zero") == {
        "customer:c-001:BTC": ("BTC", "0.50000000"), C1: ("JPY", "119200"),
        C2: ("JPY", "200000")}
    # An account named exactly is listed before its first posting, at zero; --non-zero hides it.
    assert _balances(db, "--account", COLD) == {COLD: ("BTC", "0.00000000")}
    assert _balances(db, "--account", COLD, "--non-zero") == {}
    # ...unless another filter leaves it out.
    assert _balances(db, "--account", COLD, "--pool", "company") == {}
    # Inclusive as-of: the T2 entries count, the later ones not, and accounts first posted
    # later (fees, rent) are not listed yet.
    assert _balances(db, "--as-of", T2) == {
        HOT: ("BTC", "0.50000000"), OPERATING: ("JPY", "1000000"),
        TRUST: ("JPY", "357000"), "customer:c-001:BTC": ("BTC", "0.50000000"),
        C1: ("JPY", "100000"), C2: ("JPY", "250000"), C3: ("JPY", "7000"),
        "equity:capital:JPY": ("JPY", "1000000")}
    assert _balances(db, "--as-of", T3, "--prefix", "customer:", "--asset", "JPY") == {
        C1: ("JPY", "99500"), C2: ("JPY", "200000"), C3: ("JPY", "0")}
    csv = _ok("--db", db, "balances", "--prefix", "customer:", "--non-zero", "--format", "csv")
    assert csv.splitlines() == ["account,asset,balance", "customer:c-001:BTC,BTC,0.50000000",
                                f"{C1},JPY,119200", f"{C2},JPY,200000"]


def test_balances_totals_per_asset(ledger: Engine) -> None:
    db = _url(ledger)
    # 970,000 + 320,000 + 119,200 + 200,000 + 0 + 1,000,000 + 30,000 + 800
    assert _totals(db) == [("BTC", 2, "1.00000000"), ("JPY", 8, "2640000")]
    assert _totals(db, "--role", "custody") == [("BTC", 1, "0.50000000"), ("JPY", 2, "1290000")]
    assert _totals(db, "--pool", "customer", "--role", "customer_liability", "--asset",
                   "JPY") == [("JPY", 3, "319200")]
    assert _totals(db, "--pool", "customer", "--role", "customer_liability", "--asset", "JPY",
                   "--non-zero") == [("JPY", 2, "319200")]
    assert _totals(db, "--as-of", "2025-11-01T00:00:00Z") == []
    csv = _ok("--db", db, "balances", "--totals", "--role", "custody", "--format", "csv")
    assert csv.splitlines() == ["asset,accounts,total", "BTC,1,0.50000000", "JPY,2,1290000"]
    # The table: the accounts, a rule, then one total row per asset, amounts grouped.
    table = _ok("--db", db, "balances", "--role", "custody").splitlines()
    body = [line for line in table if line.startswith("│")]
    assert [line.split("│")[1].strip() for line in body] == [
        OPERATING, HOT, TRUST, "total of 1 account", "total of 2 accounts"]
    assert [line.split("│")[3].strip() for line in body] == [
        "970,000", "0.50000000", "320,000", "0.50000000", "1,290,000"]
    rule = next(n for n, line in enumerate(table) if line.startswith("├"))
    assert table[rule - 1] == body[2] and table[rule + 1] == body[3]


def test_register_running_balance_from_the_start(ledger: Engine) -> None:
    db = _url(ledger)
    shown = _json(db, "register", C1)
    assert isinstance(shown, dict)
    assert (shown["account"], shown["asset"], shown["normal_side"]) == (C1, "JPY", "credit")
    assert (shown["opening_balance"], shown["closing_balance"], shown["more"]) == (
        "0", "119200", False)
    assert [(p["entry"], p["type"], p["line"], p["counter_account"], p["amount"], p["balance"])
            for p in shown["postings"]] == [
        ("d1", "deposit", 0, TRUST, "100000", "100000"),
        ("f1", "fee", 0, FEES, "-500", "99500"),
        ("x1", "fee", 0, FEES, "-100", "99400"),   # x1 before d4: the lower entry id
        ("x1", "fee", 1, FEES, "-200", "99200"),
        ("d4", "deposit", 0, TRUST, "20000", "119200"),
    ]
    assert [p["effective_at"] for p in shown["postings"]] == [
        "2025-11-24T00:00:00+00:00", "2025-11-26T00:00:00+00:00", "2025-11-27T00:00:00+00:00",
        "2025-11-27T00:00:00+00:00", "2025-11-27T00:00:00+00:00"]
    # A debit-normal account: deposits raise it, the withdrawal and the reversal lower it.
    trust = _json(db, "register", TRUST)
    assert isinstance(trust, dict)
    assert trust["normal_side"] == "debit"
    assert [(p["entry"], p["counter_account"], p["amount"], p["balance"])
            for p in trust["postings"]] == [
        ("d1", C1, "100000", "100000"), ("d2", C2, "250000", "350000"),
        ("d5", C3, "7000", "357000"), ("w1", C2, "-50000", "307000"),
        ("r5", C3, "-7000", "300000"), ("d4", C1, "20000", "320000")]
    assert trust["closing_balance"] == ALL_NOW[TRUST][1]


def test_register_since_starts_from_the_balance_before_it(ledger: Engine) -> None:
    db = _url(ledger)
    # Before T3 only d1 (100,000) counts; --since is inclusive.
    since = _json(db, "register", C1, "--since", T3)
    assert isinstance(since, dict)
    assert (since["since"], since["opening_balance"], since["closing_balance"]) == (
        "2025-11-26T00:00:00+00:00", "100000", "119200")
    assert [(p["entry"], p["amount"], p["balance"]) for p in since["postings"]] == [
        ("f1", "-500", "99500"), ("x1", "-100", "99400"), ("x1", "-200", "99200"),
        ("d4", "20000", "119200")]
    # --until is inclusive too: the T3 postings only.
    window = _json(db, "register", TRUST, "--since", T3, "--until", T3)
    assert isinstance(window, dict)
    assert (window["opening_balance"], window["closing_balance"]) == ("357000", "300000")
    assert [(p["entry"], p["balance"]) for p in window["postings"]] == [
        ("w1", "307000"), ("r5", "300000")]
    # From the first posting on: nothing before it. After the last: the whole balance.
    first = _json(db, "register", C1, "--since", T1)
    assert isinstance(first, dict)
    assert (first["opening_balance"], len(first["postings"])) == ("0", 5)
    after = _json(db, "register", C1, "--since", "2025-12-01T00:00:00Z")
    assert isinstance(after, dict)
    assert (after["opening_balance"], after["closing_balance"], after["postings"]) == (
        "119200", "119200", [])
    # CSV: one flat row per posting; the table titles the opening balance.
    csv = _ok("--db", db, "register", C1, "--since", T4, "--format", "csv").splitlines()
    assert csv == ["effective_at,entry,type,line,counter_account,amount,balance",
                   f"2025-11-27T00:00:00+00:00,x1,fee,0,{FEES},-100,99400",
                   f"2025-11-27T00:00:00+00:00,x1,fee,1,{FEES},-200,99200",
                   f"2025-11-27T00:00:00+00:00,d4,deposit,0,{TRUST},20000,119200"]
    # The table: the balance before --since as its first row, then the postings.
    table = _ok("--db", db, "--tz", "Asia/Tokyo", "register", C1, "--since", T4).splitlines()
    assert table[0].strip() == f"Register of {C1} (JPY, credit normal)"
    assert [[cell.strip() for cell in line.split("│")[1:-1]]
            for line in table if line.startswith("│")] == [
        [T4, "(balance before)", "", "", "", "", "99,500"],
        [T4, "x1", "fee", "0", FEES, "-100", "99,400"],
        [T4, "x1", "fee", "1", FEES, "-200", "99,200"],
        [T4, "d4", "deposit", "0", TRUST, "20,000", "119,200"]]


def test_register_limit_says_when_more_follow(ledger: Engine) -> None:
    done = cli("--db", _url(ledger), "register", C1, "--limit", "2", "--format", "json")
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert [(p["entry"], p["balance"]) for p in shown["postings"]] == [
        ("d1", "100000"), ("f1", "99500")]
    assert (shown["more"], shown["closing_balance"]) == (True, "99500")
    assert done.stderr.startswith("note: more postings follow the 2 shown")
    exact = cli("--db", _url(ledger), "register", C1, "--limit", "5", "--format", "json")
    assert json.loads(exact.stdout)["more"] is False and exact.stderr == ""


def test_entry_show_of_a_normal_entry(ledger: Engine) -> None:
    db = _url(ledger)
    shown = _json(db, "entry", "show", "x1")
    assert isinstance(shown, dict)
    recorded = datetime.fromisoformat(shown.pop("recorded_at"))
    assert recorded.utcoffset() is not None
    batch = shown.pop("batch")
    assert batch["source"] == "test.jsonl" and isinstance(batch["id"], int)
    assert shown == {
        "key": "x1", "type": "fee", "effective_at": "2025-11-27T00:00:00+00:00",
        "memo": "trading fees", "metadata": {"trades": ["t-1", "t-2"], "venue": "spot"},
        "reverses": None, "reversed_by": None,
        "lines": [{"line": 0, "debit": C1, "credit": FEES, "asset": "JPY", "amount": "100"},
                  {"line": 1, "debit": C1, "credit": FEES, "asset": "JPY", "amount": "200"}]}
    btc = _json(db, "--tz", "Asia/Tokyo", "entry", "show", "d3")
    assert isinstance(btc, dict)
    assert btc["effective_at"] == T2
    assert btc["lines"] == [{"line": 0, "debit": HOT, "credit": "customer:c-001:BTC",
                             "asset": "BTC", "amount": "0.50000000"}]
    csv = _ok("--db", db, "entry", "show", "x1", "--format", "csv").splitlines()
    assert csv == ["key,line,debit,credit,asset,amount", f"x1,0,{C1},{FEES},JPY,100",
                   f"x1,1,{C1},{FEES},JPY,200"]
    table = _ok("--db", db, "entry", "show", "x1")
    assert "trading fees" in table and '{"trades": ["t-1", "t-2"], "venue": "spot"}' in table
    assert "test.jsonl" in table and f"│ {C1} │" in table


def test_entry_show_of_a_reversed_entry_and_its_reversal(ledger: Engine) -> None:
    db = _url(ledger)
    original = _json(db, "entry", "show", "d5")
    assert isinstance(original, dict)
    assert (original["reverses"], original["reversed_by"]) == (None, "r5")
    assert original["lines"] == [
        {"line": 0, "debit": TRUST, "credit": C3, "asset": "JPY", "amount": "7000"}]
    reversal = _json(db, "entry", "show", "r5")
    assert isinstance(reversal, dict)
    assert (reversal["type"], reversal["reverses"], reversal["reversed_by"]) == (
        "reversal", "d5", None)
    assert reversal["memo"] == "deposit booked to the wrong customer"
    assert reversal["effective_at"] == "2025-11-26T00:00:00+00:00"
    # The mirror: debit and credit swapped, same amount.
    assert reversal["lines"] == [
        {"line": 0, "debit": C3, "credit": TRUST, "asset": "JPY", "amount": "7000"}]
    table = _ok("--db", db, "entry", "show", "d5").splitlines()
    assert [cell.strip() for cell in next(
        line for line in table if "reversed_by" in line).split("│")[1:3]] == ["reversed_by", "r5"]


def test_period_close_twice_is_harmless_and_period_list_shows_each(ledger: Engine) -> None:
    db = _url(ledger)
    assert _json(db, "period", "list") == []
    first = _ok("--db", db, "period", "close", "--through", "2025-11-25T00:00:00+09:00",
                "--by", "auditor", "--note", "November, first part")
    assert first.strip() == "closed through 2025-11-24T15:00:00+00:00"
    before = snapshot(ledger)
    again = _ok("--db", db, "period", "close", "--through", "2025-11-24T15:00:00Z")
    assert again.strip() == "already closed through 2025-11-24T15:00:00+00:00; nothing changed"
    assert snapshot(ledger) == before
    _ok("--db", db, "period", "close", "--through", "2025-11-26T00:00:00+09:00")
    listed = _json(db, "period", "list")
    assert isinstance(listed, list)
    assert [(p["through"], p["closed_by"], p["note"]) for p in listed] == [
        ("2025-11-24T15:00:00+00:00", "auditor", "November, first part"),
        ("2025-11-25T15:00:00+00:00", "segledger", None)]
    assert all(datetime.fromisoformat(p["closed_at"]).utcoffset() is not None for p in listed)
    csv = _ok("--db", db, "--tz", "Asia/Tokyo", "period", "list", "--format", "csv")
    assert [line.split(",")[0] for line in csv.splitlines()] == [
        "through", "2025-11-25T00:00:00+09:00", "2025-11-26T00:00:00+09:00"]
    table = _ok("--db", db, "period", "list")
    assert "November, first part" in table and "auditor" in table


BAD_INPUT = [
    (("balances", "--asset", "XYZ"), "--asset", "unknown asset XYZ"),
    (("balances", "--asset", "JPY", "--asset", "DOGE"), "--asset", "unknown asset DOGE"),
    (("balances", "--account", "vendor:x"), "--account", "unknown account vendor:x"),
    (("balances", "--account", "customer:c-00", "--account", C2), "--account",
     "unknown account customer:c-00"),
    (("balances", "--pool", "clients"), "--pool", '"clients" is not one of customer, company'),
    (("balances", "--role", "owner"), "--role", '"owner" is not one of custody'),
    (("balances", "--as-of", "yesterday"), "--as-of", "not an ISO 8601 time"),
    (("balances", "--as-of", "2025-11-25T09:00:00"), "--as-of", "UTC offset"),
    (("register", "customer:c-404:JPY"), "ACCOUNT", "unknown account customer:c-404:JPY"),
    (("register", C1, "--since", "2025-11-26T00:00:00"), "--since", "UTC offset"),
    (("register", C1, "--until", "soon"), "--until", "not an ISO 8601 time"),
    (("register", C1, "--since", T3, "--until", T1), "--until", "earlier than --since"),
    (("register", C1, "--limit", "0"), "--limit", "between 1 and"),
    (("entry", "show", "nope"), "KEY", 'no entry has the key "nope"'),
    (("period", "close", "--through", "2025-11-25T00:00:00Z"), "--through",
     "already closed through 2025-11-26T00:00:00+00:00"),
    (("period", "close", "--through", "2999-01-01T00:00:00Z"), "--through",
     "only be closed once it has ended"),
]


def test_bad_input_is_exit_2_naming_the_option_and_writes_nothing(ledger: Engine) -> None:
    db = _url(ledger)
    _ok("--db", db, "period", "close", "--through", "2025-11-26T00:00:00Z")
    before = snapshot(ledger)
    for args, option, reason in BAD_INPUT:
        refused = cli("--db", db, *args)
        assert refused.returncode == 2, (args, refused.stdout, refused.stderr)
        assert refused.stdout == "", args
        lines = refused.stderr.splitlines()
        assert len(lines) == 1, (args, refused.stderr)
        assert lines[0].startswith(f"error: {option}: "), (args, lines[0])
        assert reason in lines[0], (args, lines[0])
    assert snapshot(ledger) == before


def test_an_account_that_is_only_a_prefix_is_read_as_one_with_a_notice(ledger: Engine) -> None:
    """`--account` took a prefix until this release: one value that names no account exactly
    but starts some is still read as a prefix, and stderr says to write --prefix."""
    db = _url(ledger)
    run = cli("--db", db, "balances", "--account", "customer:c-001:", "--format", "json")
    assert run.returncode == 0, run.stderr
    assert {row["account"]: row["balance"] for row in json.loads(run.stdout)} == {
        "customer:c-001:BTC": "0.50000000", C1: "119200"}
    assert run.stderr == ("note: --account customer:c-001: names no account exactly; read as a "
                          "prefix, as before (deprecated: write --prefix)\n")
