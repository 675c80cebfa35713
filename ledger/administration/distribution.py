"""A stored plan's payouts as `distribution` entries, built so that a rerun builds them again
byte for byte, and posts none of them twice.

    key        dist:<plan hash[:16]>:<SHA-256 of (plan hash, tier, creditor, asset)[:32]>,
               then `:r<n>` for the n-th payout after n reversed ones (the administrator
               reversed the payout: it is owed again, under a new key)
    metadata   {"plan": <plan hash>, "tier": 1 | 2, "creditor": …, "asset": …}
    tier 1     debit the creditor's claim account(s), credit the asset's pool accounts
               (customer custody first, then guarantee custody, each in code order)
    tier 2     debit the rules' `charge_to`, credit its `pay_from`, in the quote currency
    amount     what the plan allots that creditor in that tier and asset, less what earlier
               distributions (of any plan) already paid them there: a re-plan after a
               ruling pays only the difference
    time       the stored plan's created_at

Only the entries of batches `admin distribute` posted (`batches.admin_plan`) under the key
their metadata gives count as distributions: after the freeze no other distribution can be
posted, and a distribution posted before it pays no plan.

Which accounts a payout takes from depends on the balances, and the balances on what was
posted before: so the allocation of every payout of the plan is computed in one pass from the
balances as they stood before the plan's first entry (today's, plus what the plan's posted
entries took). Every run computes the same allocation, whichever entries it finds posted.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, case, func, select

from ledger.entries import Draft, DraftLine
from ledger.errors import InputError, shown
from ledger.model import Account, EntryType, Role
from ledger.money import format_amount
from ledger.storage.rows import account_from_row, chunks, load_accounts, load_assets
from ledger.storage.schema import accounts, balances, batches, entries, postings

KEY_PREFIX = "dist:"


def key_prefix(plan_hash: str) -> str:
    return f"{KEY_PREFIX}{plan_hash[:16]}:"


def payout_key(plan_hash: str, tier: int, creditor: str, asset: str, generation: int = 0) -> str:
    """`generation`: how many payouts of the same (plan, tier, creditor, asset) were reversed
    before this one (at most 128 characters: 54, then `:r` and the number)."""
    # Newlines cannot occur in a hash, a creditor id or an asset code: the parts never run
    # into each other.
    digest = hashlib.sha256(f"{plan_hash}\n{tier}\n{creditor}\n{asset}".encode()).hexdigest()
    key = f"{key_prefix(plan_hash)}{digest[:32]}"
    return key if generation == 0 else f"{key}:r{generation}"


def _generation_of(key: str, plan_hash: str, tier: int, creditor: str, asset: str) -> int | None:
    """The generation `key` has as a payout of that plan, tier, creditor and asset; None if
    it is not such a payout's key."""
    base = payout_key(plan_hash, tier, creditor, asset)
    if key == base:
        return 0
    rest = key.removeprefix(f"{base}:r")
    if rest != key and rest.isascii() and rest.isdigit() and not rest.startswith("0"):
        return int(rest)
    return None


@dataclass(frozen=True)
class Payout:
    """What a plan allots one creditor in one tier and asset (the quote's, for tier 2)."""

    tier: int
    creditor: str
    asset: str
    planned_minor: int


def plan_payouts(document: Mapping[str, Any]) -> tuple[Payout, ...]:
    """Tier 1 by creditor and asset, then tier 2 by creditor, from a stored plan document."""
    found = [Payout(1, line["creditor"], line["asset"], int(line["paid_minor"]))
             for line in document["tier1"]["lines"]]
    if document["tier2"] is not None:
        quote = document["rules"]["quote"]
        found += [Payout(2, line["creditor"], quote, int(line["payable_minor"]))
                  for line in document["tier2"]["lines"]]
    return tuple(found)


