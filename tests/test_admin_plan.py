"""`segledger admin plan`: the plan from a frozen ledger, stored with its hash, printed as a
table, its canonical JSON (byte for byte the same for the same inputs) or a long-form CSV.

The case is a small Mt. Gox: four customers hold 20 BTC, 9 BTC are stolen from the cold
wallet, 1 BTC of guarantee custody stands behind them, so the pool pays 12/20 = 60 % in kind;
what it leaves is valued at ¥749,318.83 and paid from a ¥3,000,000 estate.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from ledger.administration.distribution import Distributed
from ledger.administration.statement import status_numbers
from ledger.storage.engine import make_engine
from ledger.storage.schema import admin_plans, entries
from tests.helpers import CHART, THEFT, cli, deposit, entry, write_jsonl

CUTOFF = "2025-11-26T00:00:00+09:00"
AFTER = "2025-11-25T18:00:00+09:00"  # still before the cut-off: the theft
COLD, HOT, GUARANTEE = ("custody:customer:cold:BTC", "custody:customer:hot:BTC",
                        "custody:company:guarantee:BTC")
TRUST, OPERATING = "custody:customer:trust:JPY", "custody:company:operating:JPY"
CHARGE = "expense:administration:distributions:JPY"
BTC = 10**8
RULES: dict[str, Any] = {"basic_payment": "200000", "early_share": "0.21", "estate": "3000000",
                         "pay_from": OPERATING, "charge_to": CHARGE}
ELECTIONS: list[dict[str, str]] = [
    {"creditor": "alice", "option": "early", "payment": "crypto"},
    {"creditor": "bob", "option": "final", "payment": "fiat"},
    {"creditor": "carol", "option": "final", "payment": "crypto"},
    {"creditor": "dave", "option": "early", "payment": "fiat"}]
DISPUTE = {"creditor": "frank", "asset": "BTC", "claimed": "1", "status": "open"}
DEPOSITS = [deposit("d-alice", "alice", "10", "BTC"), deposit("d-bob", "bob", "5", "BTC"),
            deposit("d-carol", "carol", "3", "BTC"), deposit("d-dave", "dave", "2", "BTC"),
            deposit("j-carol", "carol", "100000"), deposit("j-frank", "frank", "50000")]
LATER = [
    entry("cold-1", "transfer", (COLD, HOT, "15"), at=AFTER),
    entry("guarantee-1", "transfer", (GUARANTEE, "equity:capital:BTC", "1"), at=AFTER),
    entry("capital-1", "transfer", (OPERATING, "equity:capital:JPY", "10000000"), at=AFTER),
    entry("theft-1", "incident", ("loss:incident:BTC", COLD, "9"), at=AFTER, metadata=THEFT)]


class Case:
    """A frozen ledger built through the `segledger` command, and files beside it."""

    def __init__(self, db: str, folder: Path) -> None:
        self.db, self.folder = db, folder

    def run(self, *args: str, code: int | None = 0) -> Any:
        done = cli("--db", self.db, *args)
        if code is not None:
            assert done.returncode == code, (args, done.stdout, done.stderr)
        return done

    def file(self, name: str, content: Any) -> str:
        path = self.folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content if isinstance(content, str) else json.dumps(content), "utf-8")
        return str(path)

    def count(self, table: Any, *where: Any) -> int:
        engine = make_engine(self.db)
        try:
            with engine.connect() as connection:
                return int(connection.execute(
                    select(func.count()).select_from(table).where(*where)).scalar_one())
        finally:
            engine.dispose()

    def plan_json(self, *args: str) -> bytes:
        done = self.run("admin", "plan", *args, "--format", "json")
        return str(done.stdout).encode("ascii")


def chart() -> dict[str, Any]:
    extended = json.loads(json.dumps(CHART))
    extended["accounts"].append({"code": CHARGE, "asset": "JPY", "pool": "company",
                                 "role": "expense"})
    return extended


def build_case(db: str, folder: Path, *, prices: bool = True, inputs: bool = True,
               deposits: list[dict[str, Any]] | None = None,
               elections: list[dict[str, str]] | None = None,
               administrator: str = "Nobuaki Kobayashi",
               with_chart: dict[str, Any] | None = None) -> Case:
    """The Mt. Gox-like ledger frozen at the cut-off, with its commencement prices, the
    elections and frank's disputed 1 BTC recorded."""
    case = Case(db, folder)
    case.run("chart", "load", case.file("chart.json", with_chart or chart()))
    write_jsonl(folder / "day.jsonl", [*(deposits or DEPOSITS), *LATER])
    case.run("post", str(folder / "day.jsonl"))
    case.run("admin", "freeze", "--cutoff", CUTOFF, "--administrator", administrator,
             "--case", "H26-3")
    if prices:
        case.run("admin", "claims", "--prices", case.file("prices.json", {
            "quote": "JPY", "as_of": CUTOFF, "prices": {"BTC": "749318.83"}}))
    if inputs:
        case.run("admin", "elections", "load",
                 case.file("elections.json", {"elections": elections or ELECTIONS}))
        case.run("admin", "disputes", "load", case.file("disputes.json",
                                                         {"disputes": [DISPUTE]}))
    case.file("rules.json", RULES)
    return case


