"""Tier 2, the general estate: what tier 1 left unpaid, valued at the commencement prices and
paid by a plan in the style of Mt. Gox's civil rehabilitation plan.

Order of payment, each step only from what the steps before it left:
  1. basic payment: min(claim, basic_payment) per creditor; pro rata if the estate is short;
  2. early lump-sum, for creditors who elected it: early_share × (claim − basic), the rest
     waived; pro rata if what is left is short;
  3. final payment, for everyone else: the remaining claim × (estate left ÷ Σ remaining
     claims), at most the claim itself.
A step is reached only when the one before it was paid in full; what a pro-rata step leaves
in rounding stays in the estate.
An open dispute is reserved as if it were a final-payment claim at its claimed amount; an
allowed one is paid as a final-payment claim whatever the creditor elected, because its
reserve was sized as one (so a resolution only ever releases money to the others).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from ledger.administration.inputs import (
    AssetPool,
    Dispute,
    Election,
    Option,
    Payment,
    PlanRules,
    check_minor,
)
from ledger.administration.rounding import pro_rata, times, value_in_quote
from ledger.administration.tier1 import Tier1
from ledger.errors import InputError, shown

Source = Literal["shortfall", "allowed", "disputed"]


@dataclass(frozen=True)
class Valuation:
    """One amount of one asset owed to one creditor, valued in the quote currency."""

    creditor: str
    asset: str
    source: Source  # tier-1 shortfall, allowed dispute, or open (reserved) dispute
    amount_minor: int  # in the asset's minor unit
    price: Decimal
    value_minor: int  # in the quote currency's minor unit, rounded down


@dataclass(frozen=True)
class Tier2Line:
    """One creditor's tier-2 claim and payments, all in the quote currency's minor unit.

    `claim_minor` is the admitted claim (tier-1 shortfalls plus allowed disputes, of which
    `allowed_minor` came from disputes); `disputed_minor` is still open and not in the claim.
    """

    creditor: str
    option: Option
    payment: Payment
    elected: bool  # False: no election was made, so the final payment in fiat applies
    claim_minor: int
    allowed_minor: int
    disputed_minor: int
    basic_minor: int
    early_minor: int
    final_minor: int
    reserved_minor: int  # held for the open disputes, paid or released when they are resolved

    @property
    def payable_minor(self) -> int:
        return self.basic_minor + self.early_minor + self.final_minor

    @property
    def total_minor(self) -> int:
        """Everything the plan allocates to this creditor: payable now plus reserved."""
        return self.payable_minor + self.reserved_minor


@dataclass(frozen=True)
class Tier2:
    estate_minor: int
    basic_prorated: bool  # the estate did not cover every basic payment
    early_prorated: bool  # what the basic payments left did not cover every early lump-sum
    final_pool_minor: int  # the estate left for final payments and reserves
    final_claims_minor: int  # Σ remaining claims sharing it (final creditors and open disputes)
    lines: tuple[Tier2Line, ...]  # by creditor

    @property
    def allocated_minor(self) -> int:
        return sum(line.total_minor for line in self.lines)

    @property
    def left_minor(self) -> int:
        """Stays in the estate: rounding crumbs, or the surplus once every claim is paid."""
        return self.estate_minor - self.allocated_minor


def _price(rules: PlanRules, asset: str, creditor: str) -> Decimal:
    price = rules.price_of(asset)
    if price is None:
        raise InputError(f"no commencement price for {asset} (owed to {shown(creditor)} "
                         f"among others); give rules.prices[\"{asset}\"] in {rules.quote}")
    return price


def valuations(first: Tier1, pools: Mapping[str, AssetPool], rules: PlanRules,
               disputes: Iterable[Dispute]) -> tuple[Valuation, ...]:
    """Every tier-1 shortfall and every live dispute, valued at the commencement prices."""
    owed: list[tuple[str, str, Source, int]] = [
        (line.creditor, line.asset, "shortfall", line.shortfall_minor)
        for line in first.lines if line.shortfall_minor > 0]
    for dispute in disputes:
        if dispute.status == "open":
            owed.append((dispute.creditor, dispute.asset, "disputed", dispute.claimed_minor))
        elif dispute.status == "allowed":
            owed.append((dispute.creditor, dispute.asset, "allowed", dispute.allowed_minor))
    owed.sort()
    result = []
    for creditor, asset, source, amount in owed:
        if asset not in pools:
            raise InputError(f"dispute of {shown(creditor)} in {asset}: no pool for {asset}; "
                             "give its pool (0 if nothing is held) so its scale is known")
        price = _price(rules, asset, creditor)
        value = value_in_quote(amount, pools[asset].scale, price, rules.quote_scale)
        result.append(Valuation(creditor, asset, source, amount, price, value))
    return tuple(result)


@dataclass(frozen=True)
class _Parts:
    """One creditor's tier-2 amounts by kind, and the basic payment on each kind."""

    creditor: str
    option: Option
    payment: Payment
    elected: bool
    claims: tuple[int, int, int]  # shortfall, allowed, disputed
    basics: tuple[int, int, int] = (0, 0, 0)  # the basic payment attributed to each

    def remaining(self, kind: int) -> int:
        return self.claims[kind] - self.basics[kind]


