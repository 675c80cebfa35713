"""Bankruptcy administration: the freeze, the commencement price table, elections, disputes,
stored plans and payout confirmations; the database refuses business entries once frozen.

Once a row is in `administration`, an entry is accepted only if it is a `distribution` dated
after the cut-off in a batch `admin distribute` posted for a stored plan (`batches.admin_plan`),
or belongs to a batch the administrator recorded with a reason (`batches.admin_reason`); and
no period can be closed any more (the plan's payouts are dated when the plan was stored, after
the cut-off). The administration row itself can be neither changed nor deleted: freezing is
final, as the court's order is.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Minor = sa.BigInteger().with_variant(sa.Numeric(78, 0), "postgresql")
Time = sa.DateTime(timezone=True)

TABLES = ("administration", "admin_prices", "admin_elections", "admin_disputes", "admin_plans",
          "admin_confirmations")
FROZEN_MESSAGE = ("segledger: the ledger is frozen for administration; only distributions "
                  "of a stored plan dated after the cut-off and the administrator''s records "
                  "are accepted")
CLOSE_MESSAGE = ("segledger: the ledger is frozen for administration; no period can be closed "
                 "any more")


def upgrade() -> None:
    op.add_column("batches", sa.Column("admin_reason", sa.Text))
    _tables()
    # A batch `admin distribute` posted, for the stored plan it pays.
    if op.get_bind().dialect.name == "postgresql":
        op.add_column("batches", sa.Column("admin_plan", sa.String(64),
                                           sa.ForeignKey("admin_plans.plan_hash")))
    else:
        # SQLite adds a column with its reference in place (Alembic would recreate the
        # table, and with it lose its triggers).
        op.execute("ALTER TABLE batches ADD COLUMN admin_plan VARCHAR(64) "
                   "REFERENCES admin_plans (plan_hash)")
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_triggers()
    else:
        _sqlite_triggers()


def _tables() -> None:
    op.create_table(
        "administration",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_no", sa.String(100)),
        sa.Column("administrator", sa.String(200), nullable=False),
        sa.Column("cutoff", Time, nullable=False),
        sa.Column("frozen_at", Time, nullable=False),
        # One administration per ledger: a second freeze is a second row, and refused.
        sa.CheckConstraint("id = 1", name="administration_single"),
    )
    op.create_table(
        "admin_prices",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("quote", sa.String(20), sa.ForeignKey("assets.code"), nullable=False),
        sa.Column("as_of", Time, nullable=False),
        # Canonical JSON {"BTC": "749318.83", ...}: exact decimal text, never a float.
        sa.Column("prices", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("recorded_at", Time, nullable=False),
        sa.CheckConstraint("id = 1", name="admin_prices_single"),
    )
    op.create_table(
        "admin_elections",
        sa.Column("creditor", sa.String(100), primary_key=True),
        sa.Column("option", sa.String(10), nullable=False),
        sa.Column("payment", sa.String(10), nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("loaded_at", Time, nullable=False),
        sa.CheckConstraint("option IN ('early', 'final')", name="admin_elections_option"),
        sa.CheckConstraint("payment IN ('crypto', 'fiat')", name="admin_elections_payment"),
    )
    op.create_table(
        "admin_disputes",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("creditor", sa.String(100), nullable=False),
        sa.Column("asset", sa.String(20), sa.ForeignKey("assets.code"), nullable=False),
        # 'claim' records the dispute (status open), 'ruling' its resolution: a dispute has
        # at most one of each, and a ruling is never changed (an appeal is a new input).
        sa.Column("event", sa.String(10), nullable=False),
        sa.Column("claimed_minor", Minor, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("allowed_minor", Minor, nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("loaded_at", Time, nullable=False),
        sa.UniqueConstraint("creditor", "asset", "event", name="admin_disputes_once"),
        sa.CheckConstraint("event IN ('claim', 'ruling')", name="admin_disputes_event"),
        sa.CheckConstraint("(event = 'claim') = (status = 'open')", name="admin_disputes_status"),
        sa.CheckConstraint("status IN ('open', 'allowed', 'rejected')",
                           name="admin_disputes_status_value"),
        sa.CheckConstraint("claimed_minor > 0 AND allowed_minor >= 0 "
                           "AND allowed_minor <= claimed_minor", name="admin_disputes_amounts"),
        sa.CheckConstraint("(status = 'allowed') = (allowed_minor > 0)",
                           name="admin_disputes_allowed"),
    )
    op.create_table(
        "admin_plans",
        sa.Column("plan_hash", sa.String(64), primary_key=True),
        # The canonical JSON exactly as `admin plan --format json` prints it.
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(40)),
        sa.Column("created_at", Time, nullable=False),
    )
    op.create_table(
        "admin_confirmations",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("entry_key", sa.String(128), sa.ForeignKey("entries.key"), nullable=False,
                  unique=True),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("sent_at", Time),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("loaded_at", Time, nullable=False),
    )


def _postgresql_triggers() -> None:
    for table in TABLES:
        op.execute(f"""
            CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION segledger_refuse_change()""")
        op.execute(f"""
            CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION segledger_refuse_change()""")
    op.execute(f"""
        CREATE FUNCTION segledger_entry_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE frozen_cutoff timestamptz;
        BEGIN
          SELECT cutoff INTO frozen_cutoff FROM administration;
          IF frozen_cutoff IS NULL THEN
            RETURN NEW;
          END IF;
          IF NEW.type = 'distribution' AND NEW.effective_at > frozen_cutoff
             AND EXISTS (SELECT 1 FROM batches WHERE id = NEW.batch_id
                         AND admin_plan IS NOT NULL) THEN
            RETURN NEW;
          END IF;
          IF EXISTS (SELECT 1 FROM batches WHERE id = NEW.batch_id
                     AND admin_reason IS NOT NULL) THEN
            RETURN NEW;
          END IF;
          RAISE EXCEPTION '{FROZEN_MESSAGE} (entry %, dated %)', NEW.key, NEW.effective_at
            USING ERRCODE = 'check_violation';
        END $$""")
    op.execute("""
        CREATE TRIGGER entries_frozen BEFORE INSERT ON entries
        FOR EACH ROW EXECUTE FUNCTION segledger_entry_frozen()""")
    op.execute(f"""
        CREATE FUNCTION segledger_close_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF EXISTS (SELECT 1 FROM administration) THEN
            RAISE EXCEPTION '{CLOSE_MESSAGE}' USING ERRCODE = 'check_violation';
          END IF;
          RETURN NEW;
        END $$""")
    op.execute("""
        CREATE TRIGGER closed_periods_frozen BEFORE INSERT ON closed_periods
        FOR EACH ROW EXECUTE FUNCTION segledger_close_frozen()""")


def _sqlite_triggers() -> None:
    for table in TABLES:
        for operation in ("UPDATE", "DELETE"):
            op.execute(f"""
                CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table}
                BEGIN SELECT RAISE(ABORT,
                  'segledger: {operation} on {table} refused: the table is append-only'); END""")
    op.execute(f"""
        CREATE TRIGGER entries_frozen BEFORE INSERT ON entries
        WHEN EXISTS (SELECT 1 FROM administration a
                     WHERE NOT (NEW.type = 'distribution' AND NEW.effective_at > a.cutoff
                                AND EXISTS (SELECT 1 FROM batches p WHERE p.id = NEW.batch_id
                                            AND p.admin_plan IS NOT NULL)))
         AND NOT EXISTS (SELECT 1 FROM batches b
                         WHERE b.id = NEW.batch_id AND b.admin_reason IS NOT NULL)
        BEGIN SELECT RAISE(ABORT, '{FROZEN_MESSAGE}'); END""")
    op.execute(f"""
        CREATE TRIGGER closed_periods_frozen BEFORE INSERT ON closed_periods
        WHEN EXISTS (SELECT 1 FROM administration)
        BEGIN SELECT RAISE(ABORT, '{CLOSE_MESSAGE}'); END""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS closed_periods_frozen ON closed_periods")
        op.execute("DROP FUNCTION IF EXISTS segledger_close_frozen()")
        op.execute("DROP TRIGGER IF EXISTS entries_frozen ON entries")
        op.execute("DROP FUNCTION IF EXISTS segledger_entry_frozen()")
    else:
        op.execute("DROP TRIGGER IF EXISTS closed_periods_frozen")
        op.execute("DROP TRIGGER IF EXISTS entries_frozen")
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("admin_plan")
        batch.drop_column("admin_reason")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite rebuilt the table to drop the columns, and its triggers went with the old one.
        for operation in ("UPDATE", "DELETE"):
            op.execute(f"""
                CREATE TRIGGER batches_no_{operation.lower()} BEFORE {operation} ON batches
                BEGIN SELECT RAISE(ABORT,
                  'segledger: {operation} on batches refused: the table is append-only'); END""")
    for table in reversed(TABLES):
        op.drop_table(table)
