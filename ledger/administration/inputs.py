"""The plan's inputs as checked values: a value that exists is a valid one.

Every check runs when the value is built, so the plan's arithmetic never meets a float, a
negative amount, a price that is not exact, or an asset code the ledger would refuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Literal, TypeVar

from ledger.errors import InputError, shown
from ledger.model import ASSET_CODE, CUSTOMER_ID, MAX_SCALE

Option = Literal["early", "final"]
Payment = Literal["crypto", "fiat"]
Status = Literal["open", "allowed", "rejected"]
OPTIONS: tuple[Option, ...] = ("early", "final")
PAYMENTS: tuple[Payment, ...] = ("crypto", "fiat")
STATUSES: tuple[Status, ...] = ("open", "allowed", "rejected")

# The ledger's own bound on an amount (NUMERIC(78,0) holds any uint256): a plan holds
# whatever the ledger can, and nothing it could not have produced.
MAX_MINOR = 10**78 - 1
# A price or a share with more digits than this is a typing mistake, and a huge exponent
# (Decimal("1e999999")) would turn the exact integer arithmetic into a denial of service.
MAX_DECIMAL_DIGITS = 40
MAX_DECIMAL_EXPONENT = 40
MAX_PRICES = 10_000

Choice = TypeVar("Choice", bound=str)


def check_minor(value: object, what: str, *, positive: bool = False) -> int:
    """An amount in minor units: a Python int, never a float, a bool or a Decimal."""
    if isinstance(value, bool) or not isinstance(value, int):
        given = f"the float {value}" if isinstance(value, float) else f"{type(value).__name__}"
        raise InputError(f"{what} must be an integer number of minor units, not {given}")
    if value < 0:
        raise InputError(f"{what} is {value}: an amount cannot be negative")
    if positive and value == 0:
        raise InputError(f"{what} is 0: it must be greater than zero")
    if value > MAX_MINOR:
        raise InputError(f"{what} has {len(str(value))} digits, more than the ledger holds (78)")
    return value


def check_scale(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SCALE:
        raise InputError(f"{what} must be an integer from 0 to {MAX_SCALE}, not {shown(value)}")
    return value


def check_asset(value: object, what: str) -> str:
    if not isinstance(value, str) or not ASSET_CODE.fullmatch(value):
        raise InputError(f"{what} {shown(value)} is not an asset code such as \"BTC\"")
    return value


def check_creditor(value: object) -> str:
    # Creditors are the ledger's customers, so their ids follow the ledger's rule for ids.
    if not isinstance(value, str) or not CUSTOMER_ID.fullmatch(value):
        raise InputError(f"creditor {shown(value)} is not a customer id such as \"c-001\"")
    return value


def check_decimal(value: object, what: str) -> Decimal:
    """An exact, finite Decimal of bounded size (built from a string, never from a float)."""
    if isinstance(value, float):
        raise InputError(f"{what} is the float {value}: give it as Decimal(\"{value}\"), "
                         "a binary float is not the decimal it prints")
    if not isinstance(value, Decimal):
        raise InputError(f"{what} must be a Decimal, not {type(value).__name__}")
    if not value.is_finite():
        raise InputError(f"{what} is {value}, not a finite number")
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite, checked above
    if len(value.as_tuple().digits) > MAX_DECIMAL_DIGITS or abs(exponent) > MAX_DECIMAL_EXPONENT:
        raise InputError(f"{what} {format(value, 'f')[:50]} has too many digits "
                         f"(at most {MAX_DECIMAL_DIGITS})")
    return value


def _one_of(value: object, allowed: tuple[Choice, ...], what: str) -> Choice:
    for choice in allowed:
        if value == choice:
            return choice
    names = " or ".join(f'"{choice}"' for choice in allowed)
    raise InputError(f"{what} is {shown(value)}, it must be {names}")


@dataclass(frozen=True)
class Claim:
    """What the ledger owes `creditor` in `asset` at the cut-off, in the asset's minor unit."""

    creditor: str
    asset: str
    amount_minor: int

    def __post_init__(self) -> None:
        check_creditor(self.creditor)
        check_asset(self.asset, f"claim of {shown(self.creditor)}: asset")
        check_minor(self.amount_minor, f"claim of {shown(self.creditor)} in {self.asset}")


