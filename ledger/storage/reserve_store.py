"""Reading what the reserve rules need (trades, incident losses, draws, incidents, policies) and
writing the insurance register. Every read takes `known_at`, so a re-run sees the ledger as it
stood when the run was made."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, and_, exists, func, or_, select
from sqlalchemy.sql import Select

from ledger.errors import InputError, shown
from ledger.model import Purpose, Role
from ledger.money import parse_amount
from ledger.reserves import Policy, PolicyDraft
from ledger.storage import journal
from ledger.storage.engine import for_writing
from ledger.storage.rows import load_assets, max_minor, utcnow
from ledger.storage.schema import (
    accounts,
    breaches,
    entries,
    incident_links,
    incidents,
    insurance_policies,
    postings,
)


def _known(query: Select[Any], known_at: datetime | None) -> Select[Any]:
    return query if known_at is None else query.where(entries.c.recorded_at <= known_at)


def traded_minor(connection: Connection, start: datetime, as_of: datetime,
                 known_at: datetime | None, quote: str) -> tuple[int, dict[str, int]]:
    """Over (start, as_of]: the quote-currency legs of trade entries, and per asset the legs
    of trades that have no quote leg.

    Sums of other assets are made in Python: SQLite's integer sum overflows past 2**63, which
    9.3 ETH at 18 decimals already is; a yen total never comes near it.
    """
    window = and_(entries.c.type == "trade", entries.c.effective_at > start,
                  entries.c.effective_at <= as_of, postings.c.amount_minor > 0)
    quoted = (select(func.coalesce(func.sum(postings.c.amount_minor), 0))
              .join(entries, entries.c.id == postings.c.entry_id)
              .where(window, postings.c.asset == quote))
    quote_leg = postings.alias("quote_leg")
    unquoted = (select(postings.c.asset, postings.c.amount_minor)
                .join(entries, entries.c.id == postings.c.entry_id)
                .where(window, ~exists().where(quote_leg.c.entry_id == postings.c.entry_id,
                                               quote_leg.c.asset == quote)))
    legs: dict[str, int] = defaultdict(int)
    for asset, amount in connection.execute(_known(unquoted, known_at)):
        legs[asset] += int(amount)
    return int(connection.execute(_known(quoted, known_at)).scalar_one()), dict(legs)


def losses_minor(connection: Connection, start: datetime, as_of: datetime,
                 known_at: datetime | None) -> dict[str, int]:
    query = (select(incident_links.c.asset, incident_links.c.amount_minor)
             .join(entries, entries.c.id == incident_links.c.entry_id)
             .where(incident_links.c.kind == "loss", entries.c.effective_at > start,
                    entries.c.effective_at <= as_of))
    losses: dict[str, int] = defaultdict(int)
    for asset, amount in connection.execute(_known(query, known_at)):
        losses[asset] += int(amount)
    return dict(losses)


@dataclass(frozen=True)
class DrawRow:
    entry_key: str
    entry_type: str
    effective_at: datetime
    recorded_at: datetime
    asset: str
    amount_minor: int
    incident: str | None
    incident_kind: str | None
    memo: str | None


def draws(connection: Connection, as_of: datetime, known_at: datetime | None,
          since: tuple[datetime, datetime] | None = None) -> list[DrawRow]:
    """Entries that took from the reserve (its accounts or its custody), in time order.

    `since` = (as_of, created_at) of the previous run: only draws it could not have seen.
    """
    reserve_account = or_(accounts.c.role == Role.RESERVE.value,
                          and_(accounts.c.role == Role.CUSTODY.value,
                               accounts.c.purpose == Purpose.RESERVE.value))
    query = (select(entries.c.id, entries.c.key, entries.c.type, entries.c.effective_at,
                    entries.c.recorded_at, entries.c.memo, entries.c.metadata,
                    postings.c.asset, accounts.c.role, postings.c.amount_minor)
             .join(postings, postings.c.entry_id == entries.c.id)
             .join(accounts, accounts.c.id == postings.c.account_id)
             .where(reserve_account, entries.c.effective_at <= as_of)
             .order_by(entries.c.effective_at, entries.c.id))
    if since is not None:
        query = query.where(or_(entries.c.effective_at > since[0],
                                entries.c.recorded_at > since[1]))
    changes: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    info: dict[int, Any] = {}
    for row in connection.execute(_known(query, known_at)):
        change = changes[(row.id, row.asset)]
        if row.role == Role.RESERVE.value:
            change[0] -= row.amount_minor  # credit-normal: a debit lowers it
        else:
            change[1] += row.amount_minor
        info[row.id] = row
    kinds = dict(connection.execute(select(incidents.c.incident_id, incidents.c.kind)).all())
    found = []
    for (entry_id, asset), (appropriation, held) in changes.items():
        drawn = max(-appropriation, -held, 0)
        if not drawn:
            continue
        row = info[entry_id]
        incident = (row.metadata or {}).get("incident")
        incident = incident if isinstance(incident, str) else None
        found.append(DrawRow(row.key, row.type, row.effective_at, row.recorded_at, asset, drawn,
                             incident, kinds.get(incident), row.memo))
    return found


@dataclass(frozen=True)
class IncidentRecord:
    incident_id: str
    kind: str
    opened_at: datetime
    opened_entry: str
    links: list[dict[str, Any]] = field(default_factory=list)
    breaches: list[dict[str, Any]] = field(default_factory=list)


def incident_records(connection: Connection, as_of: datetime,
                     known_at: datetime | None = None) -> list[IncidentRecord]:
    """Every incident up to `as_of`, with its links (loss, draw, top-up, recovery) and breaches."""
    opened = _known(select(incidents, entries.c.key)
                    .join(entries, entries.c.id == incidents.c.opened_entry_id)
                    .where(incidents.c.opened_at <= as_of)
                    .order_by(incidents.c.opened_at, incidents.c.incident_id), known_at)
    records = {row.incident_id: IncidentRecord(row.incident_id, row.kind, row.opened_at, row.key)
               for row in connection.execute(opened)}
    links = _known(select(incident_links, entries.c.key, entries.c.effective_at,
                          entries.c.type, entries.c.memo)
                   .join(entries, entries.c.id == incident_links.c.entry_id)
                   .where(entries.c.effective_at <= as_of)
                   .order_by(entries.c.effective_at, incident_links.c.id), known_at)
    for row in connection.execute(links):
        if row.incident_id in records:
            records[row.incident_id].links.append({
                "kind": row.kind, "entry": row.key, "type": row.type,
                "effective_at": row.effective_at.isoformat(), "asset": row.asset,
                "amount_minor": int(row.amount_minor), "memo": row.memo})
    opening = entries.alias("opening")
    closing = entries.alias("closing")
    rows = connection.execute(
        select(breaches.c.incident_id, breaches.c.asset, breaches.c.opened_coverage_minor,
               opening.c.effective_at.label("opened_at"), closing.c.key.label("closed_by"),
               closing.c.effective_at.label("closed_at"))
        .join(opening, opening.c.id == breaches.c.opened_entry_id)
        .outerjoin(closing, closing.c.id == breaches.c.closed_entry_id)
        .where(breaches.c.incident_id.is_not(None), opening.c.effective_at <= as_of))
    for row in rows:
        if row.incident_id in records:
            closed = row.closed_at is not None and row.closed_at <= as_of
            records[row.incident_id].breaches.append({
                "asset": row.asset, "opened_at": row.opened_at.isoformat(),
                "opened_coverage_minor": int(row.opened_coverage_minor),
                "closed_by": row.closed_by if closed else None,
                "closed_at": row.closed_at.isoformat() if closed else None})
    return list(records.values())


def policies(connection: Connection, known_at: datetime | None = None) -> list[Policy]:
    query = select(insurance_policies).order_by(insurance_policies.c.policy_id)
    if known_at is not None:
        query = query.where(insurance_policies.c.loaded_at <= known_at)
    return [Policy(row.policy_id, row.insurer, row.currency, int(row.limit_minor),
                   Decimal(row.covered_share), row.period_start, row.period_end)
            for row in connection.execute(query)]


@dataclass(frozen=True)
class RegisterResult:
    added: int
    unchanged: int


def load_register(engine: Engine, drafts: Sequence[PolicyDraft], source: str) -> RegisterResult:
    """Add the policies; one already loaded with the same content is left; a changed one is
    refused (a register is append-only: a new term is a new policy id)."""
    now = utcnow()
    with for_writing(engine).begin() as connection:
        assets = load_assets(connection)
        existing = {row.policy_id: row.content_hash for row in connection.execute(
            select(insurance_policies.c.policy_id, insurance_policies.c.content_hash))}
        rows = []
        unchanged = 0
        for draft in drafts:
            where = f"policies[{draft.index}]"
            if draft.currency not in assets:
                raise InputError(f"unknown currency {shown(draft.currency)}", source=source,
                                 field=f"{where}.currency")
            try:
                limit_minor = parse_amount(draft.limit, assets[draft.currency].scale)
            except InputError as error:
                raise error.located(source=source, field=f"{where}.limit") from None
            if limit_minor > max_minor(connection):
                raise InputError("the limit is outside the database's range", source=source,
                                 field=f"{where}.limit")
            digest = draft.content_hash(limit_minor)
            if draft.policy_id in existing:
                if existing[draft.policy_id] != digest:
                    raise InputError(f"policy {shown(draft.policy_id)} is already registered with "
                                     "other terms; register a new term under a new policy id",
                                     source=source, field=f"{where}.policy_id")
                unchanged += 1
                continue
            rows.append({"policy_id": draft.policy_id, "insurer": draft.insurer,
                         "currency": draft.currency, "limit_minor": limit_minor,
                         "covered_share": str(draft.covered_share),
                         "period_start": draft.period_start, "period_end": draft.period_end,
                         "content_hash": digest, "source": source[:500], "loaded_at": now})
        if rows:
            ids = connection.execute(insurance_policies.insert().returning(
                insurance_policies.c.id), rows).scalars().all()
            journal.seal(connection, "insurance", {"insurance_policies": ids})
    return RegisterResult(len(rows), unchanged)
