"""The hash chain (DESIGN.md invariant 7): every write that makes history is sealed, in commit
order, in `chain_links`, so that `verify` can tell any row changed, removed or inserted behind
the ledger's back. docs/integrity.md specifies the encoding for independent verifiers.

A link seals a *subject*: rows of the sealed tables named by their keys. Its digest is the
SHA-256 of the subject's canonical lines (one JSON array per row, children after their
parent); a batch's children are its entries, each as its own hash (of its fields and its
postings). A link's hash covers its number, its subject, its digest and the previous link's
hash. The writer takes the single `chain_head` row last in its transaction, so the link
numbers are the commit order and concurrent writers wait for each other only here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, Connection, Engine, Integer, Table, select, update
from sqlalchemy.types import BigInteger

from ledger.storage.engine import for_writing
from ledger.storage.rows import select_in, utcnow
from ledger.storage.schema import (
    accounts,
    admin_confirmations,
    admin_disputes,
    admin_elections,
    admin_plans,
    admin_prices,
    administration,
    batches,
    chain_head,
    chain_links,
    closed_periods,
    entries,
    incident_links,
    incidents,
    insurance_policies,
    postings,
    recon_breaks,
    recon_evidence,
    recon_runs,
)

GENESIS = "0" * 64


@dataclass(frozen=True)
class Sealed:
    """A table whose rows the chain seals: its key, and child rows sealed with each row."""

    table: Table
    key: Column[Any]
    children: tuple[tuple[Table, Column[Any]], ...] = ()


# In the order a subject's tables are hashed. Entries are a batch's children, hashed apart.
SEALED: dict[str, Sealed] = {spec.table.name: spec for spec in (
    Sealed(batches, batches.c.id),
    Sealed(incidents, incidents.c.incident_id),
    Sealed(incident_links, incident_links.c.id),
    Sealed(recon_runs, recon_runs.c.seq,
           ((recon_evidence, recon_evidence.c.run_seq), (recon_breaks, recon_breaks.c.run_seq))),
    Sealed(insurance_policies, insurance_policies.c.id),
    Sealed(closed_periods, closed_periods.c.id),
    Sealed(administration, administration.c.id),
    Sealed(admin_prices, admin_prices.c.id),
    Sealed(admin_plans, admin_plans.c.plan_hash),
    Sealed(admin_elections, admin_elections.c.creditor),
    Sealed(admin_disputes, admin_disputes.c.id),
    Sealed(admin_confirmations, admin_confirmations.c.id),
)}
# Not sealed: derived tables `verify` recomputes (balances, checkpoints, coverage, breaches),
# the chart (each posting's hash carries its account's code, asset, pool and role), and
# ledger_meta.


# --- the canonical encoding ----------------------------------------------------------------

def canonical(value: Any) -> Any:
    """One stored value as the chain hashes it: integers as decimal text, times as UTC
    `YYYY-MM-DDTHH:MM:SS.ffffffZ`, JSON documents as their canonical text, binary content as
    `sha256:` and its digest; text, booleans and null as they are."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if value != value.to_integral_value():
            raise ValueError(f"not a whole number: {value}")
        return str(int(value))
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, (bytes, memoryview)):
        return "sha256:" + hashlib.sha256(bytes(value)).hexdigest()
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    raise TypeError(f"no canonical form for {type(value).__name__}")


def line(*parts: Any) -> bytes:
    """A JSON array of canonical values and a newline, in UTF-8."""
    return (json.dumps([canonical(part) for part in parts], separators=(",", ":"),
                       ensure_ascii=False) + "\n").encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


ENTRY_FIELDS = ("id", "key", "type", "effective_at", "recorded_at", "memo", "metadata",
                "content_hash", "reverses_id", "batch_id")


@dataclass(frozen=True)
class PostingFacts:
    line_no: int
    account_code: str
    account_asset: str
    account_pool: str
    account_role: str
    asset: str
    amount_minor: int
    effective_at: datetime


