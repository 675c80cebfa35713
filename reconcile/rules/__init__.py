"""Rule checks: one plain function per rule id over a run's facts, and the rulebooks that say
which apply with which thresholds."""

from reconcile.rules.base import Check, Draw, ReserveFacts, RunFacts
from reconcile.rules.rulebook import RULES, Rulebook, load_rulebook, preset

__all__ = ["RULES", "Check", "Draw", "ReserveFacts", "Rulebook", "RunFacts", "load_rulebook",
           "preset"]
