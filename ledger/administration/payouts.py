"""The administrator's plan and its distribution as service functions, one transaction each:
compute and store the plan, distribute a stored plan (the payouts actually sent are recorded
by statement.confirm).

A plan is stored by its hash with its canonical document (append-only). `distribute` takes
the document exactly as `admin plan --format json` printed it, finds the stored plan, computes
the plan again from today's stored inputs (the same rules, recovered from the document, and
the same run) and refuses if anything changed; then it posts the payouts in batches, each
batch all or nothing, skipping what is already posted: killed and run again, it completes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from ledger import files
from ledger.administration import case, distribution
from ledger.administration.plan import (
    Plan,
    PlanBasis,
    PlanInputs,
    PlanRules,
    canonical_json,
    first_difference,
    plan,
    plan_hash,
)
from ledger.administration.rules_file import RulesFile, parse_rules
from ledger.errors import InputError, shown
from ledger.json_input import loads_strict
from ledger.model import Pool, Purpose, Role
from ledger.storage import journal
from ledger.storage.engine import for_reading, for_writing
from ledger.storage.posting import post_batch
from ledger.storage.rows import insert_ignoring_conflicts, load_accounts, utcnow
from ledger.storage.schema import admin_plans, administration, batches

DEFAULT_BATCH_SIZE = 1_000
MAX_BATCH_SIZE = 100_000
MEANWHILE = ("another distribution or record was written meanwhile; run `segledger admin "
             "distribute` again")
NO_PRICES = "record the commencement prices first: segledger admin claims --prices FILE"


@dataclass(frozen=True)
class Settings:
    """The rules of tier 2 as a stored plan keeps them: amounts in the quote's minor unit."""

    basic_payment_minor: int
    early_share: Decimal
    estate_minor: int
    pay_from: str
    charge_to: str
    source: str | None = None  # the rules file, for errors


def settings_of(rules: RulesFile, quote: str, quote_scale: int) -> Settings:
    basic, estate = rules.in_minor(quote, quote_scale)
    return Settings(basic, rules.early_share, estate, rules.pay_from, rules.charge_to,
                    rules.source)


def stored_settings(document: Mapping[str, Any]) -> Settings | None:
    """The rules a stored plan was computed with (None: tier 1 only)."""
    rules, basis = document["rules"], document["basis"]
    if rules is None:
        return None
    return Settings(int(rules["basic_payment_minor"]), Decimal(rules["early_share"]),
                    int(document["estate_minor"]), basis["pay_from"], basis["charge_to"])


# --- computing a plan ---------------------------------------------------------------------------


def plan_inputs(connection: Connection, rules: RulesFile | Settings | None,
                run_id: str | None) -> PlanInputs:
    """The plan's inputs as stored now: the claims at the cut-off, the pools (the run's
    verified balances or the ledger's), and with rules the recorded prices, elections and
    disputes."""
    freeze = case.require_freeze(connection)
    claims = case.plan_claims(connection, freeze)
    pools = case.load_pools(connection, freeze, run_id)
    basis = PlanBasis(freeze.cutoff, freeze.administrator, freeze.case_no, pools.run_id, None)
    if rules is None:
        return PlanInputs(claims, pools.plan_pools(), None, 0, basis=basis)
    prices = case.load_prices(connection)
    if prices is None:
        raise InputError(NO_PRICES)
    settings = settings_of(rules, prices.quote, prices.quote_scale) \
        if isinstance(rules, RulesFile) else rules
    _check_accounts(connection, settings, prices.quote)
    disputes = case.load_disputes(connection)
    named = {claim.creditor for claim in claims} | {dispute.creditor for dispute in disputes}
    # An election of a customer with nothing owed at the cut-off is on record but has
    # nothing to apply to.
    elections = tuple(e for e in case.load_elections(connection) if e.creditor in named)
    return PlanInputs(
        claims, pools.plan_pools(),
        PlanRules(prices.quote, prices.quote_scale, settings.basic_payment_minor,
                  settings.early_share, prices.prices),
        settings.estate_minor, elections, disputes,
        replace(basis, prices_sha256=prices.sha256, pay_from=settings.pay_from,
                charge_to=settings.charge_to))


