"""Recording elections and disputes: append-only (the database refuses UPDATE and DELETE),
idempotent (a line already recorded is skipped), and never changed (an election, a claimed
amount and a ruling are recorded once)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from ledger.administration import case
from ledger.administration.input_files import DisputeLine, ElectionLine, InputFile
from ledger.administration.inputs import Dispute, Election
from ledger.errors import InputError, shown
from ledger.money import format_amount, parse_amount
from ledger.storage import journal
from ledger.storage.rows import load_assets, max_minor
from ledger.storage.schema import admin_disputes, admin_elections


@dataclass(frozen=True)
class LoadResult:
    loaded: int  # lines that recorded something new
    unchanged: int  # lines already recorded exactly so, skipped


@dataclass(frozen=True)
class ElectionRecord:
    election: Election
    source: str
    loaded_at: datetime


def election_records(connection: Connection) -> tuple[ElectionRecord, ...]:
    rows = connection.execute(select(admin_elections).order_by(admin_elections.c.creditor))
    return tuple(ElectionRecord(Election(row.creditor, row.option, row.payment), row.source,
                                row.loaded_at) for row in rows)


def save_elections(connection: Connection, parsed: InputFile[ElectionLine],
                   at: datetime) -> LoadResult:
    known = case.known_creditors(connection) | {
        dispute.creditor for dispute in case.load_disputes(connection)}
    recorded = {record.election.creditor: record for record in election_records(connection)}
    rows: list[dict[str, Any]] = []
    for item in parsed.items:
        if item.creditor not in known:
            raise parsed.error(item, "creditor", f"unknown creditor {shown(item.creditor)}: no "
                                                 "customer account in the ledger and no dispute")
        before = recorded.get(item.creditor)
        if before is None:
            rows.append({"creditor": item.creditor, "option": item.option,
                         "payment": item.payment, "source": parsed.source[:500],
                         "loaded_at": at})
        elif (before.election.option, before.election.payment) != (item.option, item.payment):
            raise parsed.error(
                item, "option" if before.election.option != item.option else "payment",
                f"{shown(item.creditor)} elected {before.election.option} in "
                f"{before.election.payment} (recorded from {shown(before.source)}); an election "
                "cannot change")
    if rows:
        connection.execute(admin_elections.insert(), rows)
        journal.seal(connection, "admin_elections",
                     {"admin_elections": [row["creditor"] for row in rows]})
    return LoadResult(len(rows), len(parsed.items) - len(rows))


def save_disputes(connection: Connection, parsed: InputFile[DisputeLine],
                  at: datetime) -> LoadResult:
    assets = load_assets(connection)
    known = case.known_creditors(connection)
    records = {record.dispute.key: record.dispute for record in case.dispute_records(connection)}
    rows: list[dict[str, Any]] = []
    loaded = 0
    for item in parsed.items:
        if item.asset not in assets:
            raise parsed.error(item, "asset", f"unknown asset {shown(item.asset)}: not an asset "
                                              "of the ledger")
        if item.creditor not in known:
            raise parsed.error(item, "creditor", f"unknown creditor {shown(item.creditor)}: no "
                                                 "customer account in the ledger")
        dispute = _dispute(connection, parsed, item, assets[item.asset].scale)
        new = _new_rows(parsed, item, dispute, records.get(dispute.key),
                        assets[item.asset].scale)
        rows.extend({**row, "source": parsed.source[:500], "loaded_at": at} for row in new)
        loaded += bool(new)
    if rows:
        ids = connection.execute(admin_disputes.insert().returning(admin_disputes.c.id),
                                 rows).scalars().all()
        journal.seal(connection, "admin_disputes", {"admin_disputes": ids})
    return LoadResult(loaded, len(parsed.items) - loaded)


def _dispute(connection: Connection, parsed: InputFile[DisputeLine], item: DisputeLine,
             scale: int) -> Dispute:
    claimed = _minor(connection, parsed, item, "claimed", item.claimed, scale)
    allowed = 0 if item.allowed is None else \
        _minor(connection, parsed, item, "allowed", item.allowed, scale)
    try:
        return Dispute(item.creditor, item.asset, claimed, item.status, allowed)  # type: ignore[arg-type]
    except InputError as error:  # the file's own checks come first; this is the last word
        raise parsed.error(item, "status", error.reason) from None


def _minor(connection: Connection, parsed: InputFile[DisputeLine], item: DisputeLine,
           field: str, text: str, scale: int) -> int:
    try:
        minor = parse_amount(text, scale)
    except InputError as error:
        raise parsed.error(item, field, f"{error.reason} ({item.asset})") from None
    if minor > max_minor(connection):
        raise parsed.error(item, field, f"{text} {item.asset} is outside the database's range")
    return minor


def _new_rows(parsed: InputFile[DisputeLine], item: DisputeLine, dispute: Dispute,
              before: Dispute | None, scale: int) -> list[dict[str, Any]]:
    """The rows this line adds: the claim if new, the ruling if new; none if recorded."""
    def amount(minor: int) -> str:
        return f"{format_amount(minor, scale)} {dispute.asset}"

    claim = {"creditor": dispute.creditor, "asset": dispute.asset, "event": "claim",
             "claimed_minor": dispute.claimed_minor, "status": "open", "allowed_minor": 0}
    ruling = {**claim, "event": "ruling", "status": dispute.status,
              "allowed_minor": dispute.allowed_minor}
    if before is None:
        return [claim] if dispute.status == "open" else [claim, ruling]
    if before.claimed_minor != dispute.claimed_minor:
        raise parsed.error(item, "claimed", f"the dispute of {shown(dispute.creditor)} in "
                                            f"{dispute.asset} was recorded claiming "
                                            f"{amount(before.claimed_minor)}, not "
                                            f"{amount(dispute.claimed_minor)}; a claimed amount "
                                            "cannot change")
    if dispute.status == "open":
        return []  # the claim again (an earlier file loaded again), whatever its ruling
    if before.status == "open":
        return [ruling]
    if (before.status, before.allowed_minor) != (dispute.status, dispute.allowed_minor):
        ruled = before.status if before.status == "rejected" else \
            f"allowed for {amount(before.allowed_minor)}"
        raise parsed.error(item, "allowed" if before.status == dispute.status else "status",
                           f"the dispute of {shown(dispute.creditor)} in {dispute.asset} was "
                           f"ruled on already: {ruled}; a ruling cannot change")
    return []