@pytest.fixture
def case(migrated_db_url: str, tmp_path: Path) -> Case:
    return build_case(migrated_db_url, tmp_path)


def _lines(document: dict[str, Any], tier: str) -> dict[Any, dict[str, Any]]:
    if tier == "tier1":
        return {(line["creditor"], line["asset"]): line for line in document["tier1"]["lines"]}
    return {line["creditor"]: line for line in document["tier2"]["lines"]}


# --- the plan's numbers ------------------------------------------------------------------------


def test_tier1_only_plan_pays_sixty_percent_of_bitcoin_in_kind_from_ledger_figures(
        case: Case) -> None:
    table = case.run("admin", "plan")
    assert "pools: ledger figures, not verified" in table.stdout
    assert "tier 1 only" in table.stdout
    document = json.loads(case.plan_json())
    # Customer custody 6 (cold) + 5 (hot) + guarantee 1 = 12 BTC for 20 BTC of claims.
    assert [(a["asset"], a["pool_minor"], a["claimed_minor"], a["paid_minor"], a["covered"])
            for a in document["tier1"]["assets"]] == [
        ("BTC", str(12 * BTC), str(20 * BTC), str(12 * BTC), False),
        ("JPY", "150000", "150000", "150000", True)]
    paid = {key: line["paid_minor"] for key, line in _lines(document, "tier1").items()}
    assert paid == {("alice", "BTC"): str(6 * BTC), ("bob", "BTC"): str(3 * BTC),
                    ("carol", "BTC"): "180000000", ("dave", "BTC"): "120000000",
                    ("carol", "JPY"): "100000", ("frank", "JPY"): "50000"}
    assert (document["rules"], document["tier2"], document["estate_minor"]) == (None, None, None)
    assert document["basis"] == {
        "administrator": "Nobuaki Kobayashi", "case": "H26-3", "cutoff": "2025-11-25T15:00:00+00:00",
        "run_id": None, "pool_source": "ledger", "prices_sha256": None, "pay_from": None,
        "charge_to": None}


def test_plan_with_rules_values_the_shortfalls_and_pays_basic_early_and_final(case: Case) -> None:
    document = json.loads(case.plan_json("--rules", str(case.folder / "rules.json")))
    lines = _lines(document, "tier2")
    # Shortfalls valued at ¥749,318.83: alice 4 BTC ¥2,997,275, bob 2 ¥1,498,637, carol 1.2
    # ¥899,182, dave 0.8 ¥599,455; frank's disputed 1 BTC ¥749,318 is reserved.
    # Basic ¥200,000 each (frank's reserved): ¥1,000,000, leaving ¥2,000,000. Early 21 % of the
    # rest: alice 587,427.75 → 587,427, dave 83,885.55 → 83,885; final pool 1,328,688 over
    # bob 1,298,637 + carol 699,182 + frank 549,318 = 2,547,137.
    assert {c: (line["basic_minor"], line["early_minor"], line["final_minor"],
                line["reserved_minor"]) for c, line in lines.items()} == {
        "alice": ("200000", "587427", "0", "0"), "bob": ("200000", "0", "677420", "0"),
        "carol": ("200000", "0", "364721", "0"), "dave": ("200000", "83885", "0", "0"),
        "frank": ("0", "0", "0", "486546")}
    assert (lines["frank"]["elected"], lines["frank"]["payment"]) == (False, "fiat")
    second = document["tier2"]
    assert (second["final_pool_minor"], second["final_claims_minor"], second["left_minor"]) == \
        ("1328688", "2547137", "1")
    assert document["estate_minor"] == "3000000"
    assert document["rules"] == {"quote": "JPY", "quote_scale": 0, "basic_payment_minor": "200000",
                                 "early_share": "0.21", "prices": {"BTC": "749318.83"}}
    basis = document["basis"]
    assert (basis["pay_from"], basis["charge_to"], basis["pool_source"]) == \
        (OPERATING, CHARGE, "ledger")
    assert len(basis["prices_sha256"]) == 64
    table = case.run("admin", "plan", "--rules", str(case.folder / "rules.json"))
    assert "Tier 2 per creditor (in JPY)" in table.stdout
    assert "left in the estate 1" in table.stdout


