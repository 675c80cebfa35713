"""One reconciliation as a pure function: ledger facts and observations in, comparisons and
classified breaks out. Storage, files and chain nodes stay outside."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal

from ledger.errors import InputError
from ledger.model import Account, Location
from ledger.money import to_decimal
from reconcile.evidence import Observation
from reconcile.matching import DEFAULT_WINDOW_DAYS, Item, MatchResult, match

BANK_KINDS = frozenset({"camt053", "mt940", "bai2"})
CHAIN_KINDS = frozenset({"bitcoin", "ethereum"})


@dataclass(frozen=True)
class CustodyFacts:
    account: Account
    scale: int
    ledger_minor: int
    items: tuple[Item, ...] = ()


@dataclass(frozen=True)
class LedgerFacts:
    as_of: datetime
    custody: tuple[CustodyFacts, ...]
    liabilities_minor: Mapping[str, int]
    scales: Mapping[str, int]
    kinds: Mapping[str, str] = field(default_factory=dict)  # asset → fiat | crypto
    appropriation_minor: Mapping[str, int] = field(default_factory=dict)  # reserve accounts


@dataclass(frozen=True)
class Comparison:
    account: str
    asset: str
    scale: int
    pool: str
    location: str
    purpose: str
    ledger_minor: int
    external_minor: int | None
    dust: Decimal
    source: str | None
    evidence_as_of: str | None
    facts: Mapping[str, object] = field(default_factory=dict)
    matching: MatchResult | None = None

    @property
    def difference_minor(self) -> int | None:
        return None if self.external_minor is None else self.external_minor - self.ledger_minor


@dataclass(frozen=True)
class Break:
    account: str
    asset: str
    kind: str  # shortfall | excess | missing_evidence | unknown_account | dust
    difference: Decimal
    detail: str = ""


def to_minor(amount: Decimal, scale: int) -> tuple[int, Decimal]:
    """Evidence amount in asset units → (minor units, remainder below the scale).

    The remainder is dust: reported, never rounded away. Integer arithmetic on the digits,
    since Decimal's context arithmetic rounds at 28 significant digits.
    """
    sign, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int), "evidence amounts are finite"
    magnitude = int("".join(map(str, digits)) or "0")
    shift = exponent + scale
    if shift >= 0:
        whole, remainder = magnitude * 10**shift, Decimal(0)
    else:
        whole, rest = divmod(magnitude, 10**-shift)
        remainder = _exact(rest, exponent)
    return (-whole, -remainder) if sign else (whole, remainder)


def _exact(integer: int, exponent: int) -> Decimal:
    """integer × 10**exponent, built from digits (exact at any length)."""
    return Decimal((0, tuple(int(c) for c in str(integer)), exponent))


def _chain_minor(observation: Observation, scale: int) -> tuple[int, Decimal]:
    assert observation.raw_minor is not None and observation.raw_scale is not None
    shift = observation.raw_scale - scale
    if shift <= 0:
        return observation.raw_minor * 10 ** -shift, Decimal(0)
    whole, rest = divmod(observation.raw_minor, 10 ** shift)
    return whole, _exact(rest, -observation.raw_scale)


def _key(observation: Observation) -> str:
    account = observation.account
    for name in ("account", "iban", "bank_account", "account_identification"):
        if account.get(name):
            return f"{name}:{account[name]}" if name != "account" else str(account[name])
    return f"{observation.kind}:unidentified"


def assign(observations: Sequence[Observation], custody: Sequence[CustodyFacts]
           ) -> tuple[dict[str, Observation], list[Observation]]:
    """Each observation to its custody account (by code, IBAN or account number); the latest
    per account wins; two different amounts for the same account and time are refused."""
    by_code = {facts.account.code: facts for facts in custody}
    by_bank: dict[str, str] = {}
    for facts in custody:
        external = facts.account.external
        for name in ("iban", "bank_account"):
            if external.get(name):
                by_bank[f"{name}:{_compact(str(external[name]))}"] = facts.account.code
    assigned: dict[str, Observation] = {}
    unknown: list[Observation] = []
    for observation in observations:
        code = _code_for(observation, by_code, by_bank)
        if code is None:
            unknown.append(observation)
            continue
        _check_currency(observation, by_code[code])
        earlier = assigned.get(code)
        if earlier is not None and _when(earlier) == _when(observation) \
                and earlier.amount != observation.amount:
            raise InputError(
                f"two different balances for {code} at {_when(observation)}: {earlier.amount} "
                f"in {earlier.source}, {observation.amount} in {observation.source}",
                source=observation.source)
        if earlier is None or _when(observation) >= _when(earlier):
            assigned[code] = observation
    return assigned, unknown


def _compact(value: str) -> str:
    return value.replace(" ", "").upper()


def _when(observation: Observation) -> str:
    return observation.as_of.isoformat()


def _code_for(observation: Observation, by_code: Mapping[str, CustodyFacts],
              by_bank: Mapping[str, str]) -> str | None:
    account = observation.account
    if "account" in account:
        code = str(account["account"])
        return code if code in by_code else None
    for name in ("iban", "bank_account"):
        if account.get(name):
            found = by_bank.get(f"{name}:{_compact(str(account[name]))}")
            if found:
                return found
    return None


def _check_currency(observation: Observation, facts: CustodyFacts) -> None:
    if observation.kind in BANK_KINDS and observation.currency != facts.account.asset:
        raise InputError(
            f"currency mismatch: the statement for {_key(observation)} is in "
            f"{observation.currency or 'no currency'}, {facts.account.code} holds "
            f"{facts.account.asset}", source=observation.source)


def compare(facts: LedgerFacts, observations: Sequence[Observation]
            ) -> tuple[list[Comparison], list[Break]]:
    assigned, unknown = assign(observations, facts.custody)
    comparisons: list[Comparison] = []
    breaks: list[Break] = []
    for custody in sorted(facts.custody, key=lambda c: c.account.code):
        account = custody.account
        observation = assigned.get(account.code)
        comparison = _compare_one(custody, observation)
        comparisons.append(comparison)
        breaks.extend(_breaks_of(comparison, custody))
    for observation in unknown:
        breaks.append(Break(_key(observation), observation.currency or "?", "unknown_account",
                            observation.amount,
                            f"{observation.source}: no custody account matches"))
    return comparisons, breaks


def _compare_one(custody: CustodyFacts, observation: Observation | None) -> Comparison:
    account = custody.account
    base = Comparison(
        account=account.code, asset=account.asset, scale=custody.scale, pool=account.pool.value,
        location=account.location.value if account.location else "",
        purpose=account.purpose.value if account.purpose else "",
        ledger_minor=custody.ledger_minor, external_minor=None, dust=Decimal(0), source=None,
        evidence_as_of=None)
    if observation is None:
        return base
    if observation.raw_minor is not None:
        external_minor, dust = _chain_minor(observation, custody.scale)
    else:
        external_minor, dust = to_minor(observation.amount, custody.scale)
    matching = None
    if observation.movements or custody.items:
        matching = match(_external_items(observation, custody.scale),
                         _window(custody.items, observation))
    return replace(base, external_minor=external_minor, dust=dust, source=observation.source,
                   evidence_as_of=_when(observation), facts=dict(observation.facts),
                   matching=matching)


def _external_items(observation: Observation, scale: int) -> list[Item]:
    return [Item(id=f"x{n}", amount_minor=to_minor(m.amount, scale)[0], on=m.booked_on,
                 reference=m.reference, description=m.description)
            for n, m in enumerate(observation.movements)]


def _window(items: Sequence[Item], observation: Observation) -> list[Item]:
    """Ledger items the evidence can speak for: a UTXO set or custodian snapshot covers all
    history; a statement covers its own period (from its first line, less the window)."""
    if observation.kind not in BANK_KINDS or not observation.movements:
        return list(items)
    start = min(m.booked_on for m in observation.movements)
    return [item for item in items if (item.on - start).days >= -DEFAULT_WINDOW_DAYS]


def _breaks_of(comparison: Comparison, custody: CustodyFacts) -> list[Break]:
    account, asset, scale = comparison.account, comparison.asset, comparison.scale
    difference = comparison.difference_minor
    if difference is None:
        if custody.account.location is Location.IN_TRANSIT or (
                comparison.ledger_minor == 0 and not custody.account.external):
            return []
        return [Break(account, asset, "missing_evidence",
                      to_decimal(-comparison.ledger_minor, scale),
                      "no evidence for this custody account")]
    found = []
    if difference:
        kind = "shortfall" if difference < 0 else "excess"
        found.append(Break(account, asset, kind, to_decimal(difference, scale),
                           f"{comparison.source}: external − ledger"))
    if comparison.dust:
        found.append(Break(account, asset, "dust", comparison.dust,
                           f"{comparison.source}: below the ledger's scale of {scale} decimals"))
    return found


def evidence_date(observation: Observation) -> date:
    return observation.as_of.date() if isinstance(observation.as_of, datetime) else observation.as_of
