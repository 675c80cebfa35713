"""The posting paths agree (issue 11): PostgreSQL's COPY path, its plain INSERT path and
SQLite's plain path accept and refuse the same batches, with the same errors, and leave the
same ledger behind, row for row.

A generated scenario is a sequence of steps: batches of entries (deposits, trades between
customers, fees, withdrawals, transfers, sweeps, capital, incidents and top-ups, reserve
provisions and draws, reversals, customers opened on first use, entries dated before
postings their accounts already have, entries already posted, several lines and assets),
with invalid entries mixed in at random places (overdrafts now or at an earlier time,
unknown accounts and assets, keys reused with other content, reversals of unknown or
reversed entries, firewall breaks, entries in a closed period, too many decimals, …); the
same batch posted again; period closes. Keys, memos and metadata hold what COPY's text
format must escape; times carry offsets and fractions of a second.

Every step runs on three fresh ledgers, one per path, and the three must agree on what
`post --check` reported (which must hold the error the post refused with, and nothing for a
batch it posted), on what the post did, and on everything stored, compared by keys and
codes (ids come from sequences, which a rolled-back batch may advance on one database and
not on another); `verify` must find nothing at the end. Checkpoints are made every few
postings, so that scenarios this small make and move them.

The generator keeps a model of the balances it has built, only to aim: a batch without an
injected fault is built to be valid (every amount fits every balance at every earlier time,
the firewall allows every fall of coverage) and must be posted as built; a batch with one
must be refused. The model errs on the safe side; the ledger is the judge.

Then large batches (many customers opened at once, every key looked up again) with the
chunk sizes cut down, and, with SEGLEDGER_FUZZ=full (CI), past the real IN_CHUNK.
`pytest tests/test_post_paths.py --hypothesis-show-statistics` shows what the batches
came to.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, Text, cast, select, text

from ledger import service
from ledger.chart import parse_chart
from ledger.entries import Draft
from ledger.errors import InputError
from ledger.model import Account, implicit_customer_account
from ledger.money import format_amount
from ledger.storage import checkpoints, rows
from ledger.storage.chart_store import load_chart
from ledger.storage.engine import make_engine
from ledger.storage.integrity import verify
from ledger.storage.posting import check_batch, post_batch
from ledger.storage.reading import close_period
from ledger.storage.schema import (
    accounts,
    assets,
    balance_checkpoints,
    balances,
    batches,
    breaches,
    chain_links,
    closed_periods,
    coverage,
    entries,
    incident_links,
    incidents,
    postings,
)
from tests.helpers import CHART, jsonl

pytestmark = pytest.mark.postgres

# Examples per property: a quick run by default; SEGLEDGER_FUZZ=full (CI, .ci/run) tries more.
EXAMPLES = 150 if os.environ.get("SEGLEDGER_FUZZ") == "full" else 25

TRUST, OPERATING = "custody:customer:trust:JPY", "custody:company:operating:JPY"
RESERVE_CASH, RESERVE = "custody:company:reserve:JPY", "reserve:liability:JPY"
HOT, COLD = "custody:customer:hot:BTC", "custody:customer:cold:BTC"
GUARANTEE = "custody:company:guarantee:BTC"
CAPITAL = {"JPY": "equity:capital:JPY", "BTC": "equity:capital:BTC"}
FEES, RENT, LOSS = "revenue:fees:JPY", "expense:rent:JPY", "loss:incident:BTC"
CUSTODY = {"JPY": TRUST, "BTC": HOT}
SCALE = {"JPY": 0, "BTC": 8}
DEPOSIT_MAX = {"JPY": 2_000_000, "BTC": 3 * 10**8}
ASSETS = sorted(SCALE)

# Entries are dated at "moments", microseconds after BASE: at one of SLOTS hours, mostly on
# the hour, sometimes a fraction of a second after it; written in one of several offsets.
BASE = datetime(2025, 11, 1, tzinfo=UTC)
SLOTS = 60
HOUR = 3600 * 10**6
LATEST = SLOTS * HOUR
ZONES = (UTC, timezone(timedelta(hours=9)), timezone(-timedelta(hours=3, minutes=30)))
CHART_ACCOUNTS = {a.code: a for a in parse_chart(json.dumps(CHART), "chart.json").accounts}

# Printable ASCII without spaces (KEY_PATTERN): backslashes, quotes, %, _, |, ~, …
KEY_SHAPES = ("k{}", "k\\{}\\N", "k'{}\"", "k%{}_", "K|{},~", "{}\\t")
TEXT = "ab é日本-\\\t\n\r'\"%_"  # memos and metadata: what COPY escapes, quotes, unicode

Line3 = tuple[str, str, int]  # debit, credit, amount in minor units
Outcome = tuple[Any, ...]
Dump = dict[str, list[tuple[Any, ...]]]


def account(code: str) -> Account:
    found = CHART_ACCOUNTS.get(code) or implicit_customer_account(code)
    assert found is not None, code
    return found


def asset_of(code: str) -> str:
    """An account's asset; for a code the ledger does not know, its last part if an asset."""
    found = CHART_ACCOUNTS.get(code) or implicit_customer_account(code)
    if found is not None and found.asset in SCALE:
        return found.asset
    return "BTC" if code.endswith("BTC") else "JPY"


def customer(name: str, asset: str) -> str:
    return f"customer:{name}:{asset}"


def at_slot(slot: int) -> datetime:
    return BASE + timedelta(hours=slot)


def at_moment(moment: int) -> datetime:
    return BASE + timedelta(microseconds=moment)


# --- the model the generator aims with ----------------------------------------------------


@dataclass
class Names:
    """Counters shared by a model and its working copies: keys and customers never repeat."""

    keys: int = 0
    customers: int = 0
    incidents: int = 0

    def key(self) -> str:
        """A new key, in turn of shapes that COPY's text format must escape, or SQL quote."""
        self.keys += 1
        return KEY_SHAPES[self.keys % len(KEY_SHAPES)].format(self.keys)


