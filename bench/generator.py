"""A synthetic exchange from a seed: its chart, batches of entries streamed to disk, and what the
ledger must show after them.

Every customer is funded first (one deposit entry a customer: JPY into a trust bank account and
one crypto asset into a wallet), then trades between customers with a fee, withdrawals and more
deposits follow. The generator keeps every balance itself (customers in arrays of 64-bit
integers, custody in a dict) and only ever writes entries that keep the ledger's invariants: no
custody account or customer below zero; the segregation firewall (coverage falls only by a
sweep down to zero); crypto deposits fill the hot wallets up to 2% of the asset's custody and go
cold after that, a withdrawal that a hot wallet cannot pay is preceded by a refill from cold;
the company's guarantee crypto is topped up to cover the hot wallets; fees are swept out of the
customer pool when they pass 1,000,000 JPY and at the end of every batch. Amounts are integers
in minor units, written as exact decimal strings. Same seed, same bytes.
"""

from __future__ import annotations

import hashlib
import json
import random
from array import array
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any

from bench.chart import (
    ASSETS,
    COLD_WALLETS,
    CRYPTO,
    FEES,
    HOT_WALLETS,
    OPERATING,
    RESERVE,
    RESERVE_LIABILITY,
    SPECS,
    TRUST_ACCOUNTS,
    capital,
    cold,
    custody_accounts,
    customer,
    guarantee,
    hot,
    trust,
    write_chart,
)
from ledger.money import format_amount

# The chart's names too: other benchmarks (bench.scaleout) build their files from them.
__all__ = ["ASSETS", "CRYPTO", "SPECS", "START", "BatchCount", "Exchange", "Line", "Movement",
           "capital", "cold", "custody_accounts", "customer", "guarantee", "hot", "stamp",
           "trust", "write_chart"]

JST = timezone(timedelta(hours=9))
START = datetime(2025, 1, 6, tzinfo=JST)  # a Monday: batch n is the n-th day's entries
DAY_US = 86_000 * 10**6  # a batch's entries are spread over a day's first 86,000 seconds
SWEEP_AT = 1_000_000  # JPY of fees in the customer pool
CAPITAL_JPY, RESERVE_JPY = 5_000_000_000, 3_000_000_000
WITHDRAWAL_FEE_JPY = 300


def stamp(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if utc.microsecond else "%Y-%m-%dT%H:%M:%SZ")


Account = int | str  # a customer by index, or any other account by code


@dataclass(frozen=True)
class Line:
    debit: Account
    credit: Account
    asset: str
    minor: int


@dataclass(frozen=True)
class BatchCount:
    path: str
    entries: int
    postings: int


@dataclass(frozen=True)
class Movement:
    """A line on a trust account during the batch's day: what its bank statement lists."""

    minor: int  # signed: + into the account
    reference: str | None
    text: str