def _check_accounts(connection: Connection, settings: Settings, quote: str) -> None:
    """pay_from: company custody in the quote; charge_to: a company account in the quote,
    not custody (the payout leaves the estate's custody and is charged to the estate)."""
    known = load_accounts(connection, [settings.pay_from, settings.charge_to])
    for field, code in (("pay_from", settings.pay_from), ("charge_to", settings.charge_to)):
        found = known.get(code)
        if found is None:
            raise InputError(f"{shown(code)} is not an account of the chart",
                             source=settings.source, field=field)
        account = found[1]
        if account.asset != quote:
            raise InputError(f"{code} is in {account.asset}; tier 2 is paid in {quote}, the "
                             "quote of the commencement prices", source=settings.source,
                             field=field)
        if account.pool is not Pool.COMPANY:
            raise InputError(f"{code} is a {account.pool.value}-pool account; tier 2 is paid "
                             "from the general estate, the company's", source=settings.source,
                             field=field)
        if (account.role is Role.CUSTODY) != (field == "pay_from"):
            wanted = "a custody account" if field == "pay_from" else "not a custody account"
            raise InputError(f"{code} is a {account.role.value} account; {field} must be "
                             f"{wanted}", source=settings.source, field=field)
        if field == "pay_from" and account.purpose is Purpose.RESERVE:
            raise InputError(f"{code} holds the liability reserve, which compensates customers "
                             "for incidents and is not the general estate",
                             source=settings.source, field=field)
        if field == "pay_from" and case.is_pool_account(account):
            raise InputError(f"{code} holds the {account.asset} guarantee, part of the tier-1 "
                             "pool the customers are paid from first; tier 2 is paid from the "
                             "general estate", source=settings.source, field=field)


@dataclass(frozen=True)
class StoredPlan:
    plan_hash: str
    document: str  # the canonical JSON text
    run_id: str | None
    created_at: datetime

    def parsed(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.document)
        return parsed


@dataclass(frozen=True)
class PlanResult:
    plan: Plan
    stored: StoredPlan
    new: bool  # stored by this call; False: the same plan was stored before

    @property
    def document(self) -> bytes:
        return self.stored.document.encode("ascii")


def make_plan(engine: Engine, rules_path: str | None, run_id: str | None) -> PlanResult:
    """Compute the plan from the stored inputs and store it (once per hash)."""
    rules = None
    if rules_path is not None:
        rules = parse_rules(files.read_file(rules_path), files.source_name(rules_path))
    with for_writing(engine).begin() as connection:
        result = plan(plan_inputs(connection, rules, run_id))
        document = canonical_json(result).decode("ascii")
        digest = plan_hash(result)
        new = connection.execute(
            insert_ignoring_conflicts(connection, admin_plans, "plan_hash").values(
                plan_hash=digest, document=document, run_id=run_id, created_at=utcnow())
            .returning(admin_plans.c.plan_hash)).first() is not None
        if new:
            journal.seal(connection, "admin_plan", {"admin_plans": [digest]})
        stored = stored_plan(connection, digest)
        assert stored is not None and stored.document == document
        assert result.basis is not None
        # Its payouts are dated when it was stored, which must be after the cut-off.
        assert stored.created_at > result.basis.cutoff, "a plan is made after the freeze"
    return PlanResult(result, stored, new)


def stored_plan(connection: Connection, digest: str) -> StoredPlan | None:
    row = connection.execute(select(admin_plans).where(admin_plans.c.plan_hash == digest)).first()
    return None if row is None else StoredPlan(row.plan_hash, row.document, row.run_id,
                                               row.created_at)


def stored_plans(connection: Connection) -> list[StoredPlan]:
    """Every stored plan, the latest first."""
    rows = connection.execute(select(admin_plans).order_by(admin_plans.c.created_at.desc(),
                                                           admin_plans.c.plan_hash))
    return [StoredPlan(row.plan_hash, row.document, row.run_id, row.created_at) for row in rows]


# --- distributing a stored plan -----------------------------------------------------------------


@dataclass(frozen=True)
class DistributeResult:
    plan_hash: str
    posted: int  # payouts posted by this call
    batches: int  # batches posted by this call
    already: int  # payouts of the plan found already posted
    settled: int  # payouts earlier plans had paid in full