@dataclass
class Model:
    names: Names = field(default_factory=Names)
    # Normal-side changes of every account that must stay non-negative, in posting order.
    history: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    coverage: dict[str, int] = field(default_factory=dict)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)  # key → entry as posted
    lines: dict[str, tuple[Line3, ...]] = field(default_factory=dict)  # key → resolved lines
    kinds: dict[str, str] = field(default_factory=dict)
    reversed: set[str] = field(default_factory=set)
    incidents: dict[str, tuple[str, int]] = field(default_factory=dict)  # id → kind, moment
    closed: int = -1  # the hour closed through (-1: none); entries must be dated after it

    def copy(self) -> Model:
        return Model(self.names, {code: list(h) for code, h in self.history.items()},
                     dict(self.coverage), dict(self.items), dict(self.lines), dict(self.kinds),
                     set(self.reversed), dict(self.incidents), self.closed)

    def customers(self, asset: str | None = None) -> list[str]:
        found = {code.split(":")[1] for code in self.history
                 if code.startswith("customer:") and (asset is None or code.endswith(f":{asset}"))}
        return sorted(found)

    @property
    def closed_at(self) -> int:
        """The moment the ledger is closed through (half past the hour), or -1."""
        return -1 if self.closed < 0 else self.closed * HOUR + HOUR // 2

    def total(self, code: str) -> int:
        return sum(change for _, change in self.history.get(code, []))

    def room(self, code: str, moment: int) -> int:
        """How much a posting dated `moment` may take from the account, safely: no more than
        the balance before that time, nor than the running balance at any posting since."""
        points = sorted(self.history.get(code, []), key=lambda point: point[0])  # stable
        low = sum(change for when, change in points if when < moment)
        running = 0
        for when, change in points:
            running += change
            if when >= moment:
                low = min(low, running)
        return low

    def dip(self, code: str, moment: int) -> int:
        """The lowest running balance a posting dated `moment` would be subtracted from: the
        balance after every posting up to and including `moment` (it goes after those), and
        every running balance after it."""
        points = sorted(self.history.get(code, []), key=lambda point: point[0])
        low = sum(change for when, change in points if when <= moment)
        running = 0
        for when, change in points:
            running += change
            if when > moment:
                low = min(low, running)
        return low

    def fits(self, kind: str, lines: Sequence[Line3], moment: int) -> bool:
        """Whether the ledger must accept the entry (conservatively)."""
        if moment <= self.closed_at:
            return False
        changes: dict[str, int] = defaultdict(int)
        signs: dict[str, set[int]] = defaultdict(set)
        covered: dict[str, int] = defaultdict(int)
        for debit, credit, minor in lines:
            for code, sign in ((debit, 1), (credit, -1)):
                holder = account(code)
                change = sign * holder.normal_sign * minor
                changes[code] += change
                signs[code].add(1 if change > 0 else -1)
                covered[holder.asset] += holder.coverage_sign * change
        if any(len(both) > 1 for both in signs.values()):
            return False  # an account up and down in one entry: not aimed at
        for code, change in changes.items():
            if change < 0 and account(code).must_stay_non_negative \
                    and -change > self.room(code, moment):
                return False
        for asset, change in covered.items():
            if change >= 0 or kind == "incident":
                continue
            if kind in ("sweep", "reversal") and self.coverage.get(asset, 0) + change >= 0:
                continue
            return False
        return True

    def apply(self, item: dict[str, Any], kind: str, lines: tuple[Line3, ...], moment: int) -> None:
        for debit, credit, minor in lines:
            for code, sign in ((debit, 1), (credit, -1)):
                holder = account(code)
                change = sign * holder.normal_sign * minor
                if holder.must_stay_non_negative:
                    self.history.setdefault(code, []).append((moment, change))
                self.coverage[holder.asset] = (self.coverage.get(holder.asset, 0)
                                               + holder.coverage_sign * change)
        key = item["key"]
        self.items[key], self.lines[key], self.kinds[key] = item, lines, kind
        if kind == "reversal":
            self.reversed.add(item["reverses"])
        incident = item.get("metadata", {}).get("incident")
        if kind == "incident" and incident not in self.incidents:
            self.incidents[incident] = (item["metadata"]["incident_kind"], moment)


# --- generating entries -------------------------------------------------------------------

Planned = tuple[str, tuple[Line3, ...], dict[str, Any]]  # kind, lines, metadata
METADATA = st.dictionaries(
    st.sampled_from(["ref", "note", "n", "tags", "日本"]),
    st.one_of(st.text(TEXT, max_size=8), st.integers(-10**20, 10**20), st.booleans(),
              st.none(), st.lists(st.integers(0, 9), max_size=3),
              st.floats(allow_nan=False, allow_infinity=False, width=32)),
    max_size=2)


def _amount_text(draw: st.DrawFn, minor: int, asset: str) -> str | int:
    """The same amount written in one of the ways the reader accepts."""
    written = format_amount(minor, SCALE[asset])
    way = draw(st.integers(0, 2))
    if way == 1 and "." in written:
        written = written.rstrip("0").rstrip(".")
    elif way == 2 and asset == "JPY":
        return minor if draw(st.booleans()) else f"{minor}.0"
    return written


def _when(draw: st.DrawFn, moment: int) -> str:
    written = at_moment(moment).astimezone(draw(st.sampled_from(ZONES))).isoformat()
    if written.endswith("+00:00") and draw(st.booleans()):
        written = written[:-6] + "Z"
    return written


def _item(draw: st.DrawFn, key: str, kind: str, lines: Sequence[Line3], moment: int,
          metadata: dict[str, Any], reverses: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"key": key, "type": kind, "effective_at": _when(draw, moment)}
    memo = draw(st.none() | st.text(TEXT, max_size=10))
    if memo is not None:
        item["memo"] = memo
    merged = {**draw(METADATA), **metadata}
    if merged:
        item["metadata"] = merged
    if reverses is not None:
        item["reverses"] = reverses
    else:
        item["lines"] = [{"debit": d, "credit": c,
                          "amount": _amount_text(draw, minor, asset_of(d))}
                         for d, c, minor in lines]
    return item


