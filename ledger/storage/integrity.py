"""`verify`: the invariants checked again from what is stored, on the reading side.

The write path checks an entry before it is written; this reads everything back and checks
it again, so a row changed behind the ledger's back (or a bug on the write path) shows up.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select

from ledger.errors import shown
from ledger.storage import journal
from ledger.storage.reserve_store import draws
from ledger.storage.rows import account_from_row, load_assets, select_in
from ledger.storage.schema import (
    accounts,
    balance_checkpoints,
    balances,
    batches,
    breaches,
    chain_head,
    coverage,
    entries,
    incident_links,
    postings,
    recon_evidence,
    recon_runs,
)


@dataclass(frozen=True)
class Problem:
    check: str
    subject: str
    detail: str


@dataclass
class VerifyReport:
    entries_checked: int = 0
    postings_checked: int = 0
    accounts_checked: int = 0
    links_checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def hash_chain(self) -> str:
        broken = sum(problem.check in CHAIN_CHECKS for problem in self.problems)
        state = f"{broken} problems" if broken else "intact"
        return f"{self.links_checked} links, {state}"

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(connection: Connection) -> VerifyReport:
    report = VerifyReport()
    report.entries_checked = connection.execute(select(func.count()).select_from(entries)).scalar_one()
    report.postings_checked = connection.execute(
        select(func.count()).select_from(postings)).scalar_one()
    _check_entries_balanced(connection, report)
    _check_posting_assets(connection, report)
    _check_reversals(connection, report)
    _check_balances_and_coverage(connection, report)
    _check_checkpoints(connection, report)
    _check_reserve_and_incidents(connection, report)
    _check_chain(connection, report)
    return report


def _check_checkpoints(connection: Connection, report: VerifyReport) -> None:
    """Past balances trust the checkpoints to skip summing: each must be the running sum and
    count of its account's postings up to its time (a checkpoint is always at a posting's
    time, so the running sum at that time is there to compare)."""
    checkpointed = select(balance_checkpoints.c.account_id).distinct()
    by, order = postings.c.account_id, postings.c.effective_at
    running = (select(postings.c.account_id, postings.c.effective_at,
                      func.sum(postings.c.amount_minor).over(partition_by=by, order_by=order)
                      .label("total"),
                      func.count().over(partition_by=by, order_by=order).label("n"))
               .where(postings.c.account_id.in_(checkpointed)).distinct().subquery())
    rows = connection.execute(
        select(accounts.c.code, balance_checkpoints, running.c.total, running.c.n)
        .join(accounts, accounts.c.id == balance_checkpoints.c.account_id)
        .outerjoin(running, (running.c.account_id == balance_checkpoints.c.account_id)
                   & (running.c.effective_at == balance_checkpoints.c.at))
        .order_by(accounts.c.code, balance_checkpoints.c.at))
    for row in rows:
        if row.total is None or (int(row.total), row.n) != (int(row.amount_minor),
                                                             row.posting_count):
            report.problems.append(Problem(
                "checkpoint", row.code,
                f"checkpoint at {_utc(row.at)} holds {row.amount_minor} over "
                f"{row.posting_count} postings, postings up to then sum to {row.total} over "
                f"{row.n}"))


LINKED_BY = {"loss": "incident", "draw": "reserve_draw", "top_up": "top_up",
             "recovery": "insurance_recovery"}


def _check_reserve_and_incidents(connection: Connection, report: VerifyReport) -> None:
    """Every take from the reserve is a draw naming its incident (or a reversal); every
    incident link joins an entry of the right type that names that incident."""
    for draw in draws(connection, datetime(2999, 12, 31, tzinfo=UTC), None):
        if draw.entry_type not in ("reserve_draw", "reversal", "incident") or (
                draw.entry_type == "reserve_draw" and draw.incident_kind is None):
            report.problems.append(Problem(
                "reserve", draw.entry_key,
                f"a {draw.entry_type} takes {draw.amount_minor} minor units of {draw.asset} from "
                "the reserve" + ("" if draw.entry_type != "reserve_draw" else
                                 " without a known incident")))
    rows = connection.execute(
        select(incident_links.c.incident_id, incident_links.c.kind, entries.c.key,
               entries.c.type, entries.c.metadata)
        .join(entries, entries.c.id == incident_links.c.entry_id).order_by(incident_links.c.id))
    for row in rows:
        named = (row.metadata or {}).get("incident")
        if named != row.incident_id or LINKED_BY[row.kind] != row.type:
            report.problems.append(Problem(
                "incident_link", row.key,
                f"linked to incident {row.incident_id} as {row.kind}, but it is a {row.type} "
                f"naming {shown(named) if named is not None else 'no incident'}"))


def _check_entries_balanced(connection: Connection, report: VerifyReport) -> None:
    unbalanced = connection.execute(
        select(entries.c.key, postings.c.asset, func.sum(postings.c.amount_minor).label("total"))
        .join(postings, postings.c.entry_id == entries.c.id)
        .group_by(entries.c.id, entries.c.key, postings.c.asset)
        .having(func.sum(postings.c.amount_minor) != 0)
        .order_by(entries.c.id))
    for row in unbalanced:
        report.problems.append(Problem(
            "entry_balanced", row.key,
            f"postings in {row.asset} sum to {int(row.total)} minor units, not zero"))
    counts = (select(postings.c.entry_id, func.count().label("n"))
              .group_by(postings.c.entry_id).subquery())
    short = connection.execute(
        select(entries.c.key, func.coalesce(counts.c.n, 0).label("n"))
        .outerjoin(counts, counts.c.entry_id == entries.c.id)
        .where(func.coalesce(counts.c.n, 0) < 2).order_by(entries.c.id))
    for short_row in short:
        report.problems.append(Problem(
            "entry_postings", short_row.key, f"has {short_row.n} postings; an entry needs at least two"))


def _check_posting_assets(connection: Connection, report: VerifyReport) -> None:
    mismatched = connection.execute(
        select(entries.c.key, postings.c.asset, accounts.c.code, accounts.c.asset.label("acct"))
        .join(postings, postings.c.entry_id == entries.c.id)
        .join(accounts, accounts.c.id == postings.c.account_id)
        .where(accounts.c.asset != postings.c.asset))
    for row in mismatched:
        report.problems.append(Problem(
            "posting_asset", row.key, f"posting in {row.asset} on {row.code}, a {row.acct} account"))


def _check_reversals(connection: Connection, report: VerifyReport) -> None:
    """A reversal's postings are the mirror of its original's, account by account."""
    reversal_pairs = list(connection.execute(
        select(entries.c.id, entries.c.key, entries.c.reverses_id)
        .where(entries.c.reverses_id.is_not(None))))
    for row in reversal_pairs:
        totals: dict[int, int] = defaultdict(int)
        # Mirror: per account, the reversal's postings cancel the original's exactly.
        for entry_id in (row.id, row.reverses_id):
            for account_id, amount in connection.execute(
                select(postings.c.account_id, func.sum(postings.c.amount_minor))
                .where(postings.c.entry_id == entry_id).group_by(postings.c.account_id)
            ).all():
                totals[account_id] += int(amount)
        if any(totals.values()):
            report.problems.append(Problem(
                "reversal_mirror", row.key, "postings are not the mirror of the reversed entry"))


def _utc(value: Any) -> datetime | None:
    """SQLite's min()/max() hand back the stored text; compare times, not spellings."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _check_balances_and_coverage(connection: Connection, report: VerifyReport) -> None:
    sums = (select(postings.c.account_id, func.sum(postings.c.amount_minor).label("total"),
                   func.count().label("n"),
                   func.min(postings.c.effective_at).label("first"),
                   func.max(postings.c.effective_at).label("last"))
            .group_by(postings.c.account_id).subquery())
    rows = connection.execute(
        select(accounts, balances.c.balance_minor, balances.c.posting_count,
               balances.c.first_effective_at, balances.c.last_effective_at,
               func.coalesce(sums.c.total, 0).label("total"),
               func.coalesce(sums.c.n, 0).label("n"), sums.c.first, sums.c.last)
        .outerjoin(balances, balances.c.account_id == accounts.c.id)
        .outerjoin(sums, sums.c.account_id == accounts.c.id)
        .order_by(accounts.c.code))
    # Coverage recomputed with the one definition the write path uses (Account.coverage_sign:
    # customer custody less customer liabilities, by role, never by name).
    recomputed: dict[str, int] = defaultdict(int)
    for row in rows:
        report.accounts_checked += 1
        account = account_from_row(row)
        expected = int(row.total) * account.normal_sign
        if row.balance_minor is None:
            report.problems.append(Problem("balance_row", account.code, "has no balance row"))
            continue
        if row.balance_minor != expected or row.posting_count != row.n:
            report.problems.append(Problem(
                "stored_balance", account.code,
                f"stored balance {row.balance_minor} over {row.posting_count} postings, "
                f"postings sum to {expected} over {row.n}"))
        # Point-in-time balances trust these two to skip summing: check them too.
        if (_utc(row.first_effective_at), _utc(row.last_effective_at)) != (
                _utc(row.first), _utc(row.last)):
            report.problems.append(Problem(
                "stored_balance", account.code,
                f"stored first/last effective time {row.first_effective_at}/"
                f"{row.last_effective_at}, postings say {row.first}/{row.last}"))
        if account.must_stay_non_negative and expected < 0:
            report.problems.append(Problem(
                "non_negative", account.code, f"balance {expected} is below zero"))
        recomputed[account.asset] += account.coverage_sign * expected
    open_breaches = set(connection.execute(
        select(breaches.c.asset).where(breaches.c.closed_entry_id.is_(None))).scalars())
    for asset in sorted(set(recomputed) | open_breaches):
        short = recomputed.get(asset, 0) < 0
        if short != (asset in open_breaches):
            report.problems.append(Problem(
                "breach", asset, f"coverage {recomputed.get(asset, 0)} but "
                f"{'an open' if asset in open_breaches else 'no open'} segregation breach"))
    stored = {row.asset: row.coverage_minor
              for row in connection.execute(select(coverage.c.asset, coverage.c.coverage_minor))}
    for asset in sorted(load_assets(connection)):
        if stored.get(asset) != recomputed.get(asset, 0):
            report.problems.append(Problem(
                "coverage", asset,
                f"stored coverage {stored.get(asset)}, balances give {recomputed.get(asset, 0)}"))