@dataclass(frozen=True)
class AssetPool:
    """What tier 1 can pay in `asset`: segregated customer custody plus guarantee custody
    (for fiat, the trust), as verified by a reconciliation run."""

    asset: str
    scale: int
    pool_minor: int

    def __post_init__(self) -> None:
        check_asset(self.asset, "pool: asset")
        check_scale(self.scale, f"pool of {self.asset}: scale")
        check_minor(self.pool_minor, f"pool of {self.asset}")


@dataclass(frozen=True)
class PlanRules:
    """The numbers the plan is configured with (the defaults of the law are examples only).

    `prices` are the commencement prices, one quote-currency unit amount per asset unit; the
    quote currency's own price is 1 and need not be given.
    """

    quote: str
    quote_scale: int
    basic_payment_minor: int
    early_share: Decimal
    prices: Mapping[str, Decimal]

    def __post_init__(self) -> None:
        check_asset(self.quote, "rules: quote")
        check_scale(self.quote_scale, "rules: quote_scale")
        check_minor(self.basic_payment_minor, "rules: basic_payment_minor")
        share = check_decimal(self.early_share, "rules: early_share")
        if not Decimal(0) <= share <= Decimal(1):
            raise InputError(f"rules: early_share {share} must be from 0 to 1")
        if not isinstance(self.prices, Mapping):
            raise InputError("rules: prices must map asset codes to Decimal prices")
        if len(self.prices) > MAX_PRICES:
            raise InputError(f"rules: {len(self.prices)} prices, more than {MAX_PRICES}")
        for asset, price in self.prices.items():
            check_asset(asset, "rules: prices: asset")
            check_decimal(price, f"rules: price of {asset}")
            if price <= 0:
                raise InputError(f"rules: price of {asset} is {price}, it must be greater than 0")
            if asset == self.quote and price != 1:
                raise InputError(f"rules: price of the quote currency {asset} is {price}, not 1")
        # A read-only copy in code order: the caller's dict can change later, the plan cannot.
        # The quote's own price (1) is left out, so giving it or not makes the same plan.
        frozen = MappingProxyType({asset: self.prices[asset] for asset in sorted(self.prices)
                                   if asset != self.quote})
        object.__setattr__(self, "prices", frozen)

    def price_of(self, asset: str) -> Decimal | None:
        if asset == self.quote:
            return Decimal(1)
        return self.prices.get(asset)


@dataclass(frozen=True)
class Election:
    """A creditor's choice for tier 2: the early lump-sum or the final payment, paid in crypto
    or in fiat. A creditor who made none is paid the final payment in fiat."""

    creditor: str
    option: Option
    payment: Payment

    def __post_init__(self) -> None:
        check_creditor(self.creditor)
        _one_of(self.option, OPTIONS, f"election of {shown(self.creditor)}: option")
        _one_of(self.payment, PAYMENTS, f"election of {shown(self.creditor)}: payment")


@dataclass(frozen=True)
class Dispute:
    """A claim on the general estate that the administrator has not admitted: `claimed_minor`
    of `asset` beyond the ledger's claim. While open it is reserved; once allowed (in full or
    in part) `allowed_minor` of it is paid; once rejected nothing is."""

    creditor: str
    asset: str
    claimed_minor: int
    status: Status = "open"
    allowed_minor: int = 0

    def __post_init__(self) -> None:
        check_creditor(self.creditor)
        what = f"dispute of {shown(self.creditor)}"
        check_asset(self.asset, f"{what}: asset")
        what = f"{what} in {self.asset}"
        check_minor(self.claimed_minor, f"{what}: claimed_minor", positive=True)
        status = _one_of(self.status, STATUSES, f"{what}: status")
        allowed = check_minor(self.allowed_minor, f"{what}: allowed_minor")
        if status != "allowed" and allowed != 0:
            raise InputError(f"{what}: allowed_minor is {allowed} but the dispute is {status}; "
                             "only an allowed dispute has an allowed amount")
        if status == "allowed" and allowed == 0:
            raise InputError(f"{what}: allowed with allowed_minor 0; a dispute allowed for "
                             "nothing is rejected")
        if allowed > self.claimed_minor:
            raise InputError(f"{what}: allowed_minor {allowed} is more than the claimed "
                             f"{self.claimed_minor} (too much)")

    @property
    def key(self) -> tuple[str, str]:
        return (self.creditor, self.asset)
