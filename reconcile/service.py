"""A reconciliation run end to end: read evidence, ask the chains, compare, check, store.

`rerun` repeats a stored run from its stored evidence and the ledger as it stood then, and
says whether the result is the same, byte for byte.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine

from ledger.errors import InputError, shown
from ledger.files import read_file
from ledger.money import format_amount
from ledger.prices import PriceTable, check_covers, parse_prices
from ledger.storage import journal
from ledger.storage.engine import for_reading, for_writing
from ledger.storage.rows import load_assets, utcnow
from reconcile import chain_evidence, store
from reconcile.adapters.detect import parse_evidence, recognise
from reconcile.chains import parse_chain_config
from reconcile.engine import (
    EVIDENCE_READER_VERSION,
    Break,
    ComparePolicy,
    Comparison,
    LedgerFacts,
    PostingTotals,
    compare,
    wanted_postings,
)
from reconcile.evidence import EvidenceFile, Observation
from reconcile.rules import RULES, Check, ReserveFacts, Rulebook, RunFacts, preset
from reconcile.rules.rulebook import from_json as rulebook_from_json

Progress = Callable[[str, int, int], None]
# A price file is stored with the run's evidence under this format, and read back as prices.
PRICES_FORMAT = "prices"
# Where a run's result records the evidence reader version that read its evidence.
READER_KEY = "evidence_reader_version"
# Where it records the version of the comparison that made it (engine.RESULT_VERSION).
RESULT_KEY = "result_version"


@dataclass(frozen=True)
class RunOutcome:
    result: dict[str, Any]  # exactly what is stored, and what a rerun must reproduce
    problems: bool  # breaks, or a failed check: exit 1
    ages_days: tuple[int, ...]  # per break of `result`: whole days since it first appeared

    @property
    def document(self) -> dict[str, Any]:
        """The run as every interface shows it: the stored result (as stored, so `run` and
        `show` print the same document) with each break's `age_days`. Ages are worked out
        when read, never stored, so the stored results of runs made before ages were shown
        stay byte for byte what they were and their reruns still compare equal."""
        shown: dict[str, Any] = json.loads(canonical(self.result))
        shown["breaks"] = [{**found, "age_days": age}
                           for found, age in zip(shown["breaks"], self.ages_days, strict=True)]
        return shown


@dataclass(frozen=True)
class RerunOutcome:
    outcome: RunOutcome
    same: bool
    differences: list[str]
    # The evidence reader version the stored run recorded (None: stored before versions were
    # recorded); the rerun's result records this one's, EVIDENCE_READER_VERSION.
    stored_reader_version: str | None = None


def read_evidence_files(paths: Sequence[str]) -> list[EvidenceFile]:
    files: list[EvidenceFile] = []
    seen: dict[str, str] = {}
    for path in paths:
        evidence = EvidenceFile(path, read_file(path))
        if evidence.sha256 in seen:
            raise InputError(f"the same evidence is given twice (also as {seen[evidence.sha256]})",
                             source=path)
        seen[evidence.sha256] = path
        files.append(evidence)
    return files


def run(engine: Engine, *, as_of: datetime, evidence_paths: Sequence[str],
        chain_config_path: str | None = None, progress: Progress | None = None,
        environ: Mapping[str, str] = os.environ,
        chain_clients: Mapping[str, Any] | None = None,
        prices_path: str | None = None, rulebook: Rulebook | None = None) -> RunOutcome:
    rulebook = rulebook or preset("jp-fsa")
    prices = None
    if prices_path:
        price_file = EvidenceFile(prices_path, read_input(prices_path))
        prices = parse_prices(price_file.content, prices_path)
    files = read_evidence_files(evidence_paths)
    observations: list[Observation] = []
    stored: list[tuple[str, str, EvidenceFile]] = []
    for done, evidence in enumerate(files, start=1):
        observations.extend(parse_evidence(evidence))
        stored.append(("file", recognise(evidence), evidence))
        if progress:
            progress("evidence", done, len(files))
    # The chains are asked before the ledger is read, so that the ledger's figures and the
    # postings that matching pairs with the evidence all come from one snapshot.
    chained: list[tuple[str, str, EvidenceFile]] = []
    if chain_config_path:
        configs = parse_chain_config(read_input(chain_config_path), chain_config_path)
        with for_reading(engine).connect() as connection:
            assets = load_assets(connection)
            custody = [account for _, account in store.custody_accounts(connection)]
        for observation in chain_evidence.observe_chains(configs, assets, custody, progress,
                                                         environ, chain_clients):
            observations.append(observation)
            chained.append(("chain", observation.kind, chain_evidence.to_evidence(observation)))
    policy = rulebook.compare_policy()
    created_at = utcnow()
    with for_reading(engine).connect() as connection:
        facts = store.load_ledger_facts(connection, as_of)
        assets = load_assets(connection)
        if prices is not None:
            check_covers(prices, held_assets(facts), assets, prices_path or "")
            check_quote(prices, rulebook, prices_path or "")
            stored.append(("file", PRICES_FORMAT, price_file))
        reserve = store.load_reserve_facts(connection, as_of, None, rulebook)
        facts = store.with_postings(connection, facts,
                                    wanted_postings(facts, observations, policy))
    stored.extend(chained)
    run_id = f"run-{created_at:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    with for_writing(engine).begin() as connection:
        open_before = store.previous_open_breaks(connection, None)
        first_seen = store.runs_as_of(connection, set(open_before.values()))
        outcome = _evaluate(run_id, created_at, facts, observations, stored, open_before,
                            rulebook, policy, prices, reserve, first_seen)
        text = canonical(outcome.result)
        store.save_run(connection, store.StoredRun(
            0, run_id, created_at, as_of, outcome.result["status"],
            rulebook.name[:100], text, store.sha256_text(text)), stored,
            outcome.result["breaks"])
    return outcome


def read_input(path: str) -> bytes:
    """A price file or chain config: read by the one reader of user files (size limit, plain
    errors)."""
    return read_file(path)


def check_quote(prices: PriceTable, rulebook: Rulebook, source: str) -> None:
    """Values are in the rulebook's currency everywhere: a price file must quote in it."""
    if prices.quote != rulebook.currency:
        raise InputError(f"the prices are quoted in {prices.quote}, but the rulebook "
                         f"{rulebook.name} values in {rulebook.currency}: give prices quoted "
                         f"in {rulebook.currency}, or a rulebook with currency "
                         f"{prices.quote}", source=source, field="quote")


