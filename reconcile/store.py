"""Storage of reconciliation runs (append-only, enforced by the database) and the ledger facts
a run reads."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    select,
)

from ledger.model import Role
from ledger.storage import reserve_store
from ledger.storage.reading import balances_at
from ledger.storage.rows import account_from_row, load_assets
from ledger.storage.schema import Id, accounts, entries, metadata, postings
from ledger.storage.types import UTCDateTime
from reconcile.engine import CustodyFacts, LedgerFacts, business_window_start
from reconcile.evidence import EvidenceFile
from reconcile.matching import Item
from reconcile.rules import Draw, ReserveFacts, Rulebook

recon_runs = Table(
    "recon_runs", metadata,
    Column("seq", Id, primary_key=True, autoincrement=True),
    Column("run_id", String(40), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("as_of", UTCDateTime, nullable=False),
    Column("status", String(10), nullable=False),
    Column("rulebook", String(100), nullable=False),
    Column("result", Text, nullable=False),
    Column("result_sha256", String(64), nullable=False),
)

recon_evidence = Table(
    "recon_evidence", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("run_seq", Id, ForeignKey("recon_runs.seq"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("name", String(500), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("format", String(30), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("content", LargeBinary, nullable=False),
)

recon_breaks = Table(
    "recon_breaks", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("run_seq", Id, ForeignKey("recon_runs.seq"), nullable=False),
    Column("account", String(300), nullable=False),
    Column("asset", String(20), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("difference", String(100), nullable=False),
    Column("open_since", String(40), nullable=False),
)


REFERENCE_KEYS = ("end_to_end_id", "txid", "reference", "bank_reference")


def load_ledger_facts(connection: Connection, as_of: datetime,
                      known_at: datetime | None = None) -> LedgerFacts:
    """Custody balances (with their postings, for matching) and customer liabilities at
    `as_of`, as the ledger knew them at `known_at` (default: now)."""
    assets = load_assets(connection)
    scales = {code: asset.scale for code, asset in assets.items()}
    balances: dict[str, int] = {}
    appropriation: dict[str, int] = defaultdict(int)
    liabilities: dict[str, int] = defaultdict(int)
    for row in balances_at(connection, as_of, known_at=known_at):
        balances[row.account.code] = row.balance_minor
        if row.account.role is Role.RESERVE:
            appropriation[row.account.asset] += row.balance_minor
        # By role, as coverage counts them (never by the account's name).
        if row.account.is_customer_liability:
            liabilities[row.account.asset] += row.balance_minor
    custody_rows = list(connection.execute(
        select(accounts).where(accounts.c.role == Role.CUSTODY.value).order_by(accounts.c.code)))
    items = _custody_items(connection, [row.id for row in custody_rows], as_of, known_at)
    custody = tuple(
        CustodyFacts(account_from_row(row), scales[row.asset], balances.get(row.code, 0),
                     tuple(items.get(row.id, ())))
        for row in custody_rows)
    return LedgerFacts(as_of, custody, dict(liabilities), scales,
                       {code: asset.kind.value for code, asset in assets.items()},
                       dict(appropriation))


def _custody_items(connection: Connection, account_ids: Sequence[int], as_of: datetime,
                   known_at: datetime | None) -> dict[int, list[Item]]:
    query = (select(postings.c.id, postings.c.account_id, postings.c.line_no,
                    postings.c.amount_minor, postings.c.effective_at, entries.c.key,
                    entries.c.metadata, entries.c.memo)
             .join(entries, entries.c.id == postings.c.entry_id)
             .where(postings.c.account_id.in_(account_ids), postings.c.effective_at <= as_of)
             .order_by(postings.c.id))
    if known_at is not None:
        query = query.where(entries.c.recorded_at <= known_at)
    found: dict[int, list[Item]] = defaultdict(list)
    for row in connection.execute(query):
        meta: Mapping[str, Any] = row.metadata or {}
        reference = next((str(meta[k]) for k in REFERENCE_KEYS if meta.get(k)), None)
        found[row.account_id].append(Item(
            id=f"{row.key}#{row.line_no}:{row.id}", amount_minor=row.amount_minor,
            on=row.effective_at.date(), reference=reference, description=row.memo or ""))
    return found


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
