"""The parameters each rule takes, and those of the rulebook itself (matching, how old
evidence may be), with the ranges that make sense; a rulebook file is checked against these
before anything runs. The presets give every value; a default here is the value a rulebook
stored with a run before the parameter existed was evaluated with."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ledger.errors import shown
from ledger.model import ASSET_CODE
from ledger.prices import PlainDecimal

Share = Annotated[PlainDecimal, Field(ge=Decimal(0), le=Decimal(1))]
Ratio = Annotated[PlainDecimal, Field(ge=Decimal(0), le=Decimal(10))]
AssetCode = Annotated[str, Field(pattern=ASSET_CODE.pattern)]
# Business days of evidence age or of a look-back window: a month at most, for a daily job.
BusinessDays = Annotated[int, Field(ge=0, le=31, strict=True)]


def _known_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{shown(name, 60)} is not a time zone of the IANA database, such "
                         "as \"Asia/Tokyo\"") from None
    return name


Zone = Annotated[str, Field(min_length=1, max_length=60), AfterValidator(_known_zone)]


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
    tolerance: dict[AssetCode, Annotated[PlainDecimal, Field(ge=Decimal(0))]]


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


class DrawParams(Params):
    # RESERVE-DRAW reports the draws effective after the as-of time this many business days
    # back, up to the as-of: the previous business day's run's as-of to this one's, for 1.
    window_business_days: Annotated[int, Field(ge=1, le=31, strict=True)] = 1


class MatchingParams(Params):
    # Statement lines and chain transfers against postings: how many days apart their dates
    # may be, and, per asset in its units, how far apart their amounts (0 for an asset not
    # named; finer than the asset's scale rounds down). Balances are never matched loosely.
    window_days: Annotated[int, Field(ge=0, le=31, strict=True)] = 3
    amount_tolerance: dict[AssetCode, Annotated[PlainDecimal, Field(ge=Decimal(0))]] = {}


class EvidenceParams(Params):
    # How much older than the run's as-of evidence may be and still be compared: statements
    # by their closing date and custodian snapshots by their date, in business days of the
    # rulebook's time zone; chain answers by their block time, in seconds.
    statement_max_age_business_days: BusinessDays
    snapshot_max_age_business_days: BusinessDays
    chain_max_age_s: Annotated[int, Field(ge=0, le=7 * 86_400, strict=True)]


class InsuranceCoverParams(Params):
    # Insurance in force ÷ customer crypto value, hot and cold (SFC VATP: 100% and 50%).
    hot_cover: Ratio
    cold_cover: Ratio