def _moment(draw: st.DrawFn, work: Model) -> int:
    """A moment after the closed period: on an hour, or a fraction of a second after it."""
    hour = draw(st.integers(work.closed + 1, SLOTS))
    return hour * HOUR + draw(st.one_of(st.just(0), st.integers(0, 999_999)))


def _someone(draw: st.DrawFn, work: Model, asset: str | None = None) -> str:
    """A known customer, or a new one (opened on first use)."""
    known = work.customers(asset)
    if known and draw(st.integers(0, 3)) > 0:
        return draw(st.sampled_from(known))
    work.names.customers += 1
    return ("new-{}", "n.{}_x", "N_{}.-")[work.names.customers % 3].format(work.names.customers)


def _payer(draw: st.DrawFn, work: Model, asset: str, moment: int) -> tuple[str, int] | None:
    """A customer with something to pay with at `moment`, and how much (custody allowing)."""
    able = [(name, room) for name in work.customers(asset)
            if (room := work.room(customer(name, asset), moment)) > 0]
    if not able:
        return None
    return draw(st.sampled_from(able))


def _deposit(draw: st.DrawFn, work: Model, moment: int) -> Planned | None:
    asset = draw(st.sampled_from(ASSETS))
    minor = draw(st.integers(1, DEPOSIT_MAX[asset]))
    return "deposit", ((CUSTODY[asset], customer(_someone(draw, work, asset), asset), minor),), {}


def _withdrawal(draw: st.DrawFn, work: Model, moment: int) -> Planned | None:
    asset = draw(st.sampled_from(ASSETS))
    payer = _payer(draw, work, asset, moment)
    if payer is None:
        return None
    limit = min(payer[1], work.room(CUSTODY[asset], moment))
    if limit < 1:
        return None
    minor = draw(st.integers(1, limit))
    return "withdrawal", ((customer(payer[0], asset), CUSTODY[asset], minor),), {}


def _trade(draw: st.DrawFn, work: Model, moment: int) -> Planned | None:
    payer = _payer(draw, work, "JPY", moment)
    if payer is None:
        return None
    name, room = payer
    other = _someone(draw, work)
    if other == name:
        return None
    paid = draw(st.integers(1, room))
    lines = [(customer(name, "JPY"), customer(other, "JPY"), paid)]
    coins = work.room(customer(other, "BTC"), moment)
    if coins > 0 and draw(st.booleans()):
        lines.append((customer(other, "BTC"), customer(name, "BTC"), draw(st.integers(1, coins))))
    if paid < room and draw(st.booleans()):
        lines.append((customer(name, "JPY"), FEES, draw(st.integers(1, room - paid))))
    return "trade", tuple(draw(st.permutations(lines))), {}


def _fee(draw: st.DrawFn, work: Model, moment: int) -> Planned | None:
    payer = _payer(draw, work, "JPY", moment)
    if payer is None:
        return None
    return "fee", ((customer(payer[0], "JPY"), FEES, draw(st.integers(1, payer[1]))),), {}


def _transfer(draw: st.DrawFn, work: Model, moment: int) -> Planned | None:
    source, target = draw(st.sampled_from([(HOT, COLD), (COLD, HOT)]))
    room = work.room(source, moment)
    if room < 1:
        return None
    return "transfer", ((target, source, draw(st.integers(1, room))),), {}


def _sweep(draw: st.DrawFn, work: Model, moment: int) -> Planned | None:
    limit = min(work.coverage.get("JPY", 0), work.room(TRUST, moment))
    if limit < 1:
        return None
    return "sweep", ((OPERATING, TRUST, draw(st.integers(1, limit))),), {}


def _capital(draw: st.DrawFn, work: Model, moment: int) -> Planned | None:
    asset = draw(st.sampled_from(["JPY", "BTC"]))  # yen first: provisions need it
    cash = OPERATING if asset == "JPY" else GUARANTEE
    return "adjustment", ((cash, CAPITAL[asset], draw(st.integers(1, DEPOSIT_MAX[asset]))),), {}


def _incident(draw: st.DrawFn, work: Model, moment: int) -> Planned | None:
    wallet = draw(st.sampled_from([HOT, COLD]))
    room = work.room(wallet, moment)
    if room < 1:
        return None
    known = sorted(work.incidents)
    if draw(st.booleans()) and known:
        name = draw(st.sampled_from(known))
        kind = work.incidents[name][0]
    else:
        work.names.incidents += 1
        name = f"INC-{work.names.incidents}"
        kind = draw(st.sampled_from(["theft", "operational_loss"]))
    return ("incident", ((LOSS, wallet, draw(st.integers(1, room))),),
            {"incident": name, "incident_kind": kind})


def _known_incident(draw: st.DrawFn, work: Model, moment: int) -> str | None:
    opened = sorted(name for name, (_, when) in work.incidents.items() if when <= moment)
    return draw(st.sampled_from(opened)) if opened else None


def _top_up(draw: st.DrawFn, work: Model, moment: int) -> Planned | None:
    named = _known_incident(draw, work, moment) if draw(st.booleans()) else None
    return ("top_up", ((HOT, CAPITAL["BTC"], draw(st.integers(1, DEPOSIT_MAX["BTC"]))),),
            {"incident": named} if named else {})


def _provision(draw: st.DrawFn, work: Model, moment: int) -> Planned | None:
    room = work.room(OPERATING, moment)
    if room < 1:
        return None
    minor = draw(st.integers(1, room))
    return ("reserve_provision",
            ((RESERVE_CASH, OPERATING, minor), (CAPITAL["JPY"], RESERVE, minor)), {})


def _draw_reserve(draw: st.DrawFn, work: Model, moment: int) -> Planned | None:
    named = _known_incident(draw, work, moment)
    room = work.room(RESERVE_CASH, moment)
    if named is None or room < 1:
        return None
    return ("reserve_draw", ((RESERVE, RESERVE_CASH, draw(st.integers(1, room))),),
            {"incident": named})


