"""From the statements in one camt file to one observation per account, currency and day.

The rules, each a check that refuses rather than guesses:

- Pages of one statement (same `Id` and account, `StmtPgntn`) are read as one statement;
  an exact copy of a statement is read once.
- The balance that counts is the closing booked balance `CLBD`. A camt.052 report that has
  none (an intraday report) counts its interim booked balance `ITBD`: the booked balance at the
  report's time, which is what the bank holds for the account then; available balances
  (`CLAV`, `ITAV`, …) include credit lines and value-dated items, so they never count.
- Opening (`OPBD`, else `PRCD`) + booked entries = closing, exactly, wherever a statement
  carries an opening balance and all its pages. Pending (`PDNG`), information-only and future
  entries do not move the booked balance and are not counted.
- Several statements for the same account, currency and day (an intraday sequence) are put in
  order by `ElctrncSeqNb`, else `LglSeqNb`, else `CreDtTm`, else their order in the file; each
  must open at the closing of the one before it, and the last closing is the day's balance.
  In file order, a chain that ends at the balance it began with is refused: any of its
  statements could be the last.
- An observation is as of the balance's day (a date, also for a camt.052 `ITBD` with a time),
  so that a report never counts as later than the same day's closing statement.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow, Rounded, localcontext
from itertools import pairwise

from reconcile.adapters.camt_statement import Balance, Entry, Statement
from reconcile.adapters.iso20022 import shown
from reconcile.evidence import Movement, Observation

# Sums of up to a million 18-digit amounts fit in 30 digits: any rounding is a bug, so it traps.
EXACT = Context(prec=60, traps=[Inexact, Rounded, InvalidOperation, Overflow])
OPENING_CODES = ("OPBD", "PRCD")


@dataclass(frozen=True)
class Period:
    """One statement (all its pages) reduced to what the balance rules need."""

    first: Statement
    last: Statement
    opening: Balance | None
    closing: Balance
    entries: tuple[Entry, ...]
    complete: bool  # every page is in the file, so the entries are all of the statement's

    @property
    def label(self) -> str:
        return self.first.label

    @property
    def currency(self) -> str:
        return self.closing.currency


def observations(statements: Sequence[Statement], message: str) -> list[Observation]:
    periods = [_period(pages, message) for pages in _statements(statements)]
    for period in periods:
        _check_currencies(period)
        _check_entries_add_up(period)
    groups: dict[tuple[object, ...], list[Period]] = defaultdict(list)
    for period in periods:
        groups[period.first.account, period.currency, period.closing.on].append(period)
    return [_observation(group) for group in groups.values()]


def _statements(statements: Sequence[Statement]) -> list[list[Statement]]:
    """The file's statements in file order, each as its list of pages (one when unpaged), with
    exact copies dropped."""
    seen: set[tuple[object, ...]] = set()
    paged: dict[tuple[object, ...], dict[int, Statement]] = {}
    found: list[list[Statement] | dict[int, Statement]] = []
    for statement in statements:
        copy = (statement.ident, statement.account, statement.page, *statement.content())
        if copy in seen:
            continue
        seen.add(copy)
        if statement.page is None:
            found.append([statement])
            continue
        pages = paged.get((statement.ident, statement.account))
        if pages is None:
            pages = paged[statement.ident, statement.account] = {}
            found.append(pages)
        if statement.page in pages:
            raise statement.place.error(
                f"page {statement.page} appears twice with different content (first at line "
                f"{pages[statement.page].place.line})")
        pages[statement.page] = statement
    return [[group[n] for n in sorted(group)] if isinstance(group, dict) else group
            for group in found]


def _period(pages: list[Statement], message: str) -> Period:
    numbers = [page.page for page in pages]
    complete = numbers == [None] or (
        numbers == list(range(1, len(pages) + 1)) and pages[-1].last_page is True
        and not any(page.last_page for page in pages[:-1]))
    entries = tuple(entry for page in pages for entry in page.entries)
    return Period(pages[0], pages[-1], _opening(pages), _closing(pages, message), entries,
                  complete)


def _one(statement: Statement, code: str) -> Balance | None:
    found = [balance for balance in statement.balances if balance.code == code]
    if len(found) > 1:
        raise found[1].place.error(f"{len(found)} balances of type {code}, expected one")
    return found[0] if found else None


def _first(pages: Sequence[Statement], code: str) -> Balance | None:
    """The balance of type `code` on the first page that has one."""
    return next(filter(None, (_one(page, code) for page in pages)), None)


def _opening(pages: list[Statement]) -> Balance | None:
    opening, previous = (_first(pages, code) for code in OPENING_CODES)
    if opening and previous and (opening.amount, opening.currency) != (previous.amount,
                                                                       previous.currency):
        raise previous.place.error(
            f"the opening booked balance OPBD {_money(opening)} and the previously closed "
            f"booked balance PRCD {_money(previous)} differ")
    return opening or previous


def _closing(pages: list[Statement], message: str) -> Balance:
    """The closing booked balance from the last page that has one (pages are in order)."""
    backwards = pages[::-1]
    closing = _first(backwards, "CLBD")
    if closing is None and message == "camt.052":
        closing = _first(backwards, "ITBD")
    if closing is not None:
        return closing
    wanted = "closing booked balance CLBD" + (
        " or interim booked balance ITBD" if message == "camt.052" else "")
    codes = ", ".join(dict.fromkeys(shown(b.code) for page in pages for b in page.balances))
    has = f"has balances {codes} but" if codes else "has no balances (Bal) and so"
    raise pages[-1].place.error(f"{has} no {wanted}", join=" ")


def _check_currencies(period: Period) -> None:
    currency = period.currency
    account = period.first.account_currency
    if account is not None and account != currency:
        raise period.closing.place.error(
            f"the balance is in {currency}, the account (Acct/Ccy) in {account}")
    if period.opening is not None and period.opening.currency != currency:
        raise period.opening.place.error(
            f"the opening balance is in {period.opening.currency}, the closing balance in "
            f"{currency}")
    for entry in period.entries:
        if entry.currency != currency:
            raise entry.place.error(
                f"entry in {entry.currency} on a statement whose closing balance is in {currency}")


def _booked_sum(entries: Sequence[Entry]) -> Decimal:
    with localcontext(EXACT):
        return sum((entry.amount for entry in entries if entry.booked), Decimal(0))


def _check_entries_add_up(period: Period) -> None:
    if period.opening is None or not period.complete:
        return
    moved = _booked_sum(period.entries)
    with localcontext(EXACT):
        expected = period.opening.amount + moved
        difference = period.closing.amount - expected
    if difference:
        raise period.closing.place.error(
            f"opening {period.opening.code} {_money(period.opening)} + booked entries "
            f"{_signed(moved)} = {_signed(expected)}, but the closing {period.closing.code} is "
            f"{_money(period.closing)}: {_signed(abs(difference))} too "
            f"{'much' if difference > 0 else 'little'} in the closing balance")


def _money(balance: Balance) -> str:
    return f"{_signed(balance.amount)} {balance.currency}"


def _signed(amount: Decimal) -> str:
    return format(amount, "f")


def _ordered(group: list[Period]) -> tuple[list[Period], str]:
    """The intraday sequence in order, and what put it in order."""
    for basis in ("ElctrncSeqNb", "LglSeqNb"):
        numbers = [p.first.electronic_seq if basis == "ElctrncSeqNb" else p.first.legal_seq
                   for p in group]
        if None not in numbers and len(set(numbers)) == len(numbers):
            return [p for _, p in sorted(zip(numbers, group, strict=True),
                                         key=lambda pair: pair[0] or 0)], basis
    times = [p.first.created_at for p in group]
    known = [t for t in times if t is not None]
    if len(known) == len(group) and len(set(known)) == len(known) and (
            len({t.utcoffset() is None for t in known}) == 1):
        return [p for _, p in sorted(zip(known, group, strict=True),
                                     key=lambda pair: pair[0])], "CreDtTm"
    return group, "order in the file"


def _check_chain(ordered: list[Period], basis: str) -> None:
    for before, after in pairwise(ordered):
        if after.opening is None:
            raise after.closing.place.error(
                f"has no opening booked balance (OPBD or PRCD), so it cannot be checked to follow "
                f"{before.label} (closing {_money(before.closing)}) in the day's sequence",
                join=" ")
        if after.opening.amount != before.closing.amount:
            raise after.opening.place.error(
                f"opens at {_money(after.opening)}, but {before.label}, before it by {basis}, "
                f"closes at {_money(before.closing)}: the day's sequence of statements is broken",
                join=" ")
    first, last = ordered[0], ordered[-1]
    if basis == "order in the file" and first.opening is not None and \
            first.opening.amount == last.closing.amount and \
            len({p.closing.amount for p in ordered}) > 1:
        # Without sequence numbers the order comes from the chain of balances alone, and a
        # chain that ends where it began could be read from any of its statements.
        raise last.closing.place.error(
            f"and {first.label} for the same account and day carry no ElctrncSeqNb, LglSeqNb or "
            f"distinct CreDtTm, and their balances return to {_money(last.closing)}: which "
            f"closing is the last cannot be told", join=" ")


def _observation(group: list[Period]) -> Observation:
    ordered, basis = _ordered(group)
    _check_chain(ordered, basis)
    last = ordered[-1]
    movements = tuple(_movement(entry) for period in ordered for entry in period.entries
                      if entry.booked)
    facts: dict[str, object] = {
        "statement_id": last.last.ident, "version": last.last.message,
        "message": last.last.message[:8], "balance_type": last.closing.code,
        "account_currency": last.first.account_currency,
        "entries_checked": all(p.opening is not None and p.complete for p in ordered)}
    if len(ordered) > 1:
        facts["statements"] = [period.first.ident for period in ordered]
        facts["ordered_by"] = basis
    return Observation(
        source=last.closing.place.source, kind="camt053", account=dict(last.first.account),
        currency=last.currency, amount=last.closing.amount, as_of=last.closing.on,
        movements=movements, facts=facts)


def _movement(entry: Entry) -> Movement:
    assert entry.booked_on is not None, "a booked entry without a date is refused when read"
    return Movement(amount=entry.amount, booked_on=entry.booked_on, reference=entry.reference,
                    description=entry.description)

