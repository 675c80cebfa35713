"""The liability reserve (責任準備金): the required amount, the insurance that may stand in for
part of it, and the insurance register's file format. Plain functions over plain values.

The FSA has not published its formula (REGULATION.md R1), so the formula is versioned data:

    jp-reserve-v1
      traded value  V = quote-currency legs of trade entries over the look-back window
                        + for trades with no quote leg, ½ Σ legs valued at the price table
      base          B = V × rate
      loss ratio    L = incident losses over the last `incident_years` (valued)
                        ÷ customer assets at the as-of time (valued); 0 without losses
      incident      F = 1 + incident_weight × L
      required      R = max(floor, ⌈B × F × risk_multiplier⌉)   (in the quote's minor unit)
      insurance     each policy in force counts min(limit, covered_share × R);
                    all together at most insurance_cap × R
      check         reserve held + eligible insurance ≥ R
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from ledger.errors import InputError, shown
from ledger.files import text_of
from ledger.json_input import from_pydantic, iso_text, kind_of, loads_strict, locate, meaning
from ledger.model import ASSET_CODE
from ledger.money import MAX_AMOUNT_CHARS, PLAIN_DECIMAL
from ledger.prices import PlainDecimal

FORMULA_VERSION = "jp-reserve-v1"
MAX_POLICIES = 1_000


@dataclass(frozen=True)
class ReserveParameters:
    lookback_days: int
    rate: Decimal
    incident_years: int
    incident_weight: Decimal
    risk_multiplier: Decimal
    floor: Decimal
    insurance_cap: Decimal
    formula: str = FORMULA_VERSION


@dataclass(frozen=True)
class Requirement:
    traded_value: Fraction
    base: Fraction
    loss_ratio: Fraction
    incident_factor: Fraction
    computed: Fraction
    required: int  # quote minor units, rounded up: a requirement is never rounded away

    def numbers(self, quote_scale: int) -> dict[str, str]:
        return {"traded_value": show(self.traded_value, quote_scale),
                "base": show(self.base, quote_scale),
                "loss_ratio": show(self.loss_ratio, 8),
                "incident_factor": show(self.incident_factor, 8),
                "computed": show(self.computed, quote_scale)}


def required_reserve(params: ReserveParameters, traded_value: Fraction, losses: Fraction,
                     customer_assets: Fraction, quote_scale: int) -> Requirement:
    base = traded_value * Fraction(params.rate)
    loss_ratio = losses / customer_assets if losses and customer_assets else Fraction(0)
    if losses and not customer_assets:
        # Losses with nothing left in custody: the worst case, counted as a full loss ratio.
        loss_ratio = Fraction(1)
    factor = 1 + Fraction(params.incident_weight) * loss_ratio
    computed = base * factor * Fraction(params.risk_multiplier)
    unit = Fraction(10) ** quote_scale
    required = max(math.ceil(Fraction(params.floor) * unit), math.ceil(computed * unit))
    return Requirement(traded_value, base, loss_ratio, factor, computed, required)


@dataclass(frozen=True)
class Policy:
    policy_id: str
    insurer: str
    currency: str
    limit_minor: int
    covered_share: Decimal
    period_start: datetime
    period_end: datetime

    def in_force(self, at: datetime) -> bool:
        return self.period_start <= at < self.period_end


def eligible_insurance(policies: Sequence[tuple[Policy, Fraction]], required: Fraction,
                       cap: Decimal) -> tuple[Fraction, list[tuple[str, Fraction]]]:
    """(policy, limit valued in the quote) in force → the amount that may stand in for reserve."""
    counted = [(policy.policy_id, min(limit, Fraction(policy.covered_share) * required))
               for policy, limit in policies]
    return min(sum((amount for _, amount in counted), Fraction(0)),
               Fraction(cap) * required), counted


def show(value: Fraction, decimals: int) -> str:
    """Rounded down for display only; comparisons use the exact fractions."""
    unit = 10**decimals
    minor = math.floor(value * unit)
    sign = "-" if minor < 0 else ""
    digits = str(abs(minor)).rjust(decimals + 1, "0")
    return f"{sign}{digits[:-decimals]}.{digits[-decimals:]}" if decimals else f"{sign}{digits}"


def _limit(value: Any) -> Any:
    """A limit's form, checked when the file is read: decimal text (or a JSON integer) above
    zero. Its decimals are checked against the currency's scale on loading, when the ledger's
    assets are known."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        given = f"the number {value} (write it in quotes)" if isinstance(value, float) \
            else kind_of(value)
        raise ValueError(f"must be a decimal string such as \"1000000000\", not {given}")
    text = str(value)
    if text.startswith("-") and PLAIN_DECIMAL.fullmatch(text[1:]):
        raise ValueError(f"the limit must be greater than zero, not {text}")
    if len(text) > MAX_AMOUNT_CHARS or not PLAIN_DECIMAL.fullmatch(text):
        raise ValueError(f"{shown(text, 40)} is not a plain decimal number such as "
                         "\"1000000000\"")
    if Decimal(text) == 0:
        raise ValueError(f"the limit must be greater than zero, not {text}")
    return text


