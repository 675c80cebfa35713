"""One reconciliation as a pure function: ledger facts and observations in, comparisons and
classified breaks out. Storage, files and chain nodes stay outside."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from ledger.errors import InputError
from ledger.model import Account, Location
from ledger.money import to_decimal
from reconcile.evidence import Observation
from reconcile.matching import DEFAULT_WINDOW_DAYS, Item, MatchResult, match

BANK_KINDS = frozenset({"camt053", "mt940", "bai2"})
CHAIN_KINDS = frozenset({"bitcoin", "ethereum"})

# Which version of the evidence readers (the adapters of reconcile/adapters and the stored
# chain answers) a run's evidence was read with; stored in every run's result. Bump it when an
# adapter reads a file differently (a stricter check, a fact it now records, a fixed amount),
# so that a rerun of an older run can say that its differences may come from the readers.
# Version 2: the readers as rewritten for issue 9 (camt, MT940 and BAI2 read more strictly);
# runs stored before have no version.
EVIDENCE_READER_VERSION = "2"

# Which version of the comparison itself a run's result was made by; stored in every run's
# result under RESULT_KEY ("result_version"). Version 2 (issue 11): transaction matching needs
# movements on both sides, so evidence that is a balance alone (an observation file, an
# Ethereum balance) is matched against nothing and the run says so with the count and totals
# of the account's postings instead of listing each as unmatched; a statement without a line
# is matched over its own day (less the window), not over the account's whole history. Runs
# stored before have no version, and a rerun evaluates them as they were made: every posting
# of the account up to the as-of against whatever movements the evidence had.
RESULT_VERSION = "2"


@dataclass(frozen=True)
class Freshness:
    """How old evidence may be, relative to the run's as-of, and still be compared.

    Calendar dates are the rulebook's `zone`: the as-of instant is converted to that zone and
    its date is the run's business date; a statement's closing date (a date in the bank's own
    zone, which is taken to be the same) and a snapshot's time (converted to the zone) give the
    evidence's date. A business day is a weekday: Saturdays and Sundays are skipped, public
    holidays are not known (a statement closed before a holiday may show as one day older than
    it is: raise the tolerance over holidays). A chain answer is compared by its block time
    against the as-of instant, in seconds: no calendar there.
    """

    zone: str
    statement_max_age_business_days: int
    snapshot_max_age_business_days: int
    chain_max_age_s: int


@dataclass(frozen=True)
class ComparePolicy:
    """The rulebook's parameters of a comparison (plain values: the engine knows no rulebook)."""

    window_days: int = DEFAULT_WINDOW_DAYS
    # Per asset, in asset units: how far apart two amounts may be and still match (statement
    # lines and chain transfers against postings only; a balance difference is always a break).
    amount_tolerance: Mapping[str, Decimal] = field(default_factory=dict)
    freshness: Freshness | None = None  # None: evidence of any age is compared (stored runs
    # made before stale evidence was a break)
    # RESULT_VERSION, or None for a stored run made before versions (matched as it was then).
    result_version: str | None = RESULT_VERSION


def business_days_after(earlier: date, later: date) -> int:
    """How many weekdays d have earlier < d ≤ later (0 when later is not after earlier)."""
    if later <= earlier:
        return 0
    weeks, rest = divmod((later - earlier).days, 7)
    count = weeks * 5
    for offset in range(1, rest + 1):
        if (earlier + timedelta(days=weeks * 7 + offset)).weekday() < 5:
            count += 1
    return count


def business_days_before(day: date, count: int) -> date:
    """The date `count` weekdays before `day` (Monday's one business day back is Friday)."""
    assert count >= 0
    while count:
        day -= timedelta(days=1)
        if day.weekday() < 5:
            count -= 1
    return day


def business_window_start(as_of: datetime, business_days: int, zone: str) -> datetime:
    """The as-of's time of day, `business_days` business days earlier in `zone`: the start
    (excluded) of a window that looks back over the previous business day(s)."""
    local = as_of.astimezone(ZoneInfo(zone))
    day = business_days_before(local.date(), business_days)
    start = datetime.combine(day, time(local.hour, local.minute, local.second,
                                       local.microsecond), tzinfo=ZoneInfo(zone))
    return start.astimezone(UTC)


@dataclass(frozen=True)
class PostingTotals:
    """An account's postings up to the as-of, counted and summed rather than listed."""

    count: int
    in_minor: int  # Σ of those that put money in (debits to custody), ≥ 0
    out_minor: int  # Σ of those that took it out (credits), ≤ 0