VALID: dict[str, Callable[[st.DrawFn, Model, int], Planned | None]] = {
    "deposit": _deposit, "withdrawal": _withdrawal, "trade": _trade, "fee": _fee,
    "transfer": _transfer, "sweep": _sweep, "capital": _capital, "incident": _incident,
    "top_up": _top_up, "provision": _provision, "draw": _draw_reserve,
}
# Hypothesis leans towards the first choices: the ones that need balances built come first.
VALID_WEIGHTS = ["withdrawal", "trade", "reversal", "incident", "fee", "sweep", "draw",
                 "provision", "top_up", "transfer", "capital", "duplicate", "deposit",
                 "withdrawal", "trade", "reversal", "incident", "fee", "provision", "capital",
                 "duplicate", "deposit", "deposit", "deposit", "deposit"]


@dataclass
class Built:
    item: dict[str, Any]
    new: bool  # False: a duplicate of an entry posted or earlier in the batch (skipped)
    postings: int


def _valid(draw: st.DrawFn, work: Model, choices: Sequence[str] = VALID_WEIGHTS) -> Built:
    """One entry the ledger must accept (or skip, for a duplicate), applied to `work`."""
    choice = draw(st.sampled_from(choices))
    if choice == "duplicate" and work.items:
        key = draw(st.sampled_from(sorted(work.items)))
        again = json.loads(json.dumps(work.items[key]))
        for line, (debit, _, minor) in zip(again.get("lines", []), work.lines[key], strict=False):
            line["amount"] = _amount_text(draw, minor, asset_of(debit))
        return Built(again, False, 0)
    if choice == "reversal":
        open_ = sorted(key for key in work.kinds if key not in work.reversed)  # reversals too
        if open_:
            target = draw(st.sampled_from(open_))
            mirror = tuple((c, d, minor) for d, c, minor in work.lines[target])
            for moment in (_moment(draw, work), LATEST):
                if work.fits("reversal", mirror, moment):
                    item = _item(draw, work.names.key(), "reversal", mirror, moment, {}, target)
                    work.apply(item, "reversal", mirror, moment)
                    return Built(item, True, 2 * len(mirror))
        choice = "deposit"
    make = VALID.get(choice, _deposit)
    for moment in (_moment(draw, work), LATEST):  # late, if early there is not enough
        planned = make(draw, work, moment)
        if planned is not None and work.fits(planned[0], planned[1], moment):
            break
    else:
        moment = _moment(draw, work)
        planned = _deposit(draw, work, moment)
        assert planned is not None
    kind, lines, metadata = planned
    item = _item(draw, work.names.key(), kind, lines, moment, metadata)
    work.apply(item, kind, lines, moment)
    return Built(item, True, 2 * len(lines))


def _late_deposits(work: Model) -> list[tuple[str, int]]:
    """(customer, moment) where a JPY withdrawal could be enough now and not then."""
    return [(name, hour * HOUR) for name in work.customers("JPY")
            for hour in range(work.closed + 1, SLOTS)
            if work.dip(customer(name, "JPY"), hour * HOUR) < work.total(customer(name, "JPY"))]


def _fault(draw: st.DrawFn, work: Model, batch: list[Built], last: bool) -> dict[str, Any]:
    """One entry the ledger must refuse, at this point of the batch; `work` is left alone.
    `last`: no valid entry follows it in the batch."""
    moment = _moment(draw, work)
    key = work.names.key()
    # The history is checked as the whole batch leaves it: a deposit later in the file, dated
    # before the withdrawal, would make up for it. So only where none follows.
    late = _late_deposits(work) if last else []
    earlier = [built.item for built in batch if built.new] + list(work.items.values())
    after_close = [name for name, (_, when) in work.incidents.items() if when > work.closed_at + 1]
    # Reserve money to take: often only at the latest moment (where provisions fall back to).
    reserve_at = moment if work.room(RESERVE_CASH, moment) > 0 else LATEST
    faults = ["overdraft", "unknown_account", "reversal_unknown", "firewall", "decimals",
              "mixed_assets", "incident_unknown"]
    for fault, applies in (("overdraft_earlier", late), ("key_reused", earlier),
                           ("reversal_twice", work.reversed), ("closed_period", work.closed >= 0),
                           ("reserve_taken", work.room(RESERVE_CASH, reserve_at) > 0),
                           ("incident_kind", work.incidents), ("before_incident", after_close)):
        if applies:
            faults.append(fault)
    if late:  # rarely possible (last in the batch), so likely when it is
        faults[:0] = ["overdraft_earlier"] * 3
    fault = draw(st.sampled_from(faults))

    def item(kind: str, *lines: Line3, metadata: dict[str, Any] | None = None,
             when: int = moment) -> dict[str, Any]:
        return _item(draw, key, kind, lines, when, metadata or {})

    if fault == "overdraft":  # more than the customer has
        asset = draw(st.sampled_from(ASSETS))
        code = customer(_someone(draw, work, asset), asset)
        minor = work.total(code) + draw(st.integers(1, DEPOSIT_MAX[asset]))
        return item("withdrawal", (code, CUSTODY[asset], minor))
    if fault == "overdraft_earlier":  # enough now, not when it is dated: a deposit came later
        name, moment = draw(st.sampled_from(late))
        code = customer(name, "JPY")
        minor = draw(st.integers(work.dip(code, moment) + 1, work.total(code)))
        return item("withdrawal", (code, TRUST, minor), when=moment)
    if fault == "unknown_account":
        wrong = draw(st.sampled_from(["custody:customer:warm:BTC", "revenue:misc:JPY",
                                      "customer:c1:ETH", "customer:c1:jpy", "customer::JPY"]))
        right = CUSTODY["BTC"] if wrong.endswith("BTC") else CUSTODY["JPY"]
        lines = [(right, wrong, 5)] if draw(st.booleans()) else [(wrong, right, 5)]
        return item("deposit", *lines)
    if fault == "key_reused":  # an entry posted, or earlier in the file, with other content
        changed: dict[str, Any] = json.loads(json.dumps(draw(st.sampled_from(earlier))))
        changed["memo"] = f"{changed.get('memo') or ''} changed"
        return changed
    if fault == "reversal_twice":
        return _item(draw, key, "reversal", (), moment, {},
                     draw(st.sampled_from(sorted(work.reversed))))
    if fault == "reversal_unknown":
        return _item(draw, key, "reversal", (), moment, {}, f"missing-{key}")
    if fault == "firewall":
        way = draw(st.integers(0, 2))
        if way == 0:  # the company's rent paid from customer money
            return item("adjustment",
                        (RENT, TRUST, draw(st.integers(1, max(work.room(TRUST, moment), 1)))))
        if way == 1:  # customer coins into a company wallet
            return item("transfer",
                        (GUARANTEE, HOT, draw(st.integers(1, max(work.room(HOT, moment), 1)))))
        excess = max(work.coverage.get("JPY", 0), 0)  # a sweep of more than the excess
        return item("sweep", (OPERATING, TRUST, excess + draw(st.integers(1, 1000))))
    if fault == "closed_period":
        return item("deposit", (TRUST, customer(_someone(draw, work), "JPY"), 10),
                    when=draw(st.integers(0, work.closed)) * HOUR)
    if fault == "decimals":
        asset = draw(st.sampled_from(ASSETS))
        refused = item("deposit", (CUSTODY[asset], customer(_someone(draw, work), asset), 1))
        refused["lines"][0]["amount"] = "12.5" if asset == "JPY" else "0.123456789"
        return refused
    if fault == "mixed_assets":
        return item("deposit", (TRUST, customer(_someone(draw, work), "BTC"), 1))
    if fault == "reserve_taken":  # by a transfer, which may not
        held = work.room(RESERVE_CASH, reserve_at)
        return item("transfer", (OPERATING, RESERVE_CASH, draw(st.integers(1, held))),
                    when=reserve_at)
    if fault == "incident_kind":  # an incident again, as another kind of incident
        name = draw(st.sampled_from(sorted(work.incidents)))
        other = "theft" if work.incidents[name][0] != "theft" else "misdirected_funds"
        return item("incident", (LOSS, HOT, 1), metadata={"incident": name, "incident_kind": other})
    if fault == "before_incident":  # a top-up for an incident, dated before it happened
        name = draw(st.sampled_from(sorted(after_close)))
        return item("top_up", (HOT, CAPITAL["BTC"], 1), metadata={"incident": name},
                    when=draw(st.integers(work.closed_at + 1, work.incidents[name][1] - 1)))
    assert fault == "incident_unknown"
    kind = draw(st.sampled_from(["reserve_draw", "top_up"]))
    named = (RESERVE, RESERVE_CASH, 1) if kind == "reserve_draw" else (HOT, CAPITAL["BTC"], 1)
    return item(kind, named, metadata={"incident": f"INC-none-{work.names.keys}"})


