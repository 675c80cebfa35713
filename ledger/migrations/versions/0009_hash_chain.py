"""The hash chain: every batch, reconciliation run and register record sealed in commit order.

- `chain_links`: one row per sealed write, numbered 1, 2, 3 … in the order the writes
  committed. Each holds the digest of what it seals and the hash of the link before it
  (docs/integrity.md gives the exact encoding).
- `chain_head`: a single row, the newest link. A writing transaction takes it last (FOR UPDATE
  on PostgreSQL, SQLite's one writer), so concurrent batches wait for each other only at the
  seal, and the link number is the commit order.
- `entries.postings_hash`: each entry's hash of its postings; `entries.entry_hash` covers it
  and the entry's own fields. (`entries.prev_hash`, reserved in 0001, stays unused: entries are
  chained through their batch's link.)

The database keeps the chain's shape on both dialects: links are never changed or removed; a
link must follow the head (its number one more, its previous hash the head's); the head moves
one link at a time, to a link that exists. On PostgreSQL a batch and a reconciliation run must
be sealed before their transaction commits (deferred constraint triggers). The hashes
themselves are computed and checked by segledger (`verify`); a ledger written before this
revision is sealed by `segledger init` after the upgrade.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

Time = sa.DateTime(timezone=True)
GENESIS = "0" * 64

PG_FUNCTIONS = [
    """CREATE FUNCTION segledger_chain_append_only() RETURNS trigger AS $$
    BEGIN
      RAISE EXCEPTION 'segledger: the hash chain is append-only (% refused on %)',
        TG_OP, TG_TABLE_NAME;
    END $$ LANGUAGE plpgsql""",
    """CREATE FUNCTION segledger_chain_link_follows() RETURNS trigger AS $$
    DECLARE head record;
    BEGIN
      SELECT seq, link_hash INTO head FROM chain_head WHERE id = 1;
      IF NEW.seq <> head.seq + 1 OR NEW.prev_hash <> head.link_hash THEN
        RAISE EXCEPTION 'segledger: chain link % does not follow the head (link %)',
          NEW.seq, head.seq;
      END IF;
      RETURN NEW;
    END $$ LANGUAGE plpgsql""",
    """CREATE FUNCTION segledger_chain_head_moves() RETURNS trigger AS $$
    BEGIN
      IF NEW.id <> OLD.id OR NEW.seq <> OLD.seq + 1 OR NOT EXISTS (
          SELECT 1 FROM chain_links WHERE seq = NEW.seq AND link_hash = NEW.link_hash
             AND prev_hash = OLD.link_hash) THEN
        RAISE EXCEPTION 'segledger: the chain head moves one stored link at a time';
      END IF;
      RETURN NEW;
    END $$ LANGUAGE plpgsql""",
    """CREATE FUNCTION segledger_sealed() RETURNS trigger AS $$
    DECLARE wanted text := TG_ARGV[0];
    DECLARE sealed_ref text := to_jsonb(NEW) ->> TG_ARGV[1];
    BEGIN
      IF NOT EXISTS (SELECT 1 FROM chain_links WHERE kind = wanted AND ref = sealed_ref) THEN
        RAISE EXCEPTION 'segledger: % % was not sealed in the hash chain before commit',
          TG_TABLE_NAME, sealed_ref;
      END IF;
      RETURN NULL;
    END $$ LANGUAGE plpgsql""",
]
PG_TRIGGERS = [
    "CREATE TRIGGER chain_links_append_only BEFORE UPDATE OR DELETE ON chain_links "
    "FOR EACH ROW EXECUTE FUNCTION segledger_chain_append_only()",
    "CREATE TRIGGER chain_links_no_truncate BEFORE TRUNCATE ON chain_links "
    "FOR EACH STATEMENT EXECUTE FUNCTION segledger_chain_append_only()",
    "CREATE TRIGGER chain_links_follow BEFORE INSERT ON chain_links "
    "FOR EACH ROW EXECUTE FUNCTION segledger_chain_link_follows()",
    "CREATE TRIGGER chain_head_moves BEFORE UPDATE ON chain_head "
    "FOR EACH ROW EXECUTE FUNCTION segledger_chain_head_moves()",
    "CREATE TRIGGER chain_head_fixed BEFORE INSERT OR DELETE ON chain_head "
    "FOR EACH ROW EXECUTE FUNCTION segledger_chain_append_only()",
    "CREATE TRIGGER chain_head_no_truncate BEFORE TRUNCATE ON chain_head "
    "FOR EACH STATEMENT EXECUTE FUNCTION segledger_chain_append_only()",
    "CREATE CONSTRAINT TRIGGER batches_sealed AFTER INSERT ON batches "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION segledger_sealed('batch', 'id')",
    "CREATE CONSTRAINT TRIGGER recon_runs_sealed AFTER INSERT ON recon_runs "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION segledger_sealed('run', 'seq')",
]
SQLITE_TRIGGERS = [
    """CREATE TRIGGER chain_links_no_update BEFORE UPDATE ON chain_links
    BEGIN SELECT RAISE(ABORT, 'segledger: the hash chain is append-only (UPDATE refused)'); END""",
    """CREATE TRIGGER chain_links_no_delete BEFORE DELETE ON chain_links
    BEGIN SELECT RAISE(ABORT, 'segledger: the hash chain is append-only (DELETE refused)'); END""",
    """CREATE TRIGGER chain_links_follow BEFORE INSERT ON chain_links
    WHEN NEW.seq <> (SELECT seq FROM chain_head WHERE id = 1) + 1
      OR NEW.prev_hash <> (SELECT link_hash FROM chain_head WHERE id = 1)
    BEGIN SELECT RAISE(ABORT, 'segledger: a chain link must follow the head'); END""",
    """CREATE TRIGGER chain_head_moves BEFORE UPDATE ON chain_head
    WHEN NEW.id <> OLD.id OR NEW.seq <> OLD.seq + 1 OR NOT EXISTS (
      SELECT 1 FROM chain_links WHERE seq = NEW.seq AND link_hash = NEW.link_hash
         AND prev_hash = OLD.link_hash)
    BEGIN SELECT RAISE(ABORT, 'segledger: the chain head moves one stored link at a time'); END""",
    """CREATE TRIGGER chain_head_no_insert BEFORE INSERT ON chain_head
    BEGIN SELECT RAISE(ABORT, 'segledger: the hash chain has one head'); END""",
    """CREATE TRIGGER chain_head_no_delete BEFORE DELETE ON chain_head
    BEGIN SELECT RAISE(ABORT, 'segledger: the hash chain has one head'); END""",
]


def upgrade() -> None:
    op.add_column("entries", sa.Column("postings_hash", sa.String(64)))
    op.create_table(
        "chain_links",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("ref", sa.String(64)),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("link_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("sealed_at", Time, nullable=False),
    )
    op.create_index("chain_links_kind_ref", "chain_links", ["kind", "ref"])
    op.create_table(
        "chain_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("link_hash", sa.String(64), nullable=False),
        sa.CheckConstraint("id = 1", name="chain_head_single_row"),
    )
    op.execute(f"INSERT INTO chain_head (id, seq, link_hash) VALUES (1, 0, '{GENESIS}')")
    if op.get_bind().dialect.name == "postgresql":
        for statement in [*PG_FUNCTIONS, *PG_TRIGGERS]:
            op.execute(statement)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER batches_sealed ON batches")
        op.execute("DROP TRIGGER recon_runs_sealed ON recon_runs")
    op.drop_table("chain_head")
    op.drop_table("chain_links")
    if op.get_bind().dialect.name == "postgresql":
        for name in ("segledger_chain_append_only", "segledger_chain_link_follows",
                     "segledger_chain_head_moves", "segledger_sealed"):
            op.execute(f"DROP FUNCTION {name}()")
    # Native on SQLite 3.35+: no table rebuild, so the entries' triggers stay as they are.
    op.execute("ALTER TABLE entries DROP COLUMN postings_hash")
