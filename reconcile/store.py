"""Storage of reconciliation runs (append-only, enforced by the database) and the ledger facts
a run reads."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import (
    CTE,
    ColumnElement,
    Connection,
    Label,
    Select,
    case,
    func,
    literal_column,
    select,
)

from ledger.model import DEBIT_NORMAL_ROLES, Account, Pool, Role
from ledger.storage import journal, reserve_store
from ledger.storage.rows import account_from_row, load_assets
from ledger.storage.schema import (
    accounts,
    balances,
    breaches,
    entries,
    postings,
    recon_breaks,
    recon_evidence,
    recon_runs,
)
from reconcile.engine import (
    CustodyFacts,
    LedgerFacts,
    PostingTotals,
    Wanted,
    business_window_start,
)
from reconcile.evidence import EvidenceFile
from reconcile.matching import Item
from reconcile.rules import Draw, ReserveFacts, Rulebook

REFERENCE_KEYS = ("end_to_end_id", "txid", "reference", "bank_reference")


def custody_accounts(connection: Connection) -> list[tuple[int, Account]]:
    """(id, account) of every custody account, by code."""
    rows = connection.execute(select(accounts).where(accounts.c.role == Role.CUSTODY.value)
                              .order_by(accounts.c.code))
    return [(row.id, account_from_row(row)) for row in rows]


def load_ledger_facts(connection: Connection, as_of: datetime,
                      known_at: datetime | None = None) -> LedgerFacts:
    """Custody balances and customer liabilities at `as_of`, as the ledger knew them at
    `known_at` (default: now), summed in the database: one row per custody account and per
    class of the others, however many customers there are. The postings that matching needs
    are read apart, once the evidence is known (`with_postings`)."""
    assets = load_assets(connection)
    scales = {code: asset.scale for code, asset in assets.items()}
    appropriation: dict[str, int] = defaultdict(int)
    liabilities: dict[str, int] = defaultdict(int)
    for total in balance_totals_at(connection, as_of, known_at):
        if total.kind.role is Role.RESERVE:
            appropriation[total.kind.asset] += total.balance_minor
        # By role, as coverage counts them (never by the account's name).
        if total.kind.is_customer_liability:
            liabilities[total.kind.asset] += total.balance_minor
    custody_rows = custody_accounts(connection)
    balances = custody_balances_at(connection, [account_id for account_id, _ in custody_rows],
                                   as_of, known_at)
    custody = tuple(CustodyFacts(account, scales[account.asset], balances.get(account_id, 0))
                    for account_id, account in custody_rows)
    return LedgerFacts(as_of, custody, dict(liabilities), scales,
                       {code: asset.kind.value for code, asset in assets.items()},
                       dict(appropriation))


def with_postings(connection: Connection, facts: LedgerFacts, wanted: Mapping[str, Wanted],
                  known_at: datetime | None = None) -> LedgerFacts:
    """`facts` with the custody postings up to the as-of that `wanted` names (see
    `engine.wanted_postings`): listed, from a date or all, for the accounts whose evidence has
    movements; counted and summed in the database for those whose evidence has none."""
    ids = {account.code: account_id for account_id, account in custody_accounts(connection)}
    items: dict[str, tuple[Item, ...]] = {}
    for code, want in sorted(wanted.items()):
        if want.listed:
            items[code] = tuple(_custody_items(connection, ids[code], facts.as_of, want.since,
                                               known_at))
    counted = sorted(code for code, want in wanted.items() if not want.listed)
    totals = _custody_totals(connection, {ids[code]: code for code in counted}, facts.as_of,
                             known_at)
    custody = tuple(replace(c, items=items.get(c.account.code, ()),
                            totals=totals.get(c.account.code, PostingTotals(0, 0, 0))
                            if c.account.code in counted else None)
                    for c in facts.custody)
    return replace(facts, custody=custody)


def _custody_items(connection: Connection, account_id: int, as_of: datetime,
                   since: date | None, known_at: datetime | None) -> list[Item]:
    query = (select(postings.c.id, postings.c.line_no, postings.c.amount_minor,
                    postings.c.effective_at, entries.c.key, entries.c.metadata, entries.c.memo)
             .join(entries, entries.c.id == postings.c.entry_id)
             .where(postings.c.account_id == account_id, postings.c.effective_at <= as_of)
             .order_by(postings.c.id))
    if since is not None:  # an item's date is its effective time's date in UTC
        query = query.where(postings.c.effective_at >= datetime.combine(since, time(0), UTC))
    if known_at is not None:
        query = query.where(entries.c.recorded_at <= known_at)
    found = []
    for row in connection.execute(query):
        meta: Mapping[str, Any] = row.metadata or {}
        reference = next((str(meta[k]) for k in REFERENCE_KEYS if meta.get(k)), None)
        found.append(Item(
            id=f"{row.key}#{row.line_no}:{row.id}", amount_minor=row.amount_minor,
            on=row.effective_at.date(), reference=reference, description=row.memo or ""))
    return found


def _custody_totals(connection: Connection, codes: Mapping[int, str], as_of: datetime,
                    known_at: datetime | None) -> dict[str, PostingTotals]:
    """Per account (by code): the count of its postings up to the as-of, and the sums of
    those that put money in and of those that took it out, grouped in the database. With
    `known_at`, less those of the entries recorded after it (found from the entries)."""
    if not codes:
        return {}
    wanted = sorted(codes)

    def grouped(source: Any) -> Select[Any]:
        amount = source.c.amount_minor
        return (select(source.c.account_id, func.count().label("postings"),
                       *exact_sums(connection, case((amount > 0, amount), else_=0), "in"),
                       *exact_sums(connection, case((amount < 0, amount), else_=0), "out"))
                .where(source.c.account_id.in_(wanted)).group_by(source.c.account_id))

    found = {row.account_id: (int(row.postings), exact_sum(row, "in"), exact_sum(row, "out"))
             for row in connection.execute(grouped(postings).where(
                 postings.c.effective_at <= as_of))}
    if known_at is not None:
        for row in connection.execute(grouped(_recorded_later(as_of, known_at))):
            count, in_minor, out_minor = found[row.account_id]
            found[row.account_id] = (count - int(row.postings), in_minor - exact_sum(row, "in"),
                                     out_minor - exact_sum(row, "out"))
    return {codes[account_id]: PostingTotals(*totals) for account_id, totals in found.items()
            if totals[0]}


def _recorded_later(as_of: datetime, known_at: datetime) -> CTE:
    """(account_id, amount_minor) of the postings dated by `as_of` whose entries were recorded
    after `known_at`: what a ledger known at `known_at` leaves out of a sum up to the as-of.
    Found from the entries, first: PostgreSQL, misjudging how many postings a custody account
    has, would otherwise look up the entry of every posting."""
    return (select(postings.c.account_id, postings.c.amount_minor)
            .select_from(entries).join(postings, postings.c.entry_id == entries.c.id)
            .where(entries.c.recorded_at > known_at, postings.c.effective_at <= as_of)
            .cte("recorded_later").prefix_with("MATERIALIZED", dialect="postgresql"))


@dataclass(frozen=True)
class BalanceTotal:
    """The normal-side balance at a time of a class of accounts: every account of one asset,
    pool and role. `kind` stands for them all (an account without a code, location or
    purpose: the model's definition of a customer liability applies to it)."""

    kind: Account
    balance_minor: int


# Three columns, not the location and purpose too: PostgreSQL then expects a few groups and
# sums in a hash table, instead of sorting every account (custody, whose locations count, is
# summed account by account: custody_balances_at).
CLASS = (accounts.c.asset, accounts.c.pool, accounts.c.role)


def balance_totals_at(connection: Connection, as_of: datetime,
                      known_at: datetime | None = None) -> list[BalanceTotal]:
    """Normal-side balances at effective_at <= as_of, as the ledger knew them at `known_at`
    (default: now), summed in the database per class of account: the figures of coverage,
    segregation and reconciliation without a row per account read into Python. A class is
    there exactly when one of its accounts has such a posting, as in `balances_at`."""
    return [BalanceTotal(_class_of(key), balance)
            for key, balance in _sums_at(connection, as_of, known_at, CLASS).items()]


def custody_balances_at(connection: Connection, account_ids: Sequence[int], as_of: datetime,
                        known_at: datetime | None = None) -> dict[int, int]:
    """The same, account by account, for the (custody) accounts `account_ids`: those with a
    posting by then."""
    if not account_ids:
        return {}
    sums = _sums_at(connection, as_of, known_at, (accounts.c.id, accounts.c.role),
                    accounts.c.id.in_(sorted(account_ids)))
    return {int(account_id): balance for (account_id, _), balance in sums.items()}


def _sums_at(connection: Connection, as_of: datetime, known_at: datetime | None,
             keys: Sequence[ColumnElement[Any]], *where: ColumnElement[bool]
             ) -> dict[tuple[Any, ...], int]:
    """Normal-side balance per group of `keys` (which include accounts.role) of the accounts
    `where` selects: the stored balances less the postings a balance at `as_of` known at
    `known_at` leaves out. Those are the postings dated after `as_of` (found through the
    accounts whose last posting is later, by the account/time index) and, with `known_at`,
    those of entries recorded after it: the reads grow with what happened after the as-of and
    after `known_at`, not with the history. Counts decide which groups are there: a group is
    kept when a posting of it is left in."""
    amount = postings.c.amount_minor
    stored = (select(*keys, *exact_sums(connection, balances.c.balance_minor, "total"),
                     func.sum(balances.c.posting_count).label("postings"))
              .select_from(accounts).join(balances, balances.c.account_id == accounts.c.id)
              .where(balances.c.posting_count > 0, *where).group_by(*keys))
    later = (select(*keys, *exact_sums(connection, amount, "total"),
                    func.count().label("postings"))
             .select_from(accounts).join(balances, balances.c.account_id == accounts.c.id)
             .join(postings, postings.c.account_id == accounts.c.id)
             .where(balances.c.last_effective_at > as_of, postings.c.effective_at > as_of,
                    *where)
             .group_by(*keys))
    left_out = [later]
    if known_at is not None:
        late = _recorded_later(as_of, known_at)
        left_out.append(
            select(*keys, *exact_sums(connection, late.c.amount_minor, "total"),
                   func.count().label("postings"))
            .select_from(late).join(accounts, accounts.c.id == late.c.account_id)
            .where(*where).group_by(*keys))
    raw: dict[tuple[Any, ...], int] = defaultdict(int)
    count: dict[tuple[Any, ...], int] = defaultdict(int)
    for query in left_out:  # disjoint: dated after the as-of, or by then and recorded later
        for row in connection.execute(query):
            key = tuple(row[:len(keys)])
            raw[key] += exact_sum(row, "total")
            count[key] += int(row.postings)
    found = {}
    for row in connection.execute(stored):
        key = tuple(row[:len(keys)])
        if int(row.postings) > count[key]:
            sign = 1 if Role(row.role) in DEBIT_NORMAL_ROLES else -1
            found[key] = exact_sum(row, "total") - sign * raw[key]
    return found


def _class_of(key: tuple[Any, ...]) -> Account:
    asset, pool, role = key
    return Account(code="", asset=asset, pool=Pool(pool), role=Role(role))


# SQLite sums integers in 64 bits and fails on an overflow, and a sum of many balances may
# pass 2**63 where none of them does. There each amount is summed in two parts, amount / 2**32
# and amount % 2**32 (both truncated, so each keeps the amount's sign), whose sums fit in 64
# bits over 2**31 rows, and Python puts them together. PostgreSQL sums NUMERIC exactly.
_SPLIT = 2**32


def exact_sums(connection: Connection, amount: ColumnElement[Any],
               name: str) -> list[Label[Any]]:
    """Columns that sum the integer `amount` exactly on the connection's dialect: read the
    sum back with `exact_sum(row, name)`."""
    if connection.dialect.name == "postgresql":
        return [func.sum(amount).label(name)]
    split: ColumnElement[Any] = literal_column(str(_SPLIT))
    return [func.sum(amount.op("/")(split)).label(f"{name}_high"),
            func.sum(amount.op("%")(split)).label(f"{name}_low")]


def exact_sum(row: Any, name: str) -> int:
    """The sum `exact_sums(…, name)` put in `row`."""
    found = row._mapping
    if name in found:
        return _integer(found[name])
    return _integer(found[f"{name}_high"]) * _SPLIT + _integer(found[f"{name}_low"])


def _integer(value: Any) -> int:
    if value is None:  # a sum of no row
        return 0
    if not isinstance(value, int):  # NUMERIC comes back as a Decimal
        assert value == value.to_integral_value(), value
    return int(value)


def open_breach_assets(connection: Connection) -> set[str]:
    """The assets with a coverage breach open now (as `coverage` shows them)."""
    return set(connection.execute(
        select(breaches.c.asset).where(breaches.c.closed_entry_id.is_(None))).scalars())


@dataclass(frozen=True)
class StoredRun:
    seq: int
    run_id: str
    created_at: datetime
    as_of: datetime
    status: str
    rulebook: str
    result: str
    result_sha256: str


def save_run(connection: Connection, run: StoredRun, evidence: Sequence[tuple[str, str, EvidenceFile]],
             breaks: Sequence[Mapping[str, str]]) -> int:
    seq = connection.execute(recon_runs.insert().values(
        run_id=run.run_id, created_at=run.created_at, as_of=run.as_of, status=run.status,
        rulebook=run.rulebook, result=run.result, result_sha256=run.result_sha256,
    )).inserted_primary_key
    assert seq is not None
    if evidence:
        connection.execute(recon_evidence.insert(), [
            {"run_seq": seq[0], "position": position, "name": file.name[:500], "kind": kind,
             "format": fmt, "sha256": file.sha256, "size_bytes": len(file.content),
             "content": file.content}
            for position, (kind, fmt, file) in enumerate(evidence)])
    if breaks:
        connection.execute(recon_breaks.insert(), [
            {"run_seq": seq[0], "account": b["account"][:300], "asset": b["asset"],
             "kind": b["kind"], "difference": b["difference"], "open_since": b["open_since"]}
            for b in breaks])
    journal.seal(connection, "run", {"recon_runs": [seq[0]]}, ref=str(seq[0]))
    return int(seq[0])


def previous_open_breaks(connection: Connection, before_seq: int | None) -> dict[tuple[str, str], str]:
    """(account, kind) → open_since of the breaks in the run just before `before_seq`."""
    query = select(recon_runs.c.seq).order_by(recon_runs.c.seq.desc()).limit(1)
    if before_seq is not None:
        query = query.where(recon_runs.c.seq < before_seq)
    previous = connection.execute(query).scalar()
    if previous is None:
        return {}
    rows = connection.execute(select(recon_breaks).where(recon_breaks.c.run_seq == previous))
    return {(row.account, row.kind): row.open_since for row in rows}


def load_run(connection: Connection, run_id: str) -> StoredRun | None:
    row = connection.execute(select(recon_runs).where(recon_runs.c.run_id == run_id)).first()
    if row is None:
        return None
    return StoredRun(row.seq, row.run_id, row.created_at, row.as_of, row.status, row.rulebook,
                     row.result, row.result_sha256)


def load_evidence(connection: Connection, seq: int) -> list[tuple[str, str, EvidenceFile]]:
    rows = connection.execute(select(recon_evidence).where(recon_evidence.c.run_seq == seq)
                              .order_by(recon_evidence.c.position))
    return [(row.kind, row.format, EvidenceFile(row.name, bytes(row.content))) for row in rows]


def history(connection: Connection, limit: int = 1000, *, since: datetime | None = None,
            until: datetime | None = None, status: str | None = None,
            before_seq: int | None = None) -> list[StoredRun]:
    """Runs newest first (in the order they were made) whose as-of is within [since, until]
    and whose status is `status`; `before_seq` continues from the last page."""
    query = select(recon_runs).order_by(recon_runs.c.seq.desc()).limit(limit)
    if since is not None:
        query = query.where(recon_runs.c.as_of >= since)
    if until is not None:
        query = query.where(recon_runs.c.as_of <= until)
    if status is not None:
        query = query.where(recon_runs.c.status == status)
    if before_seq is not None:
        query = query.where(recon_runs.c.seq < before_seq)
    return [StoredRun(r.seq, r.run_id, r.created_at, r.as_of, r.status, r.rulebook, r.result,
                      r.result_sha256) for r in connection.execute(query)]


def runs_as_of(connection: Connection, run_ids: Collection[str]) -> dict[str, datetime]:
    """run_id → as-of of those runs: where a break's age counts from."""
    if not run_ids:
        return {}
    rows = connection.execute(select(recon_runs.c.run_id, recon_runs.c.as_of)
                              .where(recon_runs.c.run_id.in_(sorted(run_ids))))
    return {row.run_id: row.as_of for row in rows}


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_reserve_facts(connection: Connection, as_of: datetime, known_at: datetime | None,
                       rulebook: Rulebook) -> ReserveFacts:
    """Trades, losses, policies and draws for the windows the rulebook's parameters name.

    The draws' window depends on the as-of and the rulebook alone (never on earlier runs):
    see `draws_in_window`."""
    params = rulebook.params("JP-RESERVE")
    lookback_days = params.lookback_days if params else 365
    incident_years = params.incident_years if params else 3
    quote = params.currency if params else rulebook.currency
    quoted, unquoted = reserve_store.traded_minor(
        connection, as_of - timedelta(days=lookback_days), as_of, known_at, quote)
    losses = reserve_store.losses_minor(
        connection, as_of - relativedelta(years=incident_years), as_of, known_at)
    draw_params = rulebook.params("RESERVE-DRAW")
    after = business_window_start(as_of, draw_params.window_business_days if draw_params else 1,
                                  rulebook.settings.timezone)
    return ReserveFacts(quoted, unquoted, losses,
                        tuple(reserve_store.policies(connection, known_at)),
                        draws_in_window(connection, after, as_of, known_at), after)


def draws_in_window(connection: Connection, after: datetime, as_of: datetime,
                    known_at: datetime | None) -> tuple[Draw, ...]:
    """The draws effective in (after, as_of], and those effective earlier but recorded in that
    window (booked late: the run for their own day could not see them, so the run whose window
    holds their recording reports them). Both depend on the as-of alone: a run made after its
    as-of knows every entry recorded by then, whenever it is made."""
    # (after, after): the store's "effective or recorded after" filter narrows the rows; the
    # window's end is applied here.
    rows = reserve_store.draws(connection, as_of, known_at, (after, after))
    return tuple(Draw(d.entry_key, d.entry_type, d.effective_at, d.asset, d.amount_minor,
                      d.incident, d.incident_kind, d.memo, d.recorded_at)
                 for d in rows if d.effective_at > after or d.recorded_at <= as_of)