def test_plan_json_is_the_stored_document_byte_for_byte_on_every_run(case: Case) -> None:
    rules = str(case.folder / "rules.json")
    first, second = case.plan_json("--rules", rules), case.plan_json("--rules", rules)
    assert first == second and first.endswith(b"}\n") and first.count(b"\n") == 1
    digest = hashlib.sha256(first[:-1]).hexdigest()
    engine = make_engine(case.db)
    try:
        with engine.connect() as connection:
            stored = connection.execute(select(admin_plans.c.plan_hash, admin_plans.c.document)
                                        ).all()
    finally:
        engine.dispose()
    assert stored == [(digest, first[:-1].decode("ascii"))]
    out = case.folder / "plan.json"
    written = case.run("admin", "plan", "--rules", rules, "--format", "json", "--out", str(out))
    assert written.stdout.startswith(f"plan {digest} (stored before at ")
    assert out.read_bytes() == first
    # A tier-1-only plan of the same ledger is another plan, stored beside it.
    case.plan_json()
    assert case.count(admin_plans) == 2


def test_the_same_ledger_built_in_another_order_gives_the_identical_plan(
        sqlite_template: Path, tmp_path: Path) -> None:
    shuffled = list(DEPOSITS)
    random.Random(7).shuffle(shuffled)
    assert shuffled != DEPOSITS
    plans = []
    for name, deposits, elections in (("a", DEPOSITS, ELECTIONS),
                                      ("b", shuffled, list(reversed(ELECTIONS)))):
        folder = tmp_path / name
        folder.mkdir()
        shutil.copyfile(sqlite_template, folder / "ledger.db")
        case = build_case(f"sqlite:///{folder / 'ledger.db'}", folder, deposits=deposits,
                          elections=elections)
        plans.append(case.plan_json("--rules", str(folder / "rules.json")))
    assert plans[0] == plans[1]