SHORTFALL, ALLOWED, DISPUTED = 0, 1, 2


def _parts(values: Sequence[Valuation], elections: Mapping[str, Election]) -> list[_Parts]:
    sums: dict[str, list[int]] = {}
    for valuation in values:
        kind = {"shortfall": SHORTFALL, "allowed": ALLOWED, "disputed": DISPUTED}[valuation.source]
        sums.setdefault(valuation.creditor, [0, 0, 0])[kind] += valuation.value_minor
    parts = []
    for creditor in sorted(sums):
        # Mt. Gox's plan paid a creditor who made no election the final payment; fiat is the
        # payment that needs no wallet address from the creditor.
        chosen = elections.get(creditor)
        option, payment = (chosen.option, chosen.payment) if chosen else ("final", "fiat")
        shortfall, allowed, disputed = sums[creditor]
        if shortfall + allowed + disputed > 0:
            parts.append(_Parts(creditor, option, payment, chosen is not None,
                                (shortfall, allowed, disputed)))
    return parts


def _with_basics(parts: list[_Parts], basic_minor: int, estate_minor: int) -> tuple[list[_Parts], bool]:
    """The basic payment covers the admitted claim first, then allowed disputes, then open
    ones (reserved); if the estate cannot pay every basic payment, each is paid pro rata."""
    wanted = []
    for part in parts:
        shortfall, allowed, disputed = part.claims
        upto = [min(shortfall, basic_minor), min(shortfall + allowed, basic_minor),
                min(shortfall + allowed + disputed, basic_minor)]
        wanted.append((upto[0], upto[1] - upto[0], upto[2] - upto[1]))
    total = sum(sum(want) for want in wanted)
    return [_Parts(part.creditor, part.option, part.payment, part.elected, part.claims,
                   (pro_rata(want[0], total, estate_minor), pro_rata(want[1], total, estate_minor),
                    pro_rata(want[2], total, estate_minor)))
            for part, want in zip(parts, wanted, strict=True)], total > estate_minor


def _early(parts: list[_Parts], share: Decimal, available_minor: int) -> tuple[dict[str, int], bool]:
    wanted = {part.creditor: times(part.remaining(SHORTFALL), share)
              for part in parts if part.option == "early"}
    total = sum(wanted.values())
    return ({creditor: pro_rata(want, total, available_minor) for creditor, want in wanted.items()},
            total > available_minor)


def _final_claims(part: _Parts) -> tuple[int, int]:
    """(remaining claim paid by the final payment, remaining open dispute reserved as one)."""
    admitted = part.remaining(ALLOWED)
    if part.option == "final":
        admitted += part.remaining(SHORTFALL)
    return admitted, part.remaining(DISPUTED)


def index_elections(elections: Iterable[Election]) -> dict[str, Election]:
    indexed: dict[str, Election] = {}
    for election in elections:
        if election.creditor in indexed:
            raise InputError(f"election of {shown(election.creditor)} is given twice; "
                             "a creditor elects once")
        indexed[election.creditor] = election
    return indexed


def tier2(values: Sequence[Valuation], elections: Iterable[Election], rules: PlanRules,
          estate_minor: int) -> Tier2:
    """Pay the valued tier-2 claims from an estate of `estate_minor` (quote minor units)."""
    check_minor(estate_minor, "estate_minor")
    parts, basic_prorated = _with_basics(_parts(values, index_elections(elections)),
                                         rules.basic_payment_minor, estate_minor)
    # A later step is paid only once every payment of the step before it is paid in full: the
    # crumbs a pro-rata step leaves stay in the estate rather than reach a later step while an
    # earlier one is short (that would reverse the order of priority, by a few minor units).
    after_basic = 0 if basic_prorated else estate_minor - sum(sum(part.basics) for part in parts)
    early, early_prorated = _early(parts, rules.early_share, after_basic)
    final_pool = 0 if early_prorated else after_basic - sum(early.values())
    finals = {part.creditor: _final_claims(part) for part in parts}
    final_claims = sum(admitted + disputed for admitted, disputed in finals.values())
    lines = []
    for part in parts:
        admitted, disputed = finals[part.creditor]
        lines.append(Tier2Line(
            part.creditor, part.option, part.payment, part.elected,
            claim_minor=part.claims[SHORTFALL] + part.claims[ALLOWED],
            allowed_minor=part.claims[ALLOWED], disputed_minor=part.claims[DISPUTED],
            basic_minor=part.basics[SHORTFALL] + part.basics[ALLOWED],
            early_minor=early.get(part.creditor, 0),
            final_minor=pro_rata(admitted, final_claims, final_pool),
            reserved_minor=part.basics[DISPUTED] + pro_rata(disputed, final_claims, final_pool)))
    result = Tier2(estate_minor, basic_prorated, early_prorated, final_pool, final_claims,
                   tuple(lines))
    _check(result)
    return result


def _check(result: Tier2) -> None:
    # Sums of floors stay under their pools, so these hold by construction; a failure is a bug.
    assert 0 <= result.left_minor <= result.estate_minor
    for line in result.lines:
        assert line.payable_minor <= line.claim_minor
        assert line.reserved_minor <= line.disputed_minor