@dataclass(frozen=True)
class CustodyFacts:
    account: Account
    scale: int
    ledger_minor: int
    # The postings matching needs (see `wanted_postings`): listed for evidence with movements,
    # counted and summed for evidence that is a balance alone.
    items: tuple[Item, ...] = ()
    totals: PostingTotals | None = None


@dataclass(frozen=True)
class LedgerFacts:
    as_of: datetime
    custody: tuple[CustodyFacts, ...]
    liabilities_minor: Mapping[str, int]
    scales: Mapping[str, int]
    kinds: Mapping[str, str] = field(default_factory=dict)  # asset → fiat | crypto
    appropriation_minor: Mapping[str, int] = field(default_factory=dict)  # reserve accounts


@dataclass(frozen=True)
class Stale:
    """Evidence for an account that was too old to compare: why, and what it said."""

    reason: str
    external_minor: int


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
    # Evidence given for the account but too old to compare: then external_minor is None and
    # the rules see the account as one without current evidence.
    stale: Stale | None = None
    # Evidence that is a balance alone, for an account with postings: matching was not
    # possible, and these are the postings it could not pair (matching is then None).
    not_matched: PostingTotals | None = None

    @property
    def difference_minor(self) -> int | None:
        return None if self.external_minor is None else self.external_minor - self.ledger_minor


@dataclass(frozen=True)
class Break:
    account: str
    asset: str
    kind: str  # shortfall | excess | missing_evidence | stale_evidence | unknown_account | dust
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


@dataclass(frozen=True)
class Wanted:
    """What the comparison of one custody account needs of its postings up to the as-of:
    each of those effective on or after `since` (None: since the first), or, when `listed` is
    False, only the count and totals of them all."""

    since: date | None = None
    listed: bool = True


def wanted_postings(facts: LedgerFacts, observations: Sequence[Observation],
                    policy: ComparePolicy | None = None) -> dict[str, Wanted]:
    """Per custody account compared against current evidence, what `compare` needs of its
    postings: the storage reads that much and no more, so a run reads what its evidence can
    speak for, not every posting of the ledger.

    - a statement (camt.053, MT940, BAI2) covers its own period: its postings from its first
      line, or from its closing date when it has no line, less the matching window;
    - other evidence with movements (a UTXO set) covers all history: every posting;
    - evidence that is a balance alone (an observation file, an Ethereum balance): nothing
      can be paired, only the count and totals of the postings are kept.
    A stored run made before RESULT_VERSION matched every posting whatever the evidence."""
    policy = policy or ComparePolicy()
    assigned, _ = assign(observations, facts.custody)
    wanted: dict[str, Wanted] = {}
    for custody in facts.custody:
        observation = assigned.get(custody.account.code)
        if observation is None or (policy.freshness is not None and staleness(
                observation, facts.as_of, policy.freshness) is not None):
            continue  # not compared, so not matched either
        if policy.result_version is None:
            wanted[custody.account.code] = Wanted()
        elif observation.kind in BANK_KINDS:
            wanted[custody.account.code] = Wanted(
                _statement_start(observation) - timedelta(days=policy.window_days))
        elif observation.movements:
            wanted[custody.account.code] = Wanted()
        else:
            wanted[custody.account.code] = Wanted(listed=False)
    return wanted


def _statement_start(observation: Observation) -> date:
    """The first day a statement speaks for: its first line's, else its closing date."""
    if observation.movements:
        return min(m.booked_on for m in observation.movements)
    return evidence_date(observation)


def compare(facts: LedgerFacts, observations: Sequence[Observation],
            policy: ComparePolicy | None = None) -> tuple[list[Comparison], list[Break]]:
    policy = policy or ComparePolicy()
    assigned, unknown = assign(observations, facts.custody)
    comparisons: list[Comparison] = []
    breaks: list[Break] = []
    for custody in sorted(facts.custody, key=lambda c: c.account.code):
        account = custody.account
        observation = assigned.get(account.code)
        comparison = _compare_one(custody, observation, facts.as_of, policy)
        comparisons.append(comparison)
        breaks.extend(_breaks_of(comparison, custody))
    for observation in unknown:
        breaks.append(Break(_key(observation), observation.currency or "?", "unknown_account",
                            observation.amount,
                            f"{observation.source}: no custody account matches"))
    return comparisons, breaks