# --- scenarios ----------------------------------------------------------------------------


@dataclass
class Post:
    items: list[dict[str, Any]]
    expect: tuple[int, int, int] | None  # posted, postings, skipped; None: refused
    check_limit: int | None = None  # a second check that stops at this many errors


@dataclass
class Close:
    slot: int
    expect: bool | None  # closed, already closed so, or refused (a close never moves back)


Step = Post | Close


def _batch(draw: st.DrawFn, model: Model, *, opening: bool = False) -> Post:
    """Valid entries and faults mixed; the opening batch only puts money in (and sets some
    aside in the liability reserve)."""
    work = model.copy()
    valid = draw(st.integers(3, 10) if opening else st.integers(1, 6))
    faults = 0 if opening else draw(st.sampled_from([0, 0, 0, 1, 1, 2]))
    choices = ["capital", "deposit", "provision", "deposit"] if opening else VALID_WEIGHTS
    places = sorted(draw(st.lists(st.integers(0, valid), min_size=faults, max_size=faults)))
    built: list[Built] = []
    items: list[dict[str, Any]] = []
    for position in range(valid + 1):
        while places and places[0] == position:
            items.append(_fault(draw, work, built, position == valid))
            places.pop(0)
        if position < valid:
            built.append(_valid(draw, work, choices))
            items.append(built[-1].item)
    limit = draw(st.sampled_from([None, None, 1, 2]))
    if faults:
        return Post(items, None, limit)
    model.__dict__.update(work.__dict__)  # the batch is to be accepted: the model moves on
    return Post(items, (sum(b.new for b in built), sum(b.postings for b in built),
                        sum(not b.new for b in built)), limit)


@dataclass
class Scenario:
    steps: list[Step]
    checkpoint_every: int


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    model = Model()
    steps: list[Step] = []
    accepted: list[Post] = []
    if not draw(st.booleans()):  # most often, money first: then most entries find some
        steps.append(_batch(draw, model, opening=True))
    for _ in range(draw(st.integers(2, 7))):
        what = draw(st.sampled_from(["post"] * 6 + ["close", "repeat"]))
        if what == "close":
            slot = draw(st.integers(max(model.closed - 2, 0), min(model.closed + 12, SLOTS - 24)))
            expect = None if slot < model.closed else slot > model.closed
            steps.append(Close(slot, expect))
            model.closed = max(model.closed, slot)
        elif what == "repeat" and accepted:
            again = draw(st.sampled_from(accepted))
            steps.append(Post(again.items, (0, 0, len(again.items))))
        else:
            batch = _batch(draw, model)
            steps.append(batch)
            if batch.expect is not None:
                accepted.append(batch)
    return Scenario(steps, draw(st.sampled_from([2, 3, 5, checkpoints.CHECKPOINT_EVERY])))


# --- the three ledgers --------------------------------------------------------------------


@dataclass
class Target:
    name: str
    engine: Engine
    use_copy: bool
    database: str | None = None  # PostgreSQL's, dropped after
    path: Path | None = None  # SQLite's file, removed after


class PostgresDatabases(Protocol):
    """What is used here of the session's PostgreSQL databases (tests/conftest.py)."""

    def url(self, name: str) -> str: ...

    def create(self, template: str | None = None) -> str: ...

    def migrated(self) -> str: ...

    def drop(self, name: str) -> None: ...