# --- the hash chain (ledger/storage/journal.py, docs/integrity.md) ---------------------------

CHAIN_CHECKS = frozenset({"chain", "entry_hash", "sealed_batch", "sealed_record", "unsealed",
                          "run_hash"})


def _check_chain(connection: Connection, report: VerifyReport) -> None:
    """The chain rebuilt from scratch: each link's hash from its fields and the one before,
    each subject's digest from its rows as they are now, each entry's hashes from its fields
    and postings; and every row of a sealed table in some link."""
    links = journal.load_links(connection)
    report.links_checked = len(links)
    problems = report.problems
    previous_seq, previous_hash = 0, journal.GENESIS
    for link in links:
        where = f"link {link.seq}"
        if link.seq != previous_seq + 1:
            problems.append(Problem("chain", where, f"follows link {previous_seq}: links "
                                    f"{previous_seq + 1}–{link.seq - 1} were removed"))
        if link.prev_hash != previous_hash:
            problems.append(Problem("chain", where, f"does not follow link {previous_seq}: it "
                                    f"names {link.prev_hash[:16]}… before it, link "
                                    f"{previous_seq} hashes to {previous_hash[:16]}… (links "
                                    "removed, inserted, reordered or rewritten)"))
        if journal.link_hash(link.seq, link.kind, link.ref, link.subject, link.digest,
                             link.prev_hash, link.sealed_at) != link.link_hash:
            problems.append(Problem("chain", where, "its hash does not recompute from its "
                                    "fields: the link itself was changed"))
        previous_seq, previous_hash = link.seq, link.link_hash
    head = connection.execute(select(chain_head.c.seq, chain_head.c.link_hash)).all()
    if [(row.seq, row.link_hash) for row in head] != [(previous_seq, previous_hash)]:
        problems.append(Problem("chain", "head", f"the head names {_head_text(head)}, the "
                                f"last link is {previous_seq}: links were removed or the head "
                                "was moved"))
    _check_sealed_batches(connection, links, problems)
    _check_sealed_records(connection, links, problems)


