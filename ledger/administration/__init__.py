"""Administration in a bankruptcy: the administrator's distribution plan as pure functions.

Tier 1 pays each asset's segregated pool back in kind, pro rata to the customers' claims
(PSA 63-19-2); tier 2 pays what tier 1 leaves unpaid from the general estate by a plan in the
style of Mt. Gox's civil rehabilitation plan. No database and no CLI here: see
docs/administration.md for the math and for what comes next.
"""
