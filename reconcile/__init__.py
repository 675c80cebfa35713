"""Reconciliation: outside evidence (bank statements, chains, custodians) against the ledger.

Depends on `ledger`, never the reverse (DESIGN.md, Layers).
"""