class Ledgers:
    """Fresh ledgers with the test chart loaded, one per path: copies of a template each."""

    def __init__(self, pg: PostgresDatabases, sqlite_template: Path, folder: Path) -> None:
        self.pg, self.folder, self.count = pg, folder, 0
        self.pg_template = pg.migrated()
        _with_chart(make_engine(pg.url(self.pg_template)))
        self.sqlite_template = folder / "chart.db"
        shutil.copyfile(sqlite_template, self.sqlite_template)
        _with_chart(make_engine(f"sqlite:///{self.sqlite_template}"))

    def open(self) -> list[Target]:
        self.count += 1
        made: list[Target] = []
        try:
            for use_copy in (True, False):
                name = self.pg.create(self.pg_template)
                made.append(Target(f"postgresql {'COPY' if use_copy else 'plain'}",
                                   make_engine(self.pg.url(name)), use_copy, database=name))
            path = self.folder / f"ledger-{self.count}.db"
            shutil.copyfile(self.sqlite_template, path)
            made.append(Target("sqlite", make_engine(f"sqlite:///{path}"), False, path=path))
        except BaseException:
            self.close(made)
            raise
        return made

    def file(self, name: str) -> Path:
        return self.folder / f"run-{self.count}-{name}"

    def close(self, targets: list[Target]) -> None:
        for target in targets:
            target.engine.dispose()
            if target.database is not None:
                self.pg.drop(target.database)
            if target.path is not None:
                for leftover in target.path.parent.glob(f"{target.path.name}*"):
                    leftover.unlink()

    def dispose(self) -> None:
        self.pg.drop(self.pg_template)


def _with_chart(engine: Engine) -> None:
    try:
        load_chart(engine, parse_chart(json.dumps(CHART), "chart.json"), "chart.json")
        if engine.dialect.name == "sqlite":
            with engine.connect() as connection:  # all in the main file, which is copied
                connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    finally:
        engine.dispose()  # a PostgreSQL template must have no connection while it is copied


@pytest.fixture(scope="module")
def ledgers(postgres_databases: PostgresDatabases, sqlite_template: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledgers]:
    made = Ledgers(postgres_databases, sqlite_template, tmp_path_factory.mktemp("paths"))
    yield made
    made.dispose()


# --- what each path did, and what it stored -----------------------------------------------


def _error(error: InputError) -> tuple[Any, ...]:
    return (str(error), error.reason, error.source, error.line, error.field)


def _unexpected(error: Exception) -> Outcome:
    said = str(error).strip().splitlines()
    return ("crashed", type(error).__name__, said[0] if said else "")


def _post(target: Target, drafts: list[Draft], source: str, sha256: str) -> Outcome:
    try:
        result = post_batch(target.engine, drafts, source=source, sha256=sha256,
                            use_copy=target.use_copy)
    except InputError as error:
        return ("refused", *_error(error))
    except Exception as error:
        return _unexpected(error)
    return ("posted", result.posted, result.postings, result.skipped, result.batch_id is not None)


def _check(target: Target, drafts: list[Draft], source: str, limit: int) -> Outcome:
    try:
        result = check_batch(target.engine, drafts, source=source, parse_errors=[], limit=limit,
                             use_copy=target.use_copy)
    except InputError as error:
        return ("refused", *_error(error))
    except Exception as error:
        return _unexpected(error)
    return ("checked", result.entries_checked, result.stopped,
            tuple(_error(error) for error in result.errors))


def _close(target: Target, slot: int) -> Outcome:
    try:
        return ("closed", close_period(target.engine, at_slot(slot) + timedelta(minutes=30),
                                       "auditor", f"through slot {slot}"))
    except InputError as error:
        return ("refused", *_error(error))
    except Exception as error:
        return _unexpected(error)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def dump(engine: Engine) -> Dump:
    """Everything a batch writes, by keys and codes instead of ids, in a canonical order."""
    with engine.connect() as connection:
        def rows_of(query: Any) -> list[Any]:
            return list(connection.execute(query))

        key = {row.id: row.key for row in rows_of(select(entries.c.id, entries.c.key))}
        code = {row.id: row.code for row in rows_of(select(accounts.c.id, accounts.c.code))}
        rank = {batch_id: n for n, batch_id in enumerate(sorted(
            connection.execute(select(batches.c.id)).scalars()), start=1)}
        found: Dump = {
            "assets": [(r.code, r.kind, r.scale, r.chain, r.contract)
                       for r in rows_of(select(assets))],
            "accounts": [
                (r.code, r.asset, r.pool, r.role, r.location, r.purpose, r.customer, r.raw,
                 json.dumps(r.external, sort_keys=True))
                for r in rows_of(select(accounts, cast(accounts.c.external, Text).label("raw")))],
            "batches": [(rank[r.id], r.source, r.sha256, r.entry_count, r.posting_count,
                         r.skipped_count, r.admin_reason, r.admin_plan)
                        for r in rows_of(select(batches))],
            "entries": [
                (r.key, r.type, _iso(r.effective_at), r.memo, r.raw,
                 json.dumps(r.meta, sort_keys=True), r.content_hash,
                 None if r.reverses_id is None else key[r.reverses_id], rank[r.batch_id],
                 # The entry hash covers its ids and recorded time, which differ by path.
                 r.prev_hash, r.postings_hash, r.entry_hash is not None)
                for r in rows_of(select(entries, entries.c.metadata.label("meta"),
                                        cast(entries.c.metadata, Text).label("raw")))],
            "postings": [(key[r.entry_id], r.line_no, code[r.account_id], r.asset, r.amount_minor,
                          _iso(r.effective_at)) for r in rows_of(select(postings))],
            "balances": [(code[r.account_id], r.asset, r.balance_minor, r.non_negative,
                          r.posting_count, _iso(r.first_effective_at), _iso(r.last_effective_at))
                         for r in rows_of(select(balances))],
            "balance_checkpoints": [(code[r.account_id], _iso(r.at), r.amount_minor,
                                     r.posting_count)
                                    for r in rows_of(select(balance_checkpoints))],
            "coverage": [(r.asset, r.coverage_minor) for r in rows_of(select(coverage))],
            "breaches": [(r.asset, key[r.opened_entry_id], r.opened_coverage_minor,
                          None if r.closed_entry_id is None else key[r.closed_entry_id],
                          r.closed_coverage_minor, r.incident_id)
                         for r in rows_of(select(breaches))],
            "incidents": [(r.incident_id, r.kind, key[r.opened_entry_id], _iso(r.opened_at))
                          for r in rows_of(select(incidents))],
            "incident_links": [(r.incident_id, key[r.entry_id], r.kind, r.asset, r.amount_minor)
                               for r in rows_of(select(incident_links))],
            "closed_periods": [(_iso(r.closed_through), r.closed_by, r.note)
                               for r in rows_of(select(closed_periods))],
            "chain_links": [(r.seq, r.kind) for r in rows_of(select(chain_links))],
        }
    return {table: sorted(found_rows, key=repr) for table, found_rows in found.items()}


