"""The database's entry checks once per statement and once per batch, not once per row.

Until now PostgreSQL checked each entry with row triggers: three BEFORE INSERT triggers (the
closed period, the incident named, the freeze), each a query per entry, and two deferred
constraint triggers (balanced postings; the liability reserve and the incident recorded),
each queued per entry and run at commit. At a million entries a batch that is millions of
trigger calls. The same rules now run as set-based queries:

- AFTER INSERT … FOR EACH STATEMENT on entries, over the statement's new rows (a transition
  table): the closed period, the incident named, the freeze, and that the entry's batch row
  was written by this same transaction;
- a deferred constraint trigger on batches, one per batch, at commit: every entry of the
  batch has at least two postings, balances per asset, takes nothing from the liability
  reserve unless it may, and names an incident that is recorded.

Every entry belongs to a batch (batches.id, NOT NULL) written in the entry's own
transaction, and postings must be written with their entry (postings_same_transaction,
0001): so every entry is checked at its batch's commit, as every entry was before. The
messages are the same. SQLite keeps its row triggers (it has no statement triggers) and
never had the deferred checks.

The row-trigger functions stay defined, unused, so that the downgrade restores the triggers
exactly as they were.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Frozen copies as of this revision: a migration must not change when the code does.
NAMED_BY = "('incident', 'reserve_draw', 'insurance_recovery')"
INCIDENT_TYPES = "('incident', 'reserve_draw', 'insurance_recovery', 'top_up')"
RESERVE = "(a.role = 'reserve' OR (a.role = 'custody' AND a.purpose = 'reserve'))"
FROZEN_MESSAGE = ("segledger: the ledger is frozen for administration; only distributions "
                  "of a stored plan dated after the cut-off and the administrator''s records "
                  "are accepted")
# The low 32 bits of this transaction's id, as xmin shows a row it wrote (as in 0001).
THIS_TRANSACTION = "(pg_current_xact_id()::text::bigint % 4294967296)::text"

ROW_TRIGGERS = {
    "entries_open_period": "BEFORE INSERT ON entries FOR EACH ROW "
                           "EXECUTE FUNCTION segledger_entry_open_period()",
    "entries_name_incident": "BEFORE INSERT ON entries FOR EACH ROW "
                             "EXECUTE FUNCTION segledger_entry_names_incident()",
    "entries_frozen": "BEFORE INSERT ON entries FOR EACH ROW "
                      "EXECUTE FUNCTION segledger_entry_frozen()",
}
DEFERRED_ROW_TRIGGERS = {
    "entries_balanced": "AFTER INSERT ON entries DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                        "EXECUTE FUNCTION segledger_entry_balanced()",
    "entries_reserve_and_incident": "AFTER INSERT ON entries DEFERRABLE INITIALLY DEFERRED "
                                    "FOR EACH ROW "
                                    "EXECUTE FUNCTION segledger_entry_reserve_and_incident()",
}


def upgrade() -> None:
    # The entries of one batch, found by the batch check (and by anyone auditing a batch).
    op.create_index("entries_batch", "entries", ["batch_id"])
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in (*ROW_TRIGGERS, *DEFERRED_ROW_TRIGGERS):
        op.execute(f"DROP TRIGGER {name} ON entries")
    op.execute(f"""
        CREATE FUNCTION segledger_entries_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
          refused record;
          frozen_cutoff timestamptz;
        BEGIN
          SELECT n.key INTO refused FROM new_entries n JOIN batches b ON b.id = n.batch_id
           WHERE b.xmin::text <> {THIS_TRANSACTION} LIMIT 1;
          IF FOUND THEN
            RAISE EXCEPTION 'segledger: entry % must be written with its batch', refused.key
              USING ERRCODE = 'check_violation';
          END IF;
          SELECT n.key, n.effective_at INTO refused FROM new_entries n
           WHERE n.effective_at <= (SELECT max(closed_through) FROM closed_periods) LIMIT 1;
          IF FOUND THEN
            RAISE EXCEPTION 'segledger: entry % is dated %, inside a closed period',
              refused.key, refused.effective_at USING ERRCODE = 'check_violation';
          END IF;
          SELECT n.key, n.type INTO refused FROM new_entries n
           WHERE n.type IN {NAMED_BY} AND (n.metadata ->> 'incident') IS NULL LIMIT 1;
          IF FOUND THEN
            RAISE EXCEPTION 'segledger: % entry % must name its incident (metadata.incident)',
              refused.type, refused.key USING ERRCODE = 'check_violation';
          END IF;
          SELECT cutoff INTO frozen_cutoff FROM administration;
          IF frozen_cutoff IS NOT NULL THEN
            SELECT n.key, n.effective_at INTO refused
              FROM new_entries n JOIN batches b ON b.id = n.batch_id
             WHERE b.admin_reason IS NULL
               AND NOT (n.type = 'distribution' AND n.effective_at > frozen_cutoff
                        AND b.admin_plan IS NOT NULL)
             LIMIT 1;
            IF FOUND THEN
              RAISE EXCEPTION '{FROZEN_MESSAGE} (entry %, dated %)', refused.key,
                refused.effective_at USING ERRCODE = 'check_violation';
            END IF;
          END IF;
          RETURN NULL;
        END $$""")
    op.execute("""
        CREATE TRIGGER entries_inserted AFTER INSERT ON entries
        REFERENCING NEW TABLE AS new_entries
        FOR EACH STATEMENT EXECUTE FUNCTION segledger_entries_inserted()""")
    op.execute(f"""
        CREATE FUNCTION segledger_batch_complete() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
          refused record;
        BEGIN
          SELECT e.key, count(p.id) AS postings INTO refused
            FROM entries e LEFT JOIN postings p ON p.entry_id = e.id
           WHERE e.batch_id = NEW.id GROUP BY e.id, e.key HAVING count(p.id) < 2 LIMIT 1;
          IF FOUND THEN
            RAISE EXCEPTION 'segledger: entry % has % postings; an entry needs at least one line',
              refused.key, refused.postings USING ERRCODE = 'check_violation';
          END IF;
          SELECT e.key, p.asset, sum(p.amount_minor) AS total INTO refused
            FROM entries e JOIN postings p ON p.entry_id = e.id
           WHERE e.batch_id = NEW.id GROUP BY e.id, e.key, p.asset
          HAVING sum(p.amount_minor) <> 0 LIMIT 1;
          IF FOUND THEN
            RAISE EXCEPTION 'segledger: entry % is not balanced in %: its postings sum to %',
              refused.key, refused.asset, refused.total USING ERRCODE = 'check_violation';
          END IF;
          FOR refused IN
            SELECT e.id, e.key, e.type, e.reverses_id, p.asset
              FROM entries e JOIN postings p ON p.entry_id = e.id
              JOIN accounts a ON a.id = p.account_id
             WHERE e.batch_id = NEW.id AND e.type NOT IN ('reserve_draw', 'incident')
               AND {RESERVE}
             GROUP BY e.id, e.key, e.type, e.reverses_id, p.asset
            HAVING coalesce(sum(p.amount_minor) FILTER (WHERE a.role = 'reserve'), 0) > 0
                OR coalesce(sum(p.amount_minor) FILTER (WHERE a.role = 'custody'), 0) < 0
          LOOP
            -- A reversal may give back a provision, but only as the exact mirror of it.
            IF NOT (refused.type = 'reversal' AND NOT EXISTS (
                SELECT 1 FROM postings WHERE entry_id IN (refused.id, refused.reverses_id)
                 GROUP BY account_id HAVING sum(amount_minor) <> 0)) THEN
              RAISE EXCEPTION 'segledger: % entry % takes % from the liability reserve; only a '
                'reserve_draw may', refused.type, refused.key, refused.asset
                USING ERRCODE = 'check_violation';
            END IF;
          END LOOP;
          SELECT e.key, e.type, e.metadata ->> 'incident' AS incident INTO refused
            FROM entries e
           WHERE e.batch_id = NEW.id AND e.type IN {INCIDENT_TYPES}
             AND (e.metadata ->> 'incident') IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM incidents i
                              WHERE i.incident_id = e.metadata ->> 'incident')
           LIMIT 1;
          IF FOUND THEN
            RAISE EXCEPTION 'segledger: % entry % names incident %, which is not recorded',
              refused.type, refused.key, refused.incident USING ERRCODE = 'check_violation';
          END IF;
          RETURN NULL;
        END $$""")
    op.execute("""
        CREATE CONSTRAINT TRIGGER batches_complete AFTER INSERT ON batches
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION segledger_batch_complete()""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER batches_complete ON batches")
        op.execute("DROP FUNCTION segledger_batch_complete()")
        op.execute("DROP TRIGGER entries_inserted ON entries")
        op.execute("DROP FUNCTION segledger_entries_inserted()")
        for name, definition in ROW_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {definition}")
        for name, definition in DEFERRED_ROW_TRIGGERS.items():
            op.execute(f"CREATE CONSTRAINT TRIGGER {name} {definition}")
    op.drop_index("entries_batch", "entries")
