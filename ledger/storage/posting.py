"""Posting a batch in one transaction: load and lock what it touches, check, write.

Accounts are locked once, in a fixed order (coverage rows by asset code, then balance rows
by account id), so two batches that share accounts wait for each other instead of
deadlocking; balances are read under those locks, so no update is lost.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, bindparam, func, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from ledger.batch import PostedEntry, PreparedBatch, prepare_batch, referenced_accounts
from ledger.book import Book
from ledger.entries import Draft
from ledger.errors import ErrorLog, InputError
from ledger.incidents import IncidentKind, KnownIncident
from ledger.model import Asset, Line, implicit_customer_account
from ledger.money import format_amount
from ledger.storage import checkpoints, journal
from ledger.storage.engine import for_writing
from ledger.storage.rows import (
    chunks,
    closed_through,
    insert_accounts,
    load_accounts,
    load_assets,
    load_freeze,
    max_minor,
    restricted,
    select_in,
    utcnow,
)
from ledger.storage.schema import (
    accounts,
    balances,
    batches,
    breaches,
    coverage,
    entries,
    incident_links,
    incidents,
    postings,
)

MAX_ATTEMPTS = 6
# PostgreSQL serialization failure, deadlock, and a unique key taken by a concurrent batch
# (the retry then sees the other batch's entry and skips it as a duplicate).
RETRY_SQLSTATES = frozenset({"40001", "40P01", "23505"})

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class PostResult:
    posted: int
    postings: int
    skipped: int
    batch_id: int | None


@dataclass(frozen=True)
class CheckResult:
    """What `post --check` found: every error up to the log's limit, in line order."""

    entries_checked: int
    errors: list[InputError]
    stopped: bool  # the log filled up: the entries after the last error were not checked


@dataclass(frozen=True)
class _Written:
    batch_id: int
    entry_lines: dict[int, bytes]
    new_incidents: list[str]
    link_ids: list[int]


@dataclass(frozen=True)
class _Locked:
    balance_rows: dict[int, Any]
    coverage: dict[str, int]


def post_batch(
    engine: Engine,
    drafts: Sequence[Draft],
    *,
    source: str,
    sha256: str,
    use_copy: bool | None = None,
    progress: Progress | None = None,
    admin_reason: str | None = None,
    admin_plan: str | None = None,
    guard: Callable[[Connection], None] | None = None,
) -> PostResult:
    """Post all drafts or none. `use_copy` picks PostgreSQL's COPY path (default: on PG).
    `admin_reason` marks the batch as the administrator's record, accepted after a freeze;
    `admin_plan` as `admin distribute` paying that stored plan (its distributions are
    accepted after a freeze). `guard` runs first in the posting transaction, before anything
    is read or written, and refuses the batch by raising InputError."""
    copy = _use_copy(engine, use_copy)

    def attempt() -> PostResult:
        with for_writing(engine).begin() as connection:
            if guard is not None:
                guard(connection)
            return _post(connection, drafts, source, sha256, copy, progress, None,
                         admin_reason, admin_plan)[0]

    return _retrying(attempt, source)


def check_batch(
    engine: Engine,
    drafts: Sequence[Draft],
    *,
    source: str,
    parse_errors: Sequence[InputError],
    limit: int,
    use_copy: bool | None = None,
    progress: Progress | None = None,
) -> CheckResult:
    """Everything `post_batch` checks, down to the database's own constraints, in a
    transaction that is always rolled back: nothing is written. An invalid entry is left out
    and the check goes on, until `limit` errors; `parse_errors` are the lines that did not
    even parse (read with a log of the same limit)."""
    copy = _use_copy(engine, use_copy)

    def attempt() -> CheckResult:
        log = ErrorLog(limit)
        with for_writing(engine).connect() as connection:
            transaction = connection.begin()
            try:
                _, batch = _post(connection, drafts, source, "0" * 64, copy, progress, log)
            finally:
                transaction.rollback()
        return _check_result(drafts, parse_errors, log, batch)

    return _retrying(attempt, source)