class Exchange:
    """The generator's own books, moved by every entry it writes."""

    def __init__(self, customers: int, seed: int) -> None:
        if customers < 2:
            raise ValueError("an exchange needs at least 2 customers")
        self.rng = random.Random(seed)
        self.customers = customers
        self.held = {spec.code: array("q", bytes(8 * customers)) for spec in ASSETS}
        self.books: dict[str, int] = defaultdict(int)  # debit-side balance of every other account
        self.liabilities = {spec.code: 0 for spec in ASSETS}
        self.hot_total = {asset: 0 for asset in CRYPTO}
        self._hot = {hot(a, k): a for a in CRYPTO for k in range(HOT_WALLETS)}
        self._trust = {trust(k) for k in range(TRUST_ACCOUNTS)}
        self.funded = 0
        self.entries = 0  # every entry written, over all batches: the next entry's number
        self.postings = 0
        self.batches = 0
        self.day = START.date()  # the day of the batch being written, in Japan
        self._at, self._step = START, timedelta(0)
        self.day_opening: dict[str, int] = {}  # trust accounts, as the day's statement opens
        self.day_moves: dict[str, list[Movement]] = defaultdict(list)

    # -- the batch ----------------------------------------------------------------------

    def write_batch(self, path: Path, entries: int) -> BatchCount:
        """At least `entries` entries (a few more when the batch's closing sweep and top-ups
        follow the last one), streamed to `path`, spread over the next day."""
        first_entry, first_posting = self.entries, self.postings
        end = self.entries + entries
        start = START + timedelta(days=self.batches)
        self.batches += 1
        self.day = start.date()
        self._at, self._step = start, timedelta(microseconds=DAY_US // (entries + 16))
        self.day_opening = {code: self.books[code] for code in sorted(self._trust)}
        self.day_moves = defaultdict(list)
        with path.open("w", encoding="utf-8", newline="\n") as out:
            if self.entries == 0:
                self._emit(out, "adjustment", [Line(OPERATING, capital("JPY"), "JPY", CAPITAL_JPY)],
                           memo="opening capital")
                self._emit(out, "reserve_provision", [
                    Line(RESERVE, OPERATING, "JPY", RESERVE_JPY),
                    Line(capital("JPY"), RESERVE_LIABILITY, "JPY", RESERVE_JPY)])
            while self.entries < end:
                self._housekeeping(out, SWEEP_AT)
                if self.funded < self.customers:
                    self._fund(out)
                else:
                    self._activity(out)
            self._housekeeping(out, 1)
        return BatchCount(str(path), self.entries - first_entry, self.postings - first_posting)

    def _housekeeping(self, out: IO[str], sweep_at: int) -> None:
        for asset in CRYPTO:
            short = self.hot_total[asset] - self.books[guarantee(asset)]
            if short > 0:
                self._emit(out, "adjustment", [Line(guarantee(asset), capital(asset), asset,
                                                    short + self.hot_total[asset])],
                           memo="guarantee crypto top-up")
        fees = self.jpy_coverage()
        if fees >= sweep_at:
            self._emit(out, "sweep", self._take(sorted(self._trust), fees, OPERATING, "JPY"),
                       memo="fees out of the customer pool")

    def jpy_coverage(self) -> int:
        return sum(self.books[code] for code in self._trust) - self.liabilities["JPY"]

    def _take(self, sources: Sequence[str], amount: int, to: str, asset: str) -> list[Line]:
        """Lines moving `amount` into `to` from the fullest of `sources` first."""
        lines = []
        for code in sorted(sources, key=lambda c: (-self.books[c], c)):
            part = min(amount, self.books[code])
            if part <= 0:
                break
            lines.append(Line(to, code, asset, part))
            amount -= part
        assert amount == 0, "the sources hold enough"
        return lines

    def _fund(self, out: IO[str]) -> None:
        i = self.funded
        self.funded += 1
        crypto = CRYPTO[i % len(CRYPTO)]
        self._emit(out, "deposit", [self._deposit_line(i, "JPY"), self._deposit_line(i, crypto)],
                   reference=True)

    def _deposit_line(self, i: int, asset: str) -> Line:
        low, high = SPECS[asset].deposit
        amount = self.rng.randint(low, high)
        if asset == "JPY":
            return Line(trust(i % TRUST_ACCOUNTS), i, asset, amount)
        total = self.liabilities[asset]
        if self.hot_total[asset] < total // 50:
            return Line(hot(asset, self.rng.randrange(HOT_WALLETS)), i, asset, amount)
        return Line(cold(asset, self.rng.randrange(COLD_WALLETS)), i, asset, amount)

    def _activity(self, out: IO[str]) -> None:
        choice = self.rng.random()
        if choice < 0.45 and self._trade(out):
            return
        if choice >= 0.70 and self._withdraw(out):
            return
        i = self.rng.randrange(self.customers)
        asset = ASSETS[self.rng.randrange(len(ASSETS))].code
        self._emit(out, "deposit", [self._deposit_line(i, asset)], reference=True)

    def _trade(self, out: IO[str]) -> bool:
        buyer = self.rng.randrange(self.customers)
        seller = (buyer + 1 + self.rng.randrange(self.customers - 1)) % self.customers
        asset = CRYPTO[self.rng.randrange(len(CRYPTO))]
        spec = SPECS[asset]
        wanted = self.rng.randint(1_000, 300_000)
        # jpy + fee (1 + jpy // 1000) must stay within what the buyer holds.
        can_pay = (self.held["JPY"][buyer] - 1) * 1000 // 1001
        can_sell = self.held[asset][seller] * spec.price_jpy // 10**spec.scale
        jpy = min(wanted, can_pay, can_sell)
        quantity = jpy * 10**spec.scale // spec.price_jpy if jpy > 0 else 0
        if quantity <= 0:
            return False
        self._emit(out, "trade", [Line(buyer, seller, "JPY", jpy),
                                  Line(seller, buyer, asset, quantity),
                                  Line(buyer, FEES, "JPY", 1 + jpy // 1000)],
                   memo=f"c{buyer:07d} buys {asset} from c{seller:07d}")
        return True

    def _withdraw(self, out: IO[str]) -> bool:
        i = self.rng.randrange(self.customers)
        asset = ASSETS[self.rng.randrange(len(ASSETS))].code
        have = self.held[asset][i]
        if asset == "JPY":
            amount = (have - WITHDRAWAL_FEE_JPY) * self.rng.randint(1, 100) // 100
            bank = max(sorted(self._trust), key=lambda code: self.books[code])
            own = trust(i % TRUST_ACCOUNTS)
            amount = min(amount, max(self.books[own], self.books[bank]))
            if amount <= 0:
                return False
            source = own if self.books[own] >= amount else bank
            self._emit(out, "withdrawal", [Line(i, source, "JPY", amount),
                                           Line(i, FEES, "JPY", WITHDRAWAL_FEE_JPY)],
                       reference=True)
            return True
        amount = have * self.rng.randint(1, 100) // 100
        if amount <= 0:
            return False
        wallets = [hot(asset, k) for k in range(HOT_WALLETS)]
        wallet = max(wallets, key=lambda code: self.books[code])
        if self.books[wallet] < amount:
            colds = [cold(asset, k) for k in range(COLD_WALLETS)]
            refill = min(amount - self.books[wallet] + self.liabilities[asset] // 50,
                         sum(self.books[code] for code in colds))
            if refill > 0:
                self._emit(out, "transfer", self._take(colds, refill, wallet, asset),
                           memo="refill the hot wallet")
            amount = min(amount, self.books[wallet])
            if amount <= 0:
                return False
        self._emit(out, "withdrawal", [Line(i, wallet, asset, amount)], reference=True)
        return True

    # -- writing one entry ----------------------------------------------------------------

    def _emit(self, out: IO[str], kind: str, lines: list[Line], *, memo: str | None = None,
              reference: bool = False) -> None:
        key = f"e{self.entries:09d}"
        at = self._at
        metadata: dict[str, str] = {}
        if reference:
            metadata = ({"end_to_end_id": f"E2E-{key}"} if lines[0].asset == "JPY"
                        else {"txid": hashlib.sha256(key.encode()).hexdigest()})
        item: dict[str, Any] = {"key": key, "type": kind, "effective_at": stamp(at)}
        if memo:
            item["memo"] = memo
        if metadata:
            item["metadata"] = metadata
        item["lines"] = [self._apply(line, metadata.get("end_to_end_id"), memo or kind)
                         for line in lines]
        out.write(json.dumps(item, separators=(",", ":")) + "\n")
        self.entries += 1
        self.postings += 2 * len(lines)
        self._at = at + self._step

    def _apply(self, line: Line, reference: str | None, text: str) -> dict[str, str]:
        codes = []
        for account, sign in ((line.debit, 1), (line.credit, -1)):
            if isinstance(account, int):
                # A customer liability: credit-normal, a debit lowers it.
                held = self.held[line.asset]
                held[account] -= sign * line.minor
                assert held[account] >= 0, f"customer {account} below zero in {line.asset}"
                self.liabilities[line.asset] -= sign * line.minor
                codes.append(customer(account, line.asset))
                continue
            self.books[account] += sign * line.minor
            if account in self._hot:
                self.hot_total[line.asset] += sign * line.minor
            if account.startswith("custody:"):
                assert self.books[account] >= 0, f"{account} below zero"
            if account in self._trust:
                self.day_moves[account].append(Movement(sign * line.minor, reference, text))
            codes.append(account)
        return {"debit": codes[0], "credit": codes[1],
                "amount": format_amount(line.minor, SPECS[line.asset].scale)}

    # -- what the ledger must show --------------------------------------------------------

    def expected(self) -> dict[str, Any]:
        """Custody balances and per-asset customer liabilities, as exact decimal strings."""
        scales = {spec.code: spec.scale for spec in ASSETS}
        return {
            "custody": {account["code"]: format_amount(self.books[account["code"]],
                                                       scales[account["asset"]])
                        for account in custody_accounts()},
            "customer_liabilities": {asset: format_amount(minor, scales[asset])
                                     for asset, minor in self.liabilities.items()},
            "fees_swept_jpy": format_amount(self.books[OPERATING] - CAPITAL_JPY + RESERVE_JPY, 0),
        }

    def as_of(self) -> datetime:
        """The end of the last batch's day in Japan: a daily close, after every entry."""
        return datetime(self.day.year, self.day.month, self.day.day, 23, 59, 59, tzinfo=JST)

    def midpoint(self) -> datetime:
        """Halfway through the days written, between two entries: a time in the past of
        most accounts."""
        return START + timedelta(days=self.batches / 2, microseconds=1)
