"""Balance checkpoints: a past balance in a few index reads, however long the history.

A checkpoint (account, at) holds the raw sum (debits positive) and the count of the
account's postings dated at or before `at`. A balance as of T is then the latest
checkpoint at or before T plus the postings after it up to T: at most about
CHECKPOINT_EVERY postings are read, not the account's whole history.

The posting path keeps them true in the batch's transaction, under the balance row locks:
- an account that passes another CHECKPOINT_EVERY postings gets a checkpoint at the time of
  the posting that passed it (only after the stored last posting time, where the sum is the
  stored balance plus the batch's postings up to then);
- a backdated posting is added to every checkpoint of its account dated at or after it.
`verify` recomputes each checkpoint from the postings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Any

from sqlalchemy import Connection, func, select, update
from sqlalchemy.sql import Select

from ledger.storage.rows import restricted, select_in
from ledger.storage.schema import balance_checkpoints, postings

CHECKPOINT_EVERY = 1_000


@dataclass(frozen=True)
class Before:
    """An account as its balance row stood before the batch, raw (debits positive)."""

    raw_minor: int
    posting_count: int
    last_effective_at: datetime | None


def record(connection: Connection, moves: Iterable[tuple[int, int, datetime]],
           before: Mapping[int, Before]) -> None:
    """Keep the checkpoints true after a batch's postings `moves` (account id, raw amount,
    effective time), `before` holding each touched account's stored state."""
    by_account: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    for account_id, amount, at in moves:
        by_account[account_id].append((at, amount))
    _add_backdated(connection, by_account, before)
    new = []
    for account_id, items in by_account.items():
        state = before[account_id]
        if (state.posting_count + len(items)) // CHECKPOINT_EVERY == (
                state.posting_count // CHECKPOINT_EVERY):
            continue  # the common case: no threshold passed
        items.sort(key=lambda item: item[0])
        total, count, mark = state.raw_minor, state.posting_count, state.posting_count
        for at, same_time in groupby(items, key=lambda item: item[0]):
            group = list(same_time)
            count += len(group)
            total += sum(amount for _, amount in group)
            # Before the stored last time, stored postings later than `at` would be in the
            # stored balance: a checkpoint there is not known from it. At that very time
            # there may be one already (which _add_backdated has just brought up to date).
            passed = count // CHECKPOINT_EVERY > mark // CHECKPOINT_EVERY
            if passed and (state.last_effective_at is None or at > state.last_effective_at):
                new.append({"account_id": account_id, "at": at, "amount_minor": total,
                            "posting_count": count})
                mark = count
    if new:
        connection.execute(balance_checkpoints.insert(), new)


def _add_backdated(connection: Connection, by_account: Mapping[int, list[tuple[datetime, int]]],
                   before: Mapping[int, Before]) -> None:
    earliest = {account_id: min(at for at, _ in items) for account_id, items in by_account.items()
                if before[account_id].last_effective_at is not None
                and min(at for at, _ in items) <= _last(before[account_id])}
    if not earliest:
        return
    later = [row for row in select_in(
        connection, select(balance_checkpoints.c.account_id, balance_checkpoints.c.at),
        balance_checkpoints.c.account_id, earliest) if row.at >= earliest[row.account_id]]
    for row in later:
        items = [(at, amount) for at, amount in by_account[row.account_id] if at <= row.at]
        connection.execute(update(balance_checkpoints).where(
            balance_checkpoints.c.account_id == row.account_id,
            balance_checkpoints.c.at == row.at).values(
            amount_minor=balance_checkpoints.c.amount_minor + sum(a for _, a in items),
            posting_count=balance_checkpoints.c.posting_count + len(items)))


def _last(state: Before) -> datetime:
    assert state.last_effective_at is not None
    return state.last_effective_at


def raw_sums_at(connection: Connection, account_ids: Iterable[int], as_of: datetime
                ) -> dict[int, int]:
    """The raw sum of each account's postings dated at or before `as_of` (accounts with no
    posting by then are left out): its latest checkpoint by then plus the postings after it.
    Only accounts with a long history have checkpoints; they are summed one by one from
    theirs, the others together from their few postings."""
    wanted = set(account_ids)
    ranked = (select(balance_checkpoints.c.account_id, balance_checkpoints.c.at,
                     balance_checkpoints.c.amount_minor,
                     func.row_number().over(partition_by=balance_checkpoints.c.account_id,
                                            order_by=balance_checkpoints.c.at.desc()).label("n"))
              .where(balance_checkpoints.c.at <= as_of))
    latest = {}
    for statement in restricted(connection, ranked, balance_checkpoints.c.account_id, wanted):
        part = statement.subquery()
        latest.update({row.account_id: (row.at, int(row.amount_minor)) for row in
                       connection.execute(select(part).where(part.c.n == 1))})
    sums = {}
    for account_id, (at, amount) in latest.items():
        after = connection.execute(select(func.sum(postings.c.amount_minor)).where(
            postings.c.account_id == account_id, postings.c.effective_at > at,
            postings.c.effective_at <= as_of)).scalar()
        sums[account_id] = amount + int(after or 0)
    summed: Select[Any] = (
        select(postings.c.account_id, func.sum(postings.c.amount_minor))
        .where(postings.c.effective_at <= as_of).group_by(postings.c.account_id))
    for statement in restricted(connection, summed, postings.c.account_id, wanted - latest.keys()):
        sums.update({account_id: int(total) for account_id, total in connection.execute(statement)})
    return sums
