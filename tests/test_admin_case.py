"""The administrator's case through the real `segledger admin` commands, on SQLite and
PostgreSQL: the freeze (held by segledger and by the database), the claims at the cut-off
valued at the commencement prices, the priority pool, the items in flight, and the elections
and disputes files; every bad input is exit 2 with the field named and nothing written.

The exchange: customers hold JPY in the trust and BTC in the hot wallet; 1.5 BTC is stolen
from the hot wallet; 0.3 BTC stands in the guarantee wallet. At the cut-off:

    JPY claims  c-001 800,000 (1,000,000 in, 200,000 out), c-002 500,000  = 1,300,000
    BTC claims  c-001 2, c-002 1, c-003 1                                  = 4 BTC
    BTC pool    hot 4 − 1.5 stolen = 2.5, cold 0, guarantee 0.3            = 2.8 BTC (70%)
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError

from ledger.administration import case
from ledger.administration.inputs import AssetPool, Claim, Dispute, Election
from ledger.chart import parse_chart
from ledger.errors import InputError
from ledger.storage.chart_store import load_chart
from ledger.storage.rows import load_freeze
from ledger.storage.schema import admin_plans, entries
from reconcile import service as reconcile_service
from reconcile.adapters.camt053 import write_statement
from reconcile.rules import load_rulebook
from tests.helpers import CHART, THEFT, cli, deposit, entry, post, write_jsonl

CUTOFF = "2025-11-26T00:00:00+09:00"
BEFORE = "2025-11-25T09:00:00+09:00"
AFTER = "2025-11-27T09:00:00+09:00"
TRUST, HOT, COLD = "custody:customer:trust:JPY", "custody:customer:hot:BTC", "custody:customer:cold:BTC"
GUARANTEE = "custody:company:guarantee:BTC"
SUSPENSE = "suspense:receipts:BTC"
IBAN = "JP00TEST0000000000001"
PRICES = {"quote": "JPY", "as_of": CUTOFF, "prices": {"BTC": "749318.83"}}
ADMIN_TABLES = ("administration", "admin_prices", "admin_elections", "admin_disputes")


@pytest.fixture
def exchange(engine: Engine) -> Engine:
    chart = json.loads(json.dumps(CHART))
    chart["assets"].append({"code": "ETH", "kind": "crypto", "scale": 18, "chain": "ethereum"})
    # Receipts not yet identified: owed to someone, so a customer liability (by role and pool).
    chart["accounts"].append({"code": SUSPENSE, "asset": "BTC", "pool": "customer",
                              "role": "suspense"})
    for account in chart["accounts"]:
        if account["code"] == TRUST:
            account["external"] = {"iban": IBAN}
    load_chart(engine, parse_chart(json.dumps(chart), "chart.json"), "chart.json")
    post(engine, [
        entry("d1", "deposit", (TRUST, "customer:c-001:JPY", "1000000"), at=BEFORE,
              metadata={"end_to_end_id": "D1"}),
        entry("d2", "deposit", (TRUST, "customer:c-002:JPY", "500000"), at=BEFORE,
              metadata={"end_to_end_id": "D2"}),
        entry("w1", "withdrawal", ("customer:c-001:JPY", TRUST, "200000"), at=BEFORE,
              metadata={"end_to_end_id": "W1"}),
        deposit("b1", "c-001", "2", "BTC", at=BEFORE),
        deposit("b2", "c-002", "1", "BTC", at=BEFORE),
        deposit("b3", "c-003", "1", "BTC", at=BEFORE),
        entry("theft", "incident", ("loss:incident:BTC", HOT, "1.5"), at=BEFORE, metadata=THEFT),
        entry("guarantee", "adjustment", (GUARANTEE, "equity:capital:BTC", "0.3"), at=BEFORE),
        # Dated after the cut-off but recorded before the freeze: not part of the claims.
        deposit("late", "c-004", "70000", at=AFTER),
    ])
    return engine


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def admin(engine: Engine, *args: str) -> Any:
    return cli("--db", _url(engine), "admin", *args)


def _json(engine: Engine, *args: str) -> Any:
    done = admin(engine, *args, "--format", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _write(path: Path, document: Any) -> Path:
    path.write_text(document if isinstance(document, str) else json.dumps(document, indent=2),
                    "utf-8")
    return path


def _refused(done: Any, *fragments: str) -> None:
    """Exit 2, nothing on stdout, one line on stderr holding every fragment."""
    assert done.returncode == 2, done.stderr + done.stdout[:300]
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {table: int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
                for table in (*ADMIN_TABLES, "entries", "batches")}


@pytest.fixture
def frozen(exchange: Engine) -> Engine:
    done = admin(exchange, "freeze", "--cutoff", CUTOFF, "--administrator", "Nobuaki Kobayashi",
                 "--case", "2014-3830")
    assert done.returncode == 0, done.stderr
    return exchange


# --- The freeze ---------------------------------------------------------------------------------

def test_freeze_records_who_froze_and_a_second_freeze_is_refused(exchange: Engine) -> None:
    done = admin(exchange, "freeze", "--cutoff", CUTOFF, "--administrator", " Nobuaki Kobayashi ",
                 "--case", "2014-3830")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("frozen by Nobuaki Kobayashi, case 2014-3830: cut-off "
                                  "2025-11-25T15:00:00+00:00, recorded ")
    assert "1 entries dated after the cut-off were recorded before the freeze" in done.stderr
    with exchange.connect() as connection:
        freeze = case.require_freeze(connection)
    assert (freeze.administrator, freeze.case_no, freeze.cutoff) == (
        "Nobuaki Kobayashi", "2014-3830", datetime(2025, 11, 25, 15, tzinfo=UTC))
    before = _counts(exchange)
    again = admin(exchange, "freeze", "--cutoff", AFTER, "--administrator", "Someone Else")
    _refused(again, "--cutoff: the ledger is already frozen: by Nobuaki Kobayashi "
                    "(case 2014-3830) on ", "at the cut-off 2025-11-25T15:00:00+00:00",
             "there is no unfreeze")
    assert _counts(exchange) == before


@pytest.mark.parametrize(("args", "fragment"), [
    (("--cutoff", "2999-01-01T00:00:00+09:00", "--administrator", "A"),
     "--cutoff: the cut-off 2998-12-31T15:00:00+00:00 is in the future"),
    (("--cutoff", CUTOFF, "--administrator", "  "),
     "--administrator: the administrator's name must not be empty"),
    (("--cutoff", CUTOFF, "--administrator", "A", "--case", ""),
     "--case: the case number must not be empty"),
    (("--cutoff", "2025-11-26", "--administrator", "A"), "--cutoff: 2025-11-26 is a date"),
], ids=["future", "empty_name", "empty_case", "no_time"])
def test_a_bad_freeze_is_refused_and_leaves_the_ledger_open(
        exchange: Engine, args: tuple[str, ...], fragment: str) -> None:
    _refused(admin(exchange, "freeze", *args), fragment)
    with exchange.connect() as connection:
        assert load_freeze(connection) is None


def test_after_the_freeze_only_the_administrators_distributions_and_records_are_accepted(
        frozen: Engine, tmp_path: Path) -> None:
    url = _url(frozen)
    late = write_jsonl(tmp_path / "late.jsonl", [deposit("late-2", "c-001", "5", at=AFTER)])
    _refused(cli("--db", url, "post", str(late)), "the ledger is frozen at", "deposit entries "
             "are refused")
    early = write_jsonl(tmp_path / "early.jsonl", [deposit("early", "c-001", "5", at=BEFORE)])
    _refused(cli("--db", url, "post", str(early)), "deposit entries are refused")
    paid_before = write_jsonl(tmp_path / "dist0.jsonl", [entry(
        "dist-0", "distribution", ("customer:c-002:JPY", TRUST, "100"), at=BEFORE)])
    _refused(cli("--db", url, "post", str(paid_before)), "a distribution must be dated after "
             "the cut-off")
    paid = write_jsonl(tmp_path / "dist.jsonl", [entry(
        "dist-1", "distribution", ("customer:c-002:JPY", TRUST, "100"), at=AFTER)])
    # Dated after the cut-off, but not posted by `admin distribute` for a stored plan: a
    # plain post of a distribution would be counted as paid, so it is refused.
    _refused(cli("--db", url, "post", str(paid)), "distributions come from `segledger admin "
             "distribute")
    with frozen.connect() as connection:
        assert connection.execute(select(entries.c.key).where(
            entries.c.type == "distribution")).scalars().all() == []
    # The administrator's record of a recovered wallet, dated before the cut-off: it is
    # accepted, kept with its reason, and it changes the claims.
    found = write_jsonl(tmp_path / "found.jsonl", [deposit("found", "c-003", "0.5", "BTC",
                                                           at=BEFORE)])
    _refused(admin(frozen, "record", str(found), "--reason", " "),
             "--reason: the reason must not be empty")
    done = admin(frozen, "record", str(found), "--reason", "court order 12: credit c-003")
    assert (done.returncode, done.stdout) == (0, "posted 1 entries (2 postings), skipped 0 "
                                                 "duplicates\n"), done.stderr
    with frozen.connect() as connection:
        reasons = connection.execute(text(
            "SELECT admin_reason FROM batches WHERE admin_reason IS NOT NULL")).scalars().all()
        claims = case.load_claims(connection, case.require_freeze(connection))
    assert reasons == ["court order 12: credit c-003"]
    assert Claim("c-003", "BTC", 150_000_000) in claims


def test_the_database_refuses_business_entries_and_changes_once_frozen(frozen: Engine) -> None:
    """Python bypassed: rows written straight into the tables (the entry with a batch of its
    own, in its transaction, as the database requires of any entry)."""
    forged = {"id": 1000, "key": "forged", "type": "deposit", "recorded_at": datetime.now(UTC),
              "metadata": {}, "content_hash": "0" * 64}
    for when in (datetime(2025, 11, 27, tzinfo=UTC), datetime(2025, 11, 20, tzinfo=UTC)):
        with pytest.raises(DBAPIError, match="frozen for administration"), \
                frozen.begin() as connection:
            batch = connection.execute(text(
                "INSERT INTO batches (source, sha256, entry_count, posting_count, "
                "skipped_count, recorded_at) VALUES ('forged', :sha, 1, 2, 0, CURRENT_TIMESTAMP) "
                "RETURNING id"), {"sha": "0" * 64}).scalar_one()
            connection.execute(entries.insert().values(**forged, effective_at=when,
                                                       batch_id=batch))
    for statement in ("UPDATE administration SET cutoff = frozen_at",
                      "UPDATE administration SET administrator = 'someone else'",
                      "DELETE FROM administration"):
        with pytest.raises(DBAPIError, match="append-only"), frozen.begin() as connection:
            connection.execute(text(statement))
    with frozen.connect() as connection:
        assert case.require_freeze(connection).administrator == "Nobuaki Kobayashi"
        assert connection.execute(text("SELECT count(*) FROM entries WHERE key = 'forged'")
                                  ).scalar_one() == 0


@pytest.mark.parametrize("command", [
    ("claims",), ("pool",), ("elections", "load", "FILE"), ("disputes", "load", "FILE"),
    ("elections", "list"), ("disputes", "list"), ("record", "FILE", "--reason", "why")])
def test_every_case_command_needs_the_freeze(exchange: Engine, tmp_path: Path,
                                             command: tuple[str, ...]) -> None:
    path = str(_write(tmp_path / "file.json", {"elections": [
        {"creditor": "c-001", "option": "final", "payment": "fiat"}]}))
    before = _counts(exchange)
    _refused(admin(exchange, *(path if part == "FILE" else part for part in command)),
             "the ledger is not frozen; run `segledger admin freeze` first")
    assert _counts(exchange) == before


# --- Claims, prices, pool -----------------------------------------------------------------------

def test_the_loaders_give_the_plan_its_inputs(frozen: Engine) -> None:
    with frozen.connect() as connection:
        freeze = case.require_freeze(connection)
        claims = case.load_claims(connection, freeze)
        pools = case.load_pools(connection, freeze, None)
        assert case.load_prices(connection) is None
    assert claims == (Claim("c-001", "BTC", 200_000_000), Claim("c-001", "JPY", 800_000),
                      Claim("c-002", "BTC", 100_000_000), Claim("c-002", "JPY", 500_000),
                      Claim("c-003", "BTC", 100_000_000))
    assert pools.plan_pools() == (AssetPool("BTC", 8, 280_000_000),
                                  AssetPool("JPY", 0, 1_300_000))
    assert (pools.run_id, pools.verified) == (None, False)
    btc = pools.of("BTC")
    assert btc is not None
    assert btc.accounts == (case.PoolAccount(COLD, 0, "segregated"),
                            case.PoolAccount(HOT, 250_000_000, "segregated"),
                            case.PoolAccount(GUARANTEE, 30_000_000, "guarantee"))


def test_claims_at_the_cutoff_in_kind_and_valued_at_the_commencement_prices(
        frozen: Engine, tmp_path: Path) -> None:
    unpriced = _json(frozen, "claims")
    assert (unpriced["prices"], unpriced["value_total"]) == (None, None)
    assert unpriced["in_flight_note"] == "no reconciliation run: in-flight items unknown"
    prices = _write(tmp_path / "prices.json", PRICES)
    document = _json(frozen, "claims", "--prices", str(prices))
    assert (document["cutoff"], document["case"], document["administrator"]) == (
        "2025-11-25T15:00:00+00:00", "2014-3830", "Nobuaki Kobayashi")
    # floor(2 × 749,318.83) = 1,498,637; each claim rounded down on its own.
    assert [(c["creditor"], c["asset"], c["amount"], c["price"], c["value"])
            for c in document["claims"]] == [
        ("c-001", "BTC", "2.00000000", "749318.83", "1498637"),
        ("c-001", "JPY", "800000", "1", "800000"),
        ("c-002", "BTC", "1.00000000", "749318.83", "749318"),
        ("c-002", "JPY", "500000", "1", "500000"),
        ("c-003", "BTC", "1.00000000", "749318.83", "749318")]
    assert [(t["asset"], t["creditors"], t["amount"], t["value"]) for t in document["totals"]] \
        == [("BTC", 3, "4.00000000", "2997273"), ("JPY", 2, "1300000", "1300000")]
    assert document["value_total"] == "4297273"
    assert document["prices"]["prices"] == {"BTC": "749318.83"}
    # The same table again (written otherwise) is fine; the recorded one stays.
    same = _write(tmp_path / "same.json", {**PRICES, "prices": {"BTC": "749318.830", "JPY": "1"}})
    assert _json(frozen, "claims", "--prices", str(same))["prices"] == document["prices"]
    csv = admin(frozen, "claims", "--format", "csv")
    assert csv.returncode == 0, csv.stderr
    lines = csv.stdout.splitlines()
    assert lines[0] == ("section,cutoff,case,administrator,quote,prices_as_of,prices_sha256,"
                        "value_total,in_flight_run,in_flight_note,creditor,asset,amount,price,"
                        "value,creditors,account,kind,on,entry,reference,detail")
    assert "claims,,,,,,,,,,c-001,BTC,2.00000000,749318.83,1498637,,,,,,," in lines
    table = admin(frozen, "claims")
    assert "1,498,637" in table.stdout and "total 4297273 JPY" in table.stdout


def test_claims_as_an_excel_workbook_of_exact_text_amounts(frozen: Engine, tmp_path: Path) -> None:
    _refused(admin(frozen, "claims", "--format", "xlsx"), "--out: an xlsx workbook is written "
             "to a file")
    out = tmp_path / "claims.xlsx"
    done = admin(frozen, "claims", "--prices", str(_write(tmp_path / "p.json", PRICES)),
                 "--format", "xlsx", "--out", str(out))
    assert (done.returncode, done.stdout) == (0, ""), done.stderr
    book = load_workbook(out)
    assert book.sheetnames == ["Case", "Claims", "Totals", "Unidentified", "In flight"]
    rows = list(book["Claims"].iter_rows(values_only=True))
    assert rows[0] == ("creditor", "asset", "amount", "price", "value")
    assert rows[1] == ("c-001", "BTC", "2.00000000", "749318.83", "1498637")
    assert list(book["Totals"].iter_rows(values_only=True))[1] == (
        "BTC", 3, "4.00000000", "749318.83", "2997273")
    _refused(admin(frozen, "claims", "--format", "xlsx", "--out", str(out)), "already exists")


@pytest.mark.parametrize(("prices", "fragment"), [
    ({**PRICES, "prices": {}}, "prices.BTC: no price for BTC, held by the customers"),
    ({**PRICES, "prices": {"BTC": "749318.83", "DOGE": "20"}},
     "prices.DOGE: DOGE is not an asset of the ledger"),
    ({**PRICES, "quote": "USD"}, "quote: quote currency USD is not an asset of the ledger"),
    ({**PRICES, "prices": {"BTC": 749318.83}}, "prices.BTC: must be a decimal number as text"),
    ({**PRICES, "prices": {"BTC": "-1"}}, "prices.BTC:"),
], ids=["missing_asset", "unknown_asset", "unknown_quote", "float", "negative"])
def test_a_bad_price_table_is_refused_and_nothing_recorded(
        frozen: Engine, tmp_path: Path, prices: dict[str, Any], fragment: str) -> None:
    path = _write(tmp_path / "prices.json", prices)
    _refused(admin(frozen, "claims", "--prices", str(path)), f"{path}", fragment)
    assert _counts(frozen)["admin_prices"] == 0


def test_a_different_price_table_after_one_is_recorded_is_refused(
        frozen: Engine, tmp_path: Path) -> None:
    assert _json(frozen, "claims", "--prices", str(_write(tmp_path / "a.json", PRICES)))
    other = _write(tmp_path / "b.json", {**PRICES, "prices": {"BTC": "749318.84"}})
    _refused(admin(frozen, "claims", "--prices", str(other)),
             "a different commencement price table is already recorded")
    with frozen.connect() as connection:
        recorded = case.load_prices(connection)
    assert recorded is not None and str(recorded.prices["BTC"]) == "749318.83"


def test_pool_from_the_ledger_says_it_is_not_verified(frozen: Engine) -> None:
    document = _json(frozen, "pool")
    assert (document["verified"], document["basis"]) == (
        False, "ledger figures at the cut-off, not verified")
    btc, jpy = document["assets"]
    assert {k: btc[k] for k in ("asset", "pool", "claims", "creditors", "coverage",
                                "coverage_fraction", "shortfall", "surplus")} == {
        "asset": "BTC", "pool": "2.80000000", "claims": "4.00000000", "creditors": 3,
        "coverage": "0.700000", "coverage_fraction": "7/10", "shortfall": "1.20000000",
        "surplus": "0.00000000"}
    assert [a["account"] for a in btc["accounts"]] == [COLD, HOT, GUARANTEE]
    assert (jpy["pool"], jpy["claims"], jpy["coverage"]) == ("1300000", "1300000", "1.000000")
    table = admin(frozen, "pool")
    assert "ledger figures at the cut-off, not verified" in table.stdout.splitlines()


def test_unidentified_receipts_in_suspense_are_owed_and_no_plan_shares_them_out(
        frozen: Engine, tmp_path: Path) -> None:
    # 5 BTC arrive before the cut-off from a sender nobody has identified: the hot wallet
    # holds them, the suspense account owes them. The administrator records the receipt.
    receipt = write_jsonl(tmp_path / "receipt.jsonl", [
        entry("u1", "deposit", (HOT, SUSPENSE, "5"), at=BEFORE)])
    done = admin(frozen, "record", str(receipt), "--reason", "unidentified receipt found")
    assert done.returncode == 0, done.stderr
    # The pool is 2.8 + 5 = 7.8 BTC; the claims are the creditors' 4 BTC and the 5 BTC owed
    # to someone unknown: 9 BTC, 86.67% covered (counting only the 4 BTC would show 195%
    # and a 3.8 BTC surplus, so that a plan paid the 5 BTC to c-001, c-002 and c-003).
    btc = _json(frozen, "pool")["assets"][0]
    assert {k: btc[k] for k in ("asset", "pool", "claims", "unidentified", "creditors",
                                "coverage", "coverage_fraction", "shortfall", "surplus")} == {
        "asset": "BTC", "pool": "7.80000000", "claims": "9.00000000",
        "unidentified": "5.00000000", "creditors": 3, "coverage": "0.866666",
        "coverage_fraction": "13/15", "shortfall": "1.20000000", "surplus": "0.00000000"}
    assert "receipts held in suspense" in admin(frozen, "pool").stdout
    # `admin claims` lists them apart from the creditors' claims, valued like a claim:
    # floor(5 × 749,318.83) = 3,746,594 JPY.
    document = _json(frozen, "claims", "--prices", str(_write(tmp_path / "p.json", PRICES)))
    assert document["unidentified"] == [{"account": SUSPENSE, "asset": "BTC",
                                         "amount": "5.00000000", "price": "749318.83",
                                         "value": "3746594"}]
    assert [t["amount"] for t in document["totals"]] == ["4.00000000", "1300000"]
    table = admin(frozen, "claims").stdout
    assert "Unidentified receipts in suspense" in table and SUSPENSE in table
    csv = admin(frozen, "claims", "--format", "csv").stdout.splitlines()
    assert f"unidentified,,,,,,,,,,,BTC,5.00000000,749318.83,3746594,,{SUSPENSE},,,,," in csv
    # A plan's claims are refused until the receipts are identified, naming the account.
    with frozen.connect() as connection:
        freeze = case.require_freeze(connection)
        assert len(case.load_claims(connection, freeze)) == 5
        with pytest.raises(InputError) as refused:
            case.plan_claims(connection, freeze)
    assert str(refused.value).startswith(
        f"suspense account {SUSPENSE} holds 5.00000000 BTC at the cut-off")
    assert "segledger admin record FILE --reason" in str(refused.value)
    # So is `admin plan` itself: exit 2 naming the account, and no plan stored.
    planned = admin(frozen, "plan")
    assert planned.returncode == 2 and f"suspense account {SUSPENSE}" in planned.stderr
    with frozen.connect() as connection:
        assert connection.execute(select(func.count()).select_from(admin_plans)).scalar() == 0
    # Identified as c-005's deposit: moved to c-005's account, dated before the cut-off.
    moved = write_jsonl(tmp_path / "moved.jsonl", [
        entry("u1-identified", "transfer", (SUSPENSE, "customer:c-005:BTC", "5"), at=BEFORE)])
    done = admin(frozen, "record", str(moved), "--reason", "u1 identified: c-005's deposit")
    assert done.returncode == 0, done.stderr
    with frozen.connect() as connection:
        claims = case.plan_claims(connection, case.require_freeze(connection))
    assert Claim("c-005", "BTC", 500_000_000) in claims and len(claims) == 6
    btc = _json(frozen, "pool")["assets"][0]
    assert (btc["claims"], btc["unidentified"], btc["creditors"], btc["coverage"]) == (
        "9.00000000", "0.00000000", 4, "0.866666")
    assert _json(frozen, "claims")["unidentified"] == []


def _run(engine: Engine, tmp_path: Path, as_of: str) -> str:
    """A reconciliation run: the trust's statement shows an uncredited 30,000 JPY and not the
    200,000 JPY withdrawal; the hot wallet holds 0.1 BTC more than the ledger says."""
    statement = tmp_path / f"trust-{len(list(tmp_path.iterdir()))}.xml"
    statement.write_bytes(write_statement(IBAN, "JPY", "1530000", "2025-11-25", [
        ("1000000", "D1", "deposit c-001"), ("500000", "D2", "deposit c-002"),
        ("30000", "X9", "unknown sender")]))
    seen = _write(tmp_path / f"chain-{len(list(tmp_path.iterdir()))}.json", {"observations": [
        {"account": account, "as_of": "2025-11-25T23:00:00+09:00", "amount": amount,
         "source": "node"} for account, amount in ((HOT, "2.6"), (COLD, "0"),
                                                   (GUARANTEE, "0.3"))]})
    outcome = reconcile_service.run(
        engine, as_of=datetime.fromisoformat(as_of), evidence_paths=[str(statement), str(seen)],
        rulebook=load_rulebook("jp-fsa"))
    return str(outcome.document["run_id"])


def test_pool_from_a_run_is_its_verified_external_balances(frozen: Engine, tmp_path: Path) -> None:
    run_id = _run(frozen, tmp_path, CUTOFF)
    document = _json(frozen, "pool", "--from-run", run_id)
    assert (document["run_id"], document["verified"], document["basis"]) == (
        run_id, True, f"verified by run {run_id}")
    btc, jpy = document["assets"]
    assert (btc["pool"], btc["coverage"], btc["shortfall"]) == ("2.90000000", "0.725000",
                                                                "1.10000000")
    assert (jpy["pool"], jpy["surplus"]) == ("1530000", "230000")
    _refused(admin(frozen, "pool", "--from-run", "no-such-run"),
             '--from-run: no reconciliation run "no-such-run"')


def test_pool_refuses_a_run_before_the_cutoff_or_without_a_pool_account(
        frozen: Engine, tmp_path: Path) -> None:
    early = _run(frozen, tmp_path, "2025-11-25T23:59:59+09:00")
    _refused(admin(frozen, "pool", "--from-run", early), "--from-run: run", "before the cut-off")
    bare = reconcile_service.run(frozen, as_of=datetime.fromisoformat(AFTER), evidence_paths=[],
                                 rulebook=load_rulebook("jp-fsa")).document["run_id"]
    _refused(admin(frozen, "pool", "--from-run", str(bare)),
             f"run {bare} has no external balance for pool account {COLD}")


def test_claims_list_the_items_in_flight_at_the_cutoff(frozen: Engine, tmp_path: Path) -> None:
    run_id = _run(frozen, tmp_path, "2025-11-25T23:59:59+09:00")
    _run(frozen, tmp_path, AFTER)  # later than the cut-off: the closest is the one before
    document = _json(frozen, "claims")
    assert document["in_flight_run"] == {"run_id": run_id, "as_of": "2025-11-25T14:59:59+00:00"}
    assert [(i["kind"], i["account"], i["asset"], i["amount"], i["entry"], i["reference"])
            for i in document["in_flight"]] == [
        ("withdrawal_unconfirmed", TRUST, "JPY", "200000", "w1", "W1"),
        ("deposit_uncredited", TRUST, "JPY", "30000", None, "X9"),
        ("chain_excess", HOT, "BTC", "0.10000000", None, None)]
    assert document["in_flight_note"].startswith(f"3 items in flight by run {run_id}")
    table = cli("--db", _url(frozen), "admin", "claims", env={"COLUMNS": "200"}).stdout
    assert "In flight at the cut-off" in table and "withdrawal_unconfirmed" in table


# --- Elections and disputes ---------------------------------------------------------------------

ELECTIONS = {"elections": [{"creditor": "c-001", "option": "early", "payment": "fiat"},
                           {"creditor": "c-002", "option": "final", "payment": "crypto"}]}


def test_elections_load_from_json_and_csv_once_and_never_change(
        frozen: Engine, tmp_path: Path) -> None:
    first = admin(frozen, "elections", "load", str(_write(tmp_path / "e.json", ELECTIONS)))
    assert (first.returncode, first.stdout) == (0, "elections: loaded 2, skipped 0 "
                                                   "unchanged\n"), first.stderr
    csv = _write(tmp_path / "e.csv", "payment,creditor,option\nfiat,c-001,early\n"
                                     "fiat,c-003,final\n")
    again = admin(frozen, "elections", "load", str(csv))
    assert (again.returncode, again.stdout) == (0, "elections: loaded 1, skipped 1 "
                                                   "unchanged\n"), again.stderr
    with frozen.connect() as connection:
        assert case.load_elections(connection) == (
            Election("c-001", "early", "fiat"), Election("c-002", "final", "crypto"),
            Election("c-003", "final", "fiat"))
    listed = _json(frozen, "elections", "list")
    assert [(e["creditor"], e["option"], e["payment"], e["source"]) for e in listed] == [
        ("c-001", "early", "fiat", str(tmp_path / "e.json")),
        ("c-002", "final", "crypto", str(tmp_path / "e.json")),
        ("c-003", "final", "fiat", str(csv))]


BAD_ELECTIONS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "changed": ("e.csv", "creditor,option,payment\nc-001,final,fiat\n",
                (":2: option:", '"c-001" elected early in fiat', "an election cannot change")),
    "changed_payment": ("e.json", json.dumps({"elections": [
        {"creditor": "c-002", "option": "final", "payment": "fiat"}]}, indent=1),
        (":6: elections[0].payment:", "an election cannot change")),
    "unknown_creditor": ("e.csv", "creditor,option,payment\nc-001,early,fiat\nc-999,final,fiat\n",
                         (":3: creditor:", 'unknown creditor "c-999"')),
    "duplicated": ("e.csv", "creditor,option,payment\nc-003,final,fiat\nc-003,final,fiat\n",
                   (":3: creditor:", '"c-003" appears twice in this file')),
    "bad_option": ("e.json", json.dumps({"elections": [
        {"creditor": "c-003", "option": "later", "payment": "fiat"}]}, indent=1),
        (":5: elections[0].option:", '"later" is not one of: early, final')),
    "bad_header": ("e.csv", "creditor,choice,payment\nc-003,final,fiat\n",
                   (":1:", 'unknown column "choice"')),
    "empty_list": ("e.json", '{"elections": []}', ("elections: needs at least one item",)),
}


@pytest.mark.parametrize("case_name", BAD_ELECTIONS)
def test_a_bad_elections_file_is_refused_naming_the_line_and_field_and_nothing_is_written(
        frozen: Engine, tmp_path: Path, case_name: str) -> None:
    assert admin(frozen, "elections", "load", str(_write(tmp_path / "first.json", ELECTIONS))
                 ).returncode == 0
    name, content, fragments = BAD_ELECTIONS[case_name]
    path = _write(tmp_path / name, content)
    before = _counts(frozen)
    _refused(admin(frozen, "elections", "load", str(path)), str(path), *fragments)
    assert _counts(frozen) == before


def _disputes(*items: dict[str, Any]) -> dict[str, Any]:
    return {"disputes": list(items)}


OPEN = {"creditor": "c-003", "asset": "BTC", "claimed": "0.5", "status": "open"}


def test_disputes_are_recorded_then_ruled_once_and_loading_again_changes_nothing(
        frozen: Engine, tmp_path: Path) -> None:
    claim = _write(tmp_path / "claim.json", _disputes(
        OPEN, {"creditor": "c-002", "asset": "JPY", "claimed": "90000", "status": "open"}))
    done = admin(frozen, "disputes", "load", str(claim))
    assert (done.returncode, done.stdout) == (0, "disputes: loaded 2, skipped 0 unchanged\n")
    ruling = _write(tmp_path / "ruling.csv", "creditor,asset,claimed,status,allowed\n"
                                             "c-003,BTC,0.50,allowed,0.2\n"
                                             "c-002,JPY,90000,rejected,\n"
                                             "c-001,BTC,1.5,open,\n")
    done = admin(frozen, "disputes", "load", str(ruling))
    assert (done.returncode, done.stdout) == (0, "disputes: loaded 3, skipped 0 unchanged\n")
    for path in (claim, ruling):
        done = admin(frozen, "disputes", "load", str(path))
        skipped = 2 if path == claim else 3
        assert done.stdout.endswith(f"loaded 0, skipped {skipped} unchanged\n"), done.stderr
    with frozen.connect() as connection:
        assert case.load_disputes(connection) == (
            Dispute("c-001", "BTC", 150_000_000),
            Dispute("c-002", "JPY", 90_000, "rejected"),
            Dispute("c-003", "BTC", 50_000_000, "allowed", 20_000_000))
    listed = _json(frozen, "disputes", "list")
    assert [(d["creditor"], d["asset"], d["claimed"], d["status"], d["allowed"])
            for d in listed] == [("c-001", "BTC", "1.50000000", "open", None),
                                 ("c-002", "JPY", "90000", "rejected", None),
                                 ("c-003", "BTC", "0.50000000", "allowed", "0.20000000")]


BAD_DISPUTES: dict[str, tuple[Any, tuple[str, ...]]] = {
    "claimed_changed": (_disputes({**OPEN, "claimed": "0.6"}),
                        ("disputes[0].claimed:", "was recorded claiming 0.50000000 BTC, not "
                         "0.60000000 BTC; a claimed amount cannot change")),
    "ruling_changed": (_disputes({**OPEN, "status": "allowed", "allowed": "0.3"}),
                       ("disputes[0].allowed:", "ruled on already: allowed for 0.20000000 BTC; "
                        "a ruling cannot change")),
    "ruling_reversed": (_disputes({**OPEN, "status": "rejected"}),
                        ("disputes[0].status:", "a ruling cannot change")),
    "unknown_creditor": (_disputes({**OPEN, "creditor": "c-999"}),
                         ("disputes[0].creditor:", 'unknown creditor "c-999"')),
    "unknown_asset": (_disputes({**OPEN, "asset": "DOGE"}),
                      ("disputes[0].asset:", 'unknown asset "DOGE"')),
    "negative": (_disputes({**OPEN, "creditor": "c-001", "claimed": "-1"}),
                 ("disputes[0].claimed:", "must not be negative, not -1")),
    "not_a_number": (_disputes({**OPEN, "creditor": "c-001", "claimed": "one"}),
                     ("disputes[0].claimed:", '"one" is not a plain decimal number')),
    "json_float": (_disputes({**OPEN, "creditor": "c-001", "claimed": 0.5}),
                   ("disputes[0].claimed:", "not the number 0.5", "a JSON number is refused")),
    "json_integer": (_disputes({**OPEN, "creditor": "c-001", "claimed": 1}),
                     ("disputes[0].claimed:", "not the number 1")),
    "too_many_decimals": (_disputes({**OPEN, "creditor": "c-001", "claimed": "0.123456789"}),
                          ("disputes[0].claimed:", "has 9 decimals, the asset allows 8")),
    "allowed_above_claimed": (_disputes({**OPEN, "creditor": "c-001", "status": "allowed",
                                         "allowed": "0.6"}),
                              ("disputes[0].allowed:", "0.6 allowed is more than the 0.5 "
                               "claimed")),
    "allowed_without_amount": (_disputes({**OPEN, "creditor": "c-001", "status": "allowed"}),
                               ("disputes[0].allowed:", "an allowed dispute gives the amount")),
    "duplicated": (_disputes({**OPEN, "creditor": "c-001"}, {**OPEN, "creditor": "c-001"}),
                   ("disputes[1].creditor:", 'the dispute of "c-001" in BTC appears twice')),
    "csv_decimals": ("creditor,asset,claimed,status\nc-001,JPY,1.5,open\n",
                     (":2: claimed:", "has 1 decimals, the asset allows 0")),
}


@pytest.mark.parametrize("case_name", BAD_DISPUTES)
def test_a_bad_disputes_file_is_refused_naming_the_field_and_nothing_is_written(
        frozen: Engine, tmp_path: Path, case_name: str) -> None:
    first = _write(tmp_path / "first.json", _disputes({**OPEN, "status": "allowed",
                                                        "allowed": "0.2"}))
    assert admin(frozen, "disputes", "load", str(first)).returncode == 0
    content, fragments = BAD_DISPUTES[case_name]
    path = _write(tmp_path / ("d.csv" if isinstance(content, str) else "d.json"),
                  content if isinstance(content, str) else json.dumps(content, indent=1))
    before = _counts(frozen)
    _refused(admin(frozen, "disputes", "load", str(path)), str(path), *fragments)
    assert _counts(frozen) == before


def test_the_database_refuses_changes_to_elections_and_disputes(
        frozen: Engine, tmp_path: Path) -> None:
    assert admin(frozen, "elections", "load", str(_write(tmp_path / "e.json", ELECTIONS))
                 ).returncode == 0
    assert admin(frozen, "disputes", "load", str(_write(tmp_path / "d.json", _disputes(OPEN)))
                 ).returncode == 0
    for statement in ("UPDATE admin_elections SET option = 'final'",
                      "DELETE FROM admin_elections", "UPDATE admin_disputes SET claimed_minor = 1",
                      "DELETE FROM admin_disputes"):
        with pytest.raises(DBAPIError, match="append-only"), frozen.begin() as connection:
            connection.execute(text(statement))
    with frozen.connect() as connection:
        assert connection.execute(select(text("count(*)")).select_from(
            text("admin_elections"))).scalar_one() == 2