def entry_hashes(entry: Mapping[str, Any], entry_postings: Iterable[PostingFacts]
                 ) -> tuple[str, str]:
    """(postings_hash, entry_hash) of one entry: its postings by line, the debit first, each
    with its account's code, asset, pool and role; then its own fields with that hash."""
    ordered = sorted(entry_postings, key=lambda p: (p.line_no, -p.amount_minor))
    postings_hash = sha256(b"".join(
        line("posting", p.line_no, p.account_code, p.account_asset, p.account_pool,
             p.account_role, p.asset, p.amount_minor, p.effective_at) for p in ordered))
    header = line("entry", *(entry[name] for name in ENTRY_FIELDS))
    return postings_hash, sha256(header + postings_hash.encode())


class PostingLines:
    """The posting lines of `entry_hashes`, built faster for a batch being written: each
    account's part encoded once, each entry's time once. Same bytes as `line`."""

    def __init__(self) -> None:
        self._accounts: dict[str, str] = {}

    def account(self, code: str, asset: str, pool: str, role: str) -> str:
        part = self._accounts.get(code)
        if part is None:
            part = ",".join(_text(value) for value in (code, asset, pool, role, asset))
            self._accounts[code] = part
        return part

    @staticmethod
    def time(at: datetime) -> str:
        return _text(canonical(at))

    @staticmethod
    def line(line_no: int, account_part: str, amount_minor: int, time_part: str) -> str:
        return f'["posting","{line_no}",{account_part},"{amount_minor}",{time_part}]\n'

    @staticmethod
    def hashes(entry: Mapping[str, Any], lines: Sequence[str]) -> tuple[str, str]:
        """(postings_hash, entry_hash), as `entry_hashes` gives them, from lines already in
        order (by line, the debit first)."""
        postings_hash = sha256("".join(lines).encode())
        header = line("entry", *(entry[name] for name in ENTRY_FIELDS))
        return postings_hash, sha256(header + postings_hash.encode())


_text = json.encoder.encode_basestring  # a JSON string as json.dumps(ensure_ascii=False) writes it


def entry_line(entry_id: int, key: str, entry_hash: str) -> bytes:
    return line("entries", entry_id, key, entry_hash)


# --- sealing ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Link:
    seq: int
    kind: str
    ref: str | None
    subject: str
    digest: str
    prev_hash: str
    link_hash: str
    sealed_at: datetime


def link_hash(seq: int, kind: str, ref: str | None, subject: str, digest: str, prev_hash: str,
              sealed_at: datetime) -> str:
    return sha256(line("link", seq, kind, ref, subject, digest, prev_hash, sealed_at))


def subject_text(subject: Mapping[str, Iterable[Any]]) -> str:
    """The subject as stored and hashed: tables in the chain's order, keys as sorted text."""
    unknown = set(subject) - SEALED.keys()
    if unknown:
        raise ValueError(f"not a sealed table: {sorted(unknown)}")
    document = {name: sorted({str(key) for key in subject[name]}, key=_key_order)
                for name in SEALED if subject.get(name)}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def seal(connection: Connection, kind: str, subject: Mapping[str, Iterable[Any]], *,
         ref: str | None = None, entry_lines: Mapping[int, bytes] | None = None) -> Link:
    """Seal the subject as the chain's next link; call it last in the writing transaction
    (it takes the head row, which every writer waits for). `entry_lines`, for a batch just
    written, are its entries' lines as computed while writing (else they are read back)."""
    text = subject_text(subject)
    digest = subject_digest(connection, json.loads(text), entry_lines)
    head = connection.execute(select(chain_head.c.seq, chain_head.c.link_hash)
                              .where(chain_head.c.id == 1).with_for_update()).one()
    seq, now = head.seq + 1, utcnow()
    link = Link(seq, kind, ref, text, digest, head.link_hash,
                link_hash(seq, kind, ref, text, digest, head.link_hash, now), now)
    connection.execute(chain_links.insert().values(
        seq=link.seq, kind=kind, ref=ref, subject=text, digest=digest,
        prev_hash=link.prev_hash, link_hash=link.link_hash, sealed_at=now))
    connection.execute(update(chain_head).where(chain_head.c.id == 1).values(
        seq=seq, link_hash=link.link_hash))
    return link


