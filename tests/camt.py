"""Small camt.053 statements for scenario tests (the real bank fixtures are in tests/fixtures/)."""

from reconcile.adapters.camt053 import write_statement as statement

__all__ = ["statement"]
