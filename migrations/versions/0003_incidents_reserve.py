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
        for table in TABLES:
            op.execute(f"""
                CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION segledger_refuse_change()""")
            op.execute(f"""
                CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
                FOR EACH STATEMENT EXECUTE FUNCTION segledger_refuse_change()""")
    else:
        for table in TABLES:
            for operation in ("UPDATE", "DELETE"):
                op.execute(f"""
                    CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table}
                    BEGIN SELECT RAISE(ABORT,
                      'segledger: {operation} on {table} refused: the table is append-only'); END""")


def downgrade() -> None:
    with op.batch_alter_table("breaches") as batch:
        batch.drop_column("incident_id")
    for table in reversed(TABLES):
        op.drop_table(table)
