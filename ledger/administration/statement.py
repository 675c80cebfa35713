"""The payouts after the distribution: their confirmations (bank references and txids of what
was actually sent), the payout status of the case, and one creditor's statement. Status and
statement are documents of plain values (amounts as decimal text in asset units, times as
datetimes) that the CLI shows as a table, JSON, text or HTML, and the HTTP views will too.

The plan they report on is the latest stored plan that has been distributed (its payouts are
what the ledger holds), else the latest stored plan.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from sqlalchemy import Connection, Engine, select

from ledger import files
from ledger.administration import case, distribution
from ledger.administration.case import CommencementPrices
from ledger.administration.distribution import Distributed
from ledger.administration.payouts import StoredPlan, stored_plans
from ledger.administration.rounding import value_in_quote
from ledger.book import Freeze
from ledger.entries import KEY_PATTERN
from ledger.errors import InputError, shown
from ledger.json_input import decimal_text, from_pydantic, iso_text, line_of, loads_strict, locate
from ledger.model import CUSTOMER_ID, EntryType
from ledger.money import format_amount
from ledger.storage import journal
from ledger.storage.engine import for_reading, for_writing
from ledger.storage.rows import chunks, load_assets, utcnow
from ledger.storage.schema import accounts, admin_confirmations, balances, batches, entries

MAX_CONFIRMATIONS = 1_000_000
CONFIRM_COLUMNS = ("entry", "reference", "sent_at")


def _current_plan(connection: Connection, paid: Sequence[Distributed]
                  ) -> tuple[StoredPlan | None, StoredPlan | None]:
    """(the plan reported on, the latest stored plan when that is another one)."""
    plans = stored_plans(connection)
    if not plans:
        return None, None
    distributed_plans = {item.plan for item in paid}
    chosen = next((item for item in plans if item.plan_hash in distributed_plans), plans[0])
    return chosen, (plans[0] if plans[0] is not chosen else None)


def _plan_record(stored: StoredPlan | None) -> dict[str, Any] | None:
    if stored is None:
        return None
    basis = stored.parsed()["basis"]
    return {"hash": stored.plan_hash, "created_at": stored.created_at,
            "pool_source": basis["pool_source"], "run_id": basis["run_id"],
            "tier2": stored.parsed()["tier2"] is not None}


def _case_record(freeze: Freeze) -> dict[str, Any]:
    return {"case": freeze.case_no, "administrator": freeze.administrator,
            "cutoff": freeze.cutoff}


def _confirmations(connection: Connection, keys: Sequence[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for part in chunks(sorted(keys)):
        found.update({row.entry_key: row for row in connection.execute(
            select(admin_confirmations).where(admin_confirmations.c.entry_key.in_(part)))})
    return found


# --- confirming payouts -------------------------------------------------------------------------


def _not_blank(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        raise ValueError("must not be blank")
    return value


def _optional_time(value: Any) -> Any:
    return None if value in (None, "") else iso_text(value)


class _ConfirmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entry: Annotated[str, Field(pattern=KEY_PATTERN)]
    reference: Annotated[str, BeforeValidator(_not_blank), Field(min_length=1, max_length=200)]
    sent_at: Annotated[AwareDatetime | None, BeforeValidator(_optional_time)] = None


class _ConfirmationsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payouts: Annotated[list[_ConfirmIn], Field(min_length=1, max_length=MAX_CONFIRMATIONS)]


@dataclass(frozen=True)
class ConfirmLine:
    where: str  # "payouts[3]" in JSON, "" in CSV
    line: int | None  # the CSV line
    entry: str
    reference: str
    sent_at: datetime | None


@dataclass(frozen=True)
class Confirmations:
    source: str
    text: str
    items: tuple[ConfirmLine, ...]

    def error(self, item: ConfirmLine, field: str, reason: str) -> InputError:
        path = f"{item.where}.{field}" if item.where else field
        line = item.line if item.line is not None else line_of(self.text, path)
        return InputError(reason, source=self.source, line=line, field=path)


def parse_confirmations(content: bytes, source: str) -> Confirmations:
    """JSON {"payouts": [{"entry", "reference", "sent_at"}]} (a file starting with `{`) or CSV
    with the header entry,reference[,sent_at]; sent_at is optional, ISO 8601 with its offset."""
    text = files.text_of(content, source)
    if text.lstrip().startswith("{"):
        try:
            try:
                document = _ConfirmationsIn.model_validate(loads_strict(text))
            except ValidationError as error:
                raise from_pydantic(error, _ConfirmationsIn) from None
        except InputError as error:
            raise locate(error, text).located(source=source) from None
        items = [ConfirmLine(f"payouts[{index}]", None, row.entry, row.reference, row.sent_at)
                 for index, row in enumerate(document.payouts)]
    else:
        items = [ConfirmLine("", line, row.entry, row.reference, row.sent_at)
                 for line, row in _csv_rows(text, source)]
    parsed = Confirmations(source, text, tuple(items))
    seen: set[str] = set()
    for item in items:
        if item.entry in seen:
            raise parsed.error(item, "entry", f"{shown(item.entry)} appears twice in this file")
        seen.add(item.entry)
    return parsed


def _csv_rows(text: str, source: str) -> list[tuple[int, _ConfirmIn]]:
    rows: list[tuple[int, _ConfirmIn]] = []
    for line, cells in files.csv_table(text, source, what="payouts", columns=CONFIRM_COLUMNS,
                                       required=CONFIRM_COLUMNS[:2],
                                       max_rows=MAX_CONFIRMATIONS):
        try:
            rows.append((line, _ConfirmIn.model_validate(cells)))
        except ValidationError as error:
            raise from_pydantic(error, _ConfirmIn).located(source=source, line=line) from None
    return rows


@dataclass(frozen=True)
class ConfirmResult:
    confirmed: int
    unchanged: int  # confirmed before exactly so, skipped


def confirm(engine: Engine, path: str) -> ConfirmResult:
    """Record the references of payouts actually sent: the whole file or nothing; a payout
    confirmed before with the same reference is skipped; a confirmation never changes."""
    source = files.source_name(path)
    parsed = parse_confirmations(files.read_file(path), source)
    with for_writing(engine).begin() as connection:
        case.require_freeze(connection)
        keys = [item.entry for item in parsed.items]
        known: set[str] = set()
        before: dict[str, Any] = {}
        for part in chunks(sorted(set(keys))):
            # Only the payouts `admin distribute` wrote: a distribution posted before the
            # freeze is no payout of the plan, and every other command ignores it too.
            known.update(connection.execute(
                select(entries.c.key).join(batches, batches.c.id == entries.c.batch_id).where(
                    entries.c.key.in_(part), entries.c.type == EntryType.DISTRIBUTION.value,
                    batches.c.admin_plan.is_not(None))).scalars())
            before.update({row.entry_key: row for row in connection.execute(
                select(admin_confirmations).where(admin_confirmations.c.entry_key.in_(part)))})
        rows, unchanged = [], 0
        now = utcnow()
        for item in parsed.items:
            if item.entry not in known:
                raise parsed.error(item, "entry", f"{shown(item.entry)} is not a distribution "
                                                  "entry of the ledger")
            earlier = before.get(item.entry)
            if earlier is None:
                rows.append({"entry_key": item.entry, "reference": item.reference,
                             "sent_at": item.sent_at, "source": source[:500], "loaded_at": now})
            elif _same(earlier, item):
                unchanged += 1
            else:
                raise parsed.error(item, "reference", _changed(earlier))
        if rows:
            ids = connection.execute(admin_confirmations.insert().returning(
                admin_confirmations.c.id), rows).scalars().all()
            journal.seal(connection, "admin_confirmations", {"admin_confirmations": ids})
    return ConfirmResult(len(rows), unchanged)


def _same(earlier: Any, item: ConfirmLine) -> bool:
    return bool(earlier.reference == item.reference and (
        item.sent_at is None or earlier.sent_at == item.sent_at))


def _changed(earlier: Any) -> str:
    sent = f", sent at {earlier.sent_at.isoformat()}" if earlier.sent_at else ""
    return (f"already confirmed with reference {shown(earlier.reference)}{sent} (from "
            f"{shown(earlier.source)}); a confirmation is recorded once and never changed")


# --- status -------------------------------------------------------------------------------------


def status(engine: Engine) -> dict[str, Any]:
    """Per tier and asset: planned, distributed, confirmed, still to distribute, not yet
    confirmed, reserved for open disputes; the payouts counted; and the total valued at the
    commencement prices when they are recorded."""
    with for_reading(engine).connect() as connection:
        freeze = case.require_freeze(connection)
        paid = distribution.distributed(connection)
        chosen, latest = _current_plan(connection, paid)
        confirmed = _confirmations(connection, [item.key for item in paid])
        scales = {code: asset.scale for code, asset in load_assets(connection).items()}
        prices = case.load_prices(connection)
    rows = status_numbers(None if chosen is None else chosen.parsed(), paid, set(confirmed))
    listed = [_status_row(tier, asset, scales[asset], rows[(tier, asset)])
              for tier, asset in sorted(rows)]
    return {"case": _case_record(freeze), "plan": _plan_record(chosen),
            "latest_plan": _plan_record(latest), "rows": listed,
            "total": _status_total(rows, scales, prices)}


def status_numbers(document: Mapping[str, Any] | None, paid: Sequence[Distributed],
                   confirmed: Set[str]) -> dict[tuple[int, str], dict[str, int]]:
    """Per (tier, asset), in minor units: planned (by `document`, the plan shown), paid and
    confirmed (every distribution, by any plan), outstanding (Σ per payout of what the plan
    allots that creditor less what they were paid there, never below zero: one creditor paid
    more than the plan now allots never hides another still owed), reserved, and counts."""
    rows: dict[tuple[int, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    paid_to: dict[tuple[str, int, str], int] = defaultdict(int)
    for item in paid:
        paid_to[(item.creditor, item.tier, item.asset)] += item.amount_minor
    if document is not None:
        for payout in distribution.plan_payouts(document):
            row = rows[(payout.tier, payout.asset)]
            row["planned"] += payout.planned_minor
            row["payouts_planned"] += payout.planned_minor > 0
            row["outstanding"] += max(payout.planned_minor - paid_to[
                (payout.creditor, payout.tier, payout.asset)], 0)
        if document["tier2"] is not None:
            rows[(2, document["rules"]["quote"])]["reserved"] += sum(
                int(line["reserved_minor"]) for line in document["tier2"]["lines"])
    for item in paid:
        row = rows[(item.tier, item.asset)]
        row["paid"] += item.amount_minor
        row["payouts_paid"] += 1
        if item.key in confirmed:
            row["confirmed"] += item.amount_minor
            row["payouts_confirmed"] += 1
    return rows


# outstanding: Σ over the plan's payouts of max(planned − paid to that creditor there, 0).
AMOUNTS = ("planned", "paid", "confirmed", "outstanding", "unconfirmed", "reserved")
COUNTS = ("payouts_planned", "payouts_paid", "payouts_confirmed")


def _with_derived(numbers: Mapping[str, int]) -> dict[str, int]:
    full = {name: numbers.get(name, 0) for name in (*AMOUNTS, *COUNTS)}
    full["unconfirmed"] = full["paid"] - full["confirmed"]
    return full


def _status_row(tier: int, asset: str, scale: int, numbers: Mapping[str, int]) -> dict[str, Any]:
    full = _with_derived(numbers)
    return {"tier": tier, "asset": asset,
            **{name: format_amount(full[name], scale) for name in AMOUNTS},
            **{name: full[name] for name in COUNTS}}


def _status_total(rows: Mapping[tuple[int, str], Mapping[str, int]], scales: Mapping[str, int],
                  prices: CommencementPrices | None) -> dict[str, Any]:
    counts = {name: sum(numbers.get(name, 0) for numbers in rows.values()) for name in COUNTS}
    if prices is None:
        return {"quote": None, **dict.fromkeys(AMOUNTS), **counts,
                "not_valued_because": "no commencement price table is recorded"}
    missing = sorted({asset for _, asset in rows if prices.price_of(asset) is None})
    if missing:
        return {"quote": prices.quote, **dict.fromkeys(AMOUNTS), **counts,
                "not_valued_because": f"no commencement price for {', '.join(missing)}"}
    values = dict.fromkeys(AMOUNTS, 0)
    for (_, asset), numbers in rows.items():
        price = prices.price_of(asset)
        assert price is not None
        for name, amount in _with_derived(numbers).items():
            if name in values:
                values[name] += value_in_quote(amount, scales[asset], price, prices.quote_scale)
    return {"quote": prices.quote,
            **{name: format_amount(value, prices.quote_scale) for name, value in values.items()},
            **counts, "not_valued_because": None}


# --- one creditor's statement -------------------------------------------------------------------


def statement(engine: Engine, creditor: str) -> dict[str, Any]:
    """One creditor's claim at the cut-off (valued), election, disputes, what the plan allots
    in tier 1 and tier 2, what was distributed and confirmed, and what is still owed."""
    if not CUSTOMER_ID.fullmatch(creditor):
        raise InputError(f"{shown(creditor)} is not a customer id such as \"c-001\"",
                         field="CUSTOMER")
    with for_reading(engine).connect() as connection:
        freeze = case.require_freeze(connection)
        claims = [c for c in case.load_claims(connection, freeze) if c.creditor == creditor]
        disputes = [d for d in case.load_disputes(connection) if d.creditor == creditor]
        election = next((e for e in case.load_elections(connection) if e.creditor == creditor),
                        None)
        accounts_now = _claim_accounts(connection, creditor)
        if not (claims or disputes or election or accounts_now):
            raise InputError(f"unknown customer {shown(creditor)}: no customer account in the "
                             "ledger, no dispute and no election", field="CUSTOMER")
        every = distribution.distributed(connection)
        chosen, _ = _current_plan(connection, every)
        paid = [item for item in every if item.creditor == creditor]
        confirmed = _confirmations(connection, [item.key for item in paid])
        scales = {code: asset.scale for code, asset in load_assets(connection).items()}
        prices = case.load_prices(connection)
    document = chosen.parsed() if chosen is not None else None

    def amount(minor: int, asset: str) -> str:
        return format_amount(minor, scales[asset])

    return {
        "creditor": creditor, "case": _case_record(freeze), "plan": _plan_record(chosen),
        "prices": None if prices is None else {"quote": prices.quote, "as_of": prices.as_of,
                                               "sha256": prices.sha256},
        "claims": [{"asset": c.asset, "claim": amount(c.amount_minor, c.asset),
                    **_valued(c.amount_minor, c.asset, scales, prices)} for c in claims],
        "election": None if election is None else {"option": election.option,
                                                    "payment": election.payment},
        "disputes": [{"asset": d.asset, "claimed": amount(d.claimed_minor, d.asset),
                      "status": d.status,
                      "allowed": amount(d.allowed_minor, d.asset) if d.status == "allowed"
                      else None} for d in disputes],
        **_allotted(document, creditor, scales, paid),
        "distributed": [{"entry": item.key, "tier": item.tier, "asset": item.asset,
                         "amount": amount(item.amount_minor, item.asset or ""),
                         "effective_at": item.effective_at,
                         "reference": _field(confirmed.get(item.key), "reference"),
                         "sent_at": _field(confirmed.get(item.key), "sent_at")}
                        for item in paid if item.asset in scales],
        "ledger_now": [{"account": code, "asset": asset, "balance": amount(balance, asset)}
                       for code, asset, balance in accounts_now],
    }


def _field(row: Any, name: str) -> Any:
    return None if row is None else getattr(row, name)


def _claim_accounts(connection: Connection, creditor: str) -> list[tuple[str, str, int]]:
    """The creditor's claim accounts (distribution's definition: those tier 1 debits) with
    today's balances (a claim less what tier 1 paid), by code."""
    assets = load_assets(connection)
    found = distribution._claim_accounts(connection, {(creditor, asset) for asset in assets})
    codes = sorted(code for group in found.values() for code in group)
    rows: list[tuple[str, str, int]] = []
    for part in chunks(codes):
        rows += [(row.code, row.asset, int(row.balance_minor)) for row in connection.execute(
            select(accounts.c.code, accounts.c.asset, balances.c.balance_minor)
            .join(balances, balances.c.account_id == accounts.c.id)
            .where(accounts.c.code.in_(part)))]
    return sorted(rows)