@dataclass(frozen=True)
class Distributed:
    """A distribution entry `admin distribute` posted, and what it paid."""

    entry_id: int
    key: str
    plan: str
    tier: int
    creditor: str
    asset: str
    amount_minor: int
    effective_at: datetime
    generation: int = 0
    reversed: bool = False


def distributed(connection: Connection) -> list[Distributed]:
    """Every distribution entry of a stored plan not reversed, by key. An entry's amount is
    the sum of its lines (each line debits and credits the same amount)."""
    return [item for item in _distributions(connection) if not item.reversed]


def _distributions(connection: Connection) -> list[Distributed]:
    """Every distribution entry of a batch `admin distribute` posted whose key is the one its
    metadata gives for the batch's plan, reversed or not, by key."""
    kind = entries.c.type == EntryType.DISTRIBUTION.value
    totals = (select(postings.c.entry_id, func.sum(case(
        (postings.c.amount_minor > 0, postings.c.amount_minor), else_=0)).label("total"))
        .join(entries, entries.c.id == postings.c.entry_id).where(kind)
        .group_by(postings.c.entry_id).subquery())
    reversal = entries.alias("reversal")
    rows = connection.execute(
        select(entries.c.id, entries.c.key, entries.c.metadata, entries.c.effective_at,
               totals.c.total, batches.c.admin_plan, reversal.c.id.label("reversal_id"))
        .join(totals, totals.c.entry_id == entries.c.id)
        .join(batches, batches.c.id == entries.c.batch_id)
        .outerjoin(reversal, reversal.c.reverses_id == entries.c.id)
        .where(and_(kind, batches.c.admin_plan.is_not(None)))
        .order_by(entries.c.key))
    found = []
    for row in rows:
        metadata = row.metadata if isinstance(row.metadata, dict) else {}
        plan, tier = metadata.get("plan"), metadata.get("tier")
        creditor, asset = metadata.get("creditor"), metadata.get("asset")
        if (plan != row.admin_plan or tier not in (1, 2) or type(tier) is not int
                or not isinstance(creditor, str) or not isinstance(asset, str)):
            continue
        generation = _generation_of(row.key, plan, tier, creditor, asset)
        if generation is None:
            continue
        found.append(Distributed(int(row.id), row.key, plan, tier, creditor, asset,
                                 int(row.total), row.effective_at, generation,
                                 row.reversal_id is not None))
    return found


@dataclass(frozen=True)
class LedgerState:
    """What the drafts are built from: read in one snapshot, then used without a database."""

    posted_keys: frozenset[str]  # this plan's entries already in the ledger
    generations: Mapping[tuple[int, str, str], int]  # this plan's payouts reversed so far
    paid_before: Mapping[tuple[int, str, str], int]  # by other plans' entries
    start_minor: Mapping[str, int]  # balances before this plan's first entry (normal side)
    pool_accounts: Mapping[str, tuple[str, ...]]  # per asset, in the order they are drawn
    claim_accounts: Mapping[tuple[str, str], tuple[str, ...]]  # per creditor and asset
    scales: Mapping[str, int]


def load_state(connection: Connection, plan_hash: str, payouts: Sequence[Payout],
               pool: Sequence[Account], pay_from: str | None) -> LedgerState:
    """`pool`: the pool accounts in the order a distribution draws on them."""
    prefix = key_prefix(plan_hash)
    paid_before: dict[tuple[int, str, str], int] = defaultdict(int)
    posted: dict[str, int] = {}
    generations: dict[tuple[int, str, str], int] = defaultdict(int)
    for item in _distributions(connection):
        if item.plan == plan_hash and item.key.startswith(prefix):
            if item.reversed:
                generations[(item.tier, item.creditor, item.asset)] += 1
            else:
                posted[item.key] = item.entry_id
        elif not item.reversed:
            paid_before[(item.tier, item.creditor, item.asset)] += item.amount_minor
    assets = {payout.asset for payout in payouts if payout.tier == 1}
    pools: dict[str, list[str]] = defaultdict(list)
    for account in pool:
        if account.asset in assets:
            pools[account.asset].append(account.code)
    claims = _claim_accounts(connection, {(p.creditor, p.asset) for p in payouts if p.tier == 1})
    codes = {code for group in (*pools.values(), *claims.values()) for code in group}
    if pay_from is not None:
        codes.add(pay_from)
    return LedgerState(frozenset(posted), dict(generations), dict(paid_before),
                       _start_balances(connection, sorted(posted.values()), codes),
                       {asset: tuple(codes) for asset, codes in pools.items()},
                       {key: tuple(codes) for key, codes in claims.items()},
                       {code: asset.scale for code, asset in load_assets(connection).items()})