def _differences(first: Dump, other: Dump) -> str:
    said = []
    for table in first:
        only_first = [row for row in first[table] if row not in other[table]]
        only_other = [row for row in other[table] if row not in first[table]]
        if only_first or only_other:
            said.append(f"{table}: only in the first {only_first[:5]}, only in the other "
                        f"{only_other[:5]}")
    return "; ".join(said)


def _agree(what: str, targets: list[Target], values: list[Any]) -> None:
    for target, value in zip(targets[1:], values[1:], strict=True):
        if value == values[0]:
            continue
        detail = (_differences(values[0], value) if isinstance(value, dict)
                  else f"{values[0]!r} != {value!r}")
        raise AssertionError(f"{what}: {targets[0].name} and {target.name} disagree: {detail}")


def _check_matches_post(check: Outcome, post: Outcome, drafts: int) -> None:
    """`post --check` reports what the post refuses, and nothing for a batch it posts."""
    if post[0] == "posted":
        assert check == ("checked", drafts, False, ()), (check, post)
        return
    assert post[0] == "refused", post
    if check[0] == "refused":  # the whole batch refused (the database's own refusal)
        assert check == post
        return
    assert check[0] == "checked" and not check[2], check
    errors, refused = check[3], post[1:]
    assert refused in errors, f"post refused {refused}, the check listed {errors}"
    # Before it, only what the check finds after writing (in SQL) and a post never reached.
    for error in errors[:errors.index(refused)]:
        assert error[4] == "effective_at" and "at an earlier time" in error[1], (error, refused)


def _gist(reason: str) -> str:
    """An error's kind, for the statistics (--hypothesis-show-statistics): no names, no numbers."""
    return re.sub(r'"[^"]*"|[\w.:-]*\d[\w.:-]*|customer:[\w.-]+:\w+', "…", reason)[:48]


def _nothing(_: str) -> None:
    pass


def run_scenario(ledgers: Ledgers, steps: Sequence[Step],
                 record: Callable[[str], None] = _nothing) -> None:
    """Every step on three fresh ledgers; `record` hears what each batch came to."""
    targets = ledgers.open()
    try:
        before = [dump(target.engine) for target in targets]
        _agree("the fresh ledgers", targets, before)
        for number, step in enumerate(steps, start=1):
            if isinstance(step, Close):
                closed = [_close(target, step.slot) for target in targets]
                _agree(f"step {number}: close", targets, closed)
                assert closed[0] == ("closed", step.expect) or (
                    step.expect is None and closed[0][0] == "refused"), closed[0]
                changed = closed[0] == ("closed", True)
            else:
                changed = _run_post(ledgers, targets, number, step, before, record)
            after = [dump(target.engine) for target in targets]
            _agree(f"step {number}: the ledger after it", targets, after)
            if not changed:  # refused, or nothing new: nothing written
                for target, stood, left in zip(targets, before, after, strict=True):
                    assert left == stood, f"step {number} wrote on {target.name}: " \
                                          f"{_differences(stood, left)}"
            before = after
        problems = []
        for target in targets:
            with target.engine.connect() as connection:
                problems.append([(p.check, p.subject, p.detail)
                                 for p in verify(connection).problems])
        _agree("verify", targets, problems)
        assert problems[0] == []
        stored = [table for table, found in before[0].items() if found and table in (
            "balance_checkpoints", "breaches", "closed_periods", "incident_links")]
        record(f"stored: {', '.join(stored) or 'none of these'}")
    finally:
        ledgers.close(targets)


def _run_post(ledgers: Ledgers, targets: list[Target], number: int, step: Post,
              before: list[Dump], record: Callable[[str], None]) -> bool:
    """Checks, then posts, the batch on every path; whether it posted any entry."""
    path = ledgers.file(f"step-{number}.jsonl")
    path.write_text(jsonl(step.items), "utf-8")
    drafts, sha256 = service.read_entry_file(str(path))
    source = str(path)
    checked = [_check(target, drafts, source, 100) for target in targets]
    _agree(f"step {number}: post --check", targets, checked)
    for target, stood in zip(targets, before, strict=True):
        left = dump(target.engine)
        assert left == stood, \
            f"step {number}: the check wrote on {target.name}: {_differences(stood, left)}"
    if step.check_limit is not None:
        limited = [_check(target, drafts, source, step.check_limit) for target in targets]
        _agree(f"step {number}: post --check --max-errors {step.check_limit}", targets, limited)
    posted = [_post(target, drafts, source, sha256) for target in targets]
    _agree(f"step {number}: post", targets, posted)
    assert posted[0][0] != "crashed", posted[0]
    _check_matches_post(checked[0], posted[0], len(drafts))
    record(f"batch {posted[0][0]}" + (f": {_gist(posted[0][2])}" if posted[0][0] == "refused" else
                                     f", {'some' if posted[0][1] else 'none'} new, "
                                     f"{'some' if posted[0][3] else 'none'} skipped"))
    if step.expect is None:
        assert posted[0][0] == "refused", f"step {number}: a faulty batch was posted: {posted[0]}"
    else:
        assert posted[0] == ("posted", *step.expect, step.expect[0] > 0), \
            f"step {number}: a valid batch was not posted as built: {posted[0]}"
    return bool(posted[0][0] == "posted" and posted[0][1] > 0)


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenario=scenarios())
def test_the_three_paths_accept_refuse_and_store_alike(ledgers: Ledgers,
                                                       scenario: Scenario) -> None:
    with pytest.MonkeyPatch.context() as patch:
        # Checkpoints every few postings, so that scenarios this small make and move them.
        patch.setattr(checkpoints, "CHECKPOINT_EVERY", scenario.checkpoint_every)
        run_scenario(ledgers, scenario.steps, event)


