"""`segledger admin distribute`, `payouts confirm`, `status` and `statement`: a stored plan's
payouts as `distribution` entries, exactly once however often the command is run or killed.

The case is test_admin_plan's small Mt. Gox: 12 of 20 BTC in the pool, tier 2 from ¥3,000,000.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from ledger.administration.distribution import distributed, payout_key
from ledger.storage.engine import make_engine
from ledger.storage.schema import admin_confirmations, entries
from tests.conftest import PostgresDatabases
from tests.helpers import balance_map, deposit, entry, write_jsonl
from tests.test_admin_plan import (
    BTC,
    CHARGE,
    COLD,
    GUARANTEE,
    HOT,
    OPERATING,
    TRUST,
    Case,
    build_case,
)

DISTRIBUTIONS = entries.c.type == "distribution"
# Tier 2 of the plan: basic + early or final per creditor (test_admin_plan works them out).
PAYABLE = {"alice": 200_000 + 587_427, "bob": 200_000 + 677_420, "carol": 200_000 + 364_721,
           "dave": 200_000 + 83_885}


def _plan(case: Case, *args: str) -> tuple[str, str, dict[str, Any]]:
    """A plan printed to a file: (path, hash, document)."""
    text = case.plan_json(*args)
    path = case.file("plan.json", text)
    document = json.loads(text)
    return path, hashlib.sha256(text[:-1]).hexdigest(), document


@pytest.fixture
def case(migrated_db_url: str, tmp_path: Path) -> Case:
    return build_case(migrated_db_url, tmp_path)


def _balances(case: Case) -> dict[str, int]:
    engine = make_engine(case.db)
    try:
        return balance_map(engine)
    finally:
        engine.dispose()


def _paid(case: Case) -> dict[str, tuple[int | None, str | None, str | None, int]]:
    engine = make_engine(case.db)
    try:
        with engine.connect() as connection:
            return {item.key: (item.tier, item.creditor, item.asset, item.amount_minor)
                    for item in distributed(connection)}
    finally:
        engine.dispose()


def test_distribute_pays_tier1_in_kind_so_the_claim_accounts_show_the_shortfall(case: Case) -> None:
    plan, digest, _ = _plan(case, "--rules", str(case.folder / "rules.json"))
    done = case.run("admin", "distribute", "--plan", plan, "--batch-size", "3")
    # Tier 1: alice, bob, carol, dave in BTC, carol and frank in JPY; tier 2: four creditors
    # (frank's reserve is not paid): ten payouts in batches of three.
    assert done.stdout.strip() == "distributed 10 payouts in 4 batches, 0 already recorded"
    after = _balances(case)
    # Each claim account shows exactly what the pool did not cover: 40 % of the bitcoin.
    assert {c: after[f"customer:{c}:BTC"] for c in ("alice", "bob", "carol", "dave")} == \
        {"alice": 4 * BTC, "bob": 2 * BTC, "carol": 120_000_000, "dave": 80_000_000}
    assert (after["customer:carol:JPY"], after["customer:frank:JPY"]) == (0, 0)
    # The pool is drawn in code order, customer custody first: cold 6 BTC to alice, hot 5 BTC
    # to bob (3), carol (1.8) and dave (0.2), then the guarantee's 1 BTC to dave.
    assert (after[COLD], after[HOT], after[GUARANTEE], after[TRUST]) == (0, 0, 0, 0)
    assert after[OPERATING] == 10_000_000 - sum(PAYABLE.values())
    assert after[CHARGE] == sum(PAYABLE.values()) == 2_513_453
    paid = _paid(case)
    assert paid[payout_key(digest, 1, "dave", "BTC")] == (1, "dave", "BTC", 120_000_000)
    assert {key: value for key, value in paid.items() if value[0] == 2} == {
        payout_key(digest, 2, c, "JPY"): (2, c, "JPY", amount) for c, amount in PAYABLE.items()}
    dave = case.run("entry", "show", payout_key(digest, 1, "dave", "BTC"), "--format", "json")
    shown = json.loads(dave.stdout)
    assert [(line["debit"], line["credit"], line["amount"]) for line in shown["lines"]] == [
        ("customer:dave:BTC", HOT, "0.20000000"), ("customer:dave:BTC", GUARANTEE, "1.00000000")]
    assert shown["metadata"] == {"plan": digest, "tier": 1, "creditor": "dave", "asset": "BTC"}
    assert case.run("verify").returncode == 0


def test_distribute_twice_pays_once(case: Case) -> None:
    plan, _, _ = _plan(case)
    first = case.run("admin", "distribute", "--plan", plan)
    assert first.stdout.strip() == "distributed 6 payouts in 1 batches, 0 already recorded"
    before = _balances(case)
    again = case.run("admin", "distribute", "--plan", plan)
    assert again.stdout.strip() == "distributed 0 payouts in 0 batches, 6 already recorded"
    assert _balances(case) == before and case.count(entries, DISTRIBUTIONS) == 6


@pytest.mark.parametrize(("edit", "message"), [
    (lambda text: text.replace('"paid_minor":"600000000"', '"paid_minor":"700000000"'),
     'tier1.lines[0].paid_minor is "700000000", stored plan '),
    (lambda text: text.replace('"paid_minor":"600000000"', '"paid_minor":6.0'),
     "tier1.lines[0].paid_minor is the float 6.0 (a number; an amount is a whole number"),
    (lambda text: text.replace('"paid_minor":"600000000"', '"paid_minor":"-600000000"'),
     "(negative)"),
    (lambda text: text.replace('"paid_minor":"600000000"', '"paid_minor":"six"'),
     "(not a whole number of minor units)"),
    (lambda text: text.replace('"creditor":"bob"', '"creditor":"mallory"'),
     'tier1.lines[1]: creditor "mallory" asset "BTC" is not in stored plan'),
    (lambda text: text.replace('"creditor":"bob"', '"creditor":"alice"'),
     'tier1.lines[1]: creditor "alice" asset "BTC" appears twice'),
    (lambda text: text.replace('"asset":"JPY","claim_minor"', '"asset":"XRP","claim_minor"', 1),
     'asset "XRP" is not in stored plan'),
    (lambda text: text.replace('{"basis"', '{"basis" '), "but not its bytes (spacing"),
    (lambda text: text + "\n", "but not its bytes"),  # two newlines: not as printed
    (lambda text: text[:40], "malformed JSON"),
])
def test_a_plan_file_that_is_not_a_stored_plan_is_refused_naming_what_differs(
        case: Case, edit: Any, message: str) -> None:
    plan, _, _ = _plan(case)
    edited = case.file("edited.json", edit(Path(plan).read_text("ascii")))
    done = case.run("admin", "distribute", "--plan", edited, code=2)
    assert done.stderr.startswith(f"error: {edited}: not a stored plan (edited?): ")
    assert message in done.stderr, done.stderr
    assert case.count(entries, DISTRIBUTIONS) == 0


def test_a_plan_made_before_the_claims_changed_is_refused(case: Case) -> None:
    plan, _, _ = _plan(case)
    # The administrator records a deposit that was never credited, dated before the cut-off:
    # bob's claim grows, so the plan no longer follows from the ledger.
    late = write_jsonl(case.folder / "late.jsonl", [deposit("d-bob-2", "bob", "0.1", "BTC")])
    case.run("admin", "record", str(late), "--reason", "deposit found in the node's history")
    done = case.run("admin", "distribute", "--plan", plan, code=2)
    assert "claims/inputs changed since the plan: now tier1.assets[0].claimed_minor is " \
           '"2010000000", the plan has "2000000000"' in done.stderr
    assert case.count(entries, DISTRIBUTIONS) == 0
    # A new plan follows the ledger again and is distributed.
    plan, _, _ = _plan(case)
    assert case.run("admin", "distribute", "--plan", plan).stdout.startswith("distributed 6 ")


def test_a_ruling_and_a_new_plan_pay_only_the_difference(case: Case) -> None:
    rules = str(case.folder / "rules.json")
    plan, _, _ = _plan(case, "--rules", rules)
    case.run("admin", "distribute", "--plan", plan)
    case.run("admin", "disputes", "load", case.file("ruling.json", {"disputes": [
        {"creditor": "frank", "asset": "BTC", "claimed": "1", "status": "allowed",
         "allowed": "0.4"}]}))
    refused = case.run("admin", "distribute", "--plan", plan, code=2)
    assert "claims/inputs changed since the plan" in refused.stderr
    replan, digest, _ = _plan(case, "--rules", rules)
    before = _balances(case)
    done = case.run("admin", "distribute", "--plan", replan)
    # 0.4 BTC allowed (¥299,727) releases frank's reserve: the final pool 1,328,688 now goes
    # over bob 1,298,637 + carol 699,182 + frank 99,727: bob 822,620 (+145,200), carol
    # 442,896 (+78,175), frank 200,000 basic + 63,171. The six tier-1 payouts and alice's and
    # dave's early lump-sums are unchanged: paid in full by the first plan.
    assert done.stdout.strip() == ("distributed 3 payouts in 1 batches, 0 already recorded; "
                                   "8 already paid in full by earlier plans")
    paid = {value[1]: value[3] for key, value in _paid(case).items()
            if key.startswith(f"dist:{digest[:16]}:")}
    assert paid == {"bob": 145_200, "carol": 78_175, "frank": 263_171}
    assert before[OPERATING] - _balances(case)[OPERATING] == 145_200 + 78_175 + 263_171
    assert case.run("verify").returncode == 0


def test_a_plan_allotting_less_than_was_paid_is_refused_naming_the_creditor(case: Case) -> None:
    plan, _, _ = _plan(case)
    case.run("admin", "distribute", "--plan", plan)
    # Found later: before the cut-off bob sold 1 BTC to erin, a trade the exchange never
    # booked. Claims are still 20 BTC, but bob's 4 BTC now get 60 %: 2.4 BTC, less than the
    # 3 BTC already paid.
    late = write_jsonl(case.folder / "late.jsonl", [
        entry("t-bob-1", "trade", ("customer:bob:BTC", "customer:erin:BTC", "1"),
              at="2025-11-25T12:00:00+09:00")])
    case.run("admin", "record", str(late), "--reason", "trade found in the matching engine's log")
    replan, _, _ = _plan(case)
    before = case.count(entries, DISTRIBUTIONS)
    done = case.run("admin", "distribute", "--plan", replan, code=2)
    assert 'creditor "bob": earlier distributions paid 3.00000000 BTC in tier 1, the plan ' \
           "allots 2.40000000 BTC: too much already paid by 0.60000000 BTC" in done.stderr
    assert case.count(entries, DISTRIBUTIONS) == before


def test_distribute_needs_a_frozen_ledger_and_a_readable_file(migrated_db_url: str,
                                                               tmp_path: Path) -> None:
    case = Case(migrated_db_url, tmp_path)
    assert "not frozen" in case.run("admin", "distribute", "--plan", "x.json", code=2).stderr
    case = build_case(migrated_db_url, tmp_path, inputs=False)
    missing = case.run("admin", "distribute", "--plan", str(tmp_path / "none.json"), code=2)
    assert "cannot read: no such file" in missing.stderr
    empty = case.run("admin", "distribute", "--plan", case.file("p.json", "{}"), code=2)
    assert "no plan is stored yet" in empty.stderr
    bad = case.run("admin", "distribute", "--plan", case.file("p.json", "{}"),
                   "--batch-size", "0", code=2)
    assert "--batch-size: must be from 1 to 100000, not 0" in bad.stderr


# --- confirmations, status, statement -----------------------------------------------------


def test_confirmations_match_payouts_once_and_never_change(case: Case) -> None:
    plan, digest, _ = _plan(case, "--rules", str(case.folder / "rules.json"))
    case.run("admin", "distribute", "--plan", plan)
    alice, bob = payout_key(digest, 1, "alice", "BTC"), payout_key(digest, 2, "bob", "JPY")
    first = case.file("sent.json", {"payouts": [
        {"entry": alice, "reference": "txid 9f2c", "sent_at": "2026-03-01T10:00:00+09:00"},
        {"entry": bob, "reference": "MUFG-00017"}]})
    assert case.run("admin", "payouts", "confirm", first).stdout.strip() == \
        "confirmed 2 payouts, 0 already confirmed"
    carol = payout_key(digest, 2, "carol", "JPY")
    csv_file = case.file("sent.csv", f"entry,reference,sent_at\n{bob},MUFG-00017,\n"
                                     f"{carol},MUFG-00018,2026-03-02T09:00:00+09:00\n")
    assert case.run("admin", "payouts", "confirm", csv_file).stdout.strip() == \
        "confirmed 1 payouts, 1 already confirmed"
    changed = case.file("changed.csv", f"entry,reference\n{bob},MUFG-99999\n")
    refused = case.run("admin", "payouts", "confirm", changed, code=2)
    assert f'{changed}:2: reference: already confirmed with reference "MUFG-00017"' in refused.stderr
    unknown = case.file("unknown.json", {"payouts": [{"entry": "dep-1", "reference": "x"},
                                                     {"entry": "dist:nope", "reference": "y"}]})
    refused = case.run("admin", "payouts", "confirm", unknown, code=2)
    assert 'payouts[0].entry: "dep-1" is not a distribution entry' in refused.stderr
    twice = case.file("twice.csv", f"entry,reference\n{carol},A\n{carol},A\n")
    assert "appears twice in this file" in case.run("admin", "payouts", "confirm", twice,
                                                    code=2).stderr
    number = case.file("number.json", {"payouts": [{"entry": carol, "reference": 5}]})
    assert "reference: must be text in quotes" in case.run("admin", "payouts", "confirm", number,
                                                           code=2).stderr
    assert case.count(admin_confirmations) == 3


def test_status_shows_planned_paid_confirmed_outstanding_and_reserved(case: Case) -> None:
    plan, digest, _ = _plan(case, "--rules", str(case.folder / "rules.json"))
    before = json.loads(case.run("admin", "status", "--format", "json").stdout)
    assert before["plan"]["hash"] == digest
    rows = {(row["tier"], row["asset"]): row for row in before["rows"]}
    assert (rows[(1, "BTC")]["planned"], rows[(1, "BTC")]["paid"],
            rows[(1, "BTC")]["outstanding"]) == ("12.00000000", "0.00000000", "12.00000000")
    assert (rows[(2, "JPY")]["planned"], rows[(2, "JPY")]["reserved"]) == ("2513453", "486546")
    case.run("admin", "distribute", "--plan", plan)
    case.run("admin", "payouts", "confirm", case.file("sent.json", {"payouts": [
        {"entry": payout_key(digest, 1, "alice", "BTC"), "reference": "txid 9f2c"}]}))
    after = json.loads(case.run("admin", "status", "--format", "json").stdout)
    btc = next(row for row in after["rows"] if (row["tier"], row["asset"]) == (1, "BTC"))
    assert (btc["paid"], btc["confirmed"], btc["outstanding"], btc["unconfirmed"],
            btc["payouts_paid"], btc["payouts_confirmed"]) == (
        "12.00000000", "6.00000000", "0.00000000", "6.00000000", 4, 1)
    total = after["total"]
    # 12 BTC at ¥749,318.83 = ¥8,991,825.96 → 8,991,825; ¥150,000 tier-1 yen; ¥2,513,453 tier 2.
    assert (total["quote"], total["planned"], total["paid"], total["reserved"],
            total["payouts_planned"]) == ("JPY", str(8_991_825 + 150_000 + 2_513_453),
                                          str(8_991_825 + 150_000 + 2_513_453), "486546", 10)
    table = case.run("admin", "status")
    assert f"plan {digest}" in table.stdout and "pools from ledger figures" in table.stdout
    csv_rows = case.run("admin", "status", "--format", "csv").stdout.splitlines()
    assert csv_rows[0].startswith("section,tier,asset,planned,paid,confirmed")
    assert [row.split(",")[0] for row in csv_rows[1:]] == ["status"] * 3 + ["total"]


def test_statement_of_a_creditor_in_text_json_and_a_printable_page(case: Case) -> None:
    plan, digest, _ = _plan(case, "--rules", str(case.folder / "rules.json"))
    case.run("admin", "distribute", "--plan", plan)
    document = json.loads(case.run("admin", "statement", "bob", "--format", "json").stdout)
    assert document["claims"] == [{"asset": "BTC", "claim": "5.00000000", "price": "749318.83",
                                   "value": "3746594"}]
    assert document["election"] == {"option": "final", "payment": "fiat"}
    assert document["tier1"] == [{"asset": "BTC", "claim": "5.00000000", "paid": "3.00000000",
                                  "shortfall": "2.00000000"}]
    assert {k: document["tier2"][k] for k in ("basic", "early", "final", "payable", "reserved")} \
        == {"basic": "200000", "early": "0", "final": "677420", "payable": "877420",
            "reserved": "0"}
    assert sorted((row["tier"], row["asset"], row["amount"]) for row in document["distributed"]) \
        == [(1, "BTC", "3.00000000"), (2, "JPY", "877420")]
    assert document["owed"] == [
        {"tier": 1, "asset": "BTC", "to_distribute": "0.00000000", "reserved": None},
        {"tier": 2, "asset": "JPY", "to_distribute": "0", "reserved": "0"}]
    assert document["ledger_now"] == [{"account": "customer:bob:BTC", "asset": "BTC",
                                       "balance": "2.00000000"}]
    frank = json.loads(case.run("admin", "statement", "frank", "--format", "json").stdout)
    assert frank["disputes"] == [{"asset": "BTC", "claimed": "1.00000000", "status": "open",
                                  "allowed": None}]
    assert frank["tier2"]["reserved"] == "486546" and frank["election"] is None
    text = case.run("admin", "statement", "bob").stdout
    assert "Statement of creditor bob" in text and payout_key(digest, 2, "bob", "JPY") in text
    out = case.folder / "bob.html"
    written = case.run("admin", "statement", "bob", "--format", "html", "--out", str(out))
    assert written.stdout.strip() == f"wrote the statement of bob to {out}"
    page = out.read_text("utf-8")
    assert page.startswith("<!DOCTYPE html>") and "@page" in page and "size: A4" in page
    assert "877420" in page and "Nobuaki Kobayashi" in page
    for external in ("http://", "https://", "<link", "<script", "src=", "@import"):
        assert external not in page


def test_statement_page_escapes_what_it_shows_and_an_unknown_customer_is_refused(
        migrated_db_url: str, tmp_path: Path) -> None:
    case = build_case(migrated_db_url, tmp_path, inputs=False,
                      administrator="<script>alert(1)</script> & Co")
    page = case.run("admin", "statement", "carol", "--format", "html").stdout
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in page and "<script" not in page
    unknown = case.run("admin", "statement", "nobody", code=2)
    assert unknown.stderr.strip() == ('error: CUSTOMER: unknown customer "nobody": no customer '
                                      "account in the ledger, no dispute and no election")
    assert "is not a customer id" in case.run("admin", "statement", "<b>", code=2).stderr


# --- killed at any point ------------------------------------------------------------------

CREDITORS = 24
KILL_COPIES = 2
KILLS_PER_COPY = 5


def _console_script() -> str:
    found = shutil.which("segledger", path=str(Path(sys.executable).parent))
    assert found is not None, "the segledger console script is installed beside python"
    return found


def _copy(databases: PostgresDatabases, source: str) -> str:
    """A copy of the database; the source may still show a session that is going away."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return databases.create(template=source)
        except psycopg.errors.ObjectInUse:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _distributions(connection: psycopg.Connection[Any]) -> int:
    row = connection.execute("SELECT count(*) FROM entries WHERE type = 'distribution'").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.postgres
