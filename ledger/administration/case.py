"""The administration's case as the ledger holds it: the freeze, the claims at the cut-off, the
priority pools, the commencement price table, the elections and the disputes.

Each loader reads inside the caller's transaction (a `Connection`): the service layer owns
the transactions, so a plan reads its every input in one snapshot.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, NamedTuple

from sqlalchemy import Connection, select

from ledger.administration.inputs import AssetPool, Claim, Dispute, Election
from ledger.book import Freeze
from ledger.errors import InputError, shown
from ledger.json_input import decimal_text
from ledger.model import Account, Pool, Purpose, Role
from ledger.money import format_amount, parse_amount
from ledger.prices import PriceTable
from ledger.storage import journal
from ledger.storage.reading import AccountFilter, balances_at
from ledger.storage.rows import account_from_row, load_assets, load_freeze
from ledger.storage.schema import accounts, admin_disputes, admin_elections, admin_prices

NOT_FROZEN = "the ledger is not frozen; run `segledger admin freeze` first"


def require_freeze(connection: Connection) -> Freeze:
    freeze = load_freeze(connection)
    if freeze is None:
        raise InputError(NOT_FROZEN)
    return freeze


# --- Claims -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Unidentified:
    """A customer-pool suspense account's balance at the cut-off: receipts not yet identified,
    owed to someone outside the company (the ledger's one definition of a customer liability,
    `Account.is_customer_liability`), but to no creditor the plan knows."""

    account: str
    asset: str
    amount_minor: int  # normal side: positive when receipts are held


def _liabilities(connection: Connection, freeze: Freeze
                 ) -> tuple[dict[tuple[str, str], int], list[Unidentified]]:
    """The customer liabilities at the cut-off: owed per (creditor, asset), and the rest (the
    suspense accounts of the customer pool), each non-zero."""
    owed: dict[tuple[str, str], int] = defaultdict(int)
    unidentified: list[Unidentified] = []
    for row in balances_at(connection, freeze.cutoff, where=AccountFilter(pool=Pool.CUSTOMER)):
        account = row.account
        if not account.is_customer_liability:
            continue
        if account.role is Role.CUSTOMER_LIABILITY and account.customer is not None:
            owed[(account.customer, account.asset)] += row.balance_minor
        elif row.balance_minor:
            unidentified.append(Unidentified(account.code, account.asset, row.balance_minor))
    return owed, unidentified


def load_claims(connection: Connection, freeze: Freeze) -> tuple[Claim, ...]:
    """Each customer's claim per asset: the balance of the customer's customer_liability
    accounts at effective_at <= the cut-off, non-zero only, by (creditor, asset). Entries the
    administrator records later dated at or before the cut-off count: that is how a claim is
    corrected. Receipts held in suspense are no one's claim yet: see `unidentified_at` and
    `plan_claims`."""
    owed, _ = _liabilities(connection, freeze)
    return tuple(Claim(creditor, asset, amount)
                 for (creditor, asset), amount in sorted(owed.items()) if amount)


def unidentified_at(connection: Connection, freeze: Freeze) -> tuple[Unidentified, ...]:
    """Every customer-pool suspense account with a non-zero balance at the cut-off, by code."""
    _, unidentified = _liabilities(connection, freeze)
    return tuple(unidentified)


def plan_claims(connection: Connection, freeze: Freeze) -> tuple[Claim, ...]:
    """The claims a plan shares the pools out to: `load_claims`, refused while any customer-
    pool suspense account holds a balance at the cut-off. That money is owed to someone the
    ledger has not identified; a plan without them would pay it to the other creditors."""
    owed, unidentified = _liabilities(connection, freeze)
    if unidentified:
        scales = {code: asset.scale for code, asset in load_assets(connection).items()}
        first = unidentified[0]
        others = f" (and {len(unidentified) - 1} more suspense accounts)" \
            if len(unidentified) > 1 else ""
        raise InputError(
            f"suspense account {first.account} holds "
            f"{format_amount(first.amount_minor, scales[first.asset])} {first.asset} at the "
            f"cut-off{others}: unidentified receipts are owed to someone, and a plan would "
            "share them out to the other creditors; identify them first (`segledger admin "
            "record FILE --reason …` moving them to the customer's account)")
    return tuple(Claim(creditor, asset, amount)
                 for (creditor, asset), amount in sorted(owed.items()) if amount)


def known_creditors(connection: Connection) -> set[str]:
    """Every customer the ledger has an account for (a claim of zero is still a creditor)."""
    return set(connection.execute(
        select(accounts.c.customer).where(accounts.c.role == Role.CUSTOMER_LIABILITY.value,
                                          accounts.c.customer.is_not(None))).scalars())


# --- Pools --------------------------------------------------------------------------------------

class PoolAccount(NamedTuple):
    code: str
    amount_minor: int
    purpose: str  # segregated (customer custody) or guarantee (履行保証暗号資産)


@dataclass(frozen=True)
class PoolAsset:
    asset: str
    scale: int
    pool_minor: int
    accounts: tuple[PoolAccount, ...]  # segregated first, then guarantee; each by code


@dataclass(frozen=True)
class Pools:
    """Per asset, what tier 1 can pay: customer custody plus guarantee custody. `verified`:
    the figures are a reconciliation run's external balances (`run_id`), not the ledger's."""

    assets: tuple[PoolAsset, ...]  # by asset code
    run_id: str | None
    verified: bool
    # The suspense balances at the cut-off (ledger figures): owed, to no known creditor.
    unidentified: tuple[Unidentified, ...] = ()

    def plan_pools(self) -> tuple[AssetPool, ...]:
        return tuple(AssetPool(item.asset, item.scale, item.pool_minor) for item in self.assets)

    def of(self, asset: str) -> PoolAsset | None:
        return next((item for item in self.assets if item.asset == asset), None)


def is_pool_account(account: Account) -> bool:
    """PSA 63-19-2: the segregated customer custody and the guarantee custody of an asset."""
    if account.role is not Role.CUSTODY:
        return False
    return account.pool is Pool.CUSTOMER or account.purpose is Purpose.GUARANTEE


def pool_accounts(connection: Connection) -> list[Account]:
    rows = connection.execute(select(accounts).where(accounts.c.role == Role.CUSTODY.value))
    found = [account for account in map(account_from_row, rows) if is_pool_account(account)]
    # The order a distribution takes from them: the customers' own custody before the
    # guarantee, which stands in only for what segregation lacks.
    return sorted(found, key=lambda account: (account.purpose is Purpose.GUARANTEE, account.code))


def load_pools(connection: Connection, freeze: Freeze, run_id: str | None) -> Pools:
    """The pools from a reconciliation run's verified external balances (`run_id`), or else
    from the ledger's balances of the pool accounts at the cut-off. Every asset with a claim
    or a pool account is listed, at 0 when nothing is held."""
    assets = load_assets(connection)
    members = pool_accounts(connection)
    if run_id is None:
        held = {row.account.code: row.balance_minor for row in balances_at(
            connection, freeze.cutoff, where=AccountFilter(role=Role.CUSTODY))}
    else:
        held = _run_balances(connection, freeze, run_id, members, assets)
    by_asset: dict[str, list[PoolAccount]] = defaultdict(list)
    for account in members:
        purpose = account.purpose.value if account.purpose else Purpose.SEGREGATED.value
        by_asset[account.asset].append(PoolAccount(account.code, held.get(account.code, 0),
                                                   purpose))
    for claim in load_claims(connection, freeze):
        by_asset.setdefault(claim.asset, [])
    unidentified = unidentified_at(connection, freeze)
    for item in unidentified:
        by_asset.setdefault(item.asset, [])
    return Pools(tuple(
        PoolAsset(asset, assets[asset].scale, sum(item.amount_minor for item in items),
                  tuple(items))
        for asset, items in sorted(by_asset.items())), run_id, run_id is not None, unidentified)


def _run_balances(connection: Connection, freeze: Freeze, run_id: str,
                  members: Sequence[Account], assets: Mapping[str, Any]) -> dict[str, int]:
    # Imported here: the reconciliation's storage is a layer above the ledger's.
    from reconcile.store import load_run

    run = load_run(connection, run_id)
    if run is None:
        raise InputError(f"no reconciliation run {shown(run_id)}", field="--from-run")
    if run.as_of < freeze.cutoff:
        raise InputError(f"run {run_id} is as of {run.as_of.isoformat()}, before the cut-off "
                         f"{freeze.cutoff.isoformat()}; the pool is what exists at the cut-off "
                         "or later, so reconcile as of the cut-off", field="--from-run")
    figures = {item["account"]: item for item in json.loads(run.result)["accounts"]}
    held: dict[str, int] = {}
    for account in members:
        figure = figures.get(account.code)
        external = None if figure is None else figure.get("external")
        if external is None:
            raise InputError(f"run {run_id} has no external balance for pool account "
                             f"{account.code}; give evidence for it in a run, or leave out "
                             "--from-run to use the ledger's figures", field="--from-run")
        held[account.code] = _stored_minor(external, assets[account.asset].scale,
                                           f"run {run_id}: {account.code}")
    return held


def _stored_minor(text: str, scale: int, what: str) -> int:
    if text.startswith("-"):
        raise InputError(f"{what}: the external balance is negative ({text})", field="--from-run")
    return parse_amount(text, scale, allow_zero=True)


# --- Commencement prices ------------------------------------------------------------------------

@dataclass(frozen=True)
class CommencementPrices:
    """The price table the claims are valued at, recorded once for the case."""

    quote: str
    quote_scale: int
    as_of: datetime
    prices: Mapping[str, Decimal]  # exact, by asset code; the quote's own price (1) left out
    sha256: str
    source: str = ""
    recorded_at: datetime | None = None

    def price_of(self, asset: str) -> Decimal | None:
        return Decimal(1) if asset == self.quote else self.prices.get(asset)

    def to_json(self) -> dict[str, Any]:
        return {"quote": self.quote, "as_of": self.as_of.isoformat(),
                "prices": {asset: decimal_text(price) for asset, price in self.prices.items()},
                "sha256": self.sha256, "source": self.source,
                "recorded_at": self.recorded_at.isoformat() if self.recorded_at else None}


def canonical_prices(quote: str, as_of: datetime, prices: Mapping[str, Decimal]) -> str:
    """The one text of a table: the same table gives the same text and SHA-256."""
    return json.dumps({"as_of": as_of.isoformat(), "quote": quote,
                       "prices": {asset: decimal_text(prices[asset]) for asset in sorted(prices)
                                  if asset != quote}},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def commencement_prices(table: PriceTable, quote_scale: int, source: str) -> CommencementPrices:
    text = canonical_prices(table.quote, table.as_of, table.prices)
    prices = {asset: table.prices[asset] for asset in sorted(table.prices) if asset != table.quote}
    return CommencementPrices(table.quote, quote_scale, table.as_of, MappingProxyType(prices),
                              hashlib.sha256(text.encode()).hexdigest(), source)


def load_prices(connection: Connection) -> CommencementPrices | None:
    row = connection.execute(select(admin_prices)).first()
    if row is None:
        return None
    scale = load_assets(connection)[row.quote].scale
    stored: dict[str, str] = json.loads(row.prices)
    return CommencementPrices(
        row.quote, scale, row.as_of,
        MappingProxyType({asset: Decimal(text) for asset, text in sorted(stored.items())}),
        row.sha256, row.source, row.recorded_at)


def save_prices(connection: Connection, prices: CommencementPrices, at: datetime) -> None:
    connection.execute(admin_prices.insert().values(
        id=1, quote=prices.quote, as_of=prices.as_of,
        prices=json.dumps({asset: decimal_text(price) for asset, price in prices.prices.items()},
                          sort_keys=True, separators=(",", ":")),
        sha256=prices.sha256, source=prices.source[:500], recorded_at=at))
    journal.seal(connection, "admin_prices", {"admin_prices": [1]})


# --- Elections and disputes ---------------------------------------------------------------------

def load_elections(connection: Connection) -> tuple[Election, ...]:
    rows = connection.execute(select(admin_elections).order_by(admin_elections.c.creditor))
    return tuple(Election(row.creditor, row.option, row.payment) for row in rows)


@dataclass(frozen=True)
class DisputeRecord:
    """A dispute as recorded: the claim row and, once ruled on, the ruling row."""

    dispute: Dispute  # the current state: open, or as ruled
    claimed_source: str
    claimed_at: datetime
    ruling_source: str | None
    ruled_at: datetime | None


def dispute_records(connection: Connection) -> tuple[DisputeRecord, ...]:
    rows = list(connection.execute(select(admin_disputes).order_by(
        admin_disputes.c.creditor, admin_disputes.c.asset, admin_disputes.c.event)))
    claims = {(row.creditor, row.asset): row for row in rows if row.event == "claim"}
    rulings = {(row.creditor, row.asset): row for row in rows if row.event == "ruling"}
    records = []
    for key in sorted(claims):
        claim, ruling = claims[key], rulings.get(key)
        dispute = Dispute(key[0], key[1], int(claim.claimed_minor)) if ruling is None else \
            Dispute(key[0], key[1], int(claim.claimed_minor), ruling.status,
                    int(ruling.allowed_minor))
        records.append(DisputeRecord(dispute, claim.source, claim.loaded_at,
                                     ruling.source if ruling else None,
                                     ruling.loaded_at if ruling else None))
    return tuple(records)


def load_disputes(connection: Connection) -> tuple[Dispute, ...]:
    """Every dispute in its current state: open, or as ruled (allowed or rejected)."""
    return tuple(record.dispute for record in dispute_records(connection))
