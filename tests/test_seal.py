"""Seals, and an independent verifier written from docs/integrity.md alone: plain SQL and
hashlib, nothing of segledger. It must agree with the ledger's own chain, and, with a seal
kept outside, catch an insider who rewrote history and rebuilt the whole chain."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

from tests.helpers import cli
from tests.test_tamper import _as_insider, _entry_id, build_history


@pytest.fixture
def history(engine: Engine, tmp_path: Path) -> Engine:
    return build_history(engine, tmp_path)


# --- the independent verifier (docs/integrity.md) -------------------------------------------

TABLES = ["batches", "incidents", "incident_links", "recon_runs", "insurance_policies",
          "closed_periods", "administration", "admin_prices", "admin_plans", "admin_elections",
          "admin_disputes", "admin_confirmations"]
COLUMNS = {
    "batches": "id, source, sha256, entry_count, posting_count, skipped_count, recorded_at, "
               "admin_reason, admin_plan",
    "incidents": "incident_id, kind, opened_entry_id, opened_at",
    "incident_links": "id, incident_id, entry_id, kind, asset, amount_minor",
    "recon_runs": "seq, run_id, created_at, as_of, status, rulebook, result, result_sha256",
    "recon_evidence": "id, run_seq, position, name, kind, format, sha256, size_bytes, content",
    "recon_breaks": "id, run_seq, account, asset, kind, difference, open_since",
    "insurance_policies": "id, policy_id, insurer, currency, limit_minor, covered_share, "
                          "period_start, period_end, content_hash, source, loaded_at",
    "closed_periods": "id, closed_through, closed_at, closed_by, note",
    "administration": "id, case_no, administrator, cutoff, frozen_at",
    "admin_prices": "id, quote, as_of, prices, sha256, source, recorded_at",
    "admin_plans": "plan_hash, document, run_id, created_at",
    "admin_elections": "creditor, option, payment, source, loaded_at",
    "admin_disputes": "id, creditor, asset, event, claimed_minor, status, allowed_minor, "
                      "source, loaded_at",
    "admin_confirmations": "id, entry_key, reference, sent_at, source, loaded_at",
}
KEYS = {"batches": "id", "incidents": "incident_id", "recon_runs": "seq",
        "admin_plans": "plan_hash", "admin_elections": "creditor"}
TIME_COLUMNS = {"recorded_at", "opened_at", "created_at", "as_of", "period_start",
                "period_end", "loaded_at", "closed_through", "closed_at", "cutoff", "frozen_at",
                "sent_at", "effective_at", "sealed_at"}


def encode(name: str, value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if name in TIME_COLUMNS:
        if isinstance(value, str):  # SQLite: UTC text
            value = datetime.fromisoformat(value).replace(tzinfo=UTC)
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if name == "metadata":
        document = json.loads(value) if isinstance(value, str) else value
        return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if isinstance(value, (bytes, memoryview)):
        return "sha256:" + hashlib.sha256(bytes(value)).hexdigest()
    if isinstance(value, (int, Decimal)):
        return str(int(value))
    return value


def line(parts: list[Any]) -> bytes:
    return (json.dumps(parts, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def row_line(table: str, row: Any) -> bytes:
    names = [name.strip() for name in COLUMNS[table].split(",")]
    return line([table, *(encode(name, row[i]) for i, name in enumerate(names))])


def entry_hash(connection: Connection, entry: Any) -> str:
    postings = connection.execute(text(
        "SELECT p.line_no, a.code, a.asset, a.pool, a.role, p.asset, p.amount_minor, "
        "p.effective_at FROM postings p JOIN accounts a ON a.id = p.account_id "
        "WHERE p.entry_id = :e"), {"e": entry[0]}).all()
    postings = sorted(postings, key=lambda p: (p[0], -int(p[6])))
    body = b"".join(line(["posting", str(p[0]), p[1], p[2], p[3], p[4], p[5], str(int(p[6])),
                          encode("effective_at", p[7])]) for p in postings)
    fields = ["id", "key", "type", "effective_at", "recorded_at", "memo", "metadata",
              "content_hash", "reverses_id", "batch_id"]
    header = line(["entry", *(encode(name, value) for name, value in zip(fields, entry,
                                                                         strict=True))])
    return hashlib.sha256(header + hashlib.sha256(body).hexdigest().encode()).hexdigest()


def digest(connection: Connection, subject: dict[str, list[str]]) -> str:
    out = hashlib.sha256()
    for table in TABLES:
        keys = subject.get(table, [])
        key = KEYS.get(table, "id")
        ordered = sorted(keys, key=lambda k: (0, int(k), "") if k.isdigit() else (1, 0, k))
        for value in ordered:
            wanted: Any = int(value) if key in ("id", "seq") else value
            row = connection.execute(text(f"SELECT {COLUMNS[table]} FROM {table} "
                                          f"WHERE {key} = :k"), {"k": wanted}).first()
            if row is None:
                continue
            out.update(row_line(table, row))
            if table == "recon_runs":
                for child in ("recon_evidence", "recon_breaks"):
                    for child_row in connection.execute(text(
                            f"SELECT {COLUMNS[child]} FROM {child} WHERE run_seq = :s "
                            "ORDER BY id"), {"s": wanted}):
                        out.update(row_line(child, child_row))
            if table == "batches":
                for entry in connection.execute(text(
                        "SELECT id, key, type, effective_at, recorded_at, memo, metadata, "
                        "content_hash, reverses_id, batch_id FROM entries WHERE batch_id = :b "
                        "ORDER BY id"), {"b": wanted}):
                    out.update(line(["entries", str(entry[0]), entry[1],
                                     entry_hash(connection, entry)]))
    return out.hexdigest()


def independent_check(engine: Engine, seal: dict[str, Any]) -> list[str]:
    """Every link rebuilt from the rows, then the seal's link compared."""
    problems, previous = [], "0" * 64
    hashes: dict[int, str] = {}
    with engine.connect() as connection:
        links = connection.execute(text(
            "SELECT seq, kind, ref, subject, digest, prev_hash, link_hash, sealed_at "
            "FROM chain_links ORDER BY seq")).all()
        for number, link in enumerate(links, start=1):
            seq, kind, ref, subject, stored_digest, prev_hash, link_hash, sealed_at = link
            if seq != number or prev_hash != previous:
                problems.append(f"link {seq} out of place")
            if digest(connection, json.loads(subject)) != stored_digest:
                problems.append(f"link {seq}: rows differ from its digest")
            recomputed = hashlib.sha256(line(["link", str(seq), kind, ref, subject,
                                              stored_digest, prev_hash,
                                              encode("sealed_at", sealed_at)])).hexdigest()
            if recomputed != link_hash:
                problems.append(f"link {seq}: hash does not recompute")
            hashes[seq], previous = recomputed, link_hash
    body = {name: value for name, value in seal.items() if name != "sha256"}
    if hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
                      ).hexdigest() != seal["sha256"]:
        problems.append("the seal file was changed")
    if hashes.get(seal["link"]["seq"]) != seal["link"]["hash"]:
        problems.append(f"link {seal['link']['seq']} is not the sealed one")
    return problems