def test_plan_csv_is_long_form_with_amounts_in_asset_units(case: Case) -> None:
    done = case.run("admin", "plan", "--rules", str(case.folder / "rules.json"), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [row["section"] for row in rows] == [
        "plan", "tier1_assets", "tier1_assets", *["tier1_lines"] * 6, *["valuations"] * 5,
        "tier2", *["tier2_lines"] * 5, "disputes"]
    dave = next(row for row in rows if row["section"] == "tier1_lines" and row["creditor"] == "dave")
    assert (dave["claim"], dave["paid"], dave["shortfall"]) == ("2.00000000", "1.20000000",
                                                                 "0.80000000")
    frank = next(row for row in rows if row["section"] == "tier2_lines" and row["creditor"] == "frank")
    assert (frank["reserved"], frank["payable"], frank["elected"]) == ("486546", "0", "false")
    assert rows[0]["pool_source"] == "ledger" and rows[0]["quote"] == "JPY"


def test_plan_from_a_run_takes_the_verified_external_balances_and_names_the_run(case: Case) -> None:
    observed = {COLD: "6", HOT: "4.9", GUARANTEE: "1", TRUST: "150000"}  # 0.1 BTC less in hot
    evidence = case.file("observations.json", {"observations": [
        {"account": account, "as_of": CUTOFF, "amount": amount, "source": "custodian"}
        for account, amount in observed.items()]})
    run = case.run("reconcile", "run", "--as-of", CUTOFF, "--evidence", evidence, "--format",
                   "json", code=None)
    run_id = json.loads(run.stdout)["run_id"]
    document = json.loads(case.plan_json("--from-run", run_id))
    assert (document["basis"]["run_id"], document["basis"]["pool_source"]) == (run_id, "run")
    btc = document["tier1"]["assets"][0]
    assert (btc["pool_minor"], btc["paid_minor"]) == (str(1_190_000_000), str(1_190_000_000))
    # 11.9 of 20 BTC: 59.5 % of each claim.
    assert _lines(document, "tier1")[("alice", "BTC")]["paid_minor"] == str(595_000_000)
    assert case.plan_json() != case.plan_json("--from-run", run_id)  # another basis
    table = case.run("admin", "plan", "--from-run", run_id).stdout
    assert f"pools: verified external balances of run {run_id}" in table
    missing = case.run("admin", "plan", "--from-run", "run-nope", code=2)
    assert 'no reconciliation run "run-nope"' in missing.stderr


# --- refusals ---------------------------------------------------------------------------------


def test_plan_on_an_unfrozen_ledger_is_exit_2_and_stores_nothing(migrated_db_url: str,
                                                                 tmp_path: Path) -> None:
    case = Case(migrated_db_url, tmp_path)
    case.run("chart", "load", case.file("chart.json", chart()))
    done = case.run("admin", "plan", code=2)
    assert "not frozen" in done.stderr and "segledger admin freeze" in done.stderr
    assert case.count(admin_plans) == 0


def test_rules_need_the_recorded_commencement_prices(migrated_db_url: str, tmp_path: Path) -> None:
    case = build_case(migrated_db_url, tmp_path, prices=False, inputs=False)
    done = case.run("admin", "plan", "--rules", str(tmp_path / "rules.json"), code=2)
    assert done.stderr.strip() == ("error: record the commencement prices first: segledger admin "
                                   "claims --prices FILE")
    assert case.count(admin_plans) == 0


@pytest.mark.parametrize(("change", "message"), [
    ({"basic_payment": "-200000"}, "basic_payment: must not be negative, not -200000"),
    ({"estate": 3000000}, "estate: must be a decimal number as text, such as \"200000\", not "
                          "the number 3000000 (write it in quotes"),
    ({"early_share": 0.21}, "early_share: must be a decimal number as text, such as \"0.21\", "
                            "not the number 0.21"),
    ({"early_share": "1.5"}, "early_share: is a share from 0 to 1, not 1.5"),
    ({"early_share": "0.2.1"}, "is not a plain decimal number"),
    ({"basic_paymnet": "1"}, "basic_paymnet: unknown field (did you mean basic_payment?"),
    ({"pay_from": None}, "pay_from: must be text in quotes"),
    ({"basic_payment": "200000.5"}, "basic_payment: amount 200000.5 has 1 decimals, the asset "
                                    "allows 0 (JPY, the quote of the commencement prices)"),
    ({"pay_from": "custody:company:operating:USD"},
     'pay_from: "custody:company:operating:USD" is not an account of the chart'),
    ({"pay_from": "custody:company:guarantee:BTC"},
     "pay_from: custody:company:guarantee:BTC is in BTC; tier 2 is paid in JPY"),
    ({"pay_from": TRUST}, "pay_from: custody:customer:trust:JPY is a customer-pool account"),
    ({"charge_to": OPERATING}, "charge_to: custody:company:operating:JPY is a custody account; "
                               "charge_to must be not a custody account"),
    ({"basic_payment": "9" * 80}, "basic_payment: has 80 digits before the point, more than "
                                  "the ledger holds (78 in JPY)"),
    ({"estate": "1" + "0" * 78}, "estate: has 79 digits before the point"),
])
def test_bad_rules_files_are_exit_2_naming_the_field_and_store_nothing(
        case: Case, change: dict[str, Any], message: str) -> None:
    path = case.file("bad-rules.json", {**RULES, **change})
    done = case.run("admin", "plan", "--rules", path, code=2)
    assert message in done.stderr, done.stderr
    assert done.stderr.startswith(f"error: {path}")
    assert case.count(admin_plans) == 0 and case.count(entries, entries.c.type == "distribution") == 0


def test_a_rules_amount_the_quote_cannot_hold_names_the_file_line_and_field(case: Case) -> None:
    # One field a line: the error names the line of the field the user wrote.
    path = case.file("rules.json", json.dumps({**RULES, "estate": "3000000.5"}, indent=1))
    done = case.run("admin", "plan", "--rules", path, code=2)
    assert done.stderr == (f"error: {path}:4: estate: amount 3000000.5 has 1 decimals, the "
                           "asset allows 0 (JPY, the quote of the commencement prices)\n")
    path = case.file("rules.json", json.dumps({**RULES, "basic_payment": "9" * 80}, indent=1))
    done = case.run("admin", "plan", "--rules", path, code=2)
    assert done.stderr == (f"error: {path}:2: basic_payment: has 80 digits before the point, "
                           "more than the ledger holds (78 in JPY)\n")
    assert case.count(admin_plans) == 0


def test_a_dispute_in_an_asset_the_price_table_does_not_price_names_the_table(
        migrated_db_url: str, tmp_path: Path) -> None:
    extended = chart()
    extended["assets"].append({"code": "ETH", "kind": "crypto", "scale": 18,
                               "chain": "ethereum"})
    extended["accounts"].append({"code": "custody:customer:cold:ETH", "asset": "ETH",
                                 "pool": "customer", "role": "custody",
                                 "location": "cold_wallet"})
    case = build_case(migrated_db_url, tmp_path, inputs=False, with_chart=extended)
    case.run("admin", "disputes", "load", case.file("disputes.json", {"disputes": [
        {"creditor": "frank", "asset": "ETH", "claimed": "2", "status": "open"}]}))
    done = case.run("admin", "plan", "--rules", str(tmp_path / "rules.json"), code=2)
    assert done.stderr == ('error: no commencement price for ETH (owed to "frank" among '
                           "others): the commencement price table has no price for ETH, so "
                           "what is owed in it cannot be valued in JPY\n")
    assert case.count(admin_plans) == 0


def test_out_never_replaces_a_file_and_a_refused_plan_stores_nothing(case: Case) -> None:
    out = case.folder / "plan.json"
    out.write_text("kept", "utf-8")
    done = case.run("admin", "plan", "--format", "json", "--out", str(out), code=2)
    assert done.stderr == f"error: --out: {out} already exists; choose a new file\n"
    assert out.read_text("utf-8") == "kept" and case.count(admin_plans) == 0
    done = case.run("admin", "statement", "alice", "--out", str(out), code=2)
    assert "already exists" in done.stderr and out.read_text("utf-8") == "kept"
    fresh = case.folder / "alice.txt"
    done = case.run("admin", "statement", "alice", "--out", str(fresh))
    assert done.stdout == f"wrote the statement of alice to {fresh}\n"
    assert fresh.read_text("utf-8").startswith("Statement of creditor alice\n")
    # Nothing partial is left beside the files.
    assert sorted(p.name for p in case.folder.iterdir() if p.name.startswith(".")) == []


def test_a_rules_file_missing_a_field_or_not_json_is_exit_2(case: Case) -> None:
    missing = case.file("missing.json", {k: v for k, v in RULES.items() if k != "charge_to"})
    done = case.run("admin", "plan", "--rules", missing, code=2)
    assert "charge_to: missing: this field is required" in done.stderr
    broken = case.file("broken.json", '{"basic_payment": "1",')
    assert "malformed JSON" in case.run("admin", "plan", "--rules", broken, code=2).stderr
    assert case.count(admin_plans) == 0


def test_status_outstanding_is_summed_per_payout_so_an_overpayment_hides_no_one() -> None:
    # The plan shown allots alice 600 and bob 400 satoshi in tier 1; alice was paid 700 (an
    # earlier plan allotted her more), bob 100. Still to distribute: bob's 300, not the
    # 1000 − 800 = 200 that netting alice's 100 against bob's shortfall would show.
    document = {"tier1": {"lines": [
        {"creditor": "alice", "asset": "BTC", "paid_minor": "600"},
        {"creditor": "bob", "asset": "BTC", "paid_minor": "400"}]}, "tier2": None}
    at = datetime(2026, 3, 1, tzinfo=UTC)
    paid = [Distributed(entry_id=1, key="dist:a", plan="p" * 64, tier=1, creditor="alice",
                        asset="BTC", amount_minor=700, effective_at=at),
            Distributed(entry_id=2, key="dist:b", plan="p" * 64, tier=1, creditor="bob",
                        asset="BTC", amount_minor=100, effective_at=at)]
    rows = status_numbers(document, paid, {"dist:a"})
    assert dict(rows[(1, "BTC")]) == {"planned": 1000, "payouts_planned": 2, "outstanding": 300,
                                      "paid": 800, "payouts_paid": 2, "confirmed": 700,
                                      "payouts_confirmed": 1}
