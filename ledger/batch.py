"""A file of drafts becomes one checked batch: resolved, deduplicated, every invariant applied.

Pure: storage loads the book and the already-posted entries the batch refers to, calls
`prepare_batch`, and writes the result in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ledger.book import Book, BreachEvent, apply, effect_of
from ledger.entries import Draft, content_hash
from ledger.errors import ErrorLog, InputError, shown
from ledger.incidents import IncidentLink
from ledger.model import Account, Entry, EntryType, Line, implicit_customer_account
from ledger.money import parse_amount


@dataclass(frozen=True)
class PostedEntry:
    """What a batch needs to know of an entry already in the ledger."""

    key: str
    content_hash: str
    lines: tuple[Line, ...]
    reversed: bool


@dataclass(frozen=True)
class PreparedEntry:
    entry: Entry
    content_hash: str
    line_no: int


@dataclass
class PreparedBatch:
    entries: list[PreparedEntry] = field(default_factory=list)
    skipped: int = 0
    new_accounts: list[Account] = field(default_factory=list)
    balance_deltas: dict[str, int] = field(default_factory=dict)
    coverage_deltas: dict[str, int] = field(default_factory=dict)
    breach_events: list[BreachEvent] = field(default_factory=list)
    # Incidents opened by this batch (id → key of the opening entry), and every link to one.
    new_incidents: dict[str, str] = field(default_factory=dict)
    links: list[IncidentLink] = field(default_factory=list)
    # Whether a full error log stopped a check before the last draft.
    stopped: bool = False

    @property
    def posting_count(self) -> int:
        return sum(2 * len(prepared.entry.lines) for prepared in self.entries)


def referenced_accounts(drafts: Iterable[Draft]) -> set[str]:
    return {code for draft in drafts for line in draft.lines for code in (line.debit, line.credit)}


def prepare_batch(
    drafts: Iterable[Draft],
    book: Book,
    posted: Mapping[str, PostedEntry],
    source: str,
    errors: ErrorLog | None = None,
) -> PreparedBatch:
    """Check every draft in file order against the book, mutating the book as it goes.

    Without `errors`, the first invalid draft raises (a post is all or nothing). With it
    (`post --check`), an invalid draft is logged and left out of the batch and of the book, so
    the drafts after it are checked against the balances without it; the check stops when the
    log is full. One definition of every check, whichever way it reports.
    """
    batch = PreparedBatch()
    in_batch: dict[str, PreparedEntry] = {}
    reversed_in_batch: set[str] = set()
    for draft in drafts:
        if errors is not None and errors.full:
            batch.stopped = True
            break
        try:
            # Checks before it changes anything: a draft that fails leaves batch and book as
            # they were (but for a customer account opened on first use, which is harmless).
            _prepare_one(draft, book, posted, batch, in_batch, reversed_in_batch)
        except InputError as error:
            located = error.located(source=source, line=draft.line_no)
            if errors is None:
                raise located from None
            errors.add(located)
    return batch


def _prepare_one(
    draft: Draft,
    book: Book,
    posted: Mapping[str, PostedEntry],
    batch: PreparedBatch,
    in_batch: dict[str, PreparedEntry],
    reversed_in_batch: set[str],
) -> None:
    earlier_hash = in_batch[draft.key].content_hash if draft.key in in_batch else None
    # Where the key was seen first: an earlier line of this file, or the ledger.
    earlier_line = in_batch[draft.key].line_no if draft.key in in_batch else None
    if draft.key in posted:
        earlier_hash, earlier_line = posted[draft.key].content_hash, None
    if earlier_hash is not None:
        # A duplicate is compared, never re-checked: yesterday's file posted again is
        # skipped even if its entries would not pass against today's balances.
        try:
            digest = content_hash(_resolve(draft, book, batch, posted, in_batch, None))
        except InputError:
            raise _key_reused(draft.key, earlier_line, draft.line_no) from None
        if digest != earlier_hash:
            raise _key_reused(draft.key, earlier_line, draft.line_no)
        batch.skipped += 1
        return
    entry = _resolve(draft, book, batch, posted, in_batch, reversed_in_batch)
    digest = content_hash(entry)
    effect = effect_of(entry, book)
    if entry.type is EntryType.INCIDENT and effect.incident not in book.incidents:
        assert effect.incident is not None
        batch.new_incidents[effect.incident] = entry.key
    batch.breach_events.extend(apply(entry, effect, book))
    batch.links.extend(effect.links)
    for code, delta in effect.balance_deltas.items():
        batch.balance_deltas[code] = batch.balance_deltas.get(code, 0) + delta
    for asset, delta in effect.coverage_deltas.items():
        batch.coverage_deltas[asset] = batch.coverage_deltas.get(asset, 0) + delta
    prepared = PreparedEntry(entry, digest, draft.line_no)
    batch.entries.append(prepared)
    in_batch[draft.key] = prepared
    if entry.reverses is not None:
        reversed_in_batch.add(entry.reverses)


def _key_reused(key: str, earlier_line: int | None, line: int) -> InputError:
    if earlier_line is not None:
        return InputError(f"key {shown(key)} appears twice in this file (lines {earlier_line} "
                          f"and {line}) with different content", field="key")
    return InputError(f"key {shown(key)} is already posted with other content", field="key")


def _resolve(
    draft: Draft,
    book: Book,
    batch: PreparedBatch,
    posted: Mapping[str, PostedEntry],
    in_batch: Mapping[str, PreparedEntry],
    reversed_in_batch: set[str] | None,
) -> Entry:
    """Accounts and amounts resolved; a reversal's mirror only when `reversed_in_batch` is given
    (its content hash does not depend on the lines)."""
    if draft.type is EntryType.REVERSAL:
        assert draft.reverses is not None
        lines: tuple[Line, ...] = ()
        if reversed_in_batch is not None:
            lines = _mirror(draft.reverses, posted, in_batch, reversed_in_batch)
    else:
        lines = tuple(_resolve_line(index, line.debit, line.credit, line.amount, book, batch)
                      for index, line in enumerate(draft.lines))
    return Entry(
        key=draft.key,
        type=draft.type,
        effective_at=draft.effective_at,
        lines=lines,
        memo=draft.memo,
        metadata=draft.metadata,
        reverses=draft.reverses,
    )


def _mirror(
    key: str,
    posted: Mapping[str, PostedEntry],
    in_batch: Mapping[str, PreparedEntry],
    reversed_in_batch: set[str],
) -> tuple[Line, ...]:
    if key in in_batch:
        original = in_batch[key].entry.lines
        already = key in reversed_in_batch
    elif key in posted:
        original = posted[key].lines
        already = posted[key].reversed or key in reversed_in_batch
    else:
        raise InputError(f"reverses {shown(key)}, which is not in the ledger",
                         field="reverses")
    if already:
        raise InputError(f"entry {shown(key)} is already reversed", field="reverses")
    return tuple(Line(line.credit, line.debit, line.amount_minor) for line in original)


def _resolve_line(
    index: int, debit: str, credit: str, amount: object, book: Book, batch: PreparedBatch
) -> Line:
    where = f"lines[{index}]"
    if debit == credit:
        raise InputError("debit and credit are the same account", field=f"{where}.credit")
    accounts = [_account(code, book, batch, f"{where}.{side}")
                for code, side in ((debit, "debit"), (credit, "credit"))]
    if accounts[0].asset != accounts[1].asset:
        raise InputError(
            f"mixed assets in one line: {debit} is {accounts[0].asset}, "
            f"{credit} is {accounts[1].asset}",
            field=f"{where}.credit",
        )
    asset = book.assets[accounts[0].asset]
    try:
        amount_minor = parse_amount(amount, asset.scale)
    except InputError as error:
        raise InputError(f"{error.reason} ({asset.code})", field=f"{where}.amount") from None
    if amount_minor > book.max_minor:
        raise InputError(
            f"amount is outside the database's range (at most {book.max_minor} minor units)",
            field=f"{where}.amount",
        )
    return Line(debit, credit, amount_minor)


def _account(code: str, book: Book, batch: PreparedBatch, field_name: str) -> Account:
    account = book.accounts.get(code)
    if account is not None:
        return account
    implicit = implicit_customer_account(code)
    if implicit is None:
        raise InputError(f"unknown account {shown(code)}: not in the chart (load it with "
                         "`segledger chart load`), and not a customer account "
                         "customer:<id>:<ASSET>", field=field_name)
    if implicit.asset not in book.assets:
        raise InputError(f"unknown asset {implicit.asset} in account {shown(code)}: no such "
                         "asset in the chart", field=field_name)
    book.accounts[code] = implicit
    batch.new_accounts.append(implicit)
    return implicit