def seal_batch(connection: Connection, batch_id: int, entry_lines: Mapping[int, bytes],
               new_incidents: Sequence[str], link_ids: Sequence[int]) -> Link:
    return seal(connection, "batch", {"batches": [batch_id], "incidents": new_incidents,
                                      "incident_links": link_ids},
                ref=str(batch_id), entry_lines=entry_lines)


def subject_digest(connection: Connection, subject: Mapping[str, Sequence[str]],
                   entry_lines: Mapping[int, bytes] | None = None) -> str:
    """SHA-256 of the subject's rows as stored now (a row that is gone adds nothing)."""
    digest = hashlib.sha256()
    for chunk in subject_lines(connection, subject, entry_lines):
        digest.update(chunk)
    return digest.hexdigest()


def subject_lines(connection: Connection, subject: Mapping[str, Sequence[str]],
                  entry_lines: Mapping[int, bytes] | None = None) -> Iterator[bytes]:
    for name, keys in subject.items():
        spec = SEALED[name]
        typed = [typed_key(spec.key, key) for key in keys]
        rows = sorted(select_in(connection, select(spec.table), spec.key, typed),
                      key=lambda row: _key_order(str(row._mapping[spec.key.name])))
        for row in rows:
            values = row._mapping
            yield line(name, *(values[column.name] for column in spec.table.columns))
            for child, parent in spec.children:
                for child_row in connection.execute(select(child).where(
                        parent == values[spec.key.name]).order_by(child.c.id)):
                    yield line(child.name, *(child_row._mapping[c.name] for c in child.columns))
            if name == "batches":
                batch_id = values["id"]
                if entry_lines is not None:
                    yield from (entry_lines[entry_id] for entry_id in sorted(entry_lines))
                else:
                    yield from (entry.line for entry in recomputed_entries(connection, [batch_id]))


@dataclass(frozen=True)
class EntryHashes:
    """One entry's hashes recomputed from its rows now, beside the ones stored with it."""

    id: int
    key: str
    batch_id: int
    posting_count: int
    postings_hash: str
    entry_hash: str
    stored_postings_hash: str | None
    stored_entry_hash: str | None

    @property
    def line(self) -> bytes:
        return entry_line(self.id, self.key, self.entry_hash)


def recomputed_entries(connection: Connection, batch_ids: Sequence[int] | None = None
                       ) -> Iterator[EntryHashes]:
    """Every entry (of `batch_ids`, or all) by batch then id, its hashes recomputed from its
    rows and postings as stored now. Streams: memory does not grow with the journal."""
    query = (select(*(entries.c[name] for name in ENTRY_FIELDS),
                    entries.c.postings_hash.label("stored_postings_hash"),
                    entries.c.entry_hash.label("stored_entry_hash"), postings.c.line_no,
                    accounts.c.code, accounts.c.asset.label("account_asset"), accounts.c.pool,
                    accounts.c.role, postings.c.asset, postings.c.amount_minor,
                    postings.c.effective_at.label("posting_at"))
             .select_from(entries.outerjoin(postings, postings.c.entry_id == entries.c.id)
                          .outerjoin(accounts, accounts.c.id == postings.c.account_id))
             .order_by(entries.c.batch_id, entries.c.id))
    if batch_ids is not None:
        query = query.where(entries.c.batch_id.in_(batch_ids))
    current: Any = None
    facts: list[PostingFacts] = []

    def done() -> EntryHashes:
        fields = {name: current._mapping[name] for name in ENTRY_FIELDS}
        postings_hash, entry_hash = entry_hashes(fields, facts)
        return EntryHashes(current.id, current.key, current.batch_id, len(facts), postings_hash,
                           entry_hash, current.stored_postings_hash, current.stored_entry_hash)

    for row in connection.execute(query.execution_options(yield_per=10_000)):
        if current is None or current.id != row.id:
            if current is not None:
                yield done()
            current, facts = row, []
        if row.line_no is not None:
            facts.append(PostingFacts(row.line_no, row.code, row.account_asset, row.pool,
                                      row.role, row.asset, row.amount_minor, row.posting_at))
    if current is not None:
        yield done()


