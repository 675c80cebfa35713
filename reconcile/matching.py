"""Transaction-level matching: statement lines and chain transfers against ledger postings.

Pure. Rules run in order, and an item once matched is never matched again:
  1. reference, one-to-one: same reference, same amount;
  2. reference, many-to-one: several items of one side that share a reference and add up to
     one item of the other side with that reference;
  3. amount and date, one-to-one: same amount, booked within the window, closest date first.
"Same amount" is within the amount tolerance (the rulebook's, per asset; 0 unless it sets
one): the closest amount first, and each match keeps its difference. Whatever stays unmatched
explains the difference: Σ unmatched external − Σ unmatched ledger; what matched within the
tolerance is shown apart (`within_tolerance_minor`), never hidden in either.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date

# The rulebook's `matching.window_days` default; a stored run made before rulebooks carried
# it was matched with this.
DEFAULT_WINDOW_DAYS = 3


@dataclass(frozen=True)
class Item:
    id: str
    amount_minor: int  # signed: + flows into the custody account
    on: date
    reference: str | None = None
    description: str = ""


@dataclass(frozen=True)
class Match:
    rule: str
    external: tuple[str, ...]
    ledger: tuple[str, ...]
    difference_minor: int = 0  # Σ external − Σ ledger of the matched items: within tolerance


@dataclass
class MatchResult:
    matches: list[Match] = field(default_factory=list)
    unmatched_external: list[Item] = field(default_factory=list)
    unmatched_ledger: list[Item] = field(default_factory=list)

    @property
    def explained_minor(self) -> int:
        return (sum(i.amount_minor for i in self.unmatched_external)
                - sum(i.amount_minor for i in self.unmatched_ledger))

    @property
    def within_tolerance_minor(self) -> int:
        """What matched items differ by in all: 0 unless the tolerance let some through."""
        return sum(m.difference_minor for m in self.matches)


def match(external: Sequence[Item], ledger: Sequence[Item],
          window_days: int = DEFAULT_WINDOW_DAYS, amount_tolerance_minor: int = 0
          ) -> MatchResult:
    assert window_days >= 0 and amount_tolerance_minor >= 0
    free_external = {item.id: item for item in external}
    free_ledger = {item.id: item for item in ledger}
    assert len(free_external) == len(external) and len(free_ledger) == len(ledger), "unique ids"
    result = MatchResult()
    tolerance = amount_tolerance_minor
    _by_reference(free_external, free_ledger, result, tolerance)
    _many_to_one(free_external, free_ledger, result, tolerance, ledger_side_many=True)
    _many_to_one(free_external, free_ledger, result, tolerance, ledger_side_many=False)
    _by_amount_and_date(free_external, free_ledger, result, window_days, tolerance)
    result.unmatched_external = sorted(free_external.values(), key=lambda i: (i.on, i.id))
    result.unmatched_ledger = sorted(free_ledger.values(), key=lambda i: (i.on, i.id))
    return result


class _ByAmount:
    """Items sorted by amount, to find those within a tolerance of an amount by bisection;
    an item no longer in `free` (matched meanwhile) is skipped."""

    def __init__(self, items: Sequence[Item]) -> None:
        self.items = list(items)
        self.keys = sorted((item.amount_minor, n) for n, item in enumerate(self.items))

    def near(self, amount_minor: int, tolerance_minor: int,
             free: dict[str, Item]) -> Iterator[tuple[int, Item]]:
        """(position in the given order, item) of each free item within the tolerance."""
        at = bisect_left(self.keys, (amount_minor - tolerance_minor, -1))
        while at < len(self.keys) and self.keys[at][0] <= amount_minor + tolerance_minor:
            n = self.keys[at][1]
            if self.items[n].id in free:
                yield n, self.items[n]
            at += 1


def _by_reference(external: dict[str, Item], ledger: dict[str, Item], result: MatchResult,
                  tolerance_minor: int) -> None:
    # Only the references the other side has: a pool for every posting's reference would cost
    # more than the matching itself when the ledger has many more postings than the evidence.
    wanted = {item.reference for item in external.values() if item.reference}
    grouped: dict[str, list[Item]] = defaultdict(list)
    for item in ledger.values():
        if item.reference in wanted:
            grouped[item.reference].append(item)
    candidates = {reference: _ByAmount(items) for reference, items in grouped.items()}
    for item in list(external.values()):
        pool = candidates.get(item.reference or "") if item.reference else None
        if pool is None:
            continue
        # The closest amount, then the earliest posted: with no tolerance, the first posting
        # of the same reference and amount, as always.
        found = min(pool.near(item.amount_minor, tolerance_minor, ledger), default=None,
                    key=lambda found: (abs(found[1].amount_minor - item.amount_minor), found[0]))
        if found is None:
            continue
        partner = found[1]
        del external[item.id], ledger[partner.id]
        result.matches.append(Match("reference", (item.id,), (partner.id,),
                                    item.amount_minor - partner.amount_minor))


def _many_to_one(external: dict[str, Item], ledger: dict[str, Item], result: MatchResult,
                 tolerance_minor: int, ledger_side_many: bool) -> None:
    many, one = (ledger, external) if ledger_side_many else (external, ledger)
    groups: dict[str, list[Item]] = defaultdict(list)
    for item in many.values():
        if item.reference:
            groups[item.reference].append(item)
    for single in list(one.values()):
        group = groups.get(single.reference or "") if single.reference else None
        if not group or len(group) < 2:
            continue
        total = sum(i.amount_minor for i in group)
        if abs(total - single.amount_minor) > tolerance_minor:
            continue
        for item in group:
            del many[item.id]
        del one[single.id]
        ids = tuple(item.id for item in group)
        difference = single.amount_minor - total if ledger_side_many else total - single.amount_minor
        result.matches.append(Match("reference_many_to_one",
                                    ids if not ledger_side_many else (single.id,),
                                    (single.id,) if not ledger_side_many else ids, difference))
        groups[single.reference or ""] = []


def _by_amount_and_date(external: dict[str, Item], ledger: dict[str, Item], result: MatchResult,
                        window_days: int, tolerance_minor: int) -> None:
    by_amount = _ByAmount(list(ledger.values()))
    for item in sorted(external.values(), key=lambda i: (i.on, i.id)):
        pool = [c for _, c in by_amount.near(item.amount_minor, tolerance_minor, ledger)
                if abs((c.on - item.on).days) <= window_days]
        if not pool:
            continue
        partner = min(pool, key=lambda c: (abs((c.on - item.on).days),
                                           abs(c.amount_minor - item.amount_minor), c.id))
        del external[item.id], ledger[partner.id]
        result.matches.append(Match("amount_date", (item.id,), (partner.id,),
                                    item.amount_minor - partner.amount_minor))
