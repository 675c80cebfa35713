"""The administrator's case commands (freeze, record, claims, pool, elections, disputes), each
one transaction: the CLI and, later, the HTTP views call these and only format the result."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select

from ledger import files
from ledger.administration import case, claims_report, input_files, register
from ledger.administration.case import CommencementPrices, DisputeRecord, Pools
from ledger.administration.claims_report import ClaimsReport, PoolReport
from ledger.administration.register import ElectionRecord, LoadResult
from ledger.book import Freeze
from ledger.errors import InputError, shown
from ledger.prices import parse_prices
from ledger.service import read_entry_file
from ledger.storage import journal
from ledger.storage.engine import for_reading, for_writing
from ledger.storage.posting import PostResult, Progress, post_batch
from ledger.storage.rows import insert_ignoring_conflicts, load_assets, load_freeze, utcnow
from ledger.storage.schema import administration, coverage, entries

MAX_ADMINISTRATOR_CHARS = 200
MAX_CASE_CHARS = 100
MAX_REASON_CHARS = 2_000


@dataclass(frozen=True)
class Frozen:
    freeze: Freeze
    frozen_at: datetime
    later_entries: int  # entries already recorded dated after the cut-off (not in the claims)


def _text(value: str | None, field: str, limit: int, what: str) -> str | None:
    if value is None:
        return None
    text = value.strip()
    if not text:
        raise InputError(f"{what} must not be empty", field=field)
    if len(text) > limit:
        raise InputError(f"{what} is longer than {limit} characters", field=field)
    return text


def freeze(engine: Engine, cutoff: datetime, administrator: str,
           case_no: str | None = None) -> Frozen:
    """Freeze the ledger at `cutoff` for the administrator: from then on only distributions
    dated after the cut-off and the administrator's records are accepted. Once only."""
    name = _text(administrator, "--administrator", MAX_ADMINISTRATOR_CHARS,
                 "the administrator's name")
    number = _text(case_no, "--case", MAX_CASE_CHARS, "the case number")
    assert name is not None
    now = utcnow()
    with for_writing(engine).begin() as connection:
        # Every batch locks the coverage rows of its assets before it reads the freeze;
        # locking them all here makes a freeze and a batch wait for each other.
        connection.execute(select(coverage.c.asset).order_by(coverage.c.asset).with_for_update())
        # A second freeze is refused as such, whatever its cut-off.
        if cutoff > now and connection.execute(select(administration.c.id)).first() is None:
            raise InputError(f"the cut-off {cutoff.isoformat()} is in the future; the ledger "
                             "is frozen at a moment that has passed", field="--cutoff")
        inserted = connection.execute(
            insert_ignoring_conflicts(connection, administration, "id").values(
                id=1, case_no=number, administrator=name, cutoff=cutoff, frozen_at=now)
            .returning(administration.c.id)).first()
        if inserted is None:
            row = connection.execute(select(administration)).one()
            case_text = f" (case {row.case_no})" if row.case_no else ""
            raise InputError(
                f"the ledger is already frozen: by {row.administrator}{case_text} on "
                f"{row.frozen_at.isoformat()}, at the cut-off {row.cutoff.isoformat()}; a "
                "freeze is final and there is no unfreeze", field="--cutoff")
        later = connection.execute(select(func.count()).select_from(entries)
                                   .where(entries.c.effective_at > cutoff)).scalar_one()
        journal.seal(connection, "freeze", {"administration": [1]})
    return Frozen(Freeze(cutoff, name, number), now, int(later))


def record(engine: Engine, path: str, reason: str,
           progress: Progress | None = None) -> PostResult:
    """Post an entry file as the administrator's record (accepted after the freeze, whatever
    the entries' dates), with the reason kept on the batch."""
    text = _text(reason, "--reason", MAX_REASON_CHARS, "the reason")
    assert text is not None
    current_freeze(engine, required=True)
    drafts, sha256 = read_entry_file(path, progress)
    if not drafts:
        return PostResult(0, 0, 0, None)
    return post_batch(engine, drafts, source=files.source_name(path), sha256=sha256,
                      progress=progress, admin_reason=text)