def distribute(engine: Engine, plan_path: str, *, batch_size: int = DEFAULT_BATCH_SIZE,
               progress: Callable[[str, int, int], None] | None = None) -> DistributeResult:
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise InputError(f"must be from 1 to {MAX_BATCH_SIZE}, not {batch_size}",
                         field="--batch-size")
    source = files.source_name(plan_path)
    with for_reading(engine).connect() as connection:
        built, stored = prepare_distribution(connection, plan_path)
        seen = batch_count(connection)
    posted = batches_posted = skipped = 0
    drafts = built.drafts
    if progress:
        progress("distribute", 0, len(drafts))
    for start in range(0, len(drafts), batch_size):
        result = post_batch(engine, drafts[start:start + batch_size],
                            source=f"admin distribute {stored.plan_hash[:16]} ({source})"[:500],
                            sha256=stored.plan_hash, admin_plan=stored.plan_hash,
                            guard=unchanged_since(seen + batches_posted, source))
        posted += result.posted
        skipped += result.skipped
        batches_posted += result.batch_id is not None
        if progress:
            progress("distribute", min(start + batch_size, len(drafts)), len(drafts))
    return DistributeResult(stored.plan_hash, posted, batches_posted, built.already + skipped,
                            built.settled)


def prepare_distribution(connection: Connection, plan_path: str
                         ) -> tuple[distribution.Built, StoredPlan]:
    """In one snapshot: the stored plan the file is, checked against today's inputs, and the
    payouts still to post."""
    case.require_freeze(connection)
    source = files.source_name(plan_path)
    stored = _the_stored_plan(connection, files.read_file(plan_path), source)
    document = stored.parsed()
    again = plan(plan_inputs(connection, stored_settings(document), stored.run_id))
    if plan_hash(again) != stored.plan_hash:
        changed = first_difference(json.loads(canonical_json(again)), document, "the plan")
        raise InputError(f"claims/inputs changed since the plan: now {changed}; make a new "
                         "plan (`segledger admin plan`) and distribute that", source=source)
    basis = document["basis"]
    payouts = distribution.plan_payouts(document)
    state = distribution.load_state(connection, stored.plan_hash, payouts,
                                    case.pool_accounts(connection), basis["pay_from"])
    built = distribution.build_drafts(
        stored.plan_hash, payouts, distribution.plan_tiers(document), state,
        stored.created_at, basis["pay_from"], basis["charge_to"])
    return built, stored


def batch_count(connection: Connection) -> int:
    """Batches are never deleted: a count that grew means a batch was written."""
    return int(connection.execute(select(func.count()).select_from(batches)).scalar_one())


def unchanged_since(expected: int, source: str) -> Callable[[Connection], None]:
    """A post_batch guard: refuses the batch unless the ledger has exactly `expected` batches
    (those of the snapshot the payouts were built from, and this run's own)."""

    def guard(connection: Connection) -> None:
        # One distribution batch at a time: the row lock holds until the batch commits, and
        # the count below is read after it (PostgreSQL reads each statement afresh at READ
        # COMMITTED; SQLite's writer already holds the only write lock).
        connection.execute(select(administration.c.id).with_for_update())
        if batch_count(connection) != expected:
            raise InputError(MEANWHILE, source=source)

    return guard


def _the_stored_plan(connection: Connection, content: bytes, source: str) -> StoredPlan:
    body = content[:-1] if content.endswith(b"\n") else content
    found = stored_plan(connection, hashlib.sha256(body).hexdigest())
    if found is not None:
        assert found.document.encode("ascii") == body
        return found
    raise InputError(f"not a stored plan (edited?): {_what_differs(connection, body)}; give "
                     "the plan exactly as `segledger admin plan --format json` printed it",
                     source=source)


def _what_differs(connection: Connection, body: bytes) -> str:
    plans = stored_plans(connection)
    if not plans:
        return "no plan is stored yet (run `segledger admin plan`)"
    try:
        given = loads_strict(files.without_bom(body))
    except InputError as error:
        return error.reason
    latest = plans[0]
    if isinstance(given, dict) and isinstance(given.get("basis"), dict):
        # Compared with the stored plan of the same pools' source, when there is one.
        run = given["basis"].get("run_id")
        latest = next((item for item in plans if item.run_id == run), latest)
    found = first_difference(given, latest.parsed(), f"stored plan {latest.plan_hash[:16]}")
    return found or (f"it has the content of stored plan {latest.plan_hash[:16]} but not its "
                     "bytes (spacing, key order, escapes or line breaks differ)")
