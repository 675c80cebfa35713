"""The administration's safety rules where a review found them wanting: a distribution run
racing another or an administrator's record, distributions posted by hand, a reversed payout,
a period closed after the freeze, and the guarantee as tier 2's source.

The case is test_admin_plan's small Mt. Gox (12 of 20 BTC in the pool, tier 2 from
¥3,000,000), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError

from ledger.administration import payouts, service
from ledger.administration.distribution import distributed, payout_key
from ledger.errors import InputError
from ledger.service import read_entry_file
from ledger.storage import posting
from ledger.storage.engine import for_reading, make_engine
from ledger.storage.posting import post_batch
from ledger.storage.schema import admin_confirmations, admin_plans, batches, closed_periods, entries
from tests.helpers import CHART, deposit, entry, write_jsonl
from tests.test_admin_distribute import PAYABLE
from tests.test_admin_plan import DEPOSITS, RULES, Case, build_case, chart

DISTRIBUTIONS = entries.c.type == "distribution"
LATE = "2026-01-10T09:00:00+09:00"  # after the cut-off


@pytest.fixture
def case(migrated_db_url: str, tmp_path: Path) -> Case:
    return build_case(migrated_db_url, tmp_path)


@pytest.fixture
def engine(case: Case) -> Any:
    made = make_engine(case.db)
    yield made
    made.dispose()


def _plan(case: Case, name: str, rules: dict[str, Any] | None) -> tuple[str, str]:
    """A plan printed to a file: (path, hash)."""
    args = () if rules is None else ("--rules", case.file(f"{name}-rules.json", rules))
    printed = case.plan_json(*args)
    return case.file(f"{name}.json", printed), hashlib.sha256(printed[:-1]).hexdigest()


def _tier2_paid(engine: Engine) -> dict[str, int]:
    paid: dict[str, int] = {}
    with engine.connect() as connection:
        for item in distributed(connection):
            if item.tier == 2:
                paid[item.creditor] = paid.get(item.creditor, 0) + item.amount_minor
    return paid


def _count(engine: Engine, *where: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(
            select(func.count()).select_from(entries).where(*where)).scalar_one())


# --- F1: a run checks in one snapshot and posts in later transactions ----------------------------


def _snapshot(engine: Engine, plan: str) -> tuple[Any, Any, int]:
    """What `distribute` reads before it posts: the payouts to post and the batch count."""
    with for_reading(engine).connect() as connection:
        built, stored = payouts.prepare_distribution(connection, plan)
        return built, stored, payouts.batch_count(connection)


def _post_rest(engine: Engine, built: Any, stored: Any, seen: int) -> None:
    """What `distribute` then posts, as it posts it."""
    post_batch(engine, built.drafts, source="admin distribute", sha256=stored.plan_hash,
               admin_plan=stored.plan_hash, guard=payouts.unchanged_since(seen, "plan.json"))


def test_a_distribution_of_another_plan_between_check_and_posting_is_not_paid_twice(
        case: Case, engine: Engine) -> None:
    # Two plans stored side by side, both following from today's inputs: the same claims,
    # different rules, each paying tier 2.
    richer, _ = _plan(case, "richer", RULES)
    poorer, _ = _plan(case, "poorer", {**RULES, "estate": "2800000"})
    built, stored, seen = _snapshot(engine, richer)
    assert len(built.drafts) == 10
    # Meanwhile the other plan is distributed in full.
    payouts.distribute(engine, poorer)
    paid_by_poorer = _tier2_paid(engine)
    assert set(paid_by_poorer) == set(PAYABLE)
    before = _count(engine, DISTRIBUTIONS)
    with pytest.raises(InputError, match="another distribution or record was written "
                                         "meanwhile; run `segledger admin distribute` again"):
        _post_rest(engine, built, stored, seen)
    assert _count(engine, DISTRIBUTIONS) == before  # nothing written
    # Run again, the richer plan pays only what the poorer did not: tier 2 once in all.
    done = payouts.distribute(engine, richer)
    # The estate differs: only the final-option creditors (bob, carol) get more.
    assert (done.posted, done.settled) == (2, 8)
    assert _tier2_paid(engine) == PAYABLE
    assert case.run("verify").returncode == 0


def test_an_administrators_record_between_check_and_posting_stops_the_run(
        case: Case, engine: Engine) -> None:
    plan, _ = _plan(case, "plan", None)
    built, stored, seen = _snapshot(engine, plan)
    # Meanwhile the administrator records a deposit found late: bob's claim grows.
    late = write_jsonl(case.folder / "late.jsonl", [deposit("d-bob-2", "bob", "0.1", "BTC")])
    service.record(engine, str(late), "deposit found in the node's history")
    with pytest.raises(InputError, match="written meanwhile"):
        _post_rest(engine, built, stored, seen)
    assert _count(engine, DISTRIBUTIONS) == 0
    # Run again, the stale plan is refused for what changed.
    with pytest.raises(InputError, match="claims/inputs changed since the plan"):
        payouts.distribute(engine, plan)


def test_a_run_in_several_batches_passes_its_own_guard(case: Case, engine: Engine) -> None:
    plan, _ = _plan(case, "plan", RULES)
    done = payouts.distribute(engine, plan, batch_size=3)
    assert (done.posted, done.batches) == (10, 4)


# --- F2: distributions come from `admin distribute` only ---------------------------------------


def test_distributions_posted_before_the_freeze_are_not_counted_as_paid(
        migrated_db_url: str, tmp_path: Path) -> None:
    fake = [entry(f"fake-{asset}", "distribution", ("expense:rent:JPY", "revenue:fees:JPY", "1000"),
                  metadata={"plan": "f" * 64, "tier": 2, "creditor": "alice", "asset": asset})
            for asset in ("JPY", "XRP")]
    case = build_case(migrated_db_url, tmp_path, deposits=[*DEPOSITS, *fake])
    plan, digest = _plan(case, "plan", RULES)
    # Neither counts: an unknown asset crashed status and distribute; JPY was taken as paid.
    status = json.loads(case.run("admin", "status", "--format", "json").stdout)
    assert [row["paid"] for row in status["rows"]] == ["0.00000000", "0", "0"]
    case.run("admin", "distribute", "--plan", plan)
    engine = make_engine(case.db)
    try:
        assert _tier2_paid(engine) == PAYABLE
        with engine.connect() as connection:
            assert {item.key for item in distributed(connection)} == {
                payout_key(digest, item.tier, item.creditor, item.asset)
                for item in distributed(connection)}
    finally:
        engine.dispose()


def _forged(batch_id: int, **values: Any) -> dict[str, Any]:
    return {"id": 10_000, "key": "forged", "type": "distribution",
            "effective_at": datetime(2026, 1, 10, tzinfo=UTC), "recorded_at": datetime.now(UTC),
            "metadata": {}, "content_hash": "0" * 64, "batch_id": batch_id, **values}


def _new_batch(connection: Any, **values: Any) -> int:
    return int(connection.execute(batches.insert().values(
        source="forged", sha256="0" * 64, entry_count=1, posting_count=0, skipped_count=0,
        recorded_at=datetime.now(UTC), **values).returning(batches.c.id)).scalar_one())


def test_the_database_refuses_a_distribution_outside_a_plans_batch(
        case: Case, engine: Engine) -> None:
    """Python bypassed: the rows written straight into the tables."""
    for values in ({}, {"admin_plan": None}):
        with pytest.raises(DBAPIError, match="frozen for administration"), \
                engine.begin() as connection:
            connection.execute(entries.insert().values(
                **_forged(_new_batch(connection, **values))))
    assert _count(engine, DISTRIBUTIONS) == 0


@pytest.mark.postgres
def test_the_copy_path_is_refused_by_the_database_once_frozen(
        new_migrated_pg_database: Any, tmp_path: Path) -> None:
    case = build_case(new_migrated_pg_database(), tmp_path, inputs=False)
    engine = make_engine(case.db)
    try:
        late = [deposit("late", "alice", "1", "BTC", at=LATE)]
        drafts = _drafts(tmp_path, late)
        # Through post_batch the book refuses it before any row is copied …
        with pytest.raises(InputError, match="deposit entries are refused"):
            post_batch(engine, drafts, source="late.jsonl", sha256="0" * 64, use_copy=True)
        # … and with Python bypassed, the rows COPY writes go through the trigger too.
        for kind in ("deposit", "distribution"):
            with pytest.raises(DBAPIError, match="frozen for administration"), \
                    engine.begin() as connection:
                row = _forged(_new_batch(connection), type=kind)
                posting._copy_rows(connection, entries.name, [row], None)
        assert _count(engine, entries.c.key == "forged") == 0
    finally:
        engine.dispose()


def _drafts(folder: Path, rows: list[dict[str, Any]]) -> Any:
    drafts, _ = read_entry_file(str(write_jsonl(folder / "drafts.jsonl", rows)))
    return drafts


# --- F3: a reversed payout is owed again -------------------------------------------------------


def test_a_reversed_payout_is_paid_again_once(case: Case, engine: Engine) -> None:
    plan, digest = _plan(case, "plan", RULES)
    case.run("admin", "distribute", "--plan", plan)
    first = {key: 0 for key in (payout_key(digest, 1, "alice", "BTC"),
                                payout_key(digest, 2, "alice", "JPY"))}
    reversal = write_jsonl(case.folder / "reverse.jsonl", [
        {"key": f"rev-{n}", "type": "reversal", "effective_at": LATE, "reverses": key}
        for n, key in enumerate(first)])
    case.run("admin", "record", str(reversal), "--reason", "payouts returned by the bank")
    with engine.connect() as connection:
        assert not first.keys() & {item.key for item in distributed(connection)}
    status = json.loads(case.run("admin", "status", "--format", "json").stdout)
    outstanding = {(row["tier"], row["asset"]): row["outstanding"] for row in status["rows"]}
    assert outstanding == {(1, "BTC"): "6.00000000", (1, "JPY"): "0",
                           (2, "JPY"): str(PAYABLE["alice"])}
    done = case.run("admin", "distribute", "--plan", plan)
    assert done.stdout.strip() == "distributed 2 payouts in 1 batches, 8 already recorded"
    again = {payout_key(digest, 1, "alice", "BTC", 1), payout_key(digest, 2, "alice", "JPY", 1)}
    assert all(key.endswith(":r1") and len(key) <= 128 for key in again)
    with engine.connect() as connection:
        paid = {item.key: item.amount_minor for item in distributed(connection)}
    assert again <= paid.keys() and len(paid) == 10
    assert paid[payout_key(digest, 1, "alice", "BTC", 1)] == 600_000_000
    assert _tier2_paid(engine) == PAYABLE
    status = json.loads(case.run("admin", "status", "--format", "json").stdout)
    assert {row["outstanding"] for row in status["rows"]} == {"0", "0.00000000"}
    assert case.run("verify").returncode == 0
    # And once only: run again, nothing more is paid.
    done = case.run("admin", "distribute", "--plan", plan)
    assert done.stdout.strip() == "distributed 0 payouts in 0 batches, 10 already recorded"


# --- F5: no period is closed after the freeze --------------------------------------------------


def test_a_period_cannot_be_closed_once_frozen(case: Case, engine: Engine) -> None:
    done = case.run("period", "close", "--through", LATE, code=2)
    assert done.stdout == ""
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert "--through: the ledger is frozen at" in done.stderr
    assert "no period can be closed any more" in done.stderr
    # Python bypassed: the database refuses the row.
    with pytest.raises(DBAPIError, match="no period can be closed"), \
            engine.begin() as connection:
        connection.execute(closed_periods.insert().values(
            closed_through=datetime(2026, 1, 1, tzinfo=UTC), closed_at=datetime.now(UTC),
            closed_by="someone"))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM closed_periods")).scalar_one() == 0


# --- F7: tier 2 is not paid from the guarantee -------------------------------------------------


def test_pay_from_cannot_be_a_guarantee_custody_account(case: Case) -> None:
    guarantee = "custody:company:guarantee:JPY"
    extended = chart()
    extended["accounts"].append({"code": guarantee, "asset": "JPY", "pool": "company",
                                 "role": "custody", "location": "bank",
                                 "purpose": "guarantee"})
    assert len(extended["accounts"]) == len(CHART["accounts"]) + 2
    case.run("chart", "load", case.file("chart2.json", extended))
    path = case.file("bad-rules.json", {**RULES, "pay_from": guarantee})
    done = case.run("admin", "plan", "--rules", path, code=2)
    assert f"pay_from: {guarantee} holds the JPY guarantee, part of the tier-1 pool" \
        in done.stderr, done.stderr


def test_pay_from_cannot_be_the_liability_reserve(case: Case) -> None:
    reserve = "custody:company:reserve:JPY"  # in the chart: purpose reserve
    path = case.file("reserve-rules.json", {**RULES, "pay_from": reserve})
    done = case.run("admin", "plan", "--rules", path, code=2)
    assert f"pay_from: {reserve} holds the liability reserve" in done.stderr, done.stderr
    assert case.count(admin_plans) == 0


# --- a second review: confirmations and a second freeze ---------------------------------------


def test_only_the_plans_payouts_can_be_confirmed(migrated_db_url: str, tmp_path: Path) -> None:
    fake = entry("fake-paid", "distribution", ("expense:rent:JPY", "revenue:fees:JPY", "1000"))
    case = build_case(migrated_db_url, tmp_path, deposits=[*DEPOSITS, fake])
    sent = case.file("sent.json", {"payouts": [{"entry": "fake-paid", "reference": "WIRE-1"}]})
    done = case.run("admin", "payouts", "confirm", sent, code=2)
    assert '"fake-paid" is not a distribution entry of the ledger' in done.stderr, done.stderr
    assert case.count(admin_confirmations) == 0


def test_a_second_freeze_is_refused_as_such_even_with_a_future_cutoff(case: Case) -> None:
    done = case.run("admin", "freeze", "--cutoff", "2999-01-01T00:00:00+00:00",
                    "--administrator", "Someone Else", code=2)
    assert "the ledger is already frozen: by Nobuaki Kobayashi (case H26-3)" in done.stderr, \
        done.stderr