def _not_blank(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        raise ValueError("must not be blank")
    return value


class _PolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy_id: Annotated[str, Field(pattern=meaning(
        r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$", "a policy id: 1 to 100 ASCII letters, digits "
        "and the characters . _ : / -, starting with a letter or a digit"))]
    insurer: Annotated[str, BeforeValidator(_not_blank), Field(min_length=1, max_length=200)]
    currency: Annotated[str, Field(pattern=ASSET_CODE.pattern)] = "JPY"
    limit: Annotated[str, BeforeValidator(_limit)]
    covered_share: PlainDecimal
    period_start: Annotated[AwareDatetime, BeforeValidator(iso_text)]
    period_end: Annotated[AwareDatetime, BeforeValidator(iso_text)]


class _RegisterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policies: Annotated[list[_PolicyIn], Field(min_length=1, max_length=MAX_POLICIES)]


@dataclass(frozen=True)
class PolicyDraft:
    """A policy as read, before its limit is scaled to the currency's minor unit."""

    index: int
    policy_id: str
    insurer: str
    currency: str
    limit: Any
    covered_share: Decimal
    period_start: datetime
    period_end: datetime

    def content_hash(self, limit_minor: int) -> str:
        """Same terms, same hash: the limit in minor units ("10" = "10.00"), the share
        normalised ("0.8" = "0.80"), times in UTC."""
        canonical = {"policy_id": self.policy_id, "insurer": self.insurer,
                     "currency": self.currency, "limit_minor": str(limit_minor),
                     "covered_share": str(self.covered_share.normalize()),
                     "period_start": self.period_start.isoformat(),
                     "period_end": self.period_end.isoformat()}
        return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def parse_register(content: bytes, source: str) -> list[PolicyDraft]:
    text = text_of(content, source)
    try:
        return _parse_register(text, source)
    except InputError as error:
        raise locate(error, text).located(source=source) from None


def _parse_register(text: str, source: str) -> list[PolicyDraft]:
    try:
        parsed = _RegisterIn.model_validate(loads_strict(text))
    except ValidationError as error:
        raise from_pydantic(error, _RegisterIn).located(source=source) from None
    drafts, seen = [], set()
    for index, policy in enumerate(parsed.policies):
        where = f"policies[{index}]"
        if not Decimal(0) < policy.covered_share <= Decimal(1) or \
                len(format(policy.covered_share, "f")) > 40:
            raise InputError("the covered share is a fraction above 0 and at most 1 (at most "
                             "40 characters)",
                             source=source, field=f"{where}.covered_share")
        if policy.period_end <= policy.period_start:
            raise InputError(f"the period ends ({policy.period_end.isoformat()}) before it "
                             f"starts ({policy.period_start.isoformat()})", source=source,
                             field=f"{where}.period_end")
        if policy.policy_id in seen:
            raise InputError(f"policy {shown(policy.policy_id)} appears twice in this register",
                             source=source, field=f"{where}.policy_id")
        seen.add(policy.policy_id)
        drafts.append(PolicyDraft(index, policy.policy_id, policy.insurer, policy.currency,
                                  policy.limit, policy.covered_share,
                                  policy.period_start.astimezone(UTC),
                                  policy.period_end.astimezone(UTC)))
    return drafts
