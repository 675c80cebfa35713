"""Incidents and the liability reserve, as the ledger enforces them when an entry is posted.

An `incident` entry records a loss as it happened and opens an incident record; the entries
that answer it (the reserve draw that pays for the loss, the top-up that restores customer
custody, the insurer's recovery) name it in `metadata.incident` and are linked to it. The
liability reserve (責任準備金) may be drawn only by a `reserve_draw` naming an incident, so that
every yen taken from it can be traced to the loss it compensated (REGULATION.md R1).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ledger.errors import InputError, shown
from ledger.model import Account, Entry, EntryType, Purpose, Role

INCIDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}", re.ASCII)


class IncidentKind(StrEnum):
    THEFT = "theft"
    OPERATIONAL_LOSS = "operational_loss"
    MISDIRECTED_FUNDS = "misdirected_funds"


class LinkKind(StrEnum):
    LOSS = "loss"
    DRAW = "draw"
    TOP_UP = "top_up"
    RECOVERY = "recovery"


# The entry types that may name an incident, and what their link to it means.
LINKED_TYPES: Mapping[EntryType, LinkKind] = {
    EntryType.INCIDENT: LinkKind.LOSS,
    EntryType.RESERVE_DRAW: LinkKind.DRAW,
    EntryType.TOP_UP: LinkKind.TOP_UP,
    EntryType.INSURANCE_RECOVERY: LinkKind.RECOVERY,
}
# A draw or a recovery without its incident would be money with no story behind it.
INCIDENT_REQUIRED = frozenset({EntryType.INCIDENT, EntryType.RESERVE_DRAW,
                               EntryType.INSURANCE_RECOVERY})
# A reversal undoes an accepted entry (a provision posted twice); an incident records what
# happened (reserve money stolen too). RESERVE-DRAW reports both.
MAY_DRAW_RESERVE = frozenset({EntryType.RESERVE_DRAW, EntryType.REVERSAL, EntryType.INCIDENT})


@dataclass(frozen=True)
class KnownIncident:
    kind: IncidentKind
    opened_at: datetime


@dataclass(frozen=True)
class IncidentLink:
    incident: str
    kind: LinkKind
    entry_key: str
    asset: str
    amount_minor: int


@dataclass(frozen=True)
class ReserveChange:
    """Per asset, normal side: the reserve appropriation and the custody set aside for it."""

    appropriation_minor: int
    held_minor: int

    @property
    def drawn_minor(self) -> int:
        return max(-self.appropriation_minor, -self.held_minor, 0)

    @property
    def provided_minor(self) -> int:
        return max(self.appropriation_minor, self.held_minor, 0)


def is_reserve_appropriation(account: Account) -> bool:
    return account.role is Role.RESERVE


def is_reserve_custody(account: Account) -> bool:
    return account.role is Role.CUSTODY and account.purpose is Purpose.RESERVE


def reserve_changes(balance_deltas: Mapping[str, int], accounts: Mapping[str, Account]
                    ) -> dict[str, ReserveChange]:
    appropriation: dict[str, int] = defaultdict(int)
    held: dict[str, int] = defaultdict(int)
    for code, delta in balance_deltas.items():
        account = accounts[code]
        if is_reserve_appropriation(account):
            appropriation[account.asset] += delta
        elif is_reserve_custody(account):
            held[account.asset] += delta
    return {asset: ReserveChange(appropriation[asset], held[asset])
            for asset in sorted(appropriation.keys() | held.keys())}


def check_reserve(entry: Entry, changes: Mapping[str, ReserveChange]) -> None:
    """Only a reserve_draw takes from the reserve; a provision only adds to it."""
    drawn = {asset: c.drawn_minor for asset, c in changes.items() if c.drawn_minor}
    if drawn and entry.type not in MAY_DRAW_RESERVE:
        asset = min(drawn)
        raise InputError(
            f"liability reserve: entries of type {entry.type.value} may not take from the reserve "
            f"({asset} reserve would fall by {drawn[asset]} minor units); only a reserve_draw "
            "naming an incident may", field="lines")
    if entry.type is EntryType.RESERVE_DRAW and not drawn:
        raise InputError("a reserve_draw must draw on the liability reserve (a reserve account "
                         "or custody with purpose 'reserve')", field="lines")
    if entry.type is EntryType.RESERVE_PROVISION and not any(
            c.provided_minor for c in changes.values()):
        raise InputError("a reserve_provision must add to the liability reserve (a reserve "
                         "account or custody with purpose 'reserve')", field="lines")


def incident_reference(entry: Entry, known: Mapping[str, KnownIncident]) -> str | None:
    """The incident an entry names, checked; None for an entry that names none."""
    reference = entry.metadata.get("incident")
    if reference is None:
        if entry.type in INCIDENT_REQUIRED:
            what = {EntryType.INCIDENT: "an incident entry must give its incident id",
                    EntryType.RESERVE_DRAW: "a reserve draw must name the incident it "
                                            "compensates",
                    EntryType.INSURANCE_RECOVERY: "an insurance recovery must name the "
                                                  "incident it pays for"}[entry.type]
            raise InputError(f"{what} (metadata.incident)", field="metadata.incident")
        return None
    if entry.type not in LINKED_TYPES:
        raise InputError(
            f"only {', '.join(t.value for t in LINKED_TYPES)} entries name an incident; "
            f"a {entry.type.value} does not", field="metadata.incident")
    if not isinstance(reference, str) or not INCIDENT_ID.fullmatch(reference):
        raise InputError("an incident id is text of letters, digits and ._:- (at most 64)",
                         field="metadata.incident")
    if entry.type is EntryType.INCIDENT:
        kind = incident_kind(entry)
        earlier = known.get(reference)
        if earlier is not None and earlier.kind is not kind:
            raise InputError(f"incident {shown(reference)} is a {earlier.kind.value} incident, "
                             f"not {kind.value}", field="metadata.incident_kind")
        return reference
    if reference not in known:
        raise InputError(f"unknown incident {shown(reference)}: an incident entry must record it "
                         "first", field="metadata.incident")
    if entry.effective_at < known[reference].opened_at:
        raise InputError(f"dated before incident {shown(reference)} happened "
                         f"({known[reference].opened_at.isoformat()})", field="effective_at")
    return reference


def incident_kind(entry: Entry) -> IncidentKind:
    value = entry.metadata.get("incident_kind")
    try:
        return IncidentKind(value) if isinstance(value, str) else IncidentKind("")
    except ValueError:
        raise InputError(
            "an incident entry says what happened: metadata.incident_kind is one of "
            f"{', '.join(k.value for k in IncidentKind)}", field="metadata.incident_kind",
        ) from None


def links_of(entry: Entry, reference: str, balance_deltas: Mapping[str, int],
             coverage_deltas: Mapping[str, int], changes: Mapping[str, ReserveChange],
             accounts: Mapping[str, Account]) -> list[IncidentLink]:
    """What the entry did for its incident, per asset, in minor units.

    loss: customer coverage it removed, else reserve money lost, else the loss debited;
    draw: what left the reserve; top_up: customer coverage restored; recovery: custody received.
    """
    kind = LINKED_TYPES[entry.type]
    amounts: dict[str, int] = {}
    if kind is LinkKind.LOSS:
        booked: dict[str, int] = defaultdict(int)
        for code, delta in balance_deltas.items():
            if accounts[code].role is Role.LOSS and delta > 0:
                booked[accounts[code].asset] += delta
        for asset in sorted(coverage_deltas.keys() | booked.keys() | changes.keys()):
            drawn = changes[asset].drawn_minor if asset in changes else 0
            amounts[asset] = (max(-coverage_deltas.get(asset, 0), 0) or drawn
                              or booked.get(asset, 0))
        if not any(amount > 0 for amount in amounts.values()):
            raise InputError("an incident entry records a loss: it lowers customer coverage, "
                             "takes from the reserve or debits a loss account", field="lines")
    elif kind is LinkKind.DRAW:
        amounts = {asset: change.drawn_minor for asset, change in changes.items()}
    elif kind is LinkKind.TOP_UP:
        amounts = dict(coverage_deltas)
    else:
        for code, delta in balance_deltas.items():
            if accounts[code].role is Role.CUSTODY and delta > 0:
                amounts[accounts[code].asset] = amounts.get(accounts[code].asset, 0) + delta
    return [IncidentLink(reference, kind, entry.key, asset, amount)
            for asset, amount in sorted(amounts.items()) if amount > 0]
