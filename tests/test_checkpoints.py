"""Balance checkpoints: a past balance read from the latest checkpoint and the postings after
it is the sum of every posting up to then, whatever the order the postings came in."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select, text, update

from ledger import service, views
from ledger.chart import parse_chart
from ledger.storage import checkpoints
from ledger.storage.chart_store import load_chart
from ledger.storage.engine import for_writing
from ledger.storage.integrity import verify
from ledger.storage.reading import AccountFilter, balances_at
from ledger.storage.schema import accounts, balance_checkpoints, postings
from tests.helpers import CHART, deposit, post
from tests.test_migration_0006 import _migrate


@pytest.fixture
def ledger(engine: Engine) -> Engine:
    load_chart(engine, parse_chart(json.dumps(CHART), "chart.json"), "chart.json")
    return engine


START = datetime(2025, 1, 1, tzinfo=UTC)
TRUST = "custody:customer:trust:JPY"


def _at(minutes: int) -> str:
    return (START + timedelta(minutes=minutes)).isoformat()


def _summed(engine: Engine, code: str, as_of: datetime) -> int:
    """The brute-force answer: every posting of the account up to `as_of`."""
    with engine.connect() as connection:
        total = connection.execute(
            select(func.coalesce(func.sum(postings.c.amount_minor), 0))
            .join(accounts, accounts.c.id == postings.c.account_id)
            .where(accounts.c.code == code, postings.c.effective_at <= as_of)).scalar_one()
    return int(total)


def _past(engine: Engine, code: str, as_of: datetime) -> int:
    with engine.connect() as connection:
        rows = balances_at(connection, as_of, where=AccountFilter(codes=(code,)))
    return rows[0].balance_minor if rows else 0


def _checkpoint_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(
            select(func.count()).select_from(balance_checkpoints)).scalar_one())


def test_past_balances_from_checkpoints_equal_the_full_sum(
        ledger: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = ledger
    monkeypatch.setattr(checkpoints, "CHECKPOINT_EVERY", 4)
    rng = random.Random(11)
    minutes: list[int] = []
    for batch in range(6):
        # In time order, then some backdated among them, with ties on the same minute.
        items = []
        for n in range(rng.randrange(3, 12)):
            minute = (batch * 100 + n * 7 if rng.random() < 0.7 else rng.randrange(batch * 100 + 1))
            minutes.append(minute)
            items.append(deposit(f"d{batch}-{n}", f"c-{n % 3}", str(rng.randrange(1, 500)),
                                 at=_at(minute)))
        post(engine, items)
    assert _checkpoint_count(engine) > 0
    for minute in [*sorted(set(minutes)), -1, 10_000]:
        for delta in (-1, 0, 1):
            as_of = START + timedelta(minutes=minute, seconds=delta)
            assert _past(engine, TRUST, as_of) == _summed(engine, TRUST, as_of)
            for customer in ("c-0", "c-1", "c-2"):
                code = f"customer:{customer}:JPY"
                assert _past(engine, code, as_of) == -_summed(engine, code, as_of)
    assert verify_ok(engine)


def verify_ok(engine: Engine) -> bool:
    with engine.connect() as connection:
        report = verify(connection)
    assert report.problems == []
    return True


def test_verify_finds_a_checkpoint_changed_behind_the_ledger(
        ledger: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = ledger
    monkeypatch.setattr(checkpoints, "CHECKPOINT_EVERY", 2)
    post(engine, [deposit(f"d{n}", "c-1", "10", at=_at(n)) for n in range(5)])
    with for_writing(engine).begin() as connection:
        connection.execute(update(balance_checkpoints).values(
            amount_minor=balance_checkpoints.c.amount_minor + 1))
    with engine.connect() as connection:
        problems = verify(connection).problems
    assert {problem.check for problem in problems} == {"checkpoint"}
    assert {problem.subject for problem in problems} == {TRUST, "customer:c-1:JPY"}
    assert "postings up to then sum to" in problems[0].detail


def test_the_migration_makes_checkpoints_for_the_history_already_there(ledger: Engine) -> None:
    """A history posted, then the schema taken down to 0007 (no checkpoints, no hash chain)
    and up again as `segledger init` does: every long history gets its checkpoints from its
    postings, the history is sealed again, and past balances and verify agree."""
    engine = ledger
    url = engine.url.render_as_string(hide_password=False)
    history = [deposit(f"d{n}", f"c-{n % 2}", "3", at=_at(n // 3)) for n in range(2_100)]
    post(engine, history)
    _migrate(url, "0007", down=True)
    with for_writing(engine).begin() as connection:
        assert "balance_checkpoints" not in set(connection.execute(text(
            "SELECT name FROM sqlite_master WHERE type = 'table'" if engine.dialect.name ==
            "sqlite" else "SELECT tablename FROM pg_tables")).scalars())
    service.init(url)
    assert _checkpoint_count(engine) >= 2  # the trust account passed 1,000 and 2,000
    for minute in (0, 333, 334, 500, 699, 700):
        as_of = START + timedelta(minutes=minute)
        assert _past(engine, TRUST, as_of) == _summed(engine, TRUST, as_of)
    assert verify_ok(engine)


def test_a_listing_of_many_accounts_mixes_both_ways(
        ledger: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The trial balance as of a past time: accounts with checkpoints and accounts without,
    together, each equal to its full sum."""
    engine = ledger
    monkeypatch.setattr(checkpoints, "CHECKPOINT_EVERY", 5)
    post(engine, [deposit(f"d{n}", f"c-{n % 7}", str(n + 1), at=_at(n)) for n in range(60)])
    as_of = START + timedelta(minutes=31, seconds=30)
    listed = {row.account: row.balance_minor
              for row in views.balances(engine, as_of, AccountFilter()).rows}
    for code, amount in listed.items():
        sign = 1 if code.startswith("custody") else -1
        assert amount == sign * _summed(engine, code, as_of)
    assert listed[TRUST] == sum(n + 1 for n in range(32))


def test_batches_at_one_same_time_keep_one_true_checkpoint(
        ledger: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every posting at one instant, batch after batch: the checkpoint at that instant is
    brought up to date rather than made twice."""
    monkeypatch.setattr(checkpoints, "CHECKPOINT_EVERY", 3)
    for batch in range(4):
        post(ledger, [deposit(f"d{batch}-{n}", "c-1", "5", at=_at(0)) for n in range(4)])
    post(ledger, [deposit("later", "c-1", "7", at=_at(1))])
    for minute, seconds in ((0, -1), (0, 0), (0, 30), (1, 0)):
        as_of = START + timedelta(minutes=minute, seconds=seconds)
        assert _past(ledger, TRUST, as_of) == _summed(ledger, TRUST, as_of)
    assert _past(ledger, TRUST, START) == 80
    assert verify_ok(ledger)