def _check_result(drafts: Sequence[Draft], parse_errors: Sequence[InputError], log: ErrorLog,
                  batch: PreparedBatch) -> CheckResult:
    # Errors without a line (the database refusing the batch) after those with one.
    found = sorted([*parse_errors, *log.errors],
                   key=lambda error: (error.line is None, error.line or 0))
    stopped = batch.stopped or len(parse_errors) >= log.limit or len(found) > log.limit
    if not stopped:
        return CheckResult(len(drafts) + len(parse_errors), found, False)
    # Reading and checking each stop at `limit` errors, so the first `limit` errors by line
    # are exactly the file's first errors; the entries up to the last of them were checked.
    listed = found[:log.limit]
    last = max((error.line or 0 for error in listed), default=0)
    checked = (sum(1 for draft in drafts if draft.line_no <= last)
               + sum(1 for error in parse_errors if (error.line or 0) <= last))
    return CheckResult(checked, listed, True)


def _use_copy(engine: Engine, use_copy: bool | None) -> bool:
    copy = engine.dialect.name == "postgresql" if use_copy is None else use_copy
    if copy and engine.dialect.name != "postgresql":
        raise InputError("the COPY path needs PostgreSQL", field="--copy")
    return copy


T = TypeVar("T")


def _retrying(attempt: Callable[[], T], source: str) -> T:
    for number in range(1, MAX_ATTEMPTS + 1):
        try:
            return attempt()
        except InputError as error:
            raise error.located(source=source) from None
        except DBAPIError as error:
            if number < MAX_ATTEMPTS and _retryable(error):
                # Jittered backoff so two colliding batches do not collide again in step.
                time.sleep(random.uniform(0.01, 0.05) * 2**number)
                continue
            if isinstance(error, IntegrityError):
                message = str(error.orig).strip().splitlines()[0]
                raise InputError(f"the database refused the batch: {message}",
                                 source=source) from None
            raise
    raise AssertionError("unreachable: the last attempt returns or raises")


def _retryable(error: DBAPIError) -> bool:
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate in RETRY_SQLSTATES:
        return True
    return "database is locked" in str(error.orig)


def _post(
    connection: Connection,
    drafts: Sequence[Draft],
    source: str,
    sha256: str,
    copy: bool,
    progress: Progress | None,
    errors: ErrorLog | None,
    admin_reason: str | None = None,
    admin_plan: str | None = None,
) -> tuple[PostResult, PreparedBatch]:
    """Load, lock, check and write one batch in the caller's transaction. With `errors`
    (a check), invalid entries are logged and left out, and the valid ones still written, so
    that the checks made in SQL after writing see them too: the caller rolls back."""
    now = utcnow()
    posted, posted_ids = _load_posted(connection, drafts)
    codes = referenced_accounts(drafts) | {
        code for entry in posted.values() for line in entry.lines for code in (line.debit, line.credit)
    }
    assets = load_assets(connection)
    known = load_accounts(connection, codes)
    implicit = [account for code in sorted(codes - known.keys())
                if (account := implicit_customer_account(code)) is not None
                and account.asset in assets]
    # Opened before locking so that every account the batch touches has a row to lock;
    # a rejected batch rolls them back with everything else.
    insert_accounts(connection, implicit, now)
    known.update(load_accounts(connection, [a.code for a in implicit]))
    locked = _lock(connection, known, {account.asset for _, account in known.values()})
    book = Book(
        assets=assets,
        accounts={code: account for code, (_, account) in known.items()},
        balances={code: locked.balance_rows[account_id].balance_minor
                  for code, (account_id, _) in known.items()},
        coverage=dict(locked.coverage),  # a copy: the book moves on, the locked values stay
        open_breaches=set(connection.execute(
            select(breaches.c.asset).where(breaches.c.closed_entry_id.is_(None))).scalars()),
        closed_through=closed_through(connection),
        max_minor=max_minor(connection),
        incidents=_load_incidents(connection, drafts),
        freeze=load_freeze(connection),
        admin_record=admin_reason is not None,
        admin_plan=admin_plan is not None,
    )
    if progress:
        progress("check", 0, len(drafts))
    batch = prepare_batch(drafts, book, posted, source, errors)
    if progress:
        progress("check", len(drafts), len(drafts))
    if not batch.entries:
        return PostResult(0, 0, batch.skipped, None), batch
    written = _write(connection, batch, posted_ids, locked, known, source, sha256, now, copy,
                     progress, admin_reason, admin_plan)
    for problem in _check_history(connection, batch, locked, known, assets):
        if errors is None:
            raise problem
        errors.add(problem.located(source=source))
    if errors is None:
        # Last: the chain's head row is the one lock every writer takes, held only to commit.
        journal.seal_batch(connection, written.batch_id, written.entry_lines,
                           written.new_incidents, written.link_ids)
    return (PostResult(len(batch.entries), batch.posting_count, batch.skipped, written.batch_id),
            batch)