def _head_text(head: Sequence[Any]) -> str:
    return ", ".join(f"link {row.seq}" for row in head) if head else "nothing (it is gone)"


def _check_sealed_batches(connection: Connection, links: Sequence[journal.Link],
                          problems: list[Problem]) -> None:
    batch_rows = {row.id: row for row in connection.execute(select(batches))}
    sealing: dict[int, journal.Link] = {}
    for link in links:
        subject = journal.parse_subject(link.subject)
        for key in subject.get("batches", []):
            sealing[int(key)] = link
    digests: dict[int, Any] = {}
    for batch_id in sealing:
        digest = hashlib.sha256()
        if batch_id in batch_rows:
            row = batch_rows[batch_id]
            digest.update(journal.line("batches", *(row._mapping[c.name] for c in batches.columns)))
        digests[batch_id] = digest
    found: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for entry in journal.recomputed_entries(connection):
        counts = found[entry.batch_id]
        counts[0] += 1
        counts[1] += entry.posting_count
        if entry.batch_id in digests:
            digests[entry.batch_id].update(entry.line)
        if entry.stored_entry_hash is None or entry.stored_postings_hash is None:
            continue  # written before the chain (0009): its batch's digest covers it
        if entry.postings_hash != entry.stored_postings_hash:
            problems.append(Problem(
                "entry_hash", entry.key, f"its postings changed since it was sealed (an "
                f"amount, an account or a time changed, or a posting was removed or added: it "
                f"has {entry.posting_count} now)"))
        elif entry.entry_hash != entry.stored_entry_hash:
            problems.append(Problem(
                "entry_hash", entry.key, "its fields changed since it was sealed (type, "
                "effective or recorded time, memo, metadata, content hash, reversal or batch)"))
    for batch_id, link in sorted(sealing.items()):
        subject = journal.parse_subject(link.subject)
        rest = {name: keys for name, keys in subject.items() if name != "batches"}
        digest = digests[batch_id]
        for chunk in journal.subject_lines(connection, rest):
            digest.update(chunk)
        if digest.hexdigest() == link.digest:
            continue
        entries_now, postings_now = found.get(batch_id, [0, 0])
        if batch_id not in batch_rows:
            detail = f"sealed in link {link.seq}, its row is gone ({entries_now} entries left)"
        else:
            row = batch_rows[batch_id]
            detail = (f"differs from its seal in link {link.seq}: "
                      + _count_change(row.entry_count, entries_now, "entr", "y", "ies")
                      + "; " + _count_change(row.posting_count, postings_now, "posting", "", "s")
                      + " (an entry inserted, removed, reordered or rewritten with its hashes, "
                        "the batch's row, or an incident it opened, changed)")
        problems.append(Problem("sealed_batch", f"batch {batch_id}", detail))
    for batch_id in sorted(set(batch_rows) - set(sealing)):
        entries_now, _ = found.get(batch_id, [0, 0])
        problems.append(Problem("unsealed", f"batch {batch_id}", f"is not in the hash chain: it "
                                f"and its {entries_now} entries were written behind the "
                                "ledger's back"))