def rerun(engine: Engine, run_id: str) -> RerunOutcome:
    with for_reading(engine).connect() as connection:
        stored = _stored_run(connection, run_id)
        evidence = store.load_evidence(connection, stored.seq)
        observations: list[Observation] = []
        prices = None
        for kind, fmt, file in evidence:
            if fmt == PRICES_FORMAT:
                prices = parse_prices(file.content, file.name)
            elif kind == "file":
                observations.extend(parse_evidence(file))
            else:
                observations.append(chain_evidence.from_evidence(file))
        before = json.loads(stored.result)
        if "rules" not in before["rulebook"]:
            raise InputError(f"run {run_id} was made before rulebooks were stored with runs; "
                             "it cannot be evaluated again exactly", field="RUN_ID")
        rulebook = rulebook_from_json(before["rulebook"])
        # A run stored before result versions is compared again as it was made (see
        # engine.RESULT_VERSION), and its result again has no version.
        policy = replace(rulebook.compare_policy(), result_version=before.get(RESULT_KEY))
        facts = store.load_ledger_facts(connection, stored.as_of, known_at=stored.created_at)
        facts = store.with_postings(connection, facts,
                                    wanted_postings(facts, observations, policy),
                                    known_at=stored.created_at)
        open_before = store.previous_open_breaks(connection, stored.seq)
        first_seen = store.runs_as_of(connection, set(open_before.values()))
        reserve = store.load_reserve_facts(connection, stored.as_of, stored.created_at,
                                           rulebook)
    outcome = _evaluate(stored.run_id, stored.created_at, facts, observations, evidence,
                        open_before, rulebook, policy, prices, reserve, first_seen)
    return _compared(stored, before, outcome)