def _load_posted(
    connection: Connection, drafts: Sequence[Draft]
) -> tuple[dict[str, PostedEntry], dict[str, int]]:
    """Entries already in the ledger under the batch's keys, or reversed by it."""
    keys = {draft.key for draft in drafts}
    reversed_keys = {draft.reverses for draft in drafts if draft.reverses is not None}
    found = {row.key: (row.id, row.content_hash) for row in select_in(
        connection, select(entries.c.id, entries.c.key, entries.c.content_hash), entries.c.key,
        keys | reversed_keys)}
    targets = {found[key][0]: key for key in reversed_keys if key in found}
    lines: dict[int, dict[int, dict[str, Any]]] = {}
    for row in select_in(
            connection,
            select(postings.c.entry_id, postings.c.line_no, postings.c.amount_minor, accounts.c.code)
            .join(accounts, accounts.c.id == postings.c.account_id), postings.c.entry_id, targets):
        side = "debit" if row.amount_minor > 0 else "credit"
        line = lines.setdefault(row.entry_id, {}).setdefault(row.line_no, {})
        line[side] = row.code
        line["amount"] = abs(row.amount_minor)
    already_reversed = {row.reverses_id for row in select_in(
        connection, select(entries.c.reverses_id), entries.c.reverses_id, targets)}
    posted = {}
    for key, (entry_id, digest) in found.items():
        entry_lines = tuple(
            Line(line["debit"], line["credit"], line["amount"])
            for _, line in sorted(lines.get(entry_id, {}).items()))
        posted[key] = PostedEntry(key, digest, entry_lines, entry_id in already_reversed)
    return posted, {key: entry_id for key, (entry_id, _) in found.items()}


def _load_incidents(connection: Connection, drafts: Sequence[Draft]) -> dict[str, KnownIncident]:
    """The incidents the batch's entries name (the book checks that they exist)."""
    named = sorted({draft.metadata["incident"] for draft in drafts
                    if isinstance(draft.metadata.get("incident"), str)})
    return {row.incident_id: KnownIncident(IncidentKind(row.kind), row.opened_at)
            for row in select_in(connection, select(incidents.c.incident_id, incidents.c.kind,
                                                    incidents.c.opened_at),
                                 incidents.c.incident_id, named)}


def _lock(
    connection: Connection, known: dict[str, tuple[int, Any]], asset_codes: set[str]
) -> _Locked:
    coverage_rows = connection.execute(
        select(coverage.c.asset, coverage.c.coverage_minor)
        .where(coverage.c.asset.in_(sorted(asset_codes)))
        .order_by(coverage.c.asset).with_for_update())
    locked_coverage = {row.asset: row.coverage_minor for row in coverage_rows}
    balance_rows = {row.account_id: row for row in select_in(
        connection, select(balances).order_by(balances.c.account_id).with_for_update(of=balances),
        balances.c.account_id, (account_id for account_id, _ in known.values()))}
    return _Locked(balance_rows, locked_coverage)