def typed_key(column: Column[Any], key: str) -> Any:
    return int(key) if isinstance(column.type, (Integer, BigInteger)) else key


def _key_order(key: str) -> tuple[int, int, str]:
    """Whole-number keys by value, other keys after them by code point."""
    if key.isdigit() and key.isascii():
        return (0, int(key), "")
    return (1, 0, key)


# --- the backlog of a ledger written before the chain ---------------------------------------

def seal_backlog(engine: Engine) -> int:
    """Seal everything not yet in the chain: a ledger written before migration 0009. Batches
    first, by id (with their incidents), then runs, then the registers' rows, one link per
    table. Returns the links added. Idempotent: a sealed ledger adds none."""
    added = 0
    with for_writing(engine).begin() as connection:
        sealed = sealed_keys(connection)
        entry_of = dict(connection.execute(select(entries.c.id, entries.c.batch_id)).all())
        opened_by = {row.incident_id: entry_of[row.opened_entry_id]
                     for row in connection.execute(select(incidents))}
        linked_by: dict[int, list[int]] = {}
        for row in connection.execute(select(incident_links.c.id, incident_links.c.entry_id)):
            linked_by.setdefault(entry_of[row.entry_id], []).append(row.id)
        for batch_id in connection.execute(select(batches.c.id).order_by(batches.c.id)).scalars():
            if str(batch_id) in sealed["batches"]:
                continue
            seal(connection, "batch", {
                "batches": [batch_id],
                "incidents": [i for i, b in opened_by.items()
                              if b == batch_id and i not in sealed["incidents"]],
                "incident_links": [i for i in linked_by.get(batch_id, [])
                                   if str(i) not in sealed["incident_links"]]},
                ref=str(batch_id))
            added += 1
        for seq in connection.execute(select(recon_runs.c.seq).order_by(recon_runs.c.seq)).scalars():
            if str(seq) not in sealed["recon_runs"]:
                seal(connection, "run", {"recon_runs": [seq]}, ref=str(seq))
                added += 1
        for name, spec in SEALED.items():
            if name in ("batches", "recon_runs", "incidents", "incident_links"):
                continue
            keys = [key for key in connection.execute(select(spec.key)).scalars()
                    if str(key) not in sealed[name]]
            if keys:
                seal(connection, name, {name: keys})
                added += 1
    return added


def sealed_keys(connection: Connection) -> dict[str, set[str]]:
    """Every key each sealed table has in some link's subject."""
    found: dict[str, set[str]] = {name: set() for name in SEALED}
    for text in connection.execute(select(chain_links.c.subject)).scalars():
        for name, keys in parse_subject(text).items():
            found.setdefault(name, set()).update(keys)
    return found


def parse_subject(text: str) -> dict[str, list[str]]:
    try:
        document = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(document, dict):
        return {}
    return {str(name): [str(key) for key in keys] for name, keys in document.items()
            if isinstance(keys, list)}


def load_links(connection: Connection) -> list[Link]:
    return [Link(row.seq, row.kind, row.ref, row.subject, row.digest, row.prev_hash,
                 row.link_hash, row.sealed_at)
            for row in connection.execute(select(chain_links).order_by(chain_links.c.seq))]


# --- seals an auditor keeps ------------------------------------------------------------------

