"""A reconciliation run end to end: read evidence, ask the chains, compare, check, store.

`rerun` repeats a stored run from its stored evidence and the ledger as it stood then, and
says whether the result is the same, byte for byte.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from ledger.errors import InputError
from ledger.money import format_amount
from ledger.prices import PriceTable, check_covers, parse_prices
from ledger.storage.engine import for_reading, for_writing
from ledger.storage.rows import load_assets, utcnow
from reconcile import chain_evidence, store
from reconcile.adapters.detect import parse_evidence, recognise
from reconcile.chains import parse_chain_config
from reconcile.engine import Break, Comparison, LedgerFacts, compare
from reconcile.evidence import MAX_EVIDENCE_BYTES, EvidenceFile, Observation
from reconcile.rules import Check, ReserveFacts, Rulebook, RunFacts, preset
from reconcile.rules.rulebook import from_json as rulebook_from_json

Progress = Callable[[str, int, int], None]
# A price file is stored with the run's evidence under this format, and read back as prices.
PRICES_FORMAT = "prices"


@dataclass(frozen=True)
class RunOutcome:
    result: dict[str, Any]
    problems: bool  # breaks, or a failed check: exit 1


@dataclass(frozen=True)
class RerunOutcome:
    outcome: RunOutcome
    same: bool
    differences: list[str]


def read_evidence_files(paths: Sequence[str]) -> list[EvidenceFile]:
    files: list[EvidenceFile] = []
    seen: dict[str, str] = {}
    for path in paths:
        try:
            size = Path(path).stat().st_size
            if size > MAX_EVIDENCE_BYTES:
                raise InputError(f"larger than the {MAX_EVIDENCE_BYTES // 1_000_000} MB limit "
                                 "for one evidence file", source=path)
            content = Path(path).read_bytes()
        except OSError as error:
            raise InputError(f"cannot read: {error.strerror}", source=path) from None
        evidence = EvidenceFile(path, content)
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
    created_at = utcnow()
    with for_reading(engine).connect() as connection:
        facts = store.load_ledger_facts(connection, as_of)
        assets = load_assets(connection)
        if prices is not None:
            check_covers(prices, held_assets(facts), assets, prices_path or "")
            stored.append(("file", PRICES_FORMAT, price_file))
        previous = store.previous_run(connection, None, "RESERVE-DRAW")
        reserve = store.load_reserve_facts(connection, as_of, None, rulebook, previous)
    if chain_config_path:
        configs = parse_chain_config(read_input(chain_config_path), chain_config_path)
        for observation in chain_evidence.observe_chains(
                configs, assets, [c.account for c in facts.custody], progress, environ,
                chain_clients):
            observations.append(observation)
            stored.append(("chain", observation.kind, chain_evidence.to_evidence(observation)))
    run_id = f"run-{created_at:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    with for_writing(engine).begin() as connection:
        open_before = store.previous_open_breaks(connection, None)
        outcome = _evaluate(run_id, created_at, facts, observations, stored, open_before,
                            rulebook, prices, reserve)
        text = canonical(outcome.result)
        store.save_run(connection, store.StoredRun(
            0, run_id, created_at, as_of, outcome.result["status"],
            rulebook.name[:100], text, store.sha256_text(text)), stored,
            outcome.result["breaks"])
    return outcome


def read_input(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise InputError(f"cannot read: {error.strerror}", source=path) from None


def rerun(engine: Engine, run_id: str) -> RerunOutcome:
    with for_reading(engine).connect() as connection:
        stored = store.load_run(connection, run_id)
        if stored is None:
            raise InputError(f"no reconciliation run {run_id!r}", field="RUN_ID")
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
        facts = store.load_ledger_facts(connection, stored.as_of, known_at=stored.created_at)
        open_before = store.previous_open_breaks(connection, stored.seq)
        reserve = store.load_reserve_facts(connection, stored.as_of, stored.created_at,
                                           rulebook,
                                           store.previous_run(connection, stored.seq,
                                                              "RESERVE-DRAW"))
    outcome = _evaluate(stored.run_id, stored.created_at, facts, observations, evidence,
                        open_before, rulebook, prices, reserve)
    differences = _differences(before, outcome.result)
    return RerunOutcome(outcome, canonical(outcome.result) == stored.result, differences)


def _differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    found = []
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key):
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
              prices: PriceTable | None, reserve: ReserveFacts) -> RunOutcome:
    comparisons, breaks = compare(facts, observations)
    checks = rulebook.evaluate(RunFacts(facts, comparisons, prices, reserve))
    status = "breaks" if any(b.kind != "dust" for b in breaks) else "clean"
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
        "breaks": [_break_json(b, open_before.get((b.account, b.kind), run_id)) for b in breaks],
        "checks": [check_json(c) for c in checks],
        "matching": {c.account: _matching_json(c) for c in comparisons if c.matching},
    }
    failed = any(c.status == "fail" for c in checks)
    return RunOutcome(result, status == "breaks" or failed)


def _account_json(c: Comparison) -> dict[str, Any]:
    def fmt(minor: int | None) -> str | None:
        return None if minor is None else format_amount(minor, c.scale)

    return {"account": c.account, "asset": c.asset, "pool": c.pool, "location": c.location,
            "purpose": c.purpose, "ledger": fmt(c.ledger_minor), "external": fmt(c.external_minor),
            "difference": fmt(c.difference_minor), "dust": format(c.dust, "f"),
            "source": c.source, "evidence_as_of": c.evidence_as_of, "facts": dict(c.facts)}


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
    assert c.matching is not None
    explained = c.matching.explained_minor
    difference = c.difference_minor or 0

    def item(i: Any) -> dict[str, Any]:
        return {"id": i.id, "amount": format_amount(i.amount_minor, c.scale),
                "on": i.on.isoformat(), "reference": i.reference, "description": i.description}

    return {
        "matched": [{"rule": m.rule, "external": list(m.external), "ledger": list(m.ledger)}
                    for m in c.matching.matches],
        "unmatched_external": [item(i) for i in c.matching.unmatched_external],
        "unmatched_ledger": [item(i) for i in c.matching.unmatched_ledger],
        "explained": format_amount(explained, c.scale),
        "unexplained": format_amount(difference - explained, c.scale),
    }


def history(connection: Connection) -> list[store.StoredRun]:
    return store.history(connection)
