"""Reconciliation runs, their evidence and breaks: stored append-only.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.DateTime(timezone=True)
TABLES = ("recon_runs", "recon_evidence", "recon_breaks")
BREAK_KINDS = ("shortfall", "excess", "missing_evidence", "unknown_account", "dust")


def upgrade() -> None:
    op.create_table(
        "recon_runs",
        sa.Column("seq", Id, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(40), nullable=False, unique=True),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("as_of", Time, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("rulebook", sa.String(100), nullable=False),
        # The canonical JSON of the whole result, and its SHA-256: `rerun` must reproduce it.
        sa.Column("result", sa.Text, nullable=False),
        sa.Column("result_sha256", sa.String(64), nullable=False),
        sa.CheckConstraint("status IN ('clean', 'breaks')", name="recon_runs_status"),
    )
    op.create_table(
        "recon_evidence",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("run_seq", Id, sa.ForeignKey("recon_runs.seq"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("format", sa.String(30), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("run_seq", "position", name="recon_evidence_position"),
        sa.UniqueConstraint("run_seq", "sha256", name="recon_evidence_once_per_run"),
        sa.CheckConstraint("kind IN ('file', 'chain')", name="recon_evidence_kind"),
    )
    op.create_table(
        "recon_breaks",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("run_seq", Id, sa.ForeignKey("recon_runs.seq"), nullable=False),
        sa.Column("account", sa.String(300), nullable=False),
        sa.Column("asset", sa.String(20), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("difference", sa.String(100), nullable=False),
        sa.Column("open_since", sa.String(40), nullable=False),
        sa.CheckConstraint(f"kind IN ({', '.join(repr(k) for k in BREAK_KINDS)})",
                           name="recon_breaks_kind"),
    )
    op.create_index("recon_breaks_run", "recon_breaks", ["run_seq"])
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
    for table in reversed(TABLES):
        op.drop_table(table)
