"""Input files through the real `segledger` command, on SQLite and PostgreSQL: no surprises.

A bad file is exit 2 with exactly one line on stderr naming the file, the line and the field,
nothing on stdout, and the database as it was. `post --check` lists every error and writes
nothing. An empty entry file posts nothing. A byte-order mark changes nothing. An observation
CSV is read by its header.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from ledger.chart import parse_chart
from ledger.storage.chart_store import load_chart
from ledger.storage.reading import close_period
from ledger.storage.schema import entries
from reconcile.chains import parse_chain_config
from reconcile.evidence import EvidenceFile
from tests.helpers import AS_OF, CHART, POLICY, PRICES, cli, deposit, entry, post, snapshot

TRUST, HOT = "custody:customer:trust:JPY", "custody:customer:hot:BTC"
BOM = b"\xef\xbb\xbf"


@pytest.fixture
def ledger(engine: Engine) -> Engine:
    """The test chart, two deposits, and a period closed through 2025-11-20 (UTC)."""
    load_chart(engine, parse_chart(json.dumps(CHART), "chart.json"), "chart.json")
    post(engine, [deposit("d1", "c-1", "100000"), deposit("d2", "c-1", "0.5", asset="BTC")])
    close_period(engine, datetime(2025, 11, 20, tzinfo=UTC), "auditor", None)
    return engine


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def dump(engine: Engine) -> dict[str, Any]:
    """Balances, counts, coverage, and every entry's key and content hash."""
    with engine.connect() as connection:
        rows = connection.execute(select(entries.c.key, entries.c.content_hash)
                                  .order_by(entries.c.key)).all()
    return {**snapshot(engine), "entries": [tuple(row) for row in rows]}


def _jsonl(path: Path, lines: list[Any], prefix: bytes = b"") -> Path:
    """Each item a line: a dict as JSON, a str or bytes as it is."""
    data = prefix
    for item in lines:
        raw = item if isinstance(item, bytes) else (
            item.encode() if isinstance(item, str) else json.dumps(item).encode())
        data += raw + b"\n"
    path.write_bytes(data)
    return path


def _write(path: Path, document: Any, prefix: bytes = b"") -> Path:
    text = document if isinstance(document, str) else json.dumps(document, indent=2)
    path.write_bytes(prefix + text.encode())
    return path


