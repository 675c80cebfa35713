"""Read-only service functions: each opens one snapshot, reads, and returns plain values.

The command line and (later) the HTTP server call these and only format what they return;
neither opens a connection of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import Engine

from ledger.errors import InputError, shown
from ledger.model import Account
from ledger.storage.engine import for_reading
from ledger.storage.integrity import VerifyReport
from ledger.storage.integrity import verify as verify_ledger
from ledger.storage.reading import (
    AccountFilter,
    BalanceRow,
    ClosedPeriod,
    CoverageRow,
    balances_at,
    closed_periods_list,
    coverage_at,
)
from ledger.storage.register import (
    EntryDetail,
    RegisterLine,
    balance_before,
    entry_detail,
    register_lines,
)
from ledger.storage.rows import load_accounts, load_assets


@dataclass(frozen=True)
class Coverage:
    as_of: datetime
    rows: list[CoverageRow]

    @property
    def short(self) -> bool:
        return any(row.coverage_minor < 0 for row in self.rows)


def coverage(engine: Engine, as_of: datetime) -> Coverage:
    with for_reading(engine).connect() as connection:
        return Coverage(as_of, coverage_at(connection, as_of))


def verify(engine: Engine) -> VerifyReport:
    with for_reading(engine).connect() as connection:
        return verify_ledger(connection)


# Bounds on what one command may ask for: a hit limit is a clear error, not a hang.
MAX_ACCOUNT_CODES = 1_000
MAX_REGISTER_LINES = 1_000_000


@dataclass(frozen=True)
class AccountBalance:
    account: str
    asset: str
    scale: int
    balance_minor: int


@dataclass(frozen=True)
class AssetTotal:
    asset: str
    scale: int
    accounts: int
    total_minor: int


@dataclass(frozen=True)
class Balances:
    as_of: datetime
    rows: list[AccountBalance]
    totals: list[AssetTotal]
    # Said to the user beside the result (the deprecated prefix reading of --account).
    notice: str | None = None


def balances(engine: Engine, as_of: datetime, where: AccountFilter, *,
             non_zero: bool = False) -> Balances:
    """Normal-side balances at `as_of` of the accounts `where` picks, and per asset their sum.

    Every account with a posting by then is listed; an account named exactly (`where.codes`)
    is listed even before its first posting, at zero, so that asking for it never answers
    with silence. Unknown assets and accounts are input errors, not empty results.
    """
    if len(where.codes) > MAX_ACCOUNT_CODES:
        raise InputError(f"at most {MAX_ACCOUNT_CODES} accounts at once", field="--account")
    with for_reading(engine).connect() as connection:
        assets = load_assets(connection)
        unknown_assets = sorted(set(where.assets) - set(assets))
        if unknown_assets:
            raise InputError(f"unknown asset {', '.join(unknown_assets)}", field="--asset")
        named = load_accounts(connection, where.codes)
        unknown_codes = sorted(set(where.codes) - set(named))
        if len(where.codes) == 1 and unknown_codes and where.prefix is None:
            # Until this release `--account` took a prefix; scripts written for it keep
            # working, with a notice, when the one value they give names no account exactly.
            legacy = replace(where, codes=(), prefix=where.codes[0])
            if balances_at(connection, as_of, where=legacy):
                result = balances(engine, as_of, legacy, non_zero=non_zero)
                return replace(result, notice=(
                    f"--account {where.codes[0]} names no account exactly; read as a prefix, "
                    "as before (deprecated: write --prefix)"))
        if unknown_codes:
            raise InputError(f"unknown account {', '.join(unknown_codes)}", field="--account")
        found = {row.account.code: row for row in balances_at(connection, as_of, where=where)}
    for code in set(where.codes) - set(found):
        account = named[code][1]
        if _matches(account, where):
            found[code] = BalanceRow(account, 0)
    rows = [AccountBalance(code, row.account.asset, assets[row.account.asset].scale,
                           row.balance_minor)
            for code, row in sorted(found.items()) if row.balance_minor or not non_zero]
    return Balances(as_of, rows, _totals(rows))


def _matches(account: Account, where: AccountFilter) -> bool:
    """The filters other than the codes, for an account named by code (the query's rules)."""
    return ((not where.prefix or account.code.startswith(where.prefix))
            and (not where.assets or account.asset in where.assets)
            and where.pool in (None, account.pool) and where.role in (None, account.role))


def _totals(rows: list[AccountBalance]) -> list[AssetTotal]:
    sums: dict[str, list[int]] = {}
    for row in rows:
        count_and_sum = sums.setdefault(row.asset, [0, 0])
        count_and_sum[0] += 1
        count_and_sum[1] += row.balance_minor
    scales = {row.asset: row.scale for row in rows}
    return [AssetTotal(asset, scales[asset], count, total)
            for asset, (count, total) in sorted(sums.items())]


@dataclass(frozen=True)
class Register:
    account: str
    asset: str
    scale: int
    normal_side: str
    since: datetime | None
    until: datetime | None
    opening_minor: int
    lines: list[RegisterLine]
    more: bool

    @property
    def closing_minor(self) -> int:
        """The running balance after the last line shown."""
        return self.lines[-1].balance_minor if self.lines else self.opening_minor


def register(engine: Engine, code: str, *, since: datetime | None = None,
             until: datetime | None = None, limit: int = 1_000) -> Register:
    """The account's postings with a running balance that starts from its balance before
    `since` (zero without it); at most `limit` lines, and whether more follow."""
    if not 1 <= limit <= MAX_REGISTER_LINES:
        raise InputError(f"must be between 1 and {MAX_REGISTER_LINES}, not {limit}",
                         field="--limit")
    if since is not None and until is not None and until < since:
        raise InputError("is earlier than --since", field="--until")
    with for_reading(engine).connect() as connection:
        found = load_accounts(connection, [code]).get(code)
        if found is None:
            raise InputError(f"unknown account {code}", field="ACCOUNT")
        account_id, account = found
        scale = load_assets(connection)[account.asset].scale
        opening = 0 if since is None else balance_before(connection, account_id, account, since)
        lines, more = register_lines(connection, account_id, account, opening_minor=opening,
                                     since=since, until=until, limit=limit)
    side = "debit" if account.normal_sign > 0 else "credit"
    return Register(code, account.asset, scale, side, since, until, opening, lines, more)


@dataclass(frozen=True)
class EntryView:
    entry: EntryDetail
    scales: dict[str, int]


def entry(engine: Engine, key: str) -> EntryView:
    """One entry with its lines; an unknown key is an input error."""
    with for_reading(engine).connect() as connection:
        detail = entry_detail(connection, key)
        if detail is None:
            raise InputError(f"no entry has the key {shown(key)}", field="KEY")
        scales = {code: asset.scale for code, asset in load_assets(connection).items()}
    return EntryView(detail, scales)


def closed_periods(engine: Engine) -> list[ClosedPeriod]:
    """Every close of a period, earliest first."""
    with for_reading(engine).connect() as connection:
        return closed_periods_list(connection)