def _count_change(sealed: int, now: int, stem: str, one: str, many: str) -> str:
    text = f"sealed with {sealed} {stem}{one if sealed == 1 else many}, {now} now"
    if now < sealed:
        return text + " (removed)"
    return text + (" (inserted)" if now > sealed else "")


def _check_sealed_records(connection: Connection, links: Sequence[journal.Link],
                          problems: list[Problem]) -> None:
    """Runs and register rows: each link's digest again, a run's stored hashes, and no row
    that no link seals."""
    for link in links:
        subject = {name: keys for name, keys in journal.parse_subject(link.subject).items()
                   if name not in ("batches", "incidents", "incident_links")}
        if not subject or journal.subject_digest(connection, subject) == link.digest:
            continue
        gone = [f"{name} {key}" for name, keys in subject.items()
                for key in sorted(set(keys) - _present(connection, name, keys))]
        detail = (f"rows sealed in link {link.seq} ({link.kind}) changed since: "
                  + (f"{', '.join(gone)} removed" if gone else "a row or its children "
                     "(evidence, breaks) altered"))
        problems.append(Problem("sealed_record", _subject_name(subject), detail))
    sealed = journal.sealed_keys(connection)
    for name, spec in journal.SEALED.items():
        if name == "batches":
            continue  # with their entries, above
        for key in connection.execute(select(spec.key)).scalars():
            if str(key) not in sealed[name]:
                problems.append(Problem("unsealed", f"{name} {key}", "is not in the hash chain: "
                                        "written behind the ledger's back"))
    for row in connection.execute(select(recon_runs.c.run_id, recon_runs.c.result,
                                         recon_runs.c.result_sha256)):
        if hashlib.sha256(row.result.encode()).hexdigest() != row.result_sha256:
            problems.append(Problem("run_hash", row.run_id, "its stored result does not match "
                                    "the result's stored SHA-256"))
    for evidence in connection.execute(select(recon_runs.c.run_id, recon_evidence.c.name,
                                         recon_evidence.c.sha256, recon_evidence.c.content)
                                  .join(recon_runs, recon_runs.c.seq == recon_evidence.c.run_seq)):
        if hashlib.sha256(bytes(evidence.content)).hexdigest() != evidence.sha256:
            problems.append(Problem("run_hash", evidence.run_id, f"evidence {evidence.name}: its content "
                                    "does not match its stored SHA-256"))


def _present(connection: Connection, name: str, keys: Sequence[str]) -> set[str]:
    spec = journal.SEALED[name]
    return {str(row[0]) for row in select_in(connection, select(spec.key), spec.key,
                                             [journal.typed_key(spec.key, key) for key in keys])}


def _subject_name(subject: dict[str, list[str]]) -> str:
    name, keys = next(iter(subject.items()))
    label = {"recon_runs": "run"}.get(name, name)
    return f"{label} {', '.join(keys[:3])}{'…' if len(keys) > 3 else ''}"
