"""Balance checkpoints: a past balance sums the postings after the latest checkpoint, not the
account's whole history.

`balance_checkpoints` holds, for an account, the raw sum (debits positive) and the number of
its postings dated at or before `at`. The posting path adds one each time an account passes
another CHECKPOINT_EVERY postings, and adds a backdated posting to every checkpoint after it;
this migration makes the checkpoints of the postings already there.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Minor = sa.BigInteger().with_variant(sa.Numeric(78, 0), "postgresql")
Time = sa.DateTime(timezone=True)
# A frozen copy of ledger.storage.checkpoints.CHECKPOINT_EVERY as of this revision.
CHECKPOINT_EVERY = 1_000


def upgrade() -> None:
    op.create_table(
        "balance_checkpoints",
        sa.Column("account_id", Id, sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("at", Time, primary_key=True),
        sa.Column("amount_minor", Minor, nullable=False),
        sa.Column("posting_count", sa.BigInteger, nullable=False),
    )
    # The window's default frame takes every posting up to and including the row's time
    # (its peers too), which is what a checkpoint at that time must hold.
    op.execute(f"""
        INSERT INTO balance_checkpoints (account_id, at, amount_minor, posting_count)
        SELECT account_id, effective_at, max(total), max(n) FROM (
          SELECT account_id, effective_at,
                 sum(amount_minor) OVER (PARTITION BY account_id ORDER BY effective_at) AS total,
                 count(*) OVER (PARTITION BY account_id ORDER BY effective_at) AS n,
                 row_number() OVER (PARTITION BY account_id ORDER BY effective_at, id) AS k
            FROM postings) running
         WHERE k % {CHECKPOINT_EVERY} = 0
         GROUP BY account_id, effective_at""")


def downgrade() -> None:
    op.drop_table("balance_checkpoints")
