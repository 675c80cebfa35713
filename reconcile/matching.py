"""Transaction-level matching: statement lines and chain transfers against ledger postings.

Pure. Rules run in order, and an item once matched is never matched again:
  1. reference, one-to-one: same reference, same amount;
  2. reference, many-to-one: several items of one side that share a reference and add up to
     one item of the other side with that reference;
  3. amount and date, one-to-one: same amount, booked within the window, closest date first.
Whatever stays unmatched explains the difference: Σ unmatched external − Σ unmatched ledger.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

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


@dataclass
class MatchResult:
    matches: list[Match] = field(default_factory=list)
    unmatched_external: list[Item] = field(default_factory=list)
    unmatched_ledger: list[Item] = field(default_factory=list)

    @property
    def explained_minor(self) -> int:
        return (sum(i.amount_minor for i in self.unmatched_external)
                - sum(i.amount_minor for i in self.unmatched_ledger))


def match(external: Sequence[Item], ledger: Sequence[Item],
          window_days: int = DEFAULT_WINDOW_DAYS) -> MatchResult:
    free_external = {item.id: item for item in external}
    free_ledger = {item.id: item for item in ledger}
    assert len(free_external) == len(external) and len(free_ledger) == len(ledger), "unique ids"
    result = MatchResult()
    _by_reference(free_external, free_ledger, result)
    _many_to_one(free_external, free_ledger, result, ledger_side_many=True)
    _many_to_one(free_external, free_ledger, result, ledger_side_many=False)
    _by_amount_and_date(free_external, free_ledger, result, window_days)
    result.unmatched_external = sorted(free_external.values(), key=lambda i: (i.on, i.id))
    result.unmatched_ledger = sorted(free_ledger.values(), key=lambda i: (i.on, i.id))
    return result


def _by_reference(external: dict[str, Item], ledger: dict[str, Item], result: MatchResult) -> None:
    candidates: dict[tuple[str, int], list[Item]] = defaultdict(list)
    for item in ledger.values():
        if item.reference:
            candidates[item.reference, item.amount_minor].append(item)
    for item in list(external.values()):
        pool = candidates.get((item.reference or "", item.amount_minor)) if item.reference else None
        if pool:
            partner = pool.pop(0)
            del external[item.id], ledger[partner.id]
            result.matches.append(Match("reference", (item.id,), (partner.id,)))


def _many_to_one(external: dict[str, Item], ledger: dict[str, Item], result: MatchResult,
                 ledger_side_many: bool) -> None:
    many, one = (ledger, external) if ledger_side_many else (external, ledger)
    groups: dict[str, list[Item]] = defaultdict(list)
    for item in many.values():
        if item.reference:
            groups[item.reference].append(item)
    for single in list(one.values()):
        group = groups.get(single.reference or "") if single.reference else None
        if not group or len(group) < 2 or sum(i.amount_minor for i in group) != single.amount_minor:
            continue
        for item in group:
            del many[item.id]
        del one[single.id]
        ids = tuple(item.id for item in group)
        result.matches.append(Match("reference_many_to_one",
                                    ids if not ledger_side_many else (single.id,),
                                    (single.id,) if not ledger_side_many else ids))
        groups[single.reference or ""] = []


def _by_amount_and_date(external: dict[str, Item], ledger: dict[str, Item], result: MatchResult,
                        window_days: int) -> None:
    by_amount: dict[int, list[Item]] = defaultdict(list)
    for item in ledger.values():
        by_amount[item.amount_minor].append(item)
    for item in sorted(external.values(), key=lambda i: (i.on, i.id)):
        pool = [c for c in by_amount.get(item.amount_minor, [])
                if c.id in ledger and abs((c.on - item.on).days) <= window_days]
        if not pool:
            continue
        partner = min(pool, key=lambda c: (abs((c.on - item.on).days), c.id))
        del external[item.id], ledger[partner.id]
        result.matches.append(Match("amount_date", (item.id,), (partner.id,)))
