"""The ledger's vocabulary as immutable values: assets, accounts, lines and entries."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any


class AssetKind(StrEnum):
    FIAT = "fiat"
    CRYPTO = "crypto"


class Pool(StrEnum):
    CUSTOMER = "customer"
    COMPANY = "company"


class Role(StrEnum):
    CUSTODY = "custody"
    CUSTOMER_LIABILITY = "customer_liability"
    RESERVE = "reserve"
    EQUITY = "equity"
    REVENUE = "revenue"
    EXPENSE = "expense"
    LOSS = "loss"
    SUSPENSE = "suspense"


class Location(StrEnum):
    BANK_TRUST = "bank_trust"
    BANK = "bank"
    COLD_WALLET = "cold_wallet"
    HOT_WALLET = "hot_wallet"
    CUSTODIAN = "custodian"
    IN_TRANSIT = "in_transit"


class Purpose(StrEnum):
    SEGREGATED = "segregated"
    OPERATING = "operating"
    GUARANTEE = "guarantee"
    RESERVE = "reserve"


class EntryType(StrEnum):
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    TRADE = "trade"
    FEE = "fee"
    TRANSFER = "transfer"
    SWEEP = "sweep"
    TOP_UP = "top_up"
    INCIDENT = "incident"
    RESERVE_PROVISION = "reserve_provision"
    RESERVE_DRAW = "reserve_draw"
    INSURANCE_RECOVERY = "insurance_recovery"
    ADJUSTMENT = "adjustment"
    DISTRIBUTION = "distribution"
    REVERSAL = "reversal"


DEBIT_NORMAL_ROLES = frozenset({Role.CUSTODY, Role.EXPENSE, Role.LOSS})
# Invariant 4: these may never show a negative normal-side balance.
NON_NEGATIVE_ROLES = frozenset({Role.CUSTODY, Role.CUSTOMER_LIABILITY})
# Suspense holds receipts not yet identified: money owed to someone outside the company,
# so coverage counts it as a customer liability (the conservative side).
CUSTOMER_LIABILITY_ROLES = frozenset({Role.CUSTOMER_LIABILITY, Role.SUSPENSE})
ROLE_POOLS: Mapping[Role, frozenset[Pool]] = MappingProxyType(
    {
        Role.CUSTODY: frozenset({Pool.CUSTOMER, Pool.COMPANY}),
        Role.CUSTOMER_LIABILITY: frozenset({Pool.CUSTOMER}),
        Role.SUSPENSE: frozenset({Pool.CUSTOMER}),
        Role.RESERVE: frozenset({Pool.COMPANY}),
        Role.EQUITY: frozenset({Pool.COMPANY}),
        Role.REVENUE: frozenset({Pool.COMPANY}),
        Role.EXPENSE: frozenset({Pool.COMPANY}),
        Role.LOSS: frozenset({Pool.COMPANY}),
    }
)
POOL_PURPOSES: Mapping[Pool, frozenset[Purpose]] = MappingProxyType(
    {
        Pool.CUSTOMER: frozenset({Purpose.SEGREGATED}),
        Pool.COMPANY: frozenset({Purpose.OPERATING, Purpose.GUARANTEE, Purpose.RESERVE}),
    }
)

# Used with fullmatch (Python's `$` would also match before a trailing newline) and by
# pydantic, whose regex engine anchors `$` at the very end.
ASSET_CODE = re.compile(r"^[A-Z0-9][A-Z0-9._-]{0,19}$", re.ASCII)
ACCOUNT_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._-]{0,199}$", re.ASCII)
CUSTOMER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$", re.ASCII)
IMPLICIT_CUSTOMER_ACCOUNT = re.compile(
    r"customer:(?P<customer>[A-Za-z0-9][A-Za-z0-9._-]{0,99}):(?P<asset>[A-Z0-9][A-Z0-9._-]{0,19})",
    re.ASCII,
)
MAX_SCALE = 36


@dataclass(frozen=True)
class Asset:
    code: str
    kind: AssetKind
    scale: int
    chain: str | None = None
    contract: str | None = None


@dataclass(frozen=True)
class Account:
    code: str
    asset: str
    pool: Pool
    role: Role
    location: Location | None = None
    purpose: Purpose | None = None
    customer: str | None = None
    external: Mapping[str, Any] = field(default_factory=dict)

    @property
    def normal_sign(self) -> int:
        """+1 if a debit raises the shown balance, -1 if a credit does."""
        return 1 if self.role in DEBIT_NORMAL_ROLES else -1

    @property
    def must_stay_non_negative(self) -> bool:
        return self.role in NON_NEGATIVE_ROLES

    @property
    def is_customer_liability(self) -> bool:
        """What the exchange owes its customers: the one definition every layer uses (coverage,
        the firewall, reconciliation, reports, `verify`). By role and pool, never by the
        account's name: `owed:c-9:JPY` declared as a customer_liability counts, and so does a
        suspense account of the customer pool whatever it is called."""
        return self.pool is Pool.CUSTOMER and self.role in CUSTOMER_LIABILITY_ROLES

    @property
    def is_customer_custody(self) -> bool:
        return self.pool is Pool.CUSTOMER and self.role is Role.CUSTODY

    @property
    def coverage_sign(self) -> int:
        """How this account's normal-side balance counts in its asset's customer coverage."""
        if self.is_customer_custody:
            return 1
        if self.is_customer_liability:
            return -1
        return 0

    def describe(self) -> dict[str, Any]:
        """The defining fields, for comparing a chart's account with a stored one."""
        return {
            "asset": self.asset,
            "pool": self.pool.value,
            "role": self.role.value,
            "location": self.location.value if self.location else None,
            "purpose": self.purpose.value if self.purpose else None,
            "customer": self.customer,
            "external": dict(self.external),
        }


def implicit_customer_account(code: str) -> Account | None:
    """`customer:<id>:<ASSET>` opens on first use; anything else must be declared."""
    match = IMPLICIT_CUSTOMER_ACCOUNT.fullmatch(code)
    if match is None:
        return None
    return Account(
        code=code,
        asset=match["asset"],
        pool=Pool.CUSTOMER,
        role=Role.CUSTOMER_LIABILITY,
        customer=match["customer"],
    )


@dataclass(frozen=True)
class Line:
    debit: str
    credit: str
    amount_minor: int


@dataclass(frozen=True)
class Entry:
    """One atomic journal entry. `lines` is empty for a reversal until it is resolved."""

    key: str
    type: EntryType
    effective_at: datetime
    lines: tuple[Line, ...]
    memo: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    reverses: str | None = None