SEAL_FORMAT = "segledger-seal"
SEAL_VERSION = 1


def seal_counts(connection: Connection, through_seq: int) -> dict[str, int]:
    """What links 1..through_seq seal: links, batches with their entries and postings, runs,
    and register records (rows of the other sealed tables)."""
    counts = {"links": 0, "batches": 0, "entries": 0, "postings": 0, "runs": 0, "records": 0}
    batch_ids: list[int] = []
    for text in connection.execute(select(chain_links.c.subject)
                                   .where(chain_links.c.seq <= through_seq)).scalars():
        counts["links"] += 1
        for name, keys in parse_subject(text).items():
            if name == "batches":
                batch_ids.extend(int(key) for key in keys)
            elif name == "recon_runs":
                counts["runs"] += len(keys)
            else:
                counts["records"] += len(keys)
    counts["batches"] = len(batch_ids)
    for row in select_in(connection, select(batches.c.entry_count, batches.c.posting_count),
                         batches.c.id, batch_ids):
        counts["entries"] += row.entry_count
        counts["postings"] += row.posting_count
    return counts


def seal_document(connection: Connection, through: datetime) -> dict[str, Any]:
    """The seal of the chain as it stood at `through`: its newest link sealed by then."""
    row = connection.execute(select(chain_links).where(chain_links.c.sealed_at <= through)
                             .order_by(chain_links.c.seq.desc()).limit(1)).first()
    if row is None:
        raise LookupError(f"nothing was sealed at or before {canonical(through)}")
    document: dict[str, Any] = {
        "format": SEAL_FORMAT, "version": SEAL_VERSION, "through": canonical(through),
        "link": {"seq": row.seq, "hash": row.link_hash, "sealed_at": canonical(row.sealed_at)},
        "counts": seal_counts(connection, row.seq), "created_at": canonical(utcnow())}
    document["sha256"] = seal_file_hash(document)
    return document


def seal_file_hash(document: Mapping[str, Any]) -> str:
    """SHA-256 of the seal's canonical JSON without its own `sha256` member."""
    body = {name: value for name, value in document.items() if name != "sha256"}
    return sha256(json.dumps(body, sort_keys=True, separators=(",", ":"),
                             ensure_ascii=False).encode())


def check_seal(connection: Connection, document: Mapping[str, Any]) -> list[str]:
    """What no longer matches the seal: its link's hash (the chain before it rewritten) and
    the counts it sealed. The document's shape is checked by the caller."""
    seq, expected = document["link"]["seq"], document["link"]["hash"]
    row = connection.execute(select(chain_links.c.link_hash)
                             .where(chain_links.c.seq == seq)).first()
    if row is None:
        return [f"link {seq} that the seal names is gone: the chain was cut back"]
    problems = []
    if row.link_hash != expected:
        problems.append(f"link {seq} hashes to {row.link_hash} now, the seal says {expected}: "
                        "the history before the seal was rewritten")
    now = seal_counts(connection, seq)
    for name, value in document["counts"].items():
        if now.get(name) != value:
            problems.append(f"{name} through link {seq}: {value} sealed, {now.get(name)} now")
    return problems


def record_problem(connection: Connection, table: str, key: Any) -> str | None:
    """Why one sealed row (with its children) cannot be trusted as shown, or None: it is in
    no link, or its link's rows no longer hash to the link's digest."""
    wanted = str(key)
    for link in connection.execute(select(chain_links.c.seq, chain_links.c.subject,
                                          chain_links.c.digest)
                                   .where(chain_links.c.subject.contains(f'"{wanted}"'))):
        subject = parse_subject(link.subject)
        if wanted in subject.get(table, []):
            if subject_digest(connection, subject) != link.digest:
                return (f"changed since it was sealed in link {link.seq} of the hash chain; "
                        "run `segledger verify`")
            return None
    return "is not in the hash chain: written behind the ledger's back; run `segledger verify`"
