"""`segledger admin plan|distribute|payouts|status|statement` (registered on admin_cli)."""

from __future__ import annotations