def _write(
    connection: Connection,
    batch: PreparedBatch,
    posted_ids: dict[str, int],
    locked: _Locked,
    known: dict[str, tuple[int, Any]],
    source: str,
    sha256: str,
    now: datetime,
    copy: bool,
    progress: Progress | None,
    admin_reason: str | None,
    admin_plan: str | None,
) -> _Written:
    batch_key = connection.execute(batches.insert().values(
        source=source[:500], sha256=sha256, entry_count=len(batch.entries),
        posting_count=batch.posting_count, skipped_count=batch.skipped, recorded_at=now,
        admin_reason=admin_reason, admin_plan=admin_plan,
    )).inserted_primary_key
    assert batch_key is not None
    batch_id = batch_key[0]
    entry_ids = dict(zip((p.entry.key for p in batch.entries),
                         _allocate_entry_ids(connection, len(batch.entries)), strict=True))
    ids = {**posted_ids, **entry_ids}
    entry_rows = [
        {"id": entry_ids[p.entry.key], "key": p.entry.key, "type": p.entry.type.value,
         "effective_at": p.entry.effective_at, "recorded_at": now, "memo": p.entry.memo,
         "metadata": dict(p.entry.metadata), "content_hash": p.content_hash,
         "reverses_id": ids[p.entry.reverses] if p.entry.reverses else None,
         "batch_id": batch_id}
        for p in batch.entries
    ]
    posting_rows = []
    entry_lines: dict[int, bytes] = {}
    hashing = journal.PostingLines()
    for prepared, entry_row in zip(batch.entries, entry_rows, strict=True):
        entry = prepared.entry
        lines = []
        at = hashing.time(entry.effective_at)
        for line_no, line in enumerate(entry.lines):
            for code, sign in ((line.debit, 1), (line.credit, -1)):
                account_id, account = known[code]
                posting_rows.append({
                    "entry_id": entry_ids[entry.key], "line_no": line_no,
                    "account_id": account_id, "asset": account.asset,
                    "amount_minor": sign * line.amount_minor, "effective_at": entry.effective_at})
                lines.append(hashing.line(line_no, hashing.account(
                    code, account.asset, account.pool.value, account.role.value),
                    sign * line.amount_minor, at))
        # The tamper evidence, from the values being written (verify recomputes it from rows).
        entry_row["postings_hash"], entry_row["entry_hash"] = hashing.hashes(entry_row, lines)
        entry_lines[entry_row["id"]] = journal.entry_line(
            entry_row["id"], entry.key, entry_row["entry_hash"])
    if copy:
        _copy_rows(connection, entries.name, entry_rows, progress)
        _copy_rows(connection, postings.name, posting_rows, progress)
    else:
        connection.execute(entries.insert(), entry_rows)
        for part in chunks(posting_rows, 50_000):
            connection.execute(postings.insert(), part)
            if progress:
                progress("write postings", len(part), len(posting_rows))
    _update_balances(connection, batch, locked, known, posting_rows)
    normal_sign = {account_id: account.normal_sign for account_id, account in known.values()}
    checkpoints.record(
        connection,
        ((row["account_id"], row["amount_minor"], row["effective_at"]) for row in posting_rows),
        {account_id: checkpoints.Before(row.balance_minor * normal_sign[account_id],
                                        row.posting_count, row.last_effective_at)
         for account_id, row in locked.balance_rows.items()})
    _update_coverage_and_breaches(connection, batch, locked, entry_ids)
    link_ids = _write_incidents(connection, batch, entry_ids)
    return _Written(int(batch_id), entry_lines, list(batch.new_incidents), link_ids)


def _write_incidents(connection: Connection, batch: PreparedBatch, entry_ids: dict[str, int]
                     ) -> list[int]:
    by_key = {prepared.entry.key: prepared.entry for prepared in batch.entries}
    if batch.new_incidents:
        connection.execute(incidents.insert(), [
            {"incident_id": incident, "kind": by_key[key].metadata["incident_kind"],
             "opened_entry_id": entry_ids[key], "opened_at": by_key[key].effective_at}
            for incident, key in batch.new_incidents.items()])
    if not batch.links:
        return []
    return list(connection.execute(incident_links.insert().returning(incident_links.c.id), [
        {"incident_id": link.incident, "entry_id": entry_ids[link.entry_key],
         "kind": link.kind.value, "asset": link.asset, "amount_minor": link.amount_minor}
        for link in batch.links]).scalars())