# --- the tests --------------------------------------------------------------------------------

def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _seal(engine: Engine, folder: Path, name: str = "seal.json") -> tuple[Path, dict[str, Any]]:
    out = folder / name
    done = cli("--db", _url(engine), "seal", "--through", "now", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out, json.loads(out.read_text())


def test_the_independent_verifier_agrees_with_the_chain(history: Engine, tmp_path: Path) -> None:
    path, seal = _seal(history, tmp_path)
    # Records: the policy, the incident and its link.
    assert seal["counts"] == {"links": 4, "batches": 2, "entries": 5, "postings": 10, "runs": 1,
                              "records": 3}
    assert independent_check(history, seal) == []
    done = cli("--db", _url(history), "verify", "--seal", str(path))
    assert done.returncode == 0, done.stdout


def test_a_history_rewritten_with_the_whole_chain_rebuilt_fails_only_against_the_seal(
        history: Engine, tmp_path: Path) -> None:
    path, seal = _seal(history, tmp_path)

    def rewrite(connection: Connection) -> None:
        connection.execute(text("UPDATE postings SET amount_minor = amount_minor * 2 "
                                "WHERE entry_id = :e"), {"e": _entry_id(connection, "d1")})
        connection.execute(text("UPDATE entries SET entry_hash = NULL, postings_hash = NULL"))
        connection.execute(text("DELETE FROM chain_links"))
        connection.execute(text("UPDATE chain_head SET seq = 0, link_hash = :z"), {"z": "0" * 64})

    _as_insider(history, rewrite)
    from ledger.storage import journal  # the insider reseals with segledger's own code
    assert journal.seal_backlog(history) == 4
    plain = cli("--db", _url(history), "verify")
    assert plain.returncode == 0, plain.stdout  # the rebuilt chain is consistent in itself
    against = cli("--db", _url(history), "verify", "--seal", str(path))
    assert against.returncode == 1
    assert "BROKEN seal:" in against.stdout and "history before the seal was rewritten" in \
        against.stdout
    assert "link 4 is not the sealed one" in independent_check(history, seal)


def test_a_later_write_leaves_an_earlier_seal_valid(history: Engine, tmp_path: Path) -> None:
    path, _ = _seal(history, tmp_path)
    from tests.helpers import deposit, post
    post(history, [deposit("later", "c-009", "5")])
    assert cli("--db", _url(history), "verify", "--seal", str(path)).returncode == 0
    _, newer = _seal(history, tmp_path, "newer.json")
    assert newer["link"]["seq"] == 5 and newer["counts"]["entries"] == 6


def test_an_edited_or_foreign_seal_is_refused_in_one_line(history: Engine, tmp_path: Path) -> None:
    path, seal = _seal(history, tmp_path)
    seal["counts"]["entries"] = 4
    path.write_text(json.dumps(seal))
    done = cli("--db", _url(history), "verify", "--seal", str(path))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {path}: sha256: the seal's own SHA-256 does not match its content: the file "
        "was changed or damaged"]
    for content in ("[]", "{", '{"format": "other"}', ""):
        path.write_text(content)
        refused = cli("--db", _url(history), "verify", "--seal", str(path))
        assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, \
            refused.stderr