def _assert_refused(result: Any, where: str, reason: str) -> None:
    """Exit 2, stdout clean, one line on stderr: `error: <where><…reason…>`."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {where}"), lines[0]
    assert reason in lines[0], lines[0]
    assert "Decimal(" not in lines[0] and "Input should" not in lines[0], lines[0]


GOOD = deposit("g1", "c-2", "500")


def _with(**changes: Any) -> dict[str, Any]:
    return {**deposit("x", "c-1", "1"), **changes}


def _line(**changes: Any) -> dict[str, Any]:
    return _with(lines=[{"debit": TRUST, "credit": "customer:c-1:JPY", "amount": "1", **changes}])


# Entry files: (lines of the file, bad line, field, reason). The bad line follows a good one.
BAD_ENTRY_FILES: dict[str, tuple[list[Any], int, str, str]] = {
    "misspelt_field": ([GOOD, {**deposit("x", "c-1", "1"), "lines": [
        {"debit": TRUST, "credit": "customer:c-1:JPY", "amnt": "1"}]}], 2, "lines[0].amnt",
        "unknown field (did you mean amount? the fields here are: debit, credit, amount)"),
    "unknown_top_field": ([GOOD, _with(effective=AS_OF)], 2, "effective",
                          "unknown field (did you mean effective_at?"),
    "february_30": ([GOOD, _with(effective_at="2025-02-30T00:00:00+09:00")], 2, "effective_at",
                    "2025-02-30T00:00:00+09:00 is not a valid date"),
    "hour_25": ([GOOD, _with(effective_at="2025-11-25T25:00:00+09:00")], 2, "effective_at",
                "2025-11-25T25:00:00+09:00 is not a valid time"),
    "no_offset": ([GOOD, _with(effective_at="2025-11-25T09:00:00")], 2, "effective_at",
                  "2025-11-25T09:00:00 has no UTC offset (write e.g. 2025-11-25T09:00:00+09:00)"),
    "not_a_time": ([GOOD, _with(effective_at="yesterday")], 2, "effective_at",
                   '"yesterday" is not an ISO 8601 time such as 2025-11-25T09:00:00+09:00'),
    "same_key_twice_in_file": ([deposit("k1", "c-3", "100"), GOOD, deposit("k1", "c-3", "200")],
                               3, "key",
                               'key "k1" appears twice in this file (lines 1 and 3) with '
                               "different content"),
    "key_already_posted": ([GOOD, deposit("d1", "c-1", "7")], 2, "key",
                           'key "d1" is already posted with other content'),
    "account_code_with_space": ([GOOD, _line(credit="customer:c 1:JPY")], 2, "lines[0].credit",
                                '"customer:c 1:JPY" is not an account code: 1 to 200 ASCII '
                                "letters, digits and the characters : . _ -"),
    "unknown_type": ([GOOD, _with(type="gift")], 2, "type",
                     '"gift" is not one of: deposit, withdrawal, trade'),
    "missing_credit": ([GOOD, _with(lines=[{"debit": TRUST, "amount": "1"}])], 2,
                       "lines[0].credit", "missing: this field is required"),
    "memo_not_text": ([GOOD, _with(memo=5)], 2, "memo", "must be text in quotes, not a number"),
    "metadata_not_object": ([GOOD, _with(metadata=[1])], 2, "metadata",
                            "must be an object {…}, not a list"),
    "key_with_space": ([GOOD, _with(key="dep 1")], 2, "key",
                       '"dep 1" is not an entry key: 1 to 128 printable ASCII characters'),
    "unknown_account": ([GOOD, _line(debit="custody:customer:nowhere:JPY")], 2,
                        "lines[0].debit", 'unknown account "custody:customer:nowhere:JPY"'),
    # The time as written (+09:00), not converted to UTC.
    "closed_period": ([GOOD, _with(effective_at="2025-11-19T12:00:00+09:00")], 2,
                      "effective_at", "2025-11-19T12:00:00+09:00 falls in a closed period"),
    "below_zero": ([GOOD, entry("w", "withdrawal", ("customer:c-1:JPY", TRUST, "100100"))], 2,
                   "lines", "customer:c-1:JPY would fall below zero: balance 100000 JPY, this "
                   "entry takes 100100 JPY, too little by 100 JPY"),
}
# Errors in the JSON itself: (lines, bad line, reason); no field to name.
BAD_ENTRY_SYNTAX: dict[str, tuple[list[Any], int, str]] = {
    "json_key_twice": ([GOOD, '{"key": "x", "key": "y", "type": "deposit"}'], 2,
                       'the key "key" appears twice in one object'),
    "not_utf8": ([GOOD, b'{"key": "x", "memo": "\xff\xfe"}'], 2, "not UTF-8 text"),
    "truncated_json": ([GOOD, '{"key": "x", "type": '], 2, "malformed JSON"),
    "huge_number": ([GOOD, '{"key": "x", "metadata": {"n": ' + "9" * 5000 + "}}"], 2,
                    "unreadable JSON: a number has more than 4300 digits"),
}


@pytest.mark.parametrize("case", sorted(BAD_ENTRY_FILES))
def test_bad_entry_file_is_exit_2_naming_file_line_and_field(
    case: str, ledger: Engine, tmp_path: Path
) -> None:
    lines, line, field, reason = BAD_ENTRY_FILES[case]
    path = _jsonl(tmp_path / "batch.jsonl", lines)
    before = dump(ledger)
    refused = cli("--db", _url(ledger), "post", str(path))
    _assert_refused(refused, f"{path}:{line}: {field}: ", reason)
    assert dump(ledger) == before


@pytest.mark.parametrize("case", sorted(BAD_ENTRY_SYNTAX))
def test_malformed_entry_line_is_exit_2_naming_file_and_line(
    case: str, ledger: Engine, tmp_path: Path
) -> None:
    lines, line, reason = BAD_ENTRY_SYNTAX[case]
    path = _jsonl(tmp_path / "batch.jsonl", lines)
    before = dump(ledger)
    refused = cli("--db", _url(ledger), "post", str(path))
    _assert_refused(refused, f"{path}:{line}: ", reason)
    assert "Exceeds the limit" not in refused.stderr
    assert dump(ledger) == before


def test_a_post_still_stops_at_the_first_error(ledger: Engine, tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "batch.jsonl", [
        GOOD, _with(type="gift"), _with(key="y", effective_at="2025-02-30T00:00:00+09:00")])
    before = dump(ledger)
    _assert_refused(cli("--db", _url(ledger), "post", str(path)), f"{path}:2: type: ",
                    '"gift" is not one of')
    assert dump(ledger) == before


@pytest.mark.parametrize(("option", "command"), [
    ("--as-of", ["coverage"]),
    ("--as-of", ["reconcile", "run"]),
    ("--through", ["period", "close"]),
])
@pytest.mark.parametrize(("value", "reason"), [
    ("2025-02-30T00:00:00+09:00", "2025-02-30T00:00:00+09:00 is not a valid date"),
    ("2025-11-25T24:30:00+09:00", "2025-11-25T24:30:00+09:00 is not a valid time"),
    ("2025-11-25T09:00:00", "2025-11-25T09:00:00 has no UTC offset"),
])
def test_a_bad_time_option_says_what_is_wrong(
    option: str, command: list[str], value: str, reason: str, ledger: Engine
) -> None:
    before = dump(ledger)
    refused = cli("--db", _url(ledger), *command, option, value)
    _assert_refused(refused, f"{option}: ", reason)
    assert dump(ledger) == before


# --- post --check -----------------------------------------------------------------------------

def test_check_of_a_clean_file_exits_0_and_writes_nothing(ledger: Engine, tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "day.jsonl", [
        GOOD, deposit("g2", "c-3", "0.1", asset="BTC"),
        entry("w1", "withdrawal", ("customer:c-2:JPY", TRUST, "500")), deposit("d1", "c-1", "100000")])
    before = dump(ledger)
    checked = cli("--db", _url(ledger), "post", "--check", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout == "4 entries checked, 0 errors\n"
    assert checked.stderr == ""
    assert dump(ledger) == before
    # And it posts as the check said.
    posted = cli("--db", _url(ledger), "post", str(path))
    assert posted.stdout == "posted 3 entries (6 postings), skipped 1 duplicates\n", posted.stderr


def test_check_lists_every_error_with_its_line_and_writes_nothing(
    ledger: Engine, tmp_path: Path
) -> None:
    path = _jsonl(tmp_path / "day.jsonl", [
        GOOD,
        _with(type="gift"),                                          # 2: a parse error
        deposit("g2", "c-3", "7"),
        _with(key="y", effective_at="2025-02-30T00:00:00+09:00"),    # 4: a bad date
        entry("w1", "withdrawal", ("customer:c-1:JPY", TRUST, "100100")),  # 5: below zero
        deposit("g3", "c-3", "8"),
    ])
    before = dump(ledger)
    checked = cli("--db", _url(ledger), "post", "--check", str(path))
    assert checked.returncode == 2
    assert checked.stdout.splitlines() == [
        f'{path}:2: type: "gift" is not one of: deposit, withdrawal, trade, fee, transfer, '
        "sweep, top_up, incident, reserve_provision, reserve_draw, insurance_recovery, "
        "adjustment, distribution, reversal",
        f"{path}:4: effective_at: 2025-02-30T00:00:00+09:00 is not a valid date",
        f"{path}:5: lines: customer:c-1:JPY would fall below zero: balance 100000 JPY, this "
        "entry takes 100100 JPY, too little by 100 JPY",
        "6 entries checked, 3 errors",
    ]
    assert checked.stderr.splitlines() == [
        f"error: {path}: the file has errors (listed above); nothing was written"]
    assert dump(ledger) == before


def test_check_leaves_a_failed_entry_out_of_the_balances(ledger: Engine, tmp_path: Path) -> None:
    """The deposit on line 1 fails, so the withdrawal on line 2 that needs it fails too; the
    same key twice in the file is named with both lines."""
    path = _jsonl(tmp_path / "day.jsonl", [
        entry("in", "deposit", ("custody:customer:nowhere:JPY", "customer:c-5:JPY", "10")),
        entry("out", "withdrawal", ("customer:c-5:JPY", TRUST, "10")),
        deposit("k", "c-6", "1"), deposit("k", "c-6", "2")])
    checked = cli("--db", _url(ledger), "post", "--check", str(path))
    assert checked.returncode == 2
    listed = checked.stdout.splitlines()
    assert [line.split(": ")[0:2] for line in listed[:3]] == [
        [f"{path}:1", "lines[0].debit"], [f"{path}:2", "lines"], [f"{path}:4", "key"]]
    assert "customer:c-5:JPY would fall below zero" in listed[1]
    assert 'appears twice in this file (lines 3 and 4)' in listed[2]
    assert listed[3] == "4 entries checked, 3 errors"


def test_check_stops_at_max_errors_and_says_so(ledger: Engine, tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "day.jsonl", [_with(key=f"x{n}", type="gift") for n in range(5)])
    checked = cli("--db", _url(ledger), "post", "--check", "--max-errors", "2", str(path))
    assert checked.returncode == 2
    listed = checked.stdout.splitlines()
    assert [line.split(": ")[0] for line in listed[:2]] == [f"{path}:1", f"{path}:2"]
    assert listed[2].startswith("2 entries checked, 2 errors (stopped at --max-errors 2")
    assert len(listed) == 3


def test_check_reports_an_earlier_time_below_zero_found_in_sql(
    ledger: Engine, tmp_path: Path
) -> None:
    """The check the database makes after writing (a balance below zero at an earlier
    business time) is made by --check too, in the transaction it rolls back."""
    path = _jsonl(tmp_path / "day.jsonl", [
        deposit("in-late", "c-1", "50", at="2025-11-26T09:00:00+09:00"),
        entry("out-early", "withdrawal", ("customer:c-1:JPY", TRUST, "100020"),
              at="2025-11-25T10:00:00+09:00")])
    before = dump(ledger)
    refused = cli("--db", _url(ledger), "post", str(path))
    _assert_refused(refused, f"{path}:2: effective_at: ", "below zero at an earlier time")
    checked = cli("--db", _url(ledger), "post", "--check", str(path))
    assert checked.returncode == 2
    listed = checked.stdout.splitlines()
    # Both accounts of the line dip below zero on 2025-11-25, before the deposit of the 26th.
    assert [line.split(": ")[0:2] for line in listed[:-1]] == [
        [f"{path}:2", "effective_at"], [f"{path}:2", "effective_at"]]
    assert {line.split(": ")[2].split()[0] for line in listed[:-1]} == {TRUST, "customer:c-1:JPY"}
    assert listed[-1] == "2 entries checked, 2 errors"
    assert dump(ledger) == before


# --- Empty files ------------------------------------------------------------------------------

@pytest.mark.parametrize("content", [b"", b"\n\n  \n", BOM, BOM + b"\n"])
def test_an_empty_entry_file_posts_nothing_and_exits_0(
    content: bytes, ledger: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(content)
    before = dump(ledger)
    done = cli("--db", _url(ledger), "post", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "posted 0 entries (0 postings), skipped 0 duplicates\n"
    assert done.stderr == ""
    checked = cli("--db", _url(ledger), "post", "--check", str(path))
    assert (checked.returncode, checked.stdout) == (0, "0 entries checked, 0 errors\n")
    assert dump(ledger) == before


def test_empty_stdin_posts_nothing(ledger: Engine) -> None:
    done = cli("--db", _url(ledger), "post", "-", stdin="")
    assert (done.returncode, done.stdout) == (
        0, "posted 0 entries (0 postings), skipped 0 duplicates\n")


# --- Byte-order marks -------------------------------------------------------------------------

def test_an_entry_file_with_a_bom_posts_as_without(ledger: Engine, tmp_path: Path) -> None:
    batch = [deposit("b1", "c-7", "300"), deposit("b2", "c-7", "0.2", asset="BTC")]
    with_bom = _jsonl(tmp_path / "bom.jsonl", batch, prefix=BOM)
    checked = cli("--db", _url(ledger), "post", "--check", str(with_bom))
    assert (checked.returncode, checked.stdout) == (0, "2 entries checked, 0 errors\n")
    done = cli("--db", _url(ledger), "post", str(with_bom))
    assert done.stdout == "posted 2 entries (4 postings), skipped 0 duplicates\n", done.stderr
    # The same entries without the mark are the same content: duplicates, skipped.
    plain = _jsonl(tmp_path / "plain.jsonl", batch)
    again = cli("--db", _url(ledger), "post", str(plain))
    assert again.stdout == "posted 0 entries (0 postings), skipped 2 duplicates\n"
    # A bad first line after the mark is line 1, its field named as without the mark.
    bad = _jsonl(tmp_path / "bad.jsonl", [_with(type="gift")], prefix=BOM)
    _assert_refused(cli("--db", _url(ledger), "post", str(bad)), f"{bad}:1: type: ",
                    '"gift" is not one of')


@pytest.mark.parametrize("suffix", ["json", "yaml"])
def test_a_chart_with_a_bom_loads_as_without(suffix: str, db_url: str, tmp_path: Path) -> None:
    import yaml

    text = json.dumps(CHART, indent=2) if suffix == "json" else yaml.safe_dump(CHART)
    path = _write(tmp_path / f"chart.{suffix}", text, prefix=BOM)
    loaded = cli("--db", db_url, "init", "--chart", str(path))
    assert loaded.returncode == 0, loaded.stderr
    assert f"{len(CHART['accounts'])} accounts added" in loaded.stdout
    again = cli("--db", db_url, "chart", "load", str(_write(tmp_path / f"plain.{suffix}", text)))
    assert again.returncode == 0, again.stderr
    assert "0 assets and 0 accounts added" in again.stdout


def _run(engine: Engine, folder: Path, *args: str) -> dict[str, Any]:
    """A reconciliation run in `folder` (files named alike in every folder), its result without
    what differs from one run to the next (ids, times, what earlier runs left open)."""
    done = cli("--db", _url(engine), "reconcile", "run", "--as-of", AS_OF, *args,
               "--format", "json", cwd=folder)
    assert done.returncode in (0, 1), done.stderr
    result = json.loads(done.stdout)
    return {"status": result["status"], "accounts": result["accounts"],
            "rulebook": result["rulebook"], "prices": result["prices"],
            "breaks": [(b["account"], b["kind"], b["difference"]) for b in result["breaks"]],
            "checks": [(c["rule"], c["asset"], c["status"], c["value"], c["threshold"])
                       for c in result["checks"]]}


OBSERVATIONS = [(TRUST, "2025-11-25T23:00:00+09:00", "100000", "bank-x"),
                (HOT, "2025-11-25T23:00:00+09:00", "0.4", "custodian-y")]


def _csv(columns: list[str]) -> str:
    order = ["account", "as_of", "amount", "source"]
    rows = [",".join(columns)] + [",".join(row[order.index(c)] for c in columns)
                                  for row in OBSERVATIONS]
    return "\n".join(rows) + "\n"


def _observations_json() -> dict[str, Any]:
    return {"observations": [dict(zip(["account", "as_of", "amount", "source"], row,
                                      strict=True)) for row in OBSERVATIONS]}


def test_observations_with_a_bom_and_csv_columns_in_any_order_give_the_same_run(
    ledger: Engine, tmp_path: Path
) -> None:
    variants = {
        "csv": _csv(["account", "as_of", "amount", "source"]).encode(),
        "csv_bom": BOM + _csv(["account", "as_of", "amount", "source"]).encode(),
        "csv_reordered": _csv(["source", "amount", "account", "as_of"]).encode(),
        "csv_reordered_bom_crlf": BOM + _csv(["amount", "as_of", "source", "account"]).replace(
            "\n", "\r\n").encode(),
    }
    results = {}
    for name, content in variants.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "custodian.csv").write_bytes(content)
        results[name] = _run(ledger, folder, "--evidence", "custodian.csv")
    assert results["csv"]["status"] == "breaks"  # 0.4 BTC seen, 0.5 in the ledger
    [hot] = [a for a in results["csv"]["accounts"] if a["account"] == HOT]
    assert (hot["external"], hot["ledger"]) == ("0.40000000", "0.50000000")
    for name, result in results.items():
        assert result == results["csv"], name
    json_results = []
    for name, prefix in (("json", b""), ("json_bom", BOM)):
        folder = tmp_path / name
        folder.mkdir()
        _write(folder / "custodian.csv", _observations_json(), prefix=prefix)
        json_results.append(_run(ledger, folder, "--evidence", "custodian.csv"))
    assert json_results[0] == json_results[1]
    assert [a["external"] for a in json_results[0]["accounts"]] == \
        [a["external"] for a in results["csv"]["accounts"]]


@pytest.mark.parametrize(("header", "reason"), [
    ("account,as_of,amount,source,note", 'unknown column "note": the columns are account, '
     "as_of, amount, source, in any order"),
    ("account,asof,amount,source", 'unknown column "asof"'),
    ("account,as_of,amount", "missing column source: the columns are account, as_of, amount, "
     "source, in any order"),
    ("account,as_of,amount,amount,source", "column amount appears twice in the header"),
])
def test_an_observation_csv_with_a_wrong_header_names_the_column(
    header: str, reason: str, ledger: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "custodian.csv"
    path.write_text(header + "\n" + f"{TRUST},2025-11-25T23:00:00+09:00,1,x,y\n")
    before = dump(ledger)
    refused = cli("--db", _url(ledger), "reconcile", "run", "--as-of", AS_OF,
                  "--evidence", str(path))
    _assert_refused(refused, f"{path}:1: ", reason)
    assert dump(ledger) == before


def test_an_observation_with_a_bad_time_names_the_row_and_column(
    ledger: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "custodian.csv"
    path.write_text("as_of,account,amount,source\n"
                    f"2025-11-25T23:00:00+09:00,{TRUST},1,x\n"
                    f"2025-11-31T23:00:00+09:00,{HOT},1,x\n")
    before = dump(ledger)
    refused = cli("--db", _url(ledger), "reconcile", "run", "--as-of", AS_OF,
                  "--evidence", str(path))
    _assert_refused(refused, f"{path}:3: as_of: ", "2025-11-31T23:00:00+09:00 is not a valid date")
    assert dump(ledger) == before


def test_prices_and_rulebook_with_a_bom_are_read_as_without(
    ledger: Engine, tmp_path: Path
) -> None:
    book = {"name": "own", "version": "1", "extends": "jp-fsa",
            "rules": {"JP-COLD-95": {"min_cold_share": "0.97"}}}
    results = []
    for name, prefix in (("plain", b""), ("bom", BOM)):
        folder = tmp_path / name
        folder.mkdir()
        _write(folder / "prices.json", PRICES, prefix=prefix)
        _write(folder / "book.json", book, prefix=prefix)
        results.append(_run(ledger, folder, "--prices", "prices.json", "--rulebook", "book.json"))
        report = cli("--db", _url(ledger), "report", "segregation", "--as-of", AS_OF,
                     "--prices", "prices.json", "--rulebook", "book.json", "--format", "json",
                     cwd=folder)
        assert report.returncode in (0, 1), report.stderr
        results.append(json.loads(report.stdout))
    assert results[0]["rulebook"]["rules"]["JP-COLD-95"] == {"min_cold_share": "0.97"}
    assert results[0] == results[2]
    assert results[1] == results[3]


def test_an_insurance_register_with_a_bom_loads_as_without(
    ledger: Engine, tmp_path: Path
) -> None:
    register = {"policies": [POLICY]}
    with_bom = _write(tmp_path / "register.json", register, prefix=BOM)
    done = cli("--db", _url(ledger), "insurance", "load", str(with_bom))
    assert done.returncode == 0, done.stderr
    assert "1 policies added" in done.stdout
    again = cli("--db", _url(ledger), "insurance", "load",
                str(_write(tmp_path / "plain.json", register)))
    assert "0 policies added, 1 unchanged" in again.stdout, again.stderr


def test_a_chain_config_with_a_bom_reads_as_without() -> None:
    config = json.dumps({"chains": {"btc": {"kind": "bitcoin", "url": "http://127.0.0.1:1"}}})
    assert parse_chain_config(BOM + config.encode(), "c.json") == \
        parse_chain_config(config.encode(), "c.json")


def test_evidence_keeps_its_bytes_and_reads_without_the_bom() -> None:
    """A statement's SHA-256 is the file's; adapters read it without the mark."""
    statement = b":20:STATEMENT\r\n:25:1234567\r\n"
    evidence = EvidenceFile("s.sta", BOM + statement)
    assert evidence.content.startswith(BOM)
    assert evidence.body == statement
    assert EvidenceFile("s.sta", statement).body == statement


# --- Other files: unknown fields, bad values, repeated keys -----------------------------------

def test_chart_errors_name_the_file_line_and_field(db_url: str, tmp_path: Path) -> None:
    assert cli("--db", db_url, "init").returncode == 0
    chart = json.loads(json.dumps(CHART))
    chart["accounts"][1]["poool"] = chart["accounts"][1].pop("pool")
    path = _write(tmp_path / "chart.json", chart)
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1)
                if '"poool"' in text)
    _assert_refused(cli("--db", db_url, "chart", "load", str(path)),
                    f"{path}:{line}: accounts[1].poool: ",
                    "unknown field (did you mean pool? the fields here are: code, asset, pool")
    chart = json.loads(json.dumps(CHART))
    chart["accounts"][0]["code"] = "custody customer"
    path = _write(tmp_path / "chart.json", chart)
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1)
                if '"custody customer"' in text)
    _assert_refused(cli("--db", db_url, "chart", "load", str(path)),
                    f"{path}:{line}: accounts[0].code: ",
                    '"custody customer" is not an account code: ')
    path = _write(tmp_path / "chart.yaml", "assets:\n  - code: JPY\n    kind: fiat\n"
                  "    scale: 0\n    code: USD\naccounts: []\n")
    _assert_refused(cli("--db", db_url, "chart", "load", str(path)), f"{path}:5: ",
                    'the key "code" appears twice in one mapping')


@pytest.mark.parametrize(("document", "field", "reason"), [
    ({**PRICES, "currency": "JPY"}, "currency", "unknown field (the fields here are: quote, "
     "as_of, prices, source)"),
    ({**PRICES, "as_of": "2025-02-29T00:00:00+09:00"}, "as_of",
     "2025-02-29T00:00:00+09:00 is not a valid date"),
    ({**PRICES, "prices": {"BTC": 15000000.5}}, "prices.BTC",
     'must be a decimal number as text, such as "0.95", not the number 15000000.5'),
])
def test_price_file_errors_name_the_file_line_and_field(
    document: dict[str, Any], field: str, reason: str, ledger: Engine, tmp_path: Path
) -> None:
    path = _write(tmp_path / "prices.json", document)
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1)
                if f'"{field.split(".")[-1]}"' in text)
    before = dump(ledger)
    refused = cli("--db", _url(ledger), "reconcile", "run", "--as-of", AS_OF,
                  "--prices", str(path))
    _assert_refused(refused, f"{path}:{line}: {field}: ", reason)
    assert dump(ledger) == before


def test_rulebook_errors_name_the_file_line_and_field(ledger: Engine, tmp_path: Path) -> None:
    path = _write(tmp_path / "book.yaml", "name: own\nversion: '1'\nextends: jp-fsa\nrules:\n"
                  "  JP-COLD-95: {min_cold: '0.97'}\n")
    before = dump(ledger)
    _assert_refused(cli("--db", _url(ledger), "reconcile", "run", "--as-of", AS_OF,
                        "--rulebook", str(path)),
                    f"{path}:5: rules.JP-COLD-95.min_cold: ",
                    "unknown field (did you mean min_cold_share? the fields here are: "
                    "min_cold_share)")
    path = _write(tmp_path / "book.yaml", "name: own\nversion: '1'\nextends: jp-fsa\nrules:\n"
                  "  JP-COLD-95:\n    min_cold_share: '1.5'\n")
    _assert_refused(cli("--db", _url(ledger), "reconcile", "run", "--as-of", AS_OF,
                        "--rulebook", str(path)),
                    f"{path}:6: rules.JP-COLD-95.min_cold_share: ", "must be at most 1, not 1.5")
    assert dump(ledger) == before


def test_register_errors_name_the_file_line_and_field(ledger: Engine, tmp_path: Path) -> None:
    policy = {**POLICY, "insurer_name": "x"}
    path = _write(tmp_path / "register.json", {"policies": [POLICY | {"policy_id": "P-0"},
                                                             policy]})
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1)
                if '"insurer_name"' in text)
    before = dump(ledger)
    _assert_refused(cli("--db", _url(ledger), "insurance", "load", str(path)),
                    f"{path}:{line}: policies[1].insurer_name: ",
                    "unknown field (did you mean insurer? the fields here are: policy_id")
    path = _write(tmp_path / "register.json",
                  {"policies": [{**POLICY, "period_end": "2026-04-01T00:00:00"}]})
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1)
                if '"period_end"' in text)
    _assert_refused(cli("--db", _url(ledger), "insurance", "load", str(path)),
                    f"{path}:{line}: policies[0].period_end: ",
                    "2026-04-01T00:00:00 has no UTC offset")
    assert dump(ledger) == before


@pytest.mark.parametrize(("chain", "field", "reason"), [
    ({"kind": "bitcoin", "url": "http://127.0.0.1:1", "timeout": 5}, "chains.btc.timeout",
     "unknown field (did you mean timeout_s?"),
    ({"kind": "bitcoin", "url": "ftp://node"}, "chains.btc.url",
     '"ftp://node" is not a node URL starting with http:// or https://'),
    ({"kind": "ethereum", "url": "http://127.0.0.1:1", "block": "newest"}, "chains.btc.block",
     'must be a block number or one of latest, finalized, safe, not "newest"'),
    ({"kind": "dogecoin", "url": "http://127.0.0.1:1"}, "chains.btc.kind",
     '"dogecoin" is not one of: bitcoin, ethereum'),
])
def test_chain_config_errors_name_the_file_line_and_field(
    chain: dict[str, Any], field: str, reason: str, ledger: Engine, tmp_path: Path
) -> None:
    path = _write(tmp_path / "chains.json", {"chains": {"btc": chain}})
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1)
                if f'"{field.split(".")[-1]}"' in text)
    before = dump(ledger)
    refused = cli("--db", _url(ledger), "reconcile", "run", "--as-of", AS_OF,
                  "--chain-config", str(path))
    _assert_refused(refused, f"{path}:{line}: {field}: ", reason)
    assert dump(ledger) == before


def test_an_unreadable_file_says_why(ledger: Engine, tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    _assert_refused(cli("--db", _url(ledger), "post", str(missing)), f"{missing}: ",
                    "cannot read: no such file")
    _assert_refused(cli("--db", _url(ledger), "post", str(tmp_path)), f"{tmp_path}: ",
                    "cannot read: a directory, not a file")
    latin1 = tmp_path / "chart.json"
    latin1.write_bytes(b'{"assets": [],\n "accounts": [{"code": "caf\xe9"}]}')
    _assert_refused(cli("--db", _url(ledger), "chart", "load", str(latin1)), f"{latin1}:2: ",
                    "not UTF-8 text")
