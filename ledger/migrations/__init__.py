"""Alembic migrations: the only way segledger's schema changes (DESIGN.md, Layers)."""
