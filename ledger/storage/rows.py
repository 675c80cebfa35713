"""Rows to domain values and back, and the small loaders every storage module shares."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import BigInteger, Column, Connection, Row, Select, Table, Text, bindparam, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Insert

from ledger.book import Freeze
from ledger.model import Account, Asset, AssetKind, Location, Pool, Purpose, Role
from ledger.money import POSTGRES_MAX_MINOR, SQLITE_MAX_MINOR
from ledger.storage.schema import accounts, administration, assets, balances, closed_periods, coverage

T = TypeVar("T")
# Bound parameters per IN list: well under SQLite's 32,766 and PostgreSQL's 65,535.
IN_CHUNK = 10_000


def utcnow() -> datetime:
    return datetime.now(UTC)


def chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def restricted(connection: Connection, query: Select[Any], column: Column[Any],
               values: Iterable[Any]) -> Iterator[Select[Any]]:
    """`query` restricted to the rows whose `column` is one of `values`, however many there
    are, as one statement or several whose results add up (none if `values` is empty).

    PostgreSQL: one statement, the values in one array parameter joined through unnest.
    psycopg prepares a statement on the server after five executions, and a list of
    10,000 bound parameters then runs under a generic plan made while the table was small:
    a sequential scan testing every row against every key (28 s a lookup at 150,000
    entries). A join on an array has no such plan. SQLite: IN lists of IN_CHUNK values."""
    wanted = sorted(set(values))
    if not wanted:
        return
    if connection.dialect.name == "postgresql":
        element = BigInteger() if isinstance(wanted[0], int) else Text()
        keys = (func.unnest(bindparam(f"{column.name}_wanted", wanted,
                                      type_=postgresql.ARRAY(element)))
                .table_valued("value").render_derived(name=f"{column.name}_wanted"))
        yield query.join(keys, column == keys.c.value)
        return
    for part in chunks(wanted):
        yield query.where(column.in_(part))


def select_in(connection: Connection, query: Select[Any], column: Column[Any],
              values: Iterable[Any]) -> Iterator[Row[Any]]:
    """The rows of `query` whose `column` is one of `values` (see `restricted`)."""
    for statement in restricted(connection, query, column, values):
        yield from connection.execute(statement)


def max_minor(connection: Connection) -> int:
    return POSTGRES_MAX_MINOR if connection.dialect.name == "postgresql" else SQLITE_MAX_MINOR


def insert_ignoring_conflicts(connection: Connection, table: Table, key: str) -> Insert:
    """INSERT … ON CONFLICT (key) DO NOTHING, in the connection's dialect."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=[key])
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=[key])


def asset_from_row(row: Row[Any]) -> Asset:
    return Asset(row.code, AssetKind(row.kind), row.scale, row.chain, row.contract)


def account_from_row(row: Row[Any]) -> Account:
    return Account(
        code=row.code,
        asset=row.asset,
        pool=Pool(row.pool),
        role=Role(row.role),
        location=Location(row.location) if row.location else None,
        purpose=Purpose(row.purpose) if row.purpose else None,
        customer=row.customer,
        external=row.external or {},
    )


def account_values(account: Account, opened_at: datetime) -> dict[str, Any]:
    return {
        "code": account.code,
        "asset": account.asset,
        "pool": account.pool.value,
        "role": account.role.value,
        "location": account.location.value if account.location else None,
        "purpose": account.purpose.value if account.purpose else None,
        "customer": account.customer,
        "external": dict(account.external),
        "opened_at": opened_at,
    }


def load_assets(connection: Connection) -> dict[str, Asset]:
    return {row.code: asset_from_row(row) for row in connection.execute(select(assets))}


def load_accounts(connection: Connection, codes: Iterable[str]) -> dict[str, tuple[int, Account]]:
    return {row.code: (row.id, account_from_row(row))
            for row in select_in(connection, select(accounts), accounts.c.code, codes)}


def insert_accounts(connection: Connection, new: Sequence[Account], opened_at: datetime) -> None:
    """Open accounts (and their zero balance rows); an account that exists is left alone."""
    if not new:
        return
    if connection.dialect.name == "postgresql":
        _insert_accounts_postgresql(connection, new, opened_at)
        return
    connection.execute(insert_ignoring_conflicts(connection, accounts, "code"),
                       [account_values(account, opened_at) for account in new])
    ids = load_accounts(connection, [account.code for account in new])
    connection.execute(
        insert_ignoring_conflicts(connection, balances, "account_id"),
        [
            {"account_id": ids[a.code][0], "asset": a.asset, "balance_minor": 0,
             "non_negative": a.must_stay_non_negative, "posting_count": 0}
            for a in new
        ],
    )


def _insert_accounts_postgresql(connection: Connection, new: Sequence[Account],
                                opened_at: datetime) -> None:
    """The same rows, set-based: one INSERT … SELECT from arrays for the accounts and one
    for their balance rows, however many accounts a batch opens."""
    rows = [account_values(account, opened_at) for account in new]
    columns = ("code", "asset", "pool", "role", "location", "purpose", "customer")
    arrays = {name: [row[name] for row in rows] for name in columns}
    arrays["external"] = [json.dumps(row["external"]) for row in rows]
    opened = connection.execute(text(
        "INSERT INTO accounts (code, asset, pool, role, location, purpose, customer, external, "
        "opened_at) SELECT code, asset, pool, role, location, purpose, customer, "
        "CAST(external AS json), :opened_at FROM unnest(CAST(:code AS text[]), "
        "CAST(:asset AS text[]), CAST(:pool AS text[]), CAST(:role AS text[]), "
        "CAST(:location AS text[]), CAST(:purpose AS text[]), CAST(:customer AS text[]), "
        "CAST(:external AS text[])) AS new (code, asset, pool, role, location, purpose, "
        "customer, external) ON CONFLICT (code) DO NOTHING RETURNING id, code"),
        {**arrays, "opened_at": opened_at}).all()
    by_code = {account.code: account for account in new}
    connection.execute(text(
        "INSERT INTO balances (account_id, asset, balance_minor, non_negative, posting_count) "
        "SELECT account_id, asset, 0, non_negative, 0 FROM unnest(CAST(:ids AS bigint[]), "
        "CAST(:assets AS text[]), CAST(:non_negative AS boolean[])) "
        "AS new (account_id, asset, non_negative) ON CONFLICT (account_id) DO NOTHING"),
        {"ids": [row.id for row in opened],
         "assets": [by_code[row.code].asset for row in opened],
         "non_negative": [by_code[row.code].must_stay_non_negative for row in opened]})


def insert_assets(connection: Connection, new: Sequence[Asset], created_at: datetime) -> None:
    if not new:
        return
    connection.execute(assets.insert(), [
        {"code": a.code, "kind": a.kind.value, "scale": a.scale, "chain": a.chain,
         "contract": a.contract, "created_at": created_at} for a in new])
    connection.execute(coverage.insert(), [{"asset": a.code, "coverage_minor": 0} for a in new])


def closed_through(connection: Connection) -> datetime | None:
    value: datetime | None = connection.execute(
        select(func.max(closed_periods.c.closed_through))).scalar()
    if value is not None and value.tzinfo is None:
        # SQLite's max() returns the stored text, which the column type did not get to convert.
        value = value.replace(tzinfo=UTC)
    return value


def load_freeze(connection: Connection) -> Freeze | None:
    """The administration's freeze, if the ledger is frozen."""
    row = connection.execute(select(administration)).first()
    if row is None:
        return None
    return Freeze(row.cutoff, row.administrator, row.case_no)
