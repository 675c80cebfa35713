"""Liability-reserve rules: enough reserve (with insurance) for the required amount, and every
draw on it reported with the incident it compensated (REGULATION.md R1)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction

from ledger.model import Purpose
from ledger.reserves import Requirement, ReserveParameters, eligible_insurance, required_reserve, show
from reconcile.rules.base import (
    Check,
    ReserveFacts,
    RunFacts,
    Valuer,
    fmt,
    held_minor,
    is_purpose,
    not_applicable,
)
from reconcile.rules.params import DrawParams, ReserveParams


@dataclass(frozen=True)
class ReserveAssessment:
    """Everything `report reserve` shows; the JP-RESERVE check is its last line."""

    currency: str
    parameters: ReserveParams
    requirement: Requirement | None
    missing: str | None  # why the requirement cannot be computed, if it cannot
    held: Fraction | None
    held_by_asset: dict[str, str]
    appropriation_by_asset: dict[str, str]
    insurance_in_force: list[dict[str, str]]
    insurance_eligible: Fraction | None
    losses_by_asset: dict[str, str]

    required: Fraction | None  # in the currency's units

    @property
    def gap(self) -> Fraction | None:
        """Required − (held + eligible insurance): above zero, the reserve is short."""
        if self.required is None or self.held is None or self.insurance_eligible is None:
            return None
        return self.required - self.held - self.insurance_eligible


def assess(facts: RunFacts, params: ReserveParams) -> ReserveAssessment:
    reserve = facts.reserve
    assert reserve is not None, "the service loads reserve facts when JP-RESERVE applies"
    scales = facts.ledger.scales
    valuer = Valuer(facts.prices, params.currency, scales)
    quote_scale = scales.get(params.currency, 0)
    currency_ok = valuer.quote == params.currency
    traded = _traded_value(reserve, valuer, params.currency)
    losses = valuer.total(reserve.losses_minor)
    customer_assets = (valuer.total(dict(facts.ledger.liabilities_minor))
                       if reserve.losses_minor else Fraction(0))
    held_minor_by_asset: dict[str, int] = defaultdict(int)
    for comparison in facts.comparisons:
        if is_purpose(comparison, Purpose.RESERVE):
            held_minor_by_asset[comparison.asset] += held_minor(comparison)
    held = valuer.total(held_minor_by_asset)
    requirement = None
    missing = None
    if not currency_ok:
        missing = (f"the formula's floor is in {params.currency}, the price file quotes "
                   f"{valuer.quote}")
    elif traded is None or losses is None or customer_assets is None:
        missing = valuer.why_not()
    else:
        requirement = required_reserve(_parameters(params), traded, losses, customer_assets,
                                       quote_scale)
    in_force = [p for p in reserve.policies if p.in_force(facts.ledger.as_of)]
    listed = []
    valued = []
    for policy in in_force:
        limit = valuer.value(policy.currency, policy.limit_minor) if currency_ok else None
        listed.append({"policy_id": policy.policy_id, "insurer": policy.insurer,
                       "limit": fmt(facts, policy.currency, policy.limit_minor),
                       "currency": policy.currency, "covered_share": str(policy.covered_share),
                       "period_start": policy.period_start.isoformat(),
                       "period_end": policy.period_end.isoformat(),
                       "valued": "n/a (no price)" if limit is None else show(limit, quote_scale)})
        if limit is not None:
            valued.append((policy, limit))
    eligible = None
    required = None
    if requirement is not None:
        required = Fraction(requirement.required, 10**quote_scale)
        eligible, counted = eligible_insurance(valued, required, params.insurance_cap)
        rows = {row["policy_id"]: row for row in listed}
        for policy_id, amount in counted:
            rows[policy_id]["counted"] = show(amount, quote_scale)
    return ReserveAssessment(
        params.currency, params, requirement, missing, held,
        {a: fmt(facts, a, m) for a, m in sorted(held_minor_by_asset.items())},
        {a: fmt(facts, a, m) for a, m in sorted(facts.ledger.appropriation_minor.items())},
        listed, eligible,
        {a: fmt(facts, a, m) for a, m in sorted(reserve.losses_minor.items())}, required)


def _traded_value(reserve: ReserveFacts, valuer: Valuer, currency: str) -> Fraction | None:
    quoted = valuer.value(currency, reserve.quote_traded_minor)
    unquoted = valuer.total(reserve.unquoted_traded_minor)
    if quoted is None or unquoted is None:
        return None
    # A trade without a quote leg swaps two legs of equal value: half their sum is its value.
    return quoted + unquoted / 2


def _parameters(params: ReserveParams) -> ReserveParameters:
    return ReserveParameters(params.lookback_days, params.rate, params.incident_years,
                             params.incident_weight, params.risk_multiplier, params.floor,
                             params.insurance_cap, params.formula)


def jp_reserve(facts: RunFacts, params: ReserveParams) -> list[Check]:
    """Reserve held + eligible insurance ≥ the required liability reserve."""
    a = assess(facts, params)
    scale = facts.ledger.scales.get(params.currency, 0)
    if a.requirement is None:
        return [not_applicable("JP-RESERVE", params.currency, "n/a",
                               f"the required reserve cannot be computed: {a.missing}")]
    assert a.required is not None
    required = a.required
    if a.held is None or a.insurance_eligible is None:
        return [not_applicable("JP-RESERVE", params.currency, show(required, scale),
                               "the reserve held cannot be valued: no price for its assets")]
    covered = a.held + a.insurance_eligible
    numbers = {**a.requirement.numbers(scale), "required": show(required, scale),
               "held": show(a.held, scale), "insurance_eligible": show(a.insurance_eligible, scale),
               "formula": params.formula}
    detail = (f"reserve held {show(a.held, scale)} + eligible insurance "
              f"{show(a.insurance_eligible, scale)} vs required {show(required, scale)} "
              f"{params.currency} ({params.formula})")
    if covered < required:
        detail += f": short by {show(required - covered, scale)}"
    return [Check("JP-RESERVE", params.currency, "pass" if covered >= required else "fail",
                  show(covered, scale), show(required, scale), detail, numbers)]


def reserve_draw(facts: RunFacts, params: DrawParams) -> list[Check]:
    """Every draw on the reserve in the run's window, flagged with its incident: effective after
    the as-of `window_business_days` back, up to the as-of. The window depends on the
    as-of alone, so every run for one as-of (and its rerun) flags the same draws, whatever runs
    came before; a draw booked late, effective before its window, is flagged by the run whose
    window holds the time it was recorded."""
    reserve = facts.reserve
    assert reserve is not None
    window = (f"effective after {reserve.draws_after.isoformat()} up to the as-of "
              f"{facts.ledger.as_of.isoformat()} ({params.window_business_days} business "
              f"day{'s' if params.window_business_days != 1 else ''})")
    if not reserve.draws:
        return [Check("RESERVE-DRAW", "*", "pass", "0", "0", f"no reserve draws {window}")]
    checks = []
    for draw in reserve.draws:
        story = (f"incident {draw.incident} ({draw.incident_kind})" if draw.incident
                 else f"an entry of type {draw.entry_type} with no incident")
        numbers = {"entry": draw.entry_key, "type": draw.entry_type,
                   "incident": draw.incident or "", "effective_at": draw.effective_at.isoformat()}
        detail = (f"reserve draw {draw.entry_key} on {draw.effective_at.isoformat()}: "
                  f"{fmt(facts, draw.asset, draw.amount_minor)} {draw.asset} for {story}"
                  + (f" ({draw.memo})" if draw.memo else ""))
        if draw.recorded_at is not None and draw.effective_at <= reserve.draws_after:
            numbers["recorded_at"] = draw.recorded_at.isoformat()
            detail += f"; booked late: recorded on {draw.recorded_at.isoformat()}"
        checks.append(Check("RESERVE-DRAW", draw.asset, "fail",
                            fmt(facts, draw.asset, draw.amount_minor), "0", detail, numbers))
    return checks
