"""The tables as SQLAlchemy Core sees them for queries. Migrations own the DDL."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from ledger.storage.types import MinorUnits, UTCDateTime

metadata = MetaData()
# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")

assets = Table(
    "assets", metadata,
    Column("code", String(20), primary_key=True),
    Column("kind", String(10), nullable=False),
    Column("scale", Integer, nullable=False),
    Column("chain", String(50)),
    Column("contract", String(200)),
    Column("created_at", UTCDateTime, nullable=False),
)

accounts = Table(
    "accounts", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("code", String(200), nullable=False, unique=True),
    Column("asset", String(20), ForeignKey("assets.code"), nullable=False),
    Column("pool", String(10), nullable=False),
    Column("role", String(30), nullable=False),
    Column("location", String(20)),
    Column("purpose", String(20)),
    Column("customer", String(100)),
    Column("external", JSON, nullable=False),
    Column("opened_at", UTCDateTime, nullable=False),
)

batches = Table(
    "batches", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source", String(500), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("entry_count", Integer, nullable=False),
    Column("posting_count", Integer, nullable=False),
    Column("skipped_count", Integer, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    # Set when the administrator records the batch after a freeze (migration 0006).
    Column("admin_reason", Text),
    # Set when `admin distribute` posts the batch, for the stored plan it pays (0006).
    Column("admin_plan", String(64), ForeignKey("admin_plans.plan_hash")),
)

entries = Table(
    "entries", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("key", String(128), nullable=False, unique=True),
    Column("type", String(30), nullable=False),
    Column("effective_at", UTCDateTime, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("memo", Text),
    Column("metadata", JSON, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("reverses_id", Id, ForeignKey("entries.id"), unique=True),
    Column("batch_id", Id, ForeignKey("batches.id"), nullable=False),
    # Filled by the tamper-evidence work (DESIGN.md invariant 7); room kept now.
    # The tamper evidence (migration 0009, docs/integrity.md): the hash of the entry's postings
    # and of the entry with them. prev_hash, reserved in 0001, stays unused (NULL): entries are
    # chained through their batch's link in chain_links.
    Column("prev_hash", String(64)),
    Column("entry_hash", String(64)),
    Column("postings_hash", String(64)),
)

postings = Table(
    "postings", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("entry_id", Id, ForeignKey("entries.id"), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("account_id", Id, nullable=False),
    Column("asset", String(20), nullable=False),
    # Signed: a debit is positive, a credit negative, so an entry's postings sum to zero.
    Column("amount_minor", MinorUnits, nullable=False),
    Column("effective_at", UTCDateTime, nullable=False),
)

balances = Table(
    "balances", metadata,
    Column("account_id", Id, ForeignKey("accounts.id"), primary_key=True),
    Column("asset", String(20), nullable=False),
    # Normal side: custody and customer balances are positive in normal operation.
    Column("balance_minor", MinorUnits, nullable=False),
    Column("non_negative", Boolean, nullable=False),
    Column("posting_count", BigInteger, nullable=False),
    Column("first_effective_at", UTCDateTime),
    Column("last_effective_at", UTCDateTime),
)

# Derived, like balances: the raw sum (debits positive) of an account's postings dated at or
# before `at`, so that a past balance sums only the postings after the latest checkpoint
# (ledger/storage/checkpoints.py). A backdated posting adds itself to the checkpoints after it;
# `verify` recomputes every checkpoint from the postings.
balance_checkpoints = Table(
    "balance_checkpoints", metadata,
    Column("account_id", Id, ForeignKey("accounts.id"), primary_key=True),
    Column("at", UTCDateTime, primary_key=True),
    Column("amount_minor", MinorUnits, nullable=False),
    Column("posting_count", BigInteger, nullable=False),
)

coverage = Table(
    "coverage", metadata,
    Column("asset", String(20), ForeignKey("assets.code"), primary_key=True),
    # Σ customer-pool custody − Σ customer liabilities, normal side (DESIGN.md invariant 5).
    Column("coverage_minor", MinorUnits, nullable=False),
)

breaches = Table(
    "breaches", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("asset", String(20), ForeignKey("assets.code"), nullable=False),
    Column("opened_entry_id", Id, ForeignKey("entries.id"), nullable=False),
    Column("opened_coverage_minor", MinorUnits, nullable=False),
    Column("closed_entry_id", Id, ForeignKey("entries.id")),
    Column("closed_coverage_minor", MinorUnits),
    # The incident whose entry opened the breach (from migration 0003 on).
    Column("incident_id", String(64)),
)

closed_periods = Table(
    "closed_periods", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("closed_through", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime, nullable=False),
    Column("closed_by", String(200), nullable=False),
    Column("note", Text),
)


incidents = Table(
    "incidents", metadata,
    Column("incident_id", String(64), primary_key=True),
    Column("kind", String(30), nullable=False),
    Column("opened_entry_id", Id, ForeignKey("entries.id"), nullable=False),
    Column("opened_at", UTCDateTime, nullable=False),
)

incident_links = Table(
    "incident_links", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("incident_id", String(64), ForeignKey("incidents.incident_id"), nullable=False),
    Column("entry_id", Id, ForeignKey("entries.id"), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("asset", String(20), ForeignKey("assets.code"), nullable=False),
    Column("amount_minor", MinorUnits, nullable=False),
)

insurance_policies = Table(
    "insurance_policies", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("policy_id", String(100), nullable=False, unique=True),
    Column("insurer", String(200), nullable=False),
    Column("currency", String(20), ForeignKey("assets.code"), nullable=False),
    Column("limit_minor", MinorUnits, nullable=False),
    # Exact decimal text (e.g. "0.8"): the share of a loss the policy pays.
    Column("covered_share", String(40), nullable=False),
    Column("period_start", UTCDateTime, nullable=False),
    Column("period_end", UTCDateTime, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("source", String(500), nullable=False),
    Column("loaded_at", UTCDateTime, nullable=False),
)


# --- reconciliation runs (migration 0002): stored here so that the hash chain, in this layer,
# can seal them; reconcile/store.py writes and reads them. --------------------------------------

recon_runs = Table(
    "recon_runs", metadata,
    Column("seq", Id, primary_key=True, autoincrement=True),
    Column("run_id", String(40), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("as_of", UTCDateTime, nullable=False),
    Column("status", String(10), nullable=False),
    Column("rulebook", String(100), nullable=False),
    Column("result", Text, nullable=False),
    Column("result_sha256", String(64), nullable=False),
)

recon_evidence = Table(
    "recon_evidence", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("run_seq", Id, ForeignKey("recon_runs.seq"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("name", String(500), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("format", String(30), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("content", LargeBinary, nullable=False),
)

recon_breaks = Table(
    "recon_breaks", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("run_seq", Id, ForeignKey("recon_runs.seq"), nullable=False),
    Column("account", String(300), nullable=False),
    Column("asset", String(20), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("difference", String(100), nullable=False),
    Column("open_since", String(40), nullable=False),
)


ledger_meta = Table(
    "ledger_meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(200), nullable=False),
    Column("set_at", UTCDateTime, nullable=False),
)


# --- bankruptcy administration (migration 0006) ---------------------------------------------

administration = Table(
    "administration", metadata,
    Column("id", Integer, primary_key=True),
    Column("case_no", String(100)),
    Column("administrator", String(200), nullable=False),
    Column("cutoff", UTCDateTime, nullable=False),
    Column("frozen_at", UTCDateTime, nullable=False),
)

admin_prices = Table(
    "admin_prices", metadata,
    Column("id", Integer, primary_key=True),
    Column("quote", String(20), ForeignKey("assets.code"), nullable=False),
    Column("as_of", UTCDateTime, nullable=False),
    Column("prices", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("source", String(500), nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
)

admin_elections = Table(
    "admin_elections", metadata,
    Column("creditor", String(100), primary_key=True),
    Column("option", String(10), nullable=False),
    Column("payment", String(10), nullable=False),
    Column("source", String(500), nullable=False),
    Column("loaded_at", UTCDateTime, nullable=False),
)

admin_disputes = Table(
    "admin_disputes", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("creditor", String(100), nullable=False),
    Column("asset", String(20), ForeignKey("assets.code"), nullable=False),
    Column("event", String(10), nullable=False),  # claim | ruling
    Column("claimed_minor", MinorUnits, nullable=False),
    Column("status", String(10), nullable=False),
    Column("allowed_minor", MinorUnits, nullable=False),
    Column("source", String(500), nullable=False),
    Column("loaded_at", UTCDateTime, nullable=False),
)

admin_plans = Table(
    "admin_plans", metadata,
    Column("plan_hash", String(64), primary_key=True),
    Column("document", Text, nullable=False),
    Column("run_id", String(40)),
    Column("created_at", UTCDateTime, nullable=False),
)

admin_confirmations = Table(
    "admin_confirmations", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("entry_key", String(128), ForeignKey("entries.key"), nullable=False, unique=True),
    Column("reference", String(200), nullable=False),
    Column("sent_at", UTCDateTime),
    Column("source", String(500), nullable=False),
    Column("loaded_at", UTCDateTime, nullable=False),
)


# --- the hash chain (migration 0009, ledger/storage/journal.py) ------------------------------

chain_links = Table(
    "chain_links", metadata,
    Column("seq", Id, primary_key=True, autoincrement=False),
    Column("kind", String(20), nullable=False),
    Column("ref", String(64)),
    Column("subject", Text, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("link_hash", String(64), nullable=False, unique=True),
    Column("sealed_at", UTCDateTime, nullable=False),
)

chain_head = Table(
    "chain_head", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("link_hash", String(64), nullable=False),
)