def _allocate_entry_ids(connection: Connection, count: int) -> list[int]:
    """Entry ids before insert, so that postings and same-batch reversals can name them."""
    if connection.dialect.name == "postgresql":
        return list(connection.execute(text(
            "SELECT nextval(pg_get_serial_sequence('entries', 'id')) "
            "FROM generate_series(1, :count) ORDER BY 1"), {"count": count}).scalars())
    # SQLite: the batch holds the only write lock (BEGIN IMMEDIATE), so max(id) is ours.
    start = connection.execute(text("SELECT coalesce(max(id), 0) FROM entries")).scalar_one()
    return list(range(start + 1, start + 1 + count))


def _copy_rows(
    connection: Connection, table: str, rows: list[dict[str, Any]], progress: Progress | None
) -> None:
    """COPY FROM STDIN on the transaction's own psycopg connection: the same rows, faster."""
    import psycopg
    from psycopg.types.json import Json

    if not rows:
        return
    columns = list(rows[0])
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    try:
        with cursor.copy(statement) as copy:
            for done, row in enumerate(rows, start=1):
                copy.write_row([Json(value) if isinstance(value, dict) else value
                                for value in row.values()])
                if progress and done % 50_000 == 0:
                    progress(f"write {table}", 50_000, len(rows))
    except psycopg.Error as error:
        # Bypassing SQLAlchemy for COPY, errors come raw: wrap them as SQLAlchemy would, so
        # the retry and the error messages treat both write paths alike.
        raise DBAPIError.instance(statement, None, error, psycopg.Error) from error


def _update_balances(
    connection: Connection,
    batch: PreparedBatch,
    locked: _Locked,
    known: dict[str, tuple[int, Any]],
    posting_rows: list[dict[str, Any]],
) -> None:
    counts: dict[int, int] = {}
    first: dict[int, datetime] = {}
    last: dict[int, datetime] = {}
    for row in posting_rows:
        account_id, at = row["account_id"], row["effective_at"]
        counts[account_id] = counts.get(account_id, 0) + 1
        first[account_id] = min(first.get(account_id, at), at)
        last[account_id] = max(last.get(account_id, at), at)
    changes = []
    for code, delta in batch.balance_deltas.items():
        account_id = known[code][0]
        row = locked.balance_rows[account_id]
        changes.append({
            "b_account_id": account_id,
            "balance_minor": row.balance_minor + delta,
            "posting_count": row.posting_count + counts[account_id],
            "first_effective_at": min(filter(None, (row.first_effective_at, first[account_id]))),
            "last_effective_at": max(filter(None, (row.last_effective_at, last[account_id]))),
        })
    changes.sort(key=lambda change: change["b_account_id"])
    if connection.dialect.name == "postgresql":
        # One statement from arrays: an UPDATE per account costs a round of the protocol
        # each, and a batch may move a million accounts. Numbers travel as text, exactly.
        connection.execute(text(
            "UPDATE balances SET balance_minor = c.balance_minor, "
            "posting_count = c.posting_count, first_effective_at = c.first_at, "
            "last_effective_at = c.last_at FROM unnest(CAST(:ids AS bigint[]), "
            "CAST(:balance AS numeric[]), CAST(:count AS bigint[]), "
            "CAST(:first_at AS timestamptz[]), CAST(:last_at AS timestamptz[])) "
            "AS c (account_id, balance_minor, posting_count, first_at, last_at) "
            "WHERE balances.account_id = c.account_id"),
            {"ids": [change["b_account_id"] for change in changes],
             "balance": [str(change["balance_minor"]) for change in changes],
             "count": [change["posting_count"] for change in changes],
             "first_at": [change["first_effective_at"] for change in changes],
             "last_at": [change["last_effective_at"] for change in changes]})
        return
    statement = update(balances).where(
        balances.c.account_id == bindparam("b_account_id")).values(
        balance_minor=bindparam("balance_minor"), posting_count=bindparam("posting_count"),
        first_effective_at=bindparam("first_effective_at"),
        last_effective_at=bindparam("last_effective_at"))
    for part in chunks(changes, 50_000):
        connection.execute(statement, part)