def test_a_seal_before_anything_was_sealed_is_refused(history: Engine) -> None:
    done = cli("--db", _url(history), "seal", "--through", "2000-01-01T00:00:00Z")
    assert done.returncode == 2
    assert "nothing was sealed at or before 2000-01-01T00:00:00.000000Z" in done.stderr


@pytest.mark.parametrize("code", ["customer:c-001:JPY", 'customer:"q\\\\t\u00e9\u65e5\u672c\x01":JPY'])
def test_the_writers_fast_posting_lines_are_the_verifiers_bytes(code: str) -> None:
    """The posting path builds the lines its own way for speed; verify recomputes them the
    general way. Both must give the same bytes, escapes and non-ASCII text included."""
    from ledger.storage import journal

    at = datetime(2025, 11, 25, 9, 30, 0, 123456, tzinfo=UTC)
    entry = {"id": 7, "key": "k\u00e9", "type": "deposit", "effective_at": at,
             "recorded_at": at, "memo": None, "metadata": {"b": [1, 2.5], "a": "\u65e5"},
             "content_hash": "0" * 64, "reverses_id": None, "batch_id": 3}
    fast = journal.PostingLines()
    lines = [fast.line(0, fast.account(code, "JPY", "customer", "customer_liability"), 1500,
                       fast.time(at)),
             fast.line(0, fast.account("custody:customer:trust:JPY", "JPY", "customer",
                                       "custody"), -1500, fast.time(at))]
    general = journal.entry_hashes(entry, [
        journal.PostingFacts(0, "custody:customer:trust:JPY", "JPY", "customer", "custody",
                             "JPY", -1500, at),
        journal.PostingFacts(0, code, "JPY", "customer", "customer_liability", "JPY", 1500, at)])
    assert fast.hashes(entry, lines) == general