def _valued(amount_minor: int, asset: str, scales: Mapping[str, int],
            prices: CommencementPrices | None) -> dict[str, Any]:
    price = None if prices is None else prices.price_of(asset)
    if prices is None or price is None:
        return {"price": None, "value": None}
    value = value_in_quote(amount_minor, scales[asset], price, prices.quote_scale)
    return {"price": decimal_text(price), "value": format_amount(value, prices.quote_scale)}


def _allotted(document: Mapping[str, Any] | None, creditor: str, scales: Mapping[str, int],
              paid: Sequence[Distributed]) -> dict[str, Any]:
    """Tier 1 and tier 2 as the plan allots them, and what is still owed of them."""
    if document is None:
        return {"tier1": [], "tier2": None, "owed": []}
    paid_by: dict[tuple[int | None, str | None], int] = defaultdict(int)
    for item in paid:
        paid_by[(item.tier, item.asset)] += item.amount_minor
    tier1, owed = [], []
    for line in document["tier1"]["lines"]:
        if line["creditor"] != creditor:
            continue
        asset, scale = line["asset"], scales[line["asset"]]
        tier1.append({"asset": asset, **{name: format_amount(int(line[f"{name}_minor"]), scale)
                                         for name in ("claim", "paid", "shortfall")}})
        left = int(line["paid_minor"]) - paid_by[(1, asset)]
        owed.append({"tier": 1, "asset": asset, "to_distribute": format_amount(max(left, 0), scale),
                     "reserved": None})
    tier2 = None
    second = document["tier2"]
    line2 = next((item for item in second["lines"] if item["creditor"] == creditor),
                 None) if second is not None else None
    if line2 is not None:
        quote = document["rules"]["quote"]
        scale = scales[quote]
        tier2 = {"asset": quote, "option": line2["option"], "payment": line2["payment"],
                 "elected": line2["elected"],
                 **{name: format_amount(int(line2[f"{name}_minor"]), scale) for name in (
                     "claim", "allowed", "disputed", "basic", "early", "final", "payable",
                     "reserved", "total")}}
        left = int(line2["payable_minor"]) - paid_by[(2, quote)]
        owed.append({"tier": 2, "asset": quote, "to_distribute": format_amount(max(left, 0), scale),
                     "reserved": format_amount(int(line2["reserved_minor"]), scale)})
    return {"tier1": tier1, "tier2": tier2, "owed": owed}