def _claim_accounts(connection: Connection, wanted: set[tuple[str, str]]
                    ) -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    creditors = sorted({creditor for creditor, _ in wanted})
    for part in chunks(creditors):
        rows = connection.execute(select(accounts).where(
            accounts.c.role == Role.CUSTOMER_LIABILITY.value, accounts.c.customer.in_(part))
            .order_by(accounts.c.code))
        for account in map(account_from_row, rows):
            assert account.customer is not None
            if (account.customer, account.asset) in wanted:
                found[(account.customer, account.asset)].append(account.code)
    return found


def _start_balances(connection: Connection, posted_ids: Sequence[int],
                    codes: Iterable[str]) -> dict[str, int]:
    """Today's balances with what this plan's posted entries moved added back."""
    known = load_accounts(connection, codes)
    by_id = {account_id: account for account_id, account in known.values()}
    start: dict[str, int] = {}
    for part in chunks(sorted(by_id)):
        for row in connection.execute(select(balances.c.account_id, balances.c.balance_minor)
                                      .where(balances.c.account_id.in_(part))):
            start[by_id[row.account_id].code] = int(row.balance_minor)
    for part in chunks(posted_ids):
        moved = connection.execute(
            select(postings.c.account_id, func.sum(postings.c.amount_minor))
            .where(postings.c.entry_id.in_(part)).group_by(postings.c.account_id))
        for account_id, raw in moved:
            account = by_id.get(account_id)
            if account is not None:
                start[account.code] -= account.normal_sign * int(raw)
    return start


@dataclass(frozen=True)
class Built:
    drafts: tuple[Draft, ...]  # the payouts still to post, in plan order
    already: int  # payouts of this plan already in the ledger
    settled: int  # payouts earlier plans already paid in full (nothing left to pay)


def plan_tiers(document: Mapping[str, Any]) -> frozenset[int]:
    """The tiers a plan speaks for: a tier-1-only plan says nothing about tier 2."""
    return frozenset({1, 2} if document["tier2"] is not None else {1})