def _compared(stored: store.StoredRun, before: dict[str, Any],
              outcome: RunOutcome) -> RerunOutcome:
    """The rerun against the stored result, byte for byte but for the reader version (which
    says what read the evidence, not what was found); when they differ and the readers do
    too, the differences say so first."""
    stored_version = before.get(READER_KEY)
    if stored_version == EVIDENCE_READER_VERSION:
        same = canonical(outcome.result) == stored.result
    else:
        same = _without_reader(before) == _without_reader(outcome.result)
    if same:
        return RerunOutcome(outcome, True, [], stored_version)
    notes = []
    if stored_version != EVIDENCE_READER_VERSION:
        stored_by = ("an evidence reader that recorded no version (before version 2)"
                     if stored_version is None else f"evidence reader version {stored_version}")
        notes.append(f"stored by {stored_by}, this is version {EVIDENCE_READER_VERSION}: "
                     "differences may come from parser fixes")
    if "currency" not in before["rulebook"]:
        notes.append("stored before rulebooks set a currency, a time zone, matching and "
                     "evidence age, and before RESERVE-DRAW reported the as-of's window: "
                     "differences may come from those too")
    return RerunOutcome(outcome, False, notes + _differences(before, outcome.result),
                        stored_version)


def _without_reader(result: Mapping[str, Any]) -> str:
    return canonical({key: value for key, value in result.items() if key != READER_KEY})


def _differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    found = []
    for key in sorted(set(before) | set(after)):
        if key != READER_KEY and before.get(key) != after.get(key):
            found.append(f"{key}: stored {json.dumps(before.get(key), default=str)[:300]}, "
                         f"now {json.dumps(after.get(key), default=str)[:300]}")
    return found


