"""Incidents and their links, the insurance register, and the incident behind each breach.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Minor = sa.BigInteger().with_variant(sa.Numeric(78, 0), "postgresql")
Time = sa.DateTime(timezone=True)
# Frozen copies as of this revision: a migration must not change when the code does.
INCIDENT_KINDS = ("theft", "operational_loss", "misdirected_funds")
LINK_KINDS = ("loss", "draw", "top_up", "recovery")
TABLES = ("incidents", "incident_links", "insurance_policies")
# Entry types that must say which incident they belong to.
NAMED_BY = ("incident", "reserve_draw", "insurance_recovery")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("incident_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("opened_entry_id", Id, sa.ForeignKey("entries.id"), nullable=False),
        sa.Column("opened_at", Time, nullable=False),
        sa.CheckConstraint(_in("kind", INCIDENT_KINDS), name="incidents_kind"),
    )
    op.create_table(
        "incident_links",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.String(64), sa.ForeignKey("incidents.incident_id"),
                  nullable=False),
        sa.Column("entry_id", Id, sa.ForeignKey("entries.id"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("asset", sa.String(20), sa.ForeignKey("assets.code"), nullable=False),
        sa.Column("amount_minor", Minor, nullable=False),
        sa.CheckConstraint(_in("kind", LINK_KINDS), name="incident_links_kind"),
        sa.CheckConstraint("amount_minor > 0", name="incident_links_positive"),
        sa.UniqueConstraint("entry_id", "asset", name="incident_links_once"),
    )
    op.create_index("incident_links_incident", "incident_links", ["incident_id"])
    op.create_table(
        "insurance_policies",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("policy_id", sa.String(100), nullable=False, unique=True),
        sa.Column("insurer", sa.String(200), nullable=False),
        sa.Column("currency", sa.String(20), sa.ForeignKey("assets.code"), nullable=False),
        sa.Column("limit_minor", Minor, nullable=False),
        sa.Column("covered_share", sa.String(40), nullable=False),
        sa.Column("period_start", Time, nullable=False),
        sa.Column("period_end", Time, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("loaded_at", Time, nullable=False),
        sa.CheckConstraint("limit_minor > 0", name="insurance_limit_positive"),
        sa.CheckConstraint("period_end > period_start", name="insurance_period_order"),
    )
    with op.batch_alter_table("breaches") as batch:
        batch.add_column(sa.Column("incident_id", sa.String(64)))
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_reserve_guards()
        for table in TABLES:
            op.execute(f"""
                CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION segledger_refuse_change()""")
            op.execute(f"""
                CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
                FOR EACH STATEMENT EXECUTE FUNCTION segledger_refuse_change()""")
    else:
        op.execute(f"""
            CREATE TRIGGER entries_name_incident BEFORE INSERT ON entries
            WHEN {_in("NEW.type", NAMED_BY)} AND json_extract(NEW.metadata, '$.incident') IS NULL
            BEGIN SELECT RAISE(ABORT,
              'segledger: this entry type must name its incident (metadata.incident)'); END""")
        for table in TABLES:
            for operation in ("UPDATE", "DELETE"):
                op.execute(f"""
                    CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table}
                    BEGIN SELECT RAISE(ABORT,
                      'segledger: {operation} on {table} refused: the table is append-only'); END""")


def _postgresql_reserve_guards() -> None:
    op.execute(f"""
        CREATE FUNCTION segledger_entry_names_incident() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF {_in("NEW.type", NAMED_BY)} AND (NEW.metadata ->> 'incident') IS NULL THEN
            RAISE EXCEPTION 'segledger: % entry % must name its incident (metadata.incident)',
              NEW.type, NEW.key USING ERRCODE = 'check_violation';
          END IF;
          RETURN NEW;
        END $$""")
    op.execute("""
        CREATE TRIGGER entries_name_incident BEFORE INSERT ON entries
        FOR EACH ROW EXECUTE FUNCTION segledger_entry_names_incident()""")
    # The few reserve accounts, so that the per-entry check below finds them by index
    # instead of scanning every customer account once per entry.
    op.execute("CREATE INDEX accounts_reserve ON accounts (id) "
               "WHERE role = 'reserve' OR (role = 'custody' AND purpose = 'reserve')")
    # Deferred to commit, per entry, like the balance check: an entry's postings (COPY or
    # INSERT, in any number of statements) and the incident rows are all written by then.
    op.execute("""
        CREATE FUNCTION segledger_entry_reserve_and_incident() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
          taken record;
        BEGIN
          IF NEW.type NOT IN ('reserve_draw', 'incident') THEN
            SELECT p.asset INTO taken FROM postings p JOIN accounts a ON a.id = p.account_id
             WHERE p.entry_id = NEW.id
               AND (a.role = 'reserve' OR (a.role = 'custody' AND a.purpose = 'reserve'))
             GROUP BY p.asset
            HAVING coalesce(sum(p.amount_minor) FILTER (WHERE a.role = 'reserve'), 0) > 0
                OR coalesce(sum(p.amount_minor) FILTER (WHERE a.role = 'custody'), 0) < 0
             LIMIT 1;
            -- A reversal may give back a provision, but only as the exact mirror of it.
            IF FOUND AND NOT (NEW.type = 'reversal' AND NOT EXISTS (
                SELECT 1 FROM postings WHERE entry_id IN (NEW.id, NEW.reverses_id)
                 GROUP BY account_id HAVING sum(amount_minor) <> 0)) THEN
              RAISE EXCEPTION 'segledger: % entry % takes % from the liability reserve; only a '
                'reserve_draw may', NEW.type, NEW.key, taken.asset
                USING ERRCODE = 'check_violation';
            END IF;
          END IF;
          IF NEW.type IN ('incident', 'reserve_draw', 'insurance_recovery', 'top_up')
             AND (NEW.metadata ->> 'incident') IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM incidents
                              WHERE incident_id = NEW.metadata ->> 'incident') THEN
            RAISE EXCEPTION 'segledger: % entry % names incident %, which is not recorded',
              NEW.type, NEW.key, NEW.metadata ->> 'incident' USING ERRCODE = 'check_violation';
          END IF;
          RETURN NULL;
        END $$""")
    op.execute("""
        CREATE CONSTRAINT TRIGGER entries_reserve_and_incident AFTER INSERT ON entries
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
        EXECUTE FUNCTION segledger_entry_reserve_and_incident()""")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS entries_name_incident ON entries"
               if op.get_bind().dialect.name == "postgresql"
               else "DROP TRIGGER IF EXISTS entries_name_incident")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS entries_reserve_and_incident ON entries")
        op.execute("DROP FUNCTION IF EXISTS segledger_entry_reserve_and_incident()")
        op.execute("DROP INDEX IF EXISTS accounts_reserve")
        op.execute("DROP FUNCTION IF EXISTS segledger_entry_names_incident()")
    with op.batch_alter_table("breaches") as batch:
        batch.drop_column("incident_id")
    for table in reversed(TABLES):
        op.drop_table(table)