def claims(engine: Engine, prices_path: str | None = None) -> ClaimsReport:
    """The claims at the cut-off, valued at the commencement prices when a table is recorded;
    with `prices_path`, the table is recorded first (once: the same table again is fine)."""
    if prices_path is not None:
        _record_prices(engine, prices_path)
    with for_reading(engine).connect() as connection:
        return claims_report.claims_report(connection, case.require_freeze(connection))


def _record_prices(engine: Engine, path: str) -> CommencementPrices:
    source = files.source_name(path)
    table = parse_prices(files.read_file(path), source)
    with for_writing(engine).begin() as connection:
        freeze_ = case.require_freeze(connection)
        assets = load_assets(connection)
        if table.quote not in assets:
            raise InputError(f"quote currency {table.quote} is not an asset of the ledger",
                             source=source, field="quote")
        prices = case.commencement_prices(table, assets[table.quote].scale, source)
        recorded = case.load_prices(connection)
        if recorded is not None:
            if recorded.sha256 != prices.sha256:
                raise InputError(
                    f"a different commencement price table is already recorded (from "
                    f"{shown(recorded.source)}, {recorded.quote} as of "
                    f"{recorded.as_of.isoformat()}, SHA-256 {recorded.sha256[:12]}…); the "
                    "claims are valued at one table for the whole case", source=source)
            return recorded
        for asset in prices.prices:
            if asset not in assets:
                raise InputError(f"{asset} is not an asset of the ledger", source=source,
                                 field=f"prices.{asset}")
        needed = {claim.asset for claim in case.load_claims(connection, freeze_)}
        needed |= {dispute.asset for dispute in case.load_disputes(connection)}
        missing = sorted(asset for asset in needed if prices.price_of(asset) is None)
        if missing:
            raise InputError(f"no price for {', '.join(missing)}, held by the customers at the "
                             "cut-off", source=source, field=f"prices.{missing[0]}")
        case.save_prices(connection, prices, utcnow())
        return prices


def pool(engine: Engine, run_id: str | None = None) -> PoolReport:
    """Per asset: the priority pool (from a run's verified balances, or the ledger's at the
    cut-off), the claims on it, the coverage ratio and the shortfall."""
    with for_reading(engine).connect() as connection:
        freeze_ = case.require_freeze(connection)
        pools: Pools = case.load_pools(connection, freeze_, run_id)
        return claims_report.pool_report(freeze_, pools, case.load_claims(connection, freeze_))


def load_elections(engine: Engine, path: str) -> LoadResult:
    """Record the creditors' elections: the whole file or nothing; a line already recorded is
    skipped; an election never changes."""
    current_freeze(engine, required=True)  # before the file: that error is the first to fix
    source = files.source_name(path)
    parsed = input_files.parse_elections(files.read_file(path), source)
    with for_writing(engine).begin() as connection:
        case.require_freeze(connection)
        return register.save_elections(connection, parsed, utcnow())


def load_disputes(engine: Engine, path: str) -> LoadResult:
    """Record disputed claims and their rulings: the whole file or nothing; a line already
    recorded is skipped; a claimed amount and a ruling never change."""
    current_freeze(engine, required=True)  # before the file: that error is the first to fix
    source = files.source_name(path)
    parsed = input_files.parse_disputes(files.read_file(path), source)
    with for_writing(engine).begin() as connection:
        case.require_freeze(connection)
        return register.save_disputes(connection, parsed, utcnow())


def elections(engine: Engine) -> tuple[ElectionRecord, ...]:
    with for_reading(engine).connect() as connection:
        case.require_freeze(connection)
        return register.election_records(connection)


def disputes(engine: Engine) -> tuple[tuple[DisputeRecord, int], ...]:
    """Every dispute as recorded, with the scale of its asset (for showing its amounts)."""
    with for_reading(engine).connect() as connection:
        case.require_freeze(connection)
        scales = {code: asset.scale for code, asset in load_assets(connection).items()}
        return tuple((record, scales[record.dispute.asset])
                     for record in case.dispute_records(connection))


def current_freeze(engine: Engine, *, required: bool = False) -> Freeze | None:
    """The freeze, if the ledger is frozen; `required`: refused (InputError) if it is not."""
    with for_reading(engine).connect() as connection:
        return case.require_freeze(connection) if required else load_freeze(connection)
