"""`segledger admin freeze|record|claims|pool|elections|disputes` (registered on admin_cli)."""

from __future__ import annotations