def canonical(result: Mapping[str, Any]) -> str:
    return json.dumps(result, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


def held_assets(facts: LedgerFacts) -> set[str]:
    """Assets with a balance at the as-of time: those a price file must price."""
    held = {c.account.asset for c in facts.custody if c.ledger_minor}
    return held | {asset for asset, minor in facts.liabilities_minor.items() if minor}


def _evaluate(run_id: str, created_at: datetime, facts: LedgerFacts,
              observations: Sequence[Observation], evidence: Sequence[tuple[str, str, EvidenceFile]],
              open_before: Mapping[tuple[str, str], str], rulebook: Rulebook,
              policy: ComparePolicy, prices: PriceTable | None, reserve: ReserveFacts,
              first_seen: Mapping[str, datetime]) -> RunOutcome:
    comparisons, breaks = compare(facts, observations, policy)
    checks = rulebook.evaluate(RunFacts(facts, comparisons, prices, reserve))
    status = "breaks" if any(b.kind != "dust" for b in breaks) else "clean"
    break_rows = [_break_json(b, open_before.get((b.account, b.kind), run_id))
                    for b in breaks]
    result = {
        "run_id": run_id,
        "as_of": facts.as_of.isoformat(),
        "created_at": created_at.isoformat(),
        "status": status,
        "rulebook": rulebook.to_json(),
        "prices": prices.to_json() if prices else None,
        "evidence": [{"name": f.name, "kind": kind, "format": fmt, "sha256": f.sha256,
                      "size_bytes": len(f.content)} for kind, fmt, f in evidence],
        "accounts": [_account_json(c) for c in comparisons],
        "breaks": break_rows,
        "checks": [check_json(c) for c in checks],
        "matching": {c.account: _matching_json(c) for c in comparisons
                     if c.matching or c.not_matched},
        READER_KEY: EVIDENCE_READER_VERSION,
    }
    if policy.result_version is not None:
        result[RESULT_KEY] = policy.result_version
    failed = any(c.status == "fail" for c in checks)
    ages = ages_days(break_rows, run_id, facts.as_of, first_seen)
    return RunOutcome(result, status == "breaks" or failed, ages)


def _account_json(c: Comparison) -> dict[str, Any]:
    def fmt(minor: int | None) -> str | None:
        return None if minor is None else format_amount(minor, c.scale)

    document = {
        "account": c.account, "asset": c.asset, "pool": c.pool, "location": c.location,
        "purpose": c.purpose, "ledger": fmt(c.ledger_minor), "external": fmt(c.external_minor),
        "difference": fmt(c.difference_minor), "dust": format(c.dust, "f"),
        "source": c.source, "evidence_as_of": c.evidence_as_of, "facts": dict(c.facts)}
    if c.stale is not None:
        # Only on a stale account, so that the results of runs without one (every run stored
        # before stale evidence was a break) read as they were stored.
        document["stale"] = {"reason": c.stale.reason, "external": fmt(c.stale.external_minor)}
    return document


def _break_json(b: Break, open_since: str) -> dict[str, str]:
    return {"account": b.account, "asset": b.asset, "kind": b.kind,
            "difference": format(b.difference, "f"), "open_since": open_since,
            "detail": b.detail}


def check_json(c: Check) -> dict[str, Any]:
    document: dict[str, Any] = {"rule": c.rule, "asset": c.asset, "status": c.status,
                                "value": c.value, "threshold": c.threshold, "detail": c.detail,
                                "numbers": dict(c.numbers)}
    if c.account:
        document["account"] = c.account
    return document


def _matching_json(c: Comparison) -> dict[str, Any]:
    if c.not_matched is not None:
        return _not_matched_json(c, c.not_matched)
    assert c.matching is not None
    explained = c.matching.explained_minor
    difference = c.difference_minor or 0

    def item(i: Any) -> dict[str, Any]:
        return {"id": i.id, "amount": format_amount(i.amount_minor, c.scale),
                "on": i.on.isoformat(), "reference": i.reference, "description": i.description}

    def matched(m: Any) -> dict[str, Any]:
        found = {"rule": m.rule, "external": list(m.external), "ledger": list(m.ledger)}
        if m.difference_minor:  # matched within the amount tolerance
            found["difference"] = format_amount(m.difference_minor, c.scale)
        return found

    # What matched within the amount tolerance is neither explained (unmatched) nor hidden:
    # it is shown on its own, and only when there is some, so that results without a
    # tolerance read as they always have.
    tolerated = c.matching.within_tolerance_minor
    document = {
        "matched": [matched(m) for m in c.matching.matches],
        "unmatched_external": [item(i) for i in c.matching.unmatched_external],
        "unmatched_ledger": [item(i) for i in c.matching.unmatched_ledger],
        "explained": format_amount(explained, c.scale),
        "unexplained": format_amount(difference - explained - tolerated, c.scale),
    }
    if tolerated:
        document["within_tolerance"] = format_amount(tolerated, c.scale)
    return document


NOT_MATCHED = "the evidence is a balance without movements: no posting can be paired with it"


def _not_matched_json(c: Comparison, totals: PostingTotals) -> dict[str, Any]:
    """Matching was not possible (a balance alone): what was not paired, counted and summed,
    never listed. The keys of a matching are kept, empty, so that every reader of them reads
    this too; `possible` is false and `reason` says why."""
    return {"possible": False, "reason": NOT_MATCHED,
            "ledger_postings": totals.count,
            "ledger_in": format_amount(totals.in_minor, c.scale),
            "ledger_out": format_amount(totals.out_minor, c.scale),
            "matched": [], "unmatched_external": [], "unmatched_ledger": [],
            "explained": format_amount(0, c.scale),
            "unexplained": format_amount(c.difference_minor or 0, c.scale)}


# Reading stored runs: each function reads in one snapshot and returns plain values.

DEFAULT_HISTORY_RUNS = 1000
MAX_HISTORY_RUNS = 10_000
# Runs read (and their results parsed) per query: a failed rule is only in the stored result,
# so filtering on it reads page after page until enough runs match.
HISTORY_PAGE_RUNS = 500
RUN_STATUSES = ("clean", "breaks")


def ages_days(breaks: Sequence[Mapping[str, Any]], run_id: str, as_of: datetime,
              first_seen: Mapping[str, datetime]) -> tuple[int, ...]:
    """Each break's age: whole days from the as-of of the run where it first appeared
    (`open_since`, whose as-of `first_seen` gives) to this run's as-of. Never negative: a run
    for an earlier as-of, made after the one where the break appeared, shows it as new."""
    ages = []
    for found in breaks:
        since = found["open_since"]
        first = as_of if since == run_id else first_seen.get(since)
        assert first is not None, f"open_since {since} names no stored run"
        ages.append(max((as_of - first).days, 0))
    return tuple(ages)


def show(engine: Engine, run_id: str) -> RunOutcome:
    """A stored run as it was stored, with the age of each break."""
    with for_reading(engine).connect() as connection:
        return _stored_outcome(connection, _stored_run(connection, run_id))


def seal_problem(engine: Engine, run_id: str) -> str | None:
    """Why the stored run cannot be trusted as stored (its result, evidence or breaks changed
    behind the ledger's back), or None. `show` and `export` refuse such a run."""
    with for_reading(engine).connect() as connection:
        stored = _stored_run(connection, run_id)
        problem = journal.record_problem(connection, "recon_runs", stored.seq)
    return None if problem is None else f"run {run_id} {problem}"


@dataclass(frozen=True)
class RunExport:
    outcome: RunOutcome
    evidence: list[tuple[str, str, EvidenceFile]]  # (kind, format, file) in stored order


def export_contents(engine: Engine, run_id: str) -> RunExport:
    """What an auditor's export holds: the run as `show` gives it and its stored evidence."""
    with for_reading(engine).connect() as connection:
        stored = _stored_run(connection, run_id)
        return RunExport(_stored_outcome(connection, stored),
                         store.load_evidence(connection, stored.seq))


def _stored_run(connection: Connection, run_id: str) -> store.StoredRun:
    stored = store.load_run(connection, run_id)
    if stored is None:
        raise InputError(f"no reconciliation run {shown(run_id)}", field="RUN_ID")
    return stored


def _stored_outcome(connection: Connection, stored: store.StoredRun) -> RunOutcome:
    result: dict[str, Any] = json.loads(stored.result)
    first_seen = store.runs_as_of(connection, {b["open_since"] for b in result["breaks"]})
    failed = any(c["status"] == "fail" for c in result["checks"])
    return RunOutcome(result, result["status"] == "breaks" or failed,
                      ages_days(result["breaks"], stored.run_id, stored.as_of, first_seen))


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    as_of: datetime
    created_at: datetime
    status: str
    rulebook: str
    breaks: int
    failed_checks: int
    failed_rules: tuple[str, ...]  # each rule with a failed check, once, in the run's order
    oldest_break_age_days: int | None  # None: no break at that run
    result_sha256: str


@dataclass(frozen=True)
class History:
    runs: list[RunSummary]
    more: bool  # more runs match than the limit let through


def history(engine: Engine, *, since: datetime | None = None, until: datetime | None = None,
            status: str | None = None, rule: str | None = None,
            limit: int = DEFAULT_HISTORY_RUNS) -> History:
    """Stored runs, newest first (in the order they were made), matching every filter given:
    as-of within [since, until], the run's status, a failed check of `rule`."""
    _check_history_filters(since, until, status, rule, limit)
    found: list[RunSummary] = []
    before: int | None = None
    with for_reading(engine).connect() as connection:
        while len(found) <= limit:
            page = store.history(connection, HISTORY_PAGE_RUNS, since=since, until=until,
                                 status=status, before_seq=before)
            results = [json.loads(run.result) for run in page]
            first_seen = store.runs_as_of(
                connection, {b["open_since"] for result in results for b in result["breaks"]})
            summaries = (_summary(run, result, first_seen)
                         for run, result in zip(page, results, strict=True))
            found.extend(s for s in summaries if rule is None or rule in s.failed_rules)
            if len(page) < HISTORY_PAGE_RUNS:
                break
            before = page[-1].seq
    return History(found[:limit], len(found) > limit)


def _check_history_filters(since: datetime | None, until: datetime | None, status: str | None,
                           rule: str | None, limit: int) -> None:
    if since is not None and until is not None and since > until:
        raise InputError(f"{since.isoformat()} is after --until {until.isoformat()}",
                         field="--since")
    if status is not None and status not in RUN_STATUSES:
        raise InputError(f"{shown(status)} is not a run status ({', '.join(RUN_STATUSES)})",
                         field="--status")
    if rule is not None and rule not in RULES:
        raise InputError(f"unknown rule {shown(rule)} (known: {', '.join(sorted(RULES))})",
                         field="--rule")
    if not 1 <= limit <= MAX_HISTORY_RUNS:
        raise InputError(f"{limit} is not between 1 and {MAX_HISTORY_RUNS}", field="--limit")


def _summary(run: store.StoredRun, result: Mapping[str, Any],
             first_seen: Mapping[str, datetime]) -> RunSummary:
    failed = [check["rule"] for check in result["checks"] if check["status"] == "fail"]
    ages = ages_days(result["breaks"], run.run_id, run.as_of, first_seen)
    return RunSummary(run.run_id, run.as_of, run.created_at, run.status, run.rulebook,
                      len(result["breaks"]), len(failed), tuple(dict.fromkeys(failed)),
                      max(ages, default=None), run.result_sha256)