def test_distribute_killed_at_random_points_completes_each_payout_exactly_once(
        new_migrated_pg_database: Any, postgres_databases: PostgresDatabases,
        tmp_path: Path) -> None:
    url = new_migrated_pg_database()
    rnd = random.Random(20140228)
    deposits = [deposit(f"d-{n}", f"c-{n:03d}", f"{rnd.randint(1, 400) / 100:.2f}", "BTC")
                for n in range(CREDITORS)]
    deposits += [deposit(f"j-{n}", f"c-{n:03d}", str(rnd.randint(1, 90_000)))
                 for n in range(0, CREDITORS, 2)]
    case = build_case(url, tmp_path, inputs=False, deposits=deposits)
    plan, digest, document = _plan(case, "--rules", str(tmp_path / "rules.json"))
    planned = {payout_key(digest, 1, line["creditor"], line["asset"]): int(line["paid_minor"])
               for line in document["tier1"]["lines"]}
    planned |= {payout_key(digest, 2, line["creditor"], "JPY"): int(line["payable_minor"])
                for line in document["tier2"]["lines"]}
    planned = {key: amount for key, amount in planned.items() if amount}
    shortfall = {f"customer:{line['creditor']}:{line['asset']}": int(line["shortfall_minor"])
                 for line in document["tier1"]["lines"]}
    source = make_url(url).database
    assert source is not None
    command = [_console_script(), "--db", url, "admin", "distribute", "--plan", plan,
               "--batch-size", "4"]
    kills = []
    for _ in range(KILL_COPIES):
        copy = postgres_databases.url(_copy(postgres_databases, source))
        command[2] = copy
        with psycopg.connect(copy, autocommit=True) as watch:
            for _ in range(KILLS_PER_COPY):
                before = _distributions(watch)
                process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL)
                if rnd.random() < 0.2 or len(planned) - before < 2:
                    # While it starts, reads the plan, recomputes it or builds the entries.
                    time.sleep(rnd.uniform(0, 0.8))
                else:
                    # After some batches, and a little into the next one.
                    target = before + rnd.randint(1, len(planned) - before - 1)
                    while process.poll() is None and _distributions(watch) < target:
                        time.sleep(0.001)
                    time.sleep(rnd.uniform(0, 0.01))
                process.send_signal(signal.SIGKILL)
                process.wait()
                kills.append((before, _distributions(watch)))
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        summary = re.fullmatch(r"distributed (\d+) payouts in \d+ batches, (\d+) already "
                               r"recorded\n", done.stdout)
        assert summary is not None, done.stdout
        assert int(summary[1]) + int(summary[2]) == len(planned)
        copied = Case(copy, tmp_path)
        paid = _paid(copied)
        assert {key: value[3] for key, value in paid.items()} == planned  # each exactly once
        balances = _balances(copied)
        assert {code: balances[code] for code in shortfall} == shortfall
        assert copied.run("verify", code=None).returncode == 0
        again = copied.run("admin", "distribute", "--plan", plan)
        assert again.stdout.strip() == \
            f"distributed 0 payouts in 0 batches, {len(planned)} already recorded"
    # Some kills fell between the first batch and the last.
    assert len(kills) == KILL_COPIES * KILLS_PER_COPY
    assert any(0 < count < len(planned) for _, count in kills), kills
