"""segledger's system of record: assets, accounts, entries and the invariants they keep.

The domain modules (money, model, chart, entries, firewall, batch) import no database code;
`ledger.storage` is the one place that talks to SQLAlchemy.
"""