def _update_coverage_and_breaches(
    connection: Connection, batch: PreparedBatch, locked: _Locked, entry_ids: dict[str, int]
) -> None:
    for asset, delta in sorted(batch.coverage_deltas.items()):
        if delta:
            connection.execute(update(coverage).where(coverage.c.asset == asset).values(
                coverage_minor=locked.coverage[asset] + delta))
    for event in batch.breach_events:
        if event.opened:
            connection.execute(breaches.insert().values(
                asset=event.asset, opened_entry_id=entry_ids[event.entry_key],
                opened_coverage_minor=event.coverage_minor, incident_id=event.incident))
        else:
            connection.execute(update(breaches).where(
                breaches.c.asset == event.asset, breaches.c.closed_entry_id.is_(None)).values(
                closed_entry_id=entry_ids[event.entry_key],
                closed_coverage_minor=event.coverage_minor))


def _check_history(
    connection: Connection, batch: PreparedBatch, locked: _Locked,
    known: dict[str, tuple[int, Any]], assets: Mapping[str, Asset],
) -> list[InputError]:
    """Invariant 4 at every business time, not only now.

    The book checks entries in file order, which is time order only if the file is; an entry
    dated before postings already made (or before earlier lines of its own file) could take
    a custody or customer account below zero in the past. For such accounts the running
    balance from the earliest such time on is recomputed in SQL (a window over the postings
    since then) and must stay at or above zero throughout.
    """
    since: dict[str, datetime] = {}
    latest: dict[str, datetime] = {}
    first_line: dict[str, int] = {}
    for prepared in batch.entries:
        at = prepared.entry.effective_at
        for line in prepared.entry.lines:
            for code in (line.debit, line.credit):
                account_id, account = known[code]
                if not account.must_stay_non_negative:
                    continue
                stored_last = locked.balance_rows[account_id].last_effective_at
                previous = max(filter(None, (latest.get(code), stored_last)), default=None)
                if previous is not None and at < previous:
                    since[code] = min(since.get(code, at), at)
                    first_line.setdefault(code, prepared.line_no)
                latest[code] = max(latest.get(code, at), at)
    if not since:
        return []
    ids = {known[code][0]: code for code in since}
    start = min(since.values())
    window = select(postings.c.account_id, func.sum(postings.c.amount_minor).over(
        partition_by=postings.c.account_id,
        order_by=(postings.c.effective_at, postings.c.id)).label("run"),
        postings.c.amount_minor).where(postings.c.effective_at >= start)
    rows: list[Any] = []
    # Each account's window is its own, so the accounts may be taken in parts.
    for part in restricted(connection, window, postings.c.account_id, ids):
        running = part.subquery()
        rows.extend(connection.execute(select(
            running.c.account_id, func.min(running.c.run).label("low"),
            func.max(running.c.run).label("high"), func.sum(running.c.amount_minor).label("total"))
            .group_by(running.c.account_id)))
    problems = []
    for row in rows:
        code = ids[row.account_id]
        account = known[code][1]
        raw_now = account.normal_sign * (locked.balance_rows[row.account_id].balance_minor
                                         + batch.balance_deltas.get(code, 0))
        raw_before = raw_now - int(row.total)
        worst = raw_before + int(row.low if account.normal_sign > 0 else row.high)
        if account.normal_sign * worst < 0:
            problems.append(InputError(
                f"{code} would have been below zero at an earlier time: this entry is dated "
                f"before postings the account already has, and the balance in between falls "
                f"to {format_amount(account.normal_sign * worst, assets[account.asset].scale)} "
                f"{account.asset}",
                line=first_line[code], field="effective_at"))
    # The first line first: a post reports it, a check lists them in file order.
    return sorted(problems, key=lambda problem: problem.line or 0)
