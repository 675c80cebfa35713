"""Ledger core: assets, accounts, batches, entries, postings, balances, coverage, breaches,
closed periods; append-only and balance enforcement in the database.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the enums as of this revision: a migration must not change when the code does.
ASSET_KINDS = ("fiat", "crypto")
POOLS = ("customer", "company")
ROLES = ("custody", "customer_liability", "reserve", "equity", "revenue", "expense", "loss",
         "suspense")
LOCATIONS = ("bank_trust", "bank", "cold_wallet", "hot_wallet", "custodian", "in_transit")
PURPOSES = ("segregated", "operating", "guarantee", "reserve")
ENTRY_TYPES = ("deposit", "withdrawal", "trade", "fee", "transfer", "sweep", "top_up", "incident",
               "reserve_provision", "reserve_draw", "insurance_recovery", "adjustment",
               "distribution", "reversal")

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Minor = sa.BigInteger().with_variant(sa.Numeric(78, 0), "postgresql")
Time = sa.DateTime(timezone=True)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


# Assets and accounts never change once defined (a chart may only add); the journal is
# append-only (DESIGN.md invariant 2).
APPEND_ONLY = ("assets", "accounts", "entries", "postings", "batches", "closed_periods")


def upgrade() -> None:
    _tables()
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_triggers()
    else:
        _sqlite_triggers()


def _tables() -> None:
    op.create_table(
        "assets",
        sa.Column("code", sa.String(20), primary_key=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("scale", sa.Integer, nullable=False),
        sa.Column("chain", sa.String(50)),
        sa.Column("contract", sa.String(200)),
        sa.Column("created_at", Time, nullable=False),
        sa.CheckConstraint(_in("kind", ASSET_KINDS), name="assets_kind"),
        sa.CheckConstraint("scale BETWEEN 0 AND 36", name="assets_scale"),
    )
    op.create_table(
        "accounts",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(200), nullable=False, unique=True),
        sa.Column("asset", sa.String(20), sa.ForeignKey("assets.code"), nullable=False),
        sa.Column("pool", sa.String(10), nullable=False),
        sa.Column("role", sa.String(30), nullable=False),
        sa.Column("location", sa.String(20)),
        sa.Column("purpose", sa.String(20)),
        sa.Column("customer", sa.String(100)),
        sa.Column("external", sa.JSON, nullable=False),
        sa.Column("opened_at", Time, nullable=False),
        # Postings reference (id, asset) so the database itself refuses a posting whose
        # asset differs from its account's: invariant 1 without trusting the application.
        sa.UniqueConstraint("id", "asset", name="accounts_id_asset"),
        sa.CheckConstraint(_in("pool", POOLS), name="accounts_pool"),
        sa.CheckConstraint(_in("role", ROLES), name="accounts_role"),
        sa.CheckConstraint(f"location IS NULL OR {_in('location', LOCATIONS)}",
                           name="accounts_location"),
        sa.CheckConstraint(f"purpose IS NULL OR {_in('purpose', PURPOSES)}",
                           name="accounts_purpose"),
        sa.CheckConstraint("(role = 'custody') = (location IS NOT NULL)",
                           name="accounts_custody_location"),
        sa.CheckConstraint(
            "role NOT IN ('customer_liability', 'suspense') OR pool = 'customer'",
            name="accounts_customer_roles"),
        sa.CheckConstraint(
            "role NOT IN ('reserve', 'equity', 'revenue', 'expense', 'loss') OR pool = 'company'",
            name="accounts_company_roles"),
        sa.CheckConstraint(
            "role <> 'custody' OR (pool = 'customer') = (purpose = 'segregated')",
            name="accounts_custody_purpose"),
    )
    op.create_table(
        "batches",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("entry_count", sa.Integer, nullable=False),
        sa.Column("posting_count", sa.Integer, nullable=False),
        sa.Column("skipped_count", sa.Integer, nullable=False),
        sa.Column("recorded_at", Time, nullable=False),
    )
    op.create_table(
        "entries",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(128), nullable=False, unique=True),
        sa.Column("type", sa.String(30), nullable=False),
        sa.Column("effective_at", Time, nullable=False),
        sa.Column("recorded_at", Time, nullable=False),
        sa.Column("memo", sa.Text),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        # UNIQUE: an entry is reversed at most once, whatever the application does.
        sa.Column("reverses_id", Id, sa.ForeignKey("entries.id"), unique=True),
        sa.Column("batch_id", Id, sa.ForeignKey("batches.id"), nullable=False),
        sa.Column("prev_hash", sa.String(64)),
        sa.Column("entry_hash", sa.String(64)),
        sa.CheckConstraint(_in("type", ENTRY_TYPES), name="entries_type"),
        sa.CheckConstraint("(type = 'reversal') = (reverses_id IS NOT NULL)",
                           name="entries_reversal_link"),
        sa.CheckConstraint("length(content_hash) = 64", name="entries_content_hash"),
    )
    op.create_table(
        "postings",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("entry_id", Id, sa.ForeignKey("entries.id"), nullable=False),
        sa.Column("line_no", sa.Integer, nullable=False),
        sa.Column("account_id", Id, nullable=False),
        sa.Column("asset", sa.String(20), nullable=False),
        sa.Column("amount_minor", Minor, nullable=False),
        sa.Column("effective_at", Time, nullable=False),
        sa.ForeignKeyConstraint(["account_id", "asset"], ["accounts.id", "accounts.asset"],
                                name="postings_account_asset"),
        sa.CheckConstraint("amount_minor <> 0", name="postings_amount_nonzero"),
        sa.CheckConstraint("line_no >= 0", name="postings_line_no"),
    )
    # Point-in-time balances read one account's history in time order.
    op.create_index("postings_account_time", "postings", ["account_id", "effective_at"])
    op.create_index("postings_entry", "postings", ["entry_id"])
    op.create_table(
        "balances",
        sa.Column("account_id", Id, sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("asset", sa.String(20), nullable=False),
        sa.Column("balance_minor", Minor, nullable=False),
        sa.Column("non_negative", sa.Boolean, nullable=False),
        sa.Column("posting_count", sa.BigInteger, nullable=False),
        sa.Column("first_effective_at", Time),
        sa.Column("last_effective_at", Time),
        # Invariant 4 in the database: custody and customer balances never go below zero.
        sa.CheckConstraint("NOT non_negative OR balance_minor >= 0", name="balances_non_negative"),
        sa.CheckConstraint("posting_count >= 0", name="balances_posting_count"),
    )
    op.create_table(
        "coverage",
        sa.Column("asset", sa.String(20), sa.ForeignKey("assets.code"), primary_key=True),
        sa.Column("coverage_minor", Minor, nullable=False),
    )
    op.create_table(
        "breaches",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("asset", sa.String(20), sa.ForeignKey("assets.code"), nullable=False),
        sa.Column("opened_entry_id", Id, sa.ForeignKey("entries.id"), nullable=False),
        sa.Column("opened_coverage_minor", Minor, nullable=False),
        sa.Column("closed_entry_id", Id, sa.ForeignKey("entries.id")),
        sa.Column("closed_coverage_minor", Minor),
        sa.CheckConstraint("opened_coverage_minor < 0", name="breaches_opened_short"),
        sa.CheckConstraint("closed_coverage_minor IS NULL OR closed_coverage_minor >= 0",
                           name="breaches_closed_covered"),
    )
    # At most one open breach per asset.
    op.create_index(
        "breaches_one_open", "breaches", ["asset"], unique=True,
        postgresql_where=sa.text("closed_entry_id IS NULL"),
        sqlite_where=sa.text("closed_entry_id IS NULL"),
    )
    op.create_table(
        "closed_periods",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("closed_through", Time, nullable=False),
        sa.Column("closed_at", Time, nullable=False),
        sa.Column("closed_by", sa.String(200), nullable=False),
        sa.Column("note", sa.Text),
    )


def _postgresql_triggers() -> None:
    op.execute("""
        CREATE FUNCTION segledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'segledger: % on % refused: the table is append-only',
            TG_OP, TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation';
        END $$""")
    for table in APPEND_ONLY:
        op.execute(f"""
            CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION segledger_refuse_change()""")
        op.execute(f"""
            CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION segledger_refuse_change()""")
    # Deferred to commit so an entry's postings can be written after the entry row.
    op.execute("""
        CREATE FUNCTION segledger_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
          posting_count integer;
          unbalanced record;
        BEGIN
          SELECT count(*) INTO posting_count FROM postings WHERE entry_id = NEW.id;
          IF posting_count < 2 THEN
            RAISE EXCEPTION 'segledger: entry % has % postings; an entry needs at least one line',
              NEW.key, posting_count USING ERRCODE = 'check_violation';
          END IF;
          SELECT asset, sum(amount_minor) AS total INTO unbalanced FROM postings
            WHERE entry_id = NEW.id GROUP BY asset HAVING sum(amount_minor) <> 0 LIMIT 1;
          IF FOUND THEN
            RAISE EXCEPTION 'segledger: entry % is not balanced in %: its postings sum to %',
              NEW.key, unbalanced.asset, unbalanced.total USING ERRCODE = 'check_violation';
          END IF;
          RETURN NULL;
        END $$""")
    op.execute("""
        CREATE CONSTRAINT TRIGGER entries_balanced AFTER INSERT ON entries
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION segledger_entry_balanced()""")
    # The deferred check runs once, at the commit that inserts the entry; postings added to
    # an entry by a later transaction would escape it, so they are refused here.
    op.execute("""
        CREATE FUNCTION segledger_postings_same_transaction() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
          stale_key text;
        BEGIN
          SELECT e.key INTO stale_key
            FROM (SELECT DISTINCT entry_id FROM new_postings) p JOIN entries e ON e.id = p.entry_id
           WHERE e.xmin::text <> (pg_current_xact_id()::text::bigint % 4294967296)::text
           LIMIT 1;
          IF FOUND THEN
            RAISE EXCEPTION 'segledger: postings for entry % must be written with the entry',
              stale_key USING ERRCODE = 'check_violation';
          END IF;
          RETURN NULL;
        END $$""")
    op.execute("""
        CREATE TRIGGER postings_same_transaction AFTER INSERT ON postings
        REFERENCING NEW TABLE AS new_postings
        FOR EACH STATEMENT EXECUTE FUNCTION segledger_postings_same_transaction()""")
    op.execute("""
        CREATE FUNCTION segledger_entry_open_period() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF EXISTS (SELECT 1 FROM closed_periods WHERE closed_through >= NEW.effective_at) THEN
            RAISE EXCEPTION 'segledger: entry % is dated %, inside a closed period',
              NEW.key, NEW.effective_at USING ERRCODE = 'check_violation';
          END IF;
          RETURN NEW;
        END $$""")
    op.execute("""
        CREATE TRIGGER entries_open_period BEFORE INSERT ON entries
        FOR EACH ROW EXECUTE FUNCTION segledger_entry_open_period()""")


def _sqlite_triggers() -> None:
    for table in APPEND_ONLY:
        for operation in ("UPDATE", "DELETE"):
            op.execute(f"""
                CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table}
                BEGIN SELECT RAISE(ABORT,
                  'segledger: {operation} on {table} refused: the table is append-only'); END""")
    op.execute("""
        CREATE TRIGGER entries_open_period BEFORE INSERT ON entries
        WHEN EXISTS (SELECT 1 FROM closed_periods WHERE closed_through >= NEW.effective_at)
        BEGIN SELECT RAISE(ABORT, 'segledger: entry dated inside a closed period'); END""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS postings_same_transaction ON postings")
    for table in ("closed_periods", "breaches", "coverage", "balances", "postings", "entries",
                  "batches", "accounts", "assets"):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        for function in ("segledger_refuse_change", "segledger_entry_balanced",
                         "segledger_postings_same_transaction", "segledger_entry_open_period"):
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
