"""A break of kind `stale_evidence`: evidence older than the rulebook allows is a break for
its account, stored like the others (its age counts from the run where it first appeared).

PostgreSQL changes the CHECK constraint in place. SQLite cannot alter a constraint: the
table is rebuilt with the same columns, its rows copied, and its index and append-only
triggers made again (SQLite's DROP TABLE fires no trigger).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OLD_KINDS = ("shortfall", "excess", "missing_evidence", "unknown_account", "dust")
NEW_KINDS = (*OLD_KINDS, "stale_evidence")


def upgrade() -> None:
    _kinds(NEW_KINDS)


def downgrade() -> None:
    _kinds(OLD_KINDS)  # fails, as it should, while a stale_evidence break is stored


def _check(kinds: tuple[str, ...]) -> str:
    return f"kind IN ({', '.join(repr(k) for k in kinds)})"


def _kinds(kinds: tuple[str, ...]) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE recon_breaks DROP CONSTRAINT recon_breaks_kind")
        op.execute(f"ALTER TABLE recon_breaks ADD CONSTRAINT recon_breaks_kind CHECK "
                   f"({_check(kinds)})")
        return
    op.create_table(
        "recon_breaks_rebuilt",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("run_seq", Id, sa.ForeignKey("recon_runs.seq"), nullable=False),
        sa.Column("account", sa.String(300), nullable=False),
        sa.Column("asset", sa.String(20), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("difference", sa.String(100), nullable=False),
        sa.Column("open_since", sa.String(40), nullable=False),
        sa.CheckConstraint(_check(kinds), name="recon_breaks_kind"),
    )
    op.execute("INSERT INTO recon_breaks_rebuilt (id, run_seq, account, asset, kind, "
               "difference, open_since) SELECT id, run_seq, account, asset, kind, difference, "
               "open_since FROM recon_breaks")
    op.execute("DROP TABLE recon_breaks")  # its index and triggers go with it
    op.execute("ALTER TABLE recon_breaks_rebuilt RENAME TO recon_breaks")
    op.create_index("recon_breaks_run", "recon_breaks", ["run_seq"])
    for operation in ("UPDATE", "DELETE"):
        op.execute(f"""
            CREATE TRIGGER recon_breaks_no_{operation.lower()} BEFORE {operation} ON recon_breaks
            BEGIN SELECT RAISE(ABORT,
              'segledger: {operation} on recon_breaks refused: the table is append-only'); END""")
