"""Reading the ledger: balances at any time, customer coverage, closed periods."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Select, func, select

from ledger.errors import InputError
from ledger.model import Account, Pool, Role
from ledger.storage import journal
from ledger.storage.checkpoints import raw_sums_at
from ledger.storage.engine import for_writing
from ledger.storage.rows import (
    account_from_row,
    closed_through,
    load_assets,
    load_freeze,
    utcnow,
)
from ledger.storage.schema import (
    accounts,
    balances,
    breaches,
    closed_periods,
    coverage,
    entries,
    postings,
)


@dataclass(frozen=True)
class BalanceRow:
    account: Account
    balance_minor: int


@dataclass(frozen=True)
class AccountFilter:
    """Which accounts a listing shows; a field left empty does not filter."""

    codes: tuple[str, ...] = ()
    prefix: str | None = None
    assets: tuple[str, ...] = ()
    pool: Pool | None = None
    role: Role | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        if self.codes:
            query = query.where(accounts.c.code.in_(self.codes))
        if self.prefix:
            # Not LIKE: SQLite's LIKE ignores case, and codes differing in case are distinct.
            query = query.where(
                func.substr(accounts.c.code, 1, len(self.prefix)) == self.prefix)
        if self.assets:
            query = query.where(accounts.c.asset.in_(self.assets))
        if self.pool is not None:
            query = query.where(accounts.c.pool == self.pool.value)
        if self.role is not None:
            query = query.where(accounts.c.role == self.role.value)
        return query


@dataclass(frozen=True)
class ClosedPeriod:
    closed_through: datetime
    closed_at: datetime
    closed_by: str
    note: str | None


@dataclass(frozen=True)
class CoverageRow:
    asset: str
    scale: int
    custody_by_location_minor: dict[str, int]
    liabilities_minor: int
    open_breach: bool

    @property
    def custody_minor(self) -> int:
        return sum(self.custody_by_location_minor.values())

    @property
    def coverage_minor(self) -> int:
        return self.custody_minor - self.liabilities_minor


def balances_at(
    connection: Connection, as_of: datetime | None = None, prefix: str | None = None,
    known_at: datetime | None = None, *, where: AccountFilter | None = None,
) -> list[BalanceRow]:
    """Normal-side balances at effective_at <= as_of of every account with a posting by then.

    The stored running balance answers for every account whose last posting is not after
    `as_of`; only the others are summed from their postings (by the account/time index).
    With `known_at`, only entries recorded by then count: the ledger as it stood at that
    moment, which is what a re-run of a past reconciliation must see. `where` narrows the
    accounts (`prefix` is its shorthand, kept for the callers that predate it).
    """
    as_of = as_of or utcnow()
    where = where or AccountFilter()
    if prefix:
        where = replace(where, prefix=prefix)
    if known_at is not None:
        return _balances_known_at(connection, as_of, where, known_at)
    query = (select(accounts, balances.c.balance_minor, balances.c.first_effective_at,
                    balances.c.last_effective_at)
             .join(balances, balances.c.account_id == accounts.c.id)
             .where(balances.c.posting_count > 0, balances.c.first_effective_at <= as_of)
             .order_by(accounts.c.code))
    rows = list(connection.execute(where.apply(query)))
    sums = raw_sums_at(connection, (row.id for row in rows if row.last_effective_at > as_of),
                       as_of)
    result = []
    for row in rows:
        account = account_from_row(row)
        if row.last_effective_at > as_of:
            amount = int(sums.get(row.id, 0)) * account.normal_sign
        else:
            amount = row.balance_minor
        result.append(BalanceRow(account, amount))
    return result


def _balances_known_at(
    connection: Connection, as_of: datetime, where: AccountFilter, known_at: datetime
) -> list[BalanceRow]:
    totals = (select(postings.c.account_id, func.sum(postings.c.amount_minor).label("total"))
              .join(entries, entries.c.id == postings.c.entry_id)
              .where(postings.c.effective_at <= as_of, entries.c.recorded_at <= known_at)
              .group_by(postings.c.account_id).subquery())
    query = (select(accounts, totals.c.total).join(totals, totals.c.account_id == accounts.c.id)
             .order_by(accounts.c.code))
    result = []
    for row in connection.execute(where.apply(query)):
        account = account_from_row(row)
        result.append(BalanceRow(account, int(row.total) * account.normal_sign))
    return result


def coverage_at(connection: Connection, as_of: datetime | None = None) -> list[CoverageRow]:
    """Per asset: customer custody by location, customer liabilities, and so coverage."""
    assets = load_assets(connection)
    custody: dict[str, dict[str, int]] = defaultdict(dict)
    liabilities: dict[str, int] = defaultdict(int)
    for row in balances_at(connection, as_of):
        account = row.account
        if account.is_customer_custody:
            assert account.location is not None
            by_location = custody[account.asset]
            by_location[account.location.value] = (
                by_location.get(account.location.value, 0) + row.balance_minor)
        elif account.is_customer_liability:
            liabilities[account.asset] += row.balance_minor
    open_assets = set(connection.execute(
        select(breaches.c.asset).where(breaches.c.closed_entry_id.is_(None))).scalars())
    return [
        CoverageRow(code, asset.scale, dict(sorted(custody.get(code, {}).items())),
                    liabilities.get(code, 0), code in open_assets)
        for code, asset in sorted(assets.items())
    ]


def close_period(engine: Engine, through: datetime, closed_by: str, note: str | None) -> bool:
    """Close every effective time up to `through`; False if it was already closed exactly so.

    Closing again through the same instant changes nothing, so a scheduled job that runs
    twice is harmless; an earlier instant is refused, because a close never moves back.
    Once the ledger is frozen for administration no close is accepted: the plan's payouts are
    dated when the plan is stored, and a close past that time would leave them unpayable.
    """
    if through > utcnow():
        raise InputError("a period can only be closed once it has ended", field="--through")
    with for_writing(engine).begin() as connection:
        # Every batch locks the coverage rows of its assets before it reads the closed
        # periods; locking them all here makes a close and a batch wait for each other.
        connection.execute(select(coverage.c.asset).order_by(coverage.c.asset).with_for_update())
        freeze = load_freeze(connection)
        if freeze is not None:
            raise InputError(f"the ledger is {freeze.describe()}: no period can be closed any "
                             "more (the administration's distributions are dated after the "
                             "cut-off, when their plan is stored)", field="--through")
        current = closed_through(connection)
        if current is not None and through == current:
            return False
        if current is not None and through < current:
            raise InputError(f"already closed through {current.isoformat()}, a later time; "
                             "a close never moves back", field="--through")
        closed = connection.execute(closed_periods.insert().values(
            closed_through=through, closed_at=utcnow(), closed_by=closed_by, note=note)
        ).inserted_primary_key
        assert closed is not None
        journal.seal(connection, "period_close", {"closed_periods": [closed[0]]})
    return True


def closed_periods_list(connection: Connection) -> list[ClosedPeriod]:
    """Every close, earliest first. Not paged: closes are few (a daily close is 365 a year)."""
    rows = connection.execute(select(closed_periods).order_by(
        closed_periods.c.closed_through, closed_periods.c.id))
    return [ClosedPeriod(row.closed_through, row.closed_at, row.closed_by, row.note)
            for row in rows]
