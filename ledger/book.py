"""Invariants 1, 4, 5 and 6 of DESIGN.md as plain functions over an in-memory book.

Storage loads the part of the ledger a batch touches into a `Book` (under lock), and every
entry of the batch is checked and applied here in order, so the rules never see a database.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from ledger.errors import InputError
from ledger.incidents import (
    IncidentLink,
    KnownIncident,
    check_reserve,
    incident_kind,
    incident_reference,
    links_of,
    reserve_changes,
)
from ledger.model import Account, Asset, Entry, EntryType
from ledger.money import format_amount

# Entry types that may lower coverage, but never below zero: a sweep takes company money
# out of the customer pool; a reversal undoes an entry the ledger once accepted.
DOWN_TO_ZERO_TYPES = frozenset({EntryType.SWEEP, EntryType.REVERSAL})


@dataclass(frozen=True)
class BreachEvent:
    """A segregation breach opened by an incident, or closed when coverage is back to zero."""

    asset: str
    opened: bool
    entry_key: str
    coverage_minor: int
    incident: str | None = None


@dataclass(frozen=True)
class Effect:
    """What one entry changes: normal-side balance per account, coverage per asset."""

    balance_deltas: Mapping[str, int]
    coverage_deltas: Mapping[str, int]
    incident: str | None = None
    links: tuple[IncidentLink, ...] = ()


@dataclass(frozen=True)
class Freeze:
    """The administration's cut-off (DESIGN.md invariant 6): once frozen, the ledger takes
    only the distributions of a stored plan (posted by `admin distribute`) dated after the
    cut-off and the batches the administrator records with a reason. The database enforces
    the same rule (migration 0006)."""

    cutoff: datetime
    administrator: str
    case_no: str | None = None

    def describe(self) -> str:
        case = f" (case {self.case_no})" if self.case_no else ""
        return f"frozen at {self.cutoff.isoformat()} by {self.administrator}{case}"


@dataclass
class Book:
    assets: Mapping[str, Asset]
    accounts: dict[str, Account]
    balances: dict[str, int] = field(default_factory=dict)
    coverage: dict[str, int] = field(default_factory=dict)
    open_breaches: set[str] = field(default_factory=set)
    incidents: dict[str, KnownIncident] = field(default_factory=dict)
    closed_through: datetime | None = None
    max_minor: int = 2**63 - 1
    freeze: Freeze | None = None
    admin_record: bool = False  # the batch is the administrator's, recorded with a reason
    admin_plan: bool = False  # the batch is `admin distribute` paying a stored plan

    def fmt(self, asset: str, minor: int) -> str:
        return f"{format_amount(minor, self.assets[asset].scale)} {asset}"


def effect_of(entry: Entry, book: Book) -> Effect:
    """Check one resolved entry against the book; raise InputError naming the field."""
    _check_freeze(entry, book)
    if book.closed_through is not None and entry.effective_at <= book.closed_through:
        raise InputError(
            f"{entry.effective_at.isoformat()} falls in a closed period "
            f"(closed through {book.closed_through.isoformat()})",
            field="effective_at",
        )
    reference = incident_reference(entry, book.incidents)
    balance_deltas: dict[str, int] = defaultdict(int)
    coverage_deltas: dict[str, int] = defaultdict(int)
    for line in entry.lines:
        debit, credit = book.accounts[line.debit], book.accounts[line.credit]
        assert debit.asset == credit.asset, "resolution checks that a line has one asset"
        for account, sign in ((debit, 1), (credit, -1)):
            change = sign * account.normal_sign * line.amount_minor
            balance_deltas[account.code] += change
            coverage_deltas[account.asset] += account.coverage_sign * change
    _check_balances(entry, book, balance_deltas)
    _check_firewall(entry, book, coverage_deltas)
    changes = reserve_changes(balance_deltas, book.accounts)
    check_reserve(entry, changes)
    links = () if reference is None else tuple(links_of(
        entry, reference, balance_deltas, coverage_deltas, changes, book.accounts))
    return Effect(dict(balance_deltas), dict(coverage_deltas), reference, links)


def _check_freeze(entry: Entry, book: Book) -> None:
    freeze = book.freeze
    if freeze is None or book.admin_record:
        return
    if entry.type is EntryType.DISTRIBUTION and entry.effective_at > freeze.cutoff:
        if book.admin_plan:
            return
        reason = ("distributions come from `segledger admin distribute --plan FILE`, which "
                  "pays a stored plan; they cannot be posted")
    elif entry.type is EntryType.DISTRIBUTION:
        reason = (f"a distribution must be dated after the cut-off, "
                  f"not {entry.effective_at.isoformat()}")
    else:
        reason = (f"{entry.type.value} entries are refused; only distributions dated after the "
                  "cut-off and the administrator's records (`segledger admin record FILE "
                  "--reason …`) are accepted")
    raise InputError(f"the ledger is {freeze.describe()}: {reason}", field="type")


def _check_balances(entry: Entry, book: Book, deltas: Mapping[str, int]) -> None:
    for code in sorted(deltas):
        account = book.accounts[code]
        after = book.balances.get(code, 0) + deltas[code]
        if account.must_stay_non_negative and after < 0:
            raise InputError(
                f"{code} would fall below zero: balance {book.fmt(account.asset, after - deltas[code])},"
                f" this entry takes {book.fmt(account.asset, -deltas[code])}, too little by "
                f"{book.fmt(account.asset, -after)}",
                field="lines",
            )
        if abs(after) > book.max_minor:
            raise InputError(
                f"{code} balance would leave the database's range "
                f"(|balance| ≤ {book.max_minor} minor units)",
                field="lines",
            )


def _check_firewall(entry: Entry, book: Book, deltas: Mapping[str, int]) -> None:
    """Invariant 5: customer coverage may fall only by a sweep down to zero or an incident."""
    for asset in sorted(deltas):
        delta = deltas[asset]
        before = book.coverage.get(asset, 0)
        after = before + delta
        if abs(after) > book.max_minor:
            raise InputError(f"customer coverage of {asset} would leave the database's range",
                             field="lines")
        if delta >= 0 or entry.type is EntryType.INCIDENT:
            continue
        if entry.type in DOWN_TO_ZERO_TYPES:
            if after < 0:
                raise InputError(
                    f"segregation firewall: this {entry.type.value} takes "
                    f"{book.fmt(asset, -delta)} out of the customer pool, but only "
                    f"{book.fmt(asset, max(before, 0))} of company money stands there; "
                    f"too much by {book.fmt(asset, -after)}",
                    field="lines",
                )
            continue
        raise InputError(
            f"segregation firewall: {entry.type.value} entries may not lower customer coverage of "
            f"{asset} (it would fall by {book.fmt(asset, -delta)}, from {book.fmt(asset, before)} "
            f"to {book.fmt(asset, after)}); only a sweep down to zero or an incident may",
            field="lines",
        )


def apply(entry: Entry, effect: Effect, book: Book) -> list[BreachEvent]:
    """Apply a checked effect; return the breaches this entry opens or closes."""
    for code, delta in effect.balance_deltas.items():
        book.balances[code] = book.balances.get(code, 0) + delta
    if entry.type is EntryType.INCIDENT and effect.incident not in book.incidents:
        assert effect.incident is not None, "effect_of requires an incident id"
        book.incidents[effect.incident] = KnownIncident(incident_kind(entry), entry.effective_at)
    events: list[BreachEvent] = []
    for asset, delta in effect.coverage_deltas.items():
        after = book.coverage.get(asset, 0) + delta
        book.coverage[asset] = after
        if after < 0 and asset not in book.open_breaches and entry.type is EntryType.INCIDENT:
            book.open_breaches.add(asset)
            events.append(BreachEvent(asset, True, entry.key, after, effect.incident))
        elif after >= 0 and asset in book.open_breaches:
            book.open_breaches.discard(asset)
            events.append(BreachEvent(asset, False, entry.key, after))
    return events