# --- large batches: many new customers, past the chunk sizes ------------------------------


def _plain(key: str, kind: str, lines: Sequence[tuple[str, str, str]], slot: int
           ) -> dict[str, Any]:
    return {"key": key, "type": kind, "effective_at": at_slot(slot).isoformat(),
            "lines": [{"debit": d, "credit": c, "amount": a} for d, c, a in lines]}


def _accepted(items: list[dict[str, Any]]) -> Post:
    postings = sum(2 * len(item.get("lines", [None])) for item in items)
    return Post(items, (len(items), postings, 0))


def large_steps(count: int, *, whole: bool = True) -> list[Step]:
    """`count` customers opened in one batch (with an incident, a reserve draw and a
    top-up), then batches that touch every one of them:
    backdated deposits (the history check over every account), the first batch again
    (every key looked up, every entry skipped), withdrawals dated between earlier postings
    and reversals, first with two faults (a backdating that only the history check finds,
    then an unknown asset), then without. `whole=False`: the first two batches only."""
    names = [f"m{n:05d}" for n in range(count)]
    traders = range(0, count - 1, 6)
    opened = [_plain(f"a-{name}", "deposit", [(TRUST, customer(name, "JPY"), str(100 + n % 997))],
                     30 + n % 5) for n, name in enumerate(names)]
    opened += [_plain(f"a-btc-{name}", "deposit",
                      [(HOT, customer(name, "BTC"), format_amount(10**6 + n, 8))], 31)
               for n, name in enumerate(names) if n % 4 == 0]
    opened += [_plain(f"t-{names[n]}", "trade",
                      [(customer(names[n], "JPY"), customer(names[n + 1], "JPY"), "50")], 40)
               for n in traders]
    # Capital, a provision, a theft that opens a breach, a draw and a top-up for it.
    theft = {"incident": "INC-big", "incident_kind": "theft"}
    opened += [_plain("capital", "adjustment", [(OPERATING, CAPITAL["JPY"], "10000000")], 1),
               _plain("provision", "reserve_provision", [(RESERVE_CASH, OPERATING, "1000000"),
                                                         (CAPITAL["JPY"], RESERVE, "1000000")], 2),
               {**_plain("theft", "incident", [(LOSS, HOT, "0.005")], 35), "metadata": theft},
               {**_plain("draw", "reserve_draw", [(RESERVE, RESERVE_CASH, "1000")], 36),
                "metadata": {"incident": "INC-big"}},
               {**_plain("top-up", "top_up", [(HOT, CAPITAL["BTC"], "0.002")], 37),
                "metadata": {"incident": "INC-big"}}]
    earlier = [_plain(f"b-{name}", "deposit", [(TRUST, customer(name, "JPY"), str(1 + n % 97))],
                      10 + n % 3) for n, name in enumerate(names)]
    earlier.append({**_plain("top-up-2", "top_up", [(HOT, CAPITAL["BTC"], "0.003")], 46),
                    "metadata": {"incident": "INC-big"}})  # closes the breach
    earlier += [_plain(f"w-{name}", "withdrawal", [(customer(name, "JPY"), TRUST, "10")], 45)
                for n, name in enumerate(names) if n % 3 == 0]
    if not whole:
        return [_accepted(opened), _accepted(earlier)]
    # Each customer's balance is back to zero at slot 20: exactly what was deposited before.
    between = [_plain(f"x-{name}", "withdrawal", [(customer(name, "JPY"), TRUST, str(1 + n % 97))],
                      20) for n, name in enumerate(names)]
    between += [{"key": f"r-t-{names[n]}", "type": "reversal",
                 "effective_at": at_slot(50).isoformat(), "reverses": f"t-{names[n]}"}
                for n in traders]
    faulty = list(between)
    faulty.insert(len(faulty) // 2, _plain("too-early", "withdrawal",
                                           [(customer(names[-1], "JPY"), TRUST, "5")], 5))
    faulty.append(_plain("no-such-asset", "deposit", [(TRUST, customer(names[1], "ETH"), "1")],
                         50))
    return [_accepted(opened), _accepted(earlier), Post(opened, (0, 0, len(opened))),
            Post(faulty, None, check_limit=1), _accepted(between)]


def test_large_batches_in_small_chunks_agree(ledgers: Ledgers,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The chunked statements (IN lists of IN_CHUNK values on SQLite, the plain path's
    INSERTs of 50,000 postings, checkpoints every 1,000 postings) with their sizes cut down,
    so that a few thousand entries cross every boundary many times."""
    small = 64
    whole = rows.chunks

    def small_chunks(items: Sequence[Any], size: int = small) -> Iterator[Sequence[Any]]:
        return whole(items, min(size, small))

    # Wherever it was imported: rows itself (its IN lists), posting, reading, …
    for name, module in list(sys.modules.items()):
        if name.startswith("ledger.") and getattr(module, "chunks", None) is whole:
            monkeypatch.setattr(module, "chunks", small_chunks)
    monkeypatch.setattr(rows, "IN_CHUNK", small)
    monkeypatch.setattr(checkpoints, "CHECKPOINT_EVERY", 16)
    run_scenario(ledgers, large_steps(700))


@pytest.mark.skipif(os.environ.get("SEGLEDGER_FUZZ") != "full",
                    reason="a minute of work: with SEGLEDGER_FUZZ=full (CI) only")
def test_more_accounts_than_one_chunk_holds_agree(ledgers: Ledgers) -> None:
    """Past the real IN_CHUNK (10,000 values a statement on SQLite), unpatched."""
    run_scenario(ledgers, large_steps(rows.IN_CHUNK + 50, whole=False))
