"""`verify`: the invariants checked again from what is stored, on the reading side.

The write path checks an entry before it is written; this reads everything back and checks
it again, so a row changed behind the ledger's back (or a bug on the write path) shows up.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select

from ledger.errors import shown
from ledger.storage.reserve_store import draws
from ledger.storage.rows import account_from_row, load_assets
from ledger.storage.schema import (
    accounts,
    balance_checkpoints,
    balances,
    breaches,
    coverage,
    entries,
    incident_links,
    postings,
)

HASH_CHAIN_STATUS = "not recorded yet: entries carry no hashes until the tamper-evidence work"


@dataclass(frozen=True)
class Problem:
    check: str
    subject: str
    detail: str


@dataclass
class VerifyReport:
    entries_checked: int = 0
    postings_checked: int = 0
    accounts_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    hash_chain: str = HASH_CHAIN_STATUS

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(connection: Connection) -> VerifyReport:
    report = VerifyReport()
    report.entries_checked = connection.execute(select(func.count()).select_from(entries)).scalar_one()
    report.postings_checked = connection.execute(
        select(func.count()).select_from(postings)).scalar_one()
    _check_entries_balanced(connection, report)
    _check_posting_assets(connection, report)
    _check_reversals(connection, report)
    _check_balances_and_coverage(connection, report)
    _check_checkpoints(connection, report)
    _check_reserve_and_incidents(connection, report)
    return report


def _check_checkpoints(connection: Connection, report: VerifyReport) -> None:
    """Past balances trust the checkpoints to skip summing: each must be the running sum and
    count of its account's postings up to its time (a checkpoint is always at a posting's
    time, so the running sum at that time is there to compare)."""
    checkpointed = select(balance_checkpoints.c.account_id).distinct()
    by, order = postings.c.account_id, postings.c.effective_at
    running = (select(postings.c.account_id, postings.c.effective_at,
                      func.sum(postings.c.amount_minor).over(partition_by=by, order_by=order)
                      .label("total"),
                      func.count().over(partition_by=by, order_by=order).label("n"))
               .where(postings.c.account_id.in_(checkpointed)).distinct().subquery())
    rows = connection.execute(
        select(accounts.c.code, balance_checkpoints, running.c.total, running.c.n)
        .join(accounts, accounts.c.id == balance_checkpoints.c.account_id)
        .outerjoin(running, (running.c.account_id == balance_checkpoints.c.account_id)
                   & (running.c.effective_at == balance_checkpoints.c.at))
        .order_by(accounts.c.code, balance_checkpoints.c.at))
    for row in rows:
        if row.total is None or (int(row.total), row.n) != (int(row.amount_minor),
                                                             row.posting_count):
            report.problems.append(Problem(
                "checkpoint", row.code,
                f"checkpoint at {_utc(row.at)} holds {row.amount_minor} over "
                f"{row.posting_count} postings, postings up to then sum to {row.total} over "
                f"{row.n}"))


LINKED_BY = {"loss": "incident", "draw": "reserve_draw", "top_up": "top_up",
             "recovery": "insurance_recovery"}


def _check_reserve_and_incidents(connection: Connection, report: VerifyReport) -> None:
    """Every take from the reserve is a draw naming its incident (or a reversal); every
    incident link joins an entry of the right type that names that incident."""
    for draw in draws(connection, datetime(2999, 12, 31, tzinfo=UTC), None):
        if draw.entry_type not in ("reserve_draw", "reversal", "incident") or (
                draw.entry_type == "reserve_draw" and draw.incident_kind is None):
            report.problems.append(Problem(
                "reserve", draw.entry_key,
                f"a {draw.entry_type} takes {draw.amount_minor} minor units of {draw.asset} from "
                "the reserve" + ("" if draw.entry_type != "reserve_draw" else
                                 " without a known incident")))
    rows = connection.execute(
        select(incident_links.c.incident_id, incident_links.c.kind, entries.c.key,
               entries.c.type, entries.c.metadata)
        .join(entries, entries.c.id == incident_links.c.entry_id).order_by(incident_links.c.id))
    for row in rows:
        named = (row.metadata or {}).get("incident")
        if named != row.incident_id or LINKED_BY[row.kind] != row.type:
            report.problems.append(Problem(
                "incident_link", row.key,
                f"linked to incident {row.incident_id} as {row.kind}, but it is a {row.type} "
                f"naming {shown(named) if named is not None else 'no incident'}"))


def _check_entries_balanced(connection: Connection, report: VerifyReport) -> None:
    unbalanced = connection.execute(
        select(entries.c.key, postings.c.asset, func.sum(postings.c.amount_minor).label("total"))
        .join(postings, postings.c.entry_id == entries.c.id)
        .group_by(entries.c.id, entries.c.key, postings.c.asset)
        .having(func.sum(postings.c.amount_minor) != 0)
        .order_by(entries.c.id))
    for row in unbalanced:
        report.problems.append(Problem(
            "entry_balanced", row.key,
            f"postings in {row.asset} sum to {int(row.total)} minor units, not zero"))
    counts = (select(postings.c.entry_id, func.count().label("n"))
              .group_by(postings.c.entry_id).subquery())
    short = connection.execute(
        select(entries.c.key, func.coalesce(counts.c.n, 0).label("n"))
        .outerjoin(counts, counts.c.entry_id == entries.c.id)
        .where(func.coalesce(counts.c.n, 0) < 2).order_by(entries.c.id))
    for short_row in short:
        report.problems.append(Problem(
            "entry_postings", short_row.key, f"has {short_row.n} postings; an entry needs at least two"))


def _check_posting_assets(connection: Connection, report: VerifyReport) -> None:
    mismatched = connection.execute(
        select(entries.c.key, postings.c.asset, accounts.c.code, accounts.c.asset.label("acct"))
        .join(postings, postings.c.entry_id == entries.c.id)
        .join(accounts, accounts.c.id == postings.c.account_id)
        .where(accounts.c.asset != postings.c.asset))
    for row in mismatched:
        report.problems.append(Problem(
            "posting_asset", row.key, f"posting in {row.asset} on {row.code}, a {row.acct} account"))


def _check_reversals(connection: Connection, report: VerifyReport) -> None:
    """A reversal's postings are the mirror of its original's, account by account."""
    reversal_pairs = list(connection.execute(
        select(entries.c.id, entries.c.key, entries.c.reverses_id)
        .where(entries.c.reverses_id.is_not(None))))
    for row in reversal_pairs:
        totals: dict[int, int] = defaultdict(int)
        # Mirror: per account, the reversal's postings cancel the original's exactly.
        for entry_id in (row.id, row.reverses_id):
            for account_id, amount in connection.execute(
                select(postings.c.account_id, func.sum(postings.c.amount_minor))
                .where(postings.c.entry_id == entry_id).group_by(postings.c.account_id)
            ).all():
                totals[account_id] += int(amount)
        if any(totals.values()):
            report.problems.append(Problem(
                "reversal_mirror", row.key, "postings are not the mirror of the reversed entry"))


def _utc(value: Any) -> datetime | None:
    """SQLite's min()/max() hand back the stored text; compare times, not spellings."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _check_balances_and_coverage(connection: Connection, report: VerifyReport) -> None:
    sums = (select(postings.c.account_id, func.sum(postings.c.amount_minor).label("total"),
                   func.count().label("n"),
                   func.min(postings.c.effective_at).label("first"),
                   func.max(postings.c.effective_at).label("last"))
            .group_by(postings.c.account_id).subquery())
    rows = connection.execute(
        select(accounts, balances.c.balance_minor, balances.c.posting_count,
               balances.c.first_effective_at, balances.c.last_effective_at,
               func.coalesce(sums.c.total, 0).label("total"),
               func.coalesce(sums.c.n, 0).label("n"), sums.c.first, sums.c.last)
        .outerjoin(balances, balances.c.account_id == accounts.c.id)
        .outerjoin(sums, sums.c.account_id == accounts.c.id)
        .order_by(accounts.c.code))
    # Coverage recomputed with the one definition the write path uses (Account.coverage_sign:
    # customer custody less customer liabilities, by role, never by name).
    recomputed: dict[str, int] = defaultdict(int)
    for row in rows:
        report.accounts_checked += 1
        account = account_from_row(row)
        expected = int(row.total) * account.normal_sign
        if row.balance_minor is None:
            report.problems.append(Problem("balance_row", account.code, "has no balance row"))
            continue
        if row.balance_minor != expected or row.posting_count != row.n:
            report.problems.append(Problem(
                "stored_balance", account.code,
                f"stored balance {row.balance_minor} over {row.posting_count} postings, "
                f"postings sum to {expected} over {row.n}"))
        # Point-in-time balances trust these two to skip summing: check them too.
        if (_utc(row.first_effective_at), _utc(row.last_effective_at)) != (
                _utc(row.first), _utc(row.last)):
            report.problems.append(Problem(
                "stored_balance", account.code,
                f"stored first/last effective time {row.first_effective_at}/"
                f"{row.last_effective_at}, postings say {row.first}/{row.last}"))
        if account.must_stay_non_negative and expected < 0:
            report.problems.append(Problem(
                "non_negative", account.code, f"balance {expected} is below zero"))
        recomputed[account.asset] += account.coverage_sign * expected
    open_breaches = set(connection.execute(
        select(breaches.c.asset).where(breaches.c.closed_entry_id.is_(None))).scalars())
    for asset in sorted(set(recomputed) | open_breaches):
        short = recomputed.get(asset, 0) < 0
        if short != (asset in open_breaches):
            report.problems.append(Problem(
                "breach", asset, f"coverage {recomputed.get(asset, 0)} but "
                f"{'an open' if asset in open_breaches else 'no open'} segregation breach"))
    stored = {row.asset: row.coverage_minor
              for row in connection.execute(select(coverage.c.asset, coverage.c.coverage_minor))}
    for asset in sorted(load_assets(connection)):
        if stored.get(asset) != recomputed.get(asset, 0):
            report.problems.append(Problem(
                "coverage", asset,
                f"stored coverage {stored.get(asset)}, balances give {recomputed.get(asset, 0)}"))
