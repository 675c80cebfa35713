"""The layering of DESIGN.md, checked."""

from __future__ import annotations

import subprocess
import sys


def test_the_domain_imports_no_database_code() -> None:
    """DESIGN.md, Layers: the rules are plain functions; storage is a module they never import."""
    probe = ("import sys, ledger.model, ledger.money, ledger.entries, ledger.chart, ledger.book,"
             " ledger.batch; print(sorted(m for m in sys.modules"
             " if m.split('.')[0] in ('sqlalchemy', 'psycopg', 'alembic')"
             " or m.startswith('ledger.storage')))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