def build_drafts(plan_hash: str, payouts: Sequence[Payout], tiers: frozenset[int],
                 state: LedgerState, effective_at: datetime, pay_from: str | None,
                 charge_to: str | None) -> Built:
    """Every payout's entry, allocated in one pass; only those not yet posted are returned.
    Refused whole if the plan allots anyone less than earlier plans already paid them."""
    _check_nothing_taken_back(payouts, tiers, state)
    left = dict(state.start_minor)
    drafts: list[Draft] = []
    already = settled = 0
    for payout in payouts:
        # A payout the administrator reversed is owed again, under the next generation's key.
        key = payout_key(plan_hash, payout.tier, payout.creditor, payout.asset,
                         state.generations.get((payout.tier, payout.creditor, payout.asset), 0))
        amount = payout.planned_minor - state.paid_before.get(
            (payout.tier, payout.creditor, payout.asset), 0)
        if amount == 0:
            settled += payout.planned_minor > 0
            continue
        money = _Money(payout.asset, state.scales[payout.asset])
        if payout.tier == 1:
            what = f"tier 1 of {shown(payout.creditor)} in {payout.asset}"
            lines = _paired(
                _draw(left, state.claim_accounts.get((payout.creditor, payout.asset), ()),
                      amount, what, "the creditor's claim accounts hold", money),
                _draw(left, state.pool_accounts.get(payout.asset, ()), amount, what,
                      f"the pool accounts of {payout.asset} hold", money))
        else:
            assert pay_from is not None and charge_to is not None, "a tier-2 plan has its rules"
            _draw(left, (pay_from,), amount, f"tier 2 of {shown(payout.creditor)}",
                  f"{pay_from} (pay_from) holds", money)
            lines = [(charge_to, pay_from, amount)]
        if key in state.posted_keys:
            already += 1
            continue
        drafts.append(Draft(
            line_no=len(drafts) + 1, key=key, type=EntryType.DISTRIBUTION,
            effective_at=effective_at,
            memo=f"plan {plan_hash[:16]}: tier {payout.tier} payout to {payout.creditor}",
            metadata={"plan": plan_hash, "tier": payout.tier, "creditor": payout.creditor,
                      "asset": payout.asset},
            lines=tuple(DraftLine(debit, credit, money.text(part))
                        for debit, credit, part in lines),
            reverses=None))
    return Built(tuple(drafts), already, settled)


@dataclass(frozen=True)
class _Money:
    asset: str
    scale: int

    def text(self, minor: int) -> str:
        return format_amount(minor, self.scale)

    def __call__(self, minor: int) -> str:
        return f"{format_amount(minor, self.scale)} {self.asset}"


def _check_nothing_taken_back(payouts: Sequence[Payout], tiers: frozenset[int],
                              state: LedgerState) -> None:
    planned = {(p.tier, p.creditor, p.asset): p.planned_minor for p in payouts}
    for (tier, creditor, asset), paid in sorted(state.paid_before.items()):
        allotted = planned.get((tier, creditor, asset), 0)
        if tier in tiers and paid > allotted:
            money = _Money(asset, state.scales[asset])
            raise InputError(
                f"creditor {shown(creditor)}: earlier distributions paid {money(paid)} in tier "
                f"{tier}, the plan allots {money(allotted)}: too much already paid by "
                f"{money(paid - allotted)}; a distribution is never taken back", field="--plan")


def _draw(left: dict[str, int], codes: Sequence[str], amount: int, what: str, where: str,
          money: _Money) -> list[tuple[str, int]]:
    """`amount` drawn from the accounts in order, each down to zero before the next."""
    available = sum(max(left.get(code, 0), 0) for code in codes)
    if available < amount:
        raise InputError(f"{what}: {where} {money(available)} after the payouts before it, this "
                         f"one is {money(amount)}: too little by {money(amount - available)}; "
                         "record what is missing (`segledger admin record`) or plan again",
                         field="--plan")
    drawn = []
    for code in codes:
        part = min(max(left.get(code, 0), 0), amount)
        if part:
            left[code] -= part
            amount -= part
            drawn.append((code, part))
        if amount == 0:
            break
    return drawn


def _paired(debits: Sequence[tuple[str, int]],
            credits: Sequence[tuple[str, int]]) -> list[tuple[str, str, int]]:
    """The two sides, each summing to the payout, as lines of one debit, one credit, one
    amount, in order."""
    lines: list[tuple[str, str, int]] = []
    debit_at = credit_at = 0
    debit_left, credit_left = debits[0][1], credits[0][1]
    while True:
        part = min(debit_left, credit_left)
        lines.append((debits[debit_at][0], credits[credit_at][0], part))
        debit_left -= part
        credit_left -= part
        if debit_left == 0:
            debit_at += 1
            if debit_at == len(debits):
                assert credit_left == 0 and credit_at == len(credits) - 1, "sides differ"
                return lines
            debit_left = debits[debit_at][1]
        if credit_left == 0:
            credit_at += 1
            credit_left = credits[credit_at][1]
