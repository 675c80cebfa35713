"""The journal read one account or one entry at a time: an account's register, an entry's detail."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select

from ledger.model import Account
from ledger.storage.schema import accounts, balances, batches, entries, postings


@dataclass(frozen=True)
class RegisterLine:
    """One posting of the account; amounts on the account's normal side."""

    entry_key: str
    entry_type: str
    effective_at: datetime
    line_no: int
    counter_account: str
    amount_minor: int
    balance_minor: int


@dataclass(frozen=True)
class EntryLine:
    line_no: int
    debit: str
    credit: str
    asset: str
    amount_minor: int


@dataclass(frozen=True)
class EntryDetail:
    key: str
    type: str
    effective_at: datetime
    recorded_at: datetime
    memo: str | None
    metadata: Mapping[str, Any]
    reverses: str | None
    reversed_by: str | None
    batch_id: int
    batch_source: str
    lines: tuple[EntryLine, ...]


def balance_before(connection: Connection, account_id: int, account: Account,
                   since: datetime) -> int:
    """Normal-side balance of the postings dated before `since`.

    The stored running balance less the postings from `since` on (found by the account/time
    index), so the answer never scans the account's older history.
    """
    stored = connection.execute(select(balances).where(balances.c.account_id == account_id)).one()
    if stored.posting_count == 0 or since <= stored.first_effective_at:
        return 0
    if since > stored.last_effective_at:
        return int(stored.balance_minor)
    later = connection.execute(
        select(func.sum(postings.c.amount_minor))
        .where(postings.c.account_id == account_id, postings.c.effective_at >= since)).scalar()
    return int(stored.balance_minor) - account.normal_sign * int(later or 0)


def register_lines(
    connection: Connection, account_id: int, account: Account, *, opening_minor: int,
    since: datetime | None, until: datetime | None, limit: int,
) -> tuple[list[RegisterLine], bool]:
    """Up to `limit` postings in effective-time order (ties by entry id and line), each with the
    running balance from `opening_minor`; and whether more postings follow."""
    other = postings.alias("other")
    counter = accounts.alias("counter")
    query = (
        select(entries.c.key, entries.c.type, postings.c.effective_at, postings.c.line_no,
               postings.c.amount_minor, counter.c.code.label("counter_code"))
        .join(entries, entries.c.id == postings.c.entry_id)
        # The other side of the same line: every line is one debit and one credit.
        .join(other, and_(other.c.entry_id == postings.c.entry_id,
                          other.c.line_no == postings.c.line_no, other.c.id != postings.c.id))
        .join(counter, counter.c.id == other.c.account_id)
        .where(postings.c.account_id == account_id)
        .order_by(postings.c.effective_at, postings.c.entry_id, postings.c.line_no)
        .limit(limit + 1))
    if since is not None:
        query = query.where(postings.c.effective_at >= since)
    if until is not None:
        query = query.where(postings.c.effective_at <= until)
    rows = list(connection.execute(query))
    running = opening_minor
    result = []
    for row in rows[:limit]:
        amount = account.normal_sign * int(row.amount_minor)
        running += amount
        result.append(RegisterLine(row.key, row.type, row.effective_at, row.line_no,
                                   row.counter_code, amount, running))
    return result, len(rows) > limit


def entry_detail(connection: Connection, key: str) -> EntryDetail | None:
    """The entry under `key` with its lines, the entries it reverses or is reversed by, and its
    batch; None if no entry has that key."""
    original, reversal = entries.alias("original"), entries.alias("reversal")
    row = connection.execute(
        select(entries, original.c.key.label("reverses_key"),
               reversal.c.key.label("reversed_by_key"), batches.c.source.label("batch_source"))
        .join(batches, batches.c.id == entries.c.batch_id)
        .outerjoin(original, original.c.id == entries.c.reverses_id)
        .outerjoin(reversal, reversal.c.reverses_id == entries.c.id)
        .where(entries.c.key == key)).one_or_none()
    if row is None:
        return None
    sides: dict[int, dict[str, Any]] = {}
    for posting in connection.execute(
            select(postings.c.line_no, postings.c.amount_minor, postings.c.asset, accounts.c.code)
            .join(accounts, accounts.c.id == postings.c.account_id)
            .where(postings.c.entry_id == row.id)
            .order_by(postings.c.line_no, postings.c.id)):
        line = sides.setdefault(posting.line_no, {"asset": posting.asset})
        amount = int(posting.amount_minor)
        # A debit posting is stored positive, a credit negative (schema.postings).
        line["debit" if amount > 0 else "credit"] = posting.code
        line["amount"] = abs(amount)
    lines = tuple(EntryLine(line_no, side["debit"], side["credit"], side["asset"], side["amount"])
                  for line_no, side in sorted(sides.items()))
    return EntryDetail(row.key, row.type, row.effective_at, row.recorded_at, row.memo,
                       row.metadata or {}, row.reverses_key, row.reversed_by_key, int(row.batch_id),
                       row.batch_source, lines)