def _compare_one(custody: CustodyFacts, observation: Observation | None, as_of: datetime,
                 policy: ComparePolicy) -> Comparison:
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
    seen = replace(base, source=observation.source, evidence_as_of=_when(observation),
                   facts=dict(observation.facts))
    stale = staleness(observation, as_of, policy.freshness) if policy.freshness else None
    if stale is not None:
        # Kept for the break's difference, never for the rules: a stale balance compared as
        # if current would pass or fail segregation on another day's money.
        return replace(seen, stale=Stale(stale, external_minor))
    seen = replace(seen, external_minor=external_minor, dust=dust)
    if policy.result_version is None:  # a stored run made before versions: as it was made
        if not (observation.movements or custody.items):
            return seen
        ledger = _window(custody.items, observation, policy.window_days, legacy=True)
    elif observation.movements or observation.kind in BANK_KINDS:
        ledger = _window(custody.items, observation, policy.window_days)
        if not (observation.movements or ledger):
            return seen
    else:
        # A balance alone: nothing to pair the postings with. Say so, with what was not paired.
        totals = custody.totals
        return replace(seen, not_matched=totals) if totals is not None and totals.count else seen
    tolerance_minor, _ = to_minor(policy.amount_tolerance.get(account.asset, Decimal(0)),
                                  custody.scale)
    return replace(seen, matching=match(_external_items(observation, custody.scale), ledger,
                                        policy.window_days, tolerance_minor))


def staleness(observation: Observation, as_of: datetime, freshness: Freshness) -> str | None:
    """Why `observation` is too old for a run as of `as_of`, or None (see Freshness)."""
    if isinstance(observation.as_of, datetime) and observation.kind in CHAIN_KINDS:
        block_time = _aware(observation.as_of)
        age = as_of - block_time
        if age <= timedelta(seconds=freshness.chain_max_age_s):
            return None
        return (f"block time {block_time.isoformat()} is {int(age.total_seconds())} s before "
                f"the as-of {as_of.isoformat()}; at most {freshness.chain_max_age_s} s allowed")
    zone = ZoneInfo(freshness.zone)
    run_day = as_of.astimezone(zone).date()
    if isinstance(observation.as_of, datetime):
        evidence_day = _aware(observation.as_of).astimezone(zone).date()
        limit = freshness.snapshot_max_age_business_days
        what = f"snapshot at {observation.as_of.isoformat()} (on {evidence_day.isoformat()})"
    else:
        evidence_day = observation.as_of
        limit = freshness.statement_max_age_business_days
        what = f"statement closing on {evidence_day.isoformat()}"
    age_days = business_days_after(evidence_day, run_day)
    if age_days <= limit:
        return None
    return (f"{what} is {age_days} business days before the as-of date {run_day.isoformat()} "
            f"(as-of {as_of.isoformat()} in {freshness.zone}); at most {limit} allowed")


def _aware(moment: datetime) -> datetime:
    """Adapters give aware times; a naive one is UTC, the way chain nodes count."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _external_items(observation: Observation, scale: int) -> list[Item]:
    return [Item(id=f"x{n}", amount_minor=to_minor(m.amount, scale)[0], on=m.booked_on,
                 reference=m.reference, description=m.description)
            for n, m in enumerate(observation.movements)]


def _window(items: Sequence[Item], observation: Observation, window_days: int,
            legacy: bool = False) -> list[Item]:
    """Ledger items the evidence can speak for: a UTXO set covers all history; a statement
    covers its own period (from its first line, or its closing date when it has none, less
    the window). Before RESULT_VERSION a statement without a line covered all history."""
    if observation.kind not in BANK_KINDS or (legacy and not observation.movements):
        return list(items)
    start = _statement_start(observation)
    return [item for item in items if (item.on - start).days >= -window_days]


def _breaks_of(comparison: Comparison, custody: CustodyFacts) -> list[Break]:
    account, asset, scale = comparison.account, comparison.asset, comparison.scale
    difference = comparison.difference_minor
    if comparison.stale is not None:
        assert comparison.external_minor is None
        stale_difference = comparison.stale.external_minor - comparison.ledger_minor
        return [Break(account, asset, "stale_evidence", to_decimal(stale_difference, scale),
                      f"{comparison.source}: {comparison.stale.reason}; it says "
                      f"{to_decimal(comparison.stale.external_minor, scale)}, the ledger "
                      f"{to_decimal(comparison.ledger_minor, scale)} (external − ledger "
                      f"{to_decimal(stale_difference, scale)}), not compared as current")]
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
