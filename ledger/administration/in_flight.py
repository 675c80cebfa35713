"""Items in flight at the cut-off, for the administrator's review, from the reconciliation run
closest to the cut-off:

- withdrawal_unconfirmed: a withdrawal the ledger booked that the evidence does not show
  (a custody credit of a `withdrawal` entry left unmatched by the run's transaction matching);
- deposit_uncredited: money the bank statement shows arriving that the ledger never booked
  (an unmatched credit on the statement);
- chain_excess: a crypto custody account holding more on chain than the ledger says (an
  `excess` break): coins received and not credited to anyone.

The run closest to the cut-off is the latest whose as-of is at or before the cut-off (what was
known then); failing that, the earliest after it. Without any run nothing can be said, and
the report says so instead of listing nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from ledger.book import Freeze
from ledger.model import AssetKind, EntryType
from ledger.money import format_amount, parse_amount
from ledger.storage.rows import chunks, load_assets
from ledger.storage.schema import entries, recon_runs

KINDS = ("withdrawal_unconfirmed", "deposit_uncredited", "chain_excess")
NO_RUN = "no reconciliation run: in-flight items unknown"


@dataclass(frozen=True)
class InFlightItem:
    kind: str  # one of KINDS
    account: str
    asset: str
    scale: int
    amount_minor: int  # always positive: what left, arrived, or is there beyond the ledger
    on: str | None  # the booking date, when the item is a transaction
    entry: str | None  # the ledger entry's key (withdrawals)
    reference: str | None
    detail: str


@dataclass(frozen=True)
class InFlight:
    run_id: str | None
    as_of: datetime | None
    items: tuple[InFlightItem, ...]

    @property
    def note(self) -> str:
        if self.run_id is None:
            return NO_RUN
        assert self.as_of is not None
        found = f"{len(self.items)} item{'' if len(self.items) == 1 else 's'}"
        return f"{found} in flight by run {self.run_id} as of {self.as_of.isoformat()}"

    def to_json(self) -> dict[str, Any]:
        return {
            "in_flight_run": None if self.run_id is None else
            {"run_id": self.run_id, "as_of": self.as_of.isoformat() if self.as_of else None},
            "in_flight_note": self.note,
            "in_flight": [{"kind": item.kind, "account": item.account, "asset": item.asset,
                           "amount": format_amount(item.amount_minor, item.scale),
                           "on": item.on, "entry": item.entry, "reference": item.reference,
                           "detail": item.detail} for item in self.items],
        }


def closest_run(connection: Connection, cutoff: datetime) -> tuple[str, datetime, str] | None:
    """(run_id, as_of, result) of the run closest to the cut-off (see the module's note)."""
    columns = (recon_runs.c.run_id, recon_runs.c.as_of, recon_runs.c.result)
    before = connection.execute(select(*columns).where(recon_runs.c.as_of <= cutoff).order_by(
        recon_runs.c.as_of.desc(), recon_runs.c.seq.desc()).limit(1)).first()
    row = before or connection.execute(select(*columns).where(recon_runs.c.as_of > cutoff)
                                       .order_by(recon_runs.c.as_of, recon_runs.c.seq.desc())
                                       .limit(1)).first()
    return None if row is None else (row.run_id, row.as_of, row.result)


def at_cutoff(connection: Connection, freeze: Freeze) -> InFlight:
    found = closest_run(connection, freeze.cutoff)
    if found is None:
        return InFlight(None, None, ())
    run_id, as_of, text = found
    result: Mapping[str, Any] = json.loads(text)
    assets = load_assets(connection)
    scales = {code: asset.scale for code, asset in assets.items()}
    candidates = list(_matching_items(result, scales))
    types = _entry_types(connection, {item.entry for item in candidates if item.entry})
    items = [item for item in candidates
             if item.kind != "withdrawal_unconfirmed"
             or types.get(item.entry or "") == EntryType.WITHDRAWAL.value]
    for found_break in result.get("breaks") or []:
        asset = assets.get(found_break["asset"])
        if found_break["kind"] == "excess" and asset is not None \
                and asset.kind is AssetKind.CRYPTO:
            items.append(InFlightItem(
                "chain_excess", found_break["account"], asset.code, asset.scale,
                parse_amount(found_break["difference"], asset.scale), None, None, None,
                found_break.get("detail") or "external − ledger"))
    items.sort(key=lambda item: (KINDS.index(item.kind), item.account, item.on or "",
                                 item.entry or ""))
    return InFlight(run_id, as_of, tuple(items))


def _matching_items(result: Mapping[str, Any], scales: Mapping[str, int]
                    ) -> Iterator[InFlightItem]:
    assets = {account["account"]: account["asset"] for account in result.get("accounts") or []}
    for account, matching in sorted((result.get("matching") or {}).items()):
        asset = assets.get(account)
        if asset is None or asset not in scales:
            continue
        for item in matching.get("unmatched_ledger") or []:
            if item["amount"].startswith("-"):  # a credit to custody: money that left
                amount = parse_amount(item["amount"][1:], scales[asset], allow_zero=True)
                yield InFlightItem("withdrawal_unconfirmed", account, asset, scales[asset],
                                   amount, item["on"],
                                   item["id"].rsplit("#", 1)[0], item.get("reference"),
                                   item.get("description") or "")
        for item in matching.get("unmatched_external") or []:
            if not item["amount"].startswith("-"):  # a credit on the statement: money in
                yield InFlightItem("deposit_uncredited", account, asset, scales[asset],
                                   parse_amount(item["amount"], scales[asset], allow_zero=True), item["on"],
                                   None, item.get("reference"), item.get("description") or "")


def _entry_types(connection: Connection, keys: set[str]) -> dict[str, str]:
    types: dict[str, str] = {}
    for part in chunks(sorted(keys)):
        types.update(connection.execute(
            select(entries.c.key, entries.c.type).where(entries.c.key.in_(part))).tuples().all())
    return types
