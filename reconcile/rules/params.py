"""The parameters each rule takes, with the ranges that make sense; a rulebook file is checked
against these before anything runs. No defaults here: the presets give every value."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ledger.model import ASSET_CODE
from ledger.prices import PlainDecimal

Share = Annotated[PlainDecimal, Field(ge=Decimal(0), le=Decimal(1))]
Ratio = Annotated[PlainDecimal, Field(ge=Decimal(0), le=Decimal(10))]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(Params):
    pass


class TrustParams(Params):
    # Customer fiat in trust ÷ customer fiat liabilities (PSA 63-11(1): 100%).
    min_ratio: Ratio


class ColdParams(Params):
    # Customer crypto held cold ÷ all customer crypto, by value (Ordinance Art. 27(2): 95%).
    min_cold_share: Share


class GuaranteeParams(Params):
    # Guarantee crypto (cold) ÷ customer crypto in hot wallets, per asset (PSA 63-11-2: 100%).
    min_ratio: Ratio


class ExcessParams(Params):
    # Company money that may stand in the customer pool before it must be swept, per asset.
    tolerance: dict[Annotated[str, Field(pattern=ASSET_CODE.pattern)],
                    Annotated[PlainDecimal, Field(ge=Decimal(0))]]


class ReserveParams(Params):
    formula: Literal["jp-reserve-v1"] = "jp-reserve-v1"
    currency: Annotated[str, Field(pattern=ASSET_CODE.pattern)]
    lookback_days: Annotated[int, Field(ge=1, le=3660, strict=True)]
    rate: Share
    incident_years: Annotated[int, Field(ge=1, le=10, strict=True)]
    incident_weight: Annotated[PlainDecimal, Field(ge=Decimal(0), le=Decimal(1000))]
    risk_multiplier: Annotated[PlainDecimal, Field(gt=Decimal(0), le=Decimal(100))]
    floor: Annotated[PlainDecimal, Field(ge=Decimal(0))]
    insurance_cap: Share


class InsuranceCoverParams(Params):
    # Insurance in force ÷ customer crypto value, hot and cold (SFC VATP: 100% and 50%).
    hot_cover: Ratio
    cold_cover: Ratio
