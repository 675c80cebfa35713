"""The documentation is the repository's own, and its examples are true.

docs/formats.md marks each example a reader must accept with `<!-- example: KIND -->` and each
one it must refuse with `<!-- refused: KIND | FRAGMENT -->`. Every marked block goes through
the real reader of its kind here, so a doc that drifts from the code fails a test instead of
misleading a user. The administrator's files are recorded in a new SQLite ledger holding the
documented chart and day, frozen, through the functions the `segledger admin` commands call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from ledger import service
from ledger.administration import payouts
from ledger.administration import service as admin
from ledger.administration import statement as admin_statement
from ledger.administration.claims_report import ClaimsReport
from ledger.administration.payouts import PlanResult
from ledger.administration.register import LoadResult
from ledger.administration.statement import ConfirmResult
from ledger.batch import PostedEntry, PreparedBatch, prepare_batch
from ledger.book import Book, BreachEvent
from ledger.chart import Chart, check_chart, parse_chart
from ledger.entries import read_drafts
from ledger.errors import InputError
from ledger.incidents import IncidentLink, LinkKind
from ledger.model import Line, Location, Pool, Purpose, Role
from ledger.prices import PriceTable, parse_prices
from ledger.reserves import PolicyDraft, parse_register
from reconcile.adapters.detect import parse_evidence, recognise
from reconcile.chains import ChainConfig, parse_chain_config
from reconcile.evidence import EvidenceFile, Observation
from reconcile.rules.rulebook import Rulebook, load_rulebook
from tests.helpers import cli

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
FORMATS = DOCS / "formats.md"
JST = timezone(timedelta(hours=9))

MARKED_BLOCK = re.compile(
    r"<!-- (?P<marker>example|refused): (?P<kind>[a-z0-9-]+)(?: \| (?P<fragment>.+?))? -->\n"
    r"```[a-z]*\n(?P<text>.*?)```",
    re.DOTALL,
)


@dataclass(frozen=True)
class Block:
    marker: str
    kind: str
    fragment: str | None
    text: str
    # The page's prose between the previous marked block and this one: where a reader sees
    # what a refused block is refused with.
    prose: str


def _blocks() -> list[Block]:
    page = FORMATS.read_text("utf-8")
    blocks, end = [], 0
    for found in MARKED_BLOCK.finditer(page):
        blocks.append(Block(found["marker"], found["kind"], found["fragment"], found["text"],
                            page[end:found.start()]))
        end = found.end()
    return blocks


BLOCKS = _blocks()
EXAMPLES = {block.kind: block for block in BLOCKS if block.marker == "example"}
REFUSED = [block for block in BLOCKS if block.marker == "refused"]


def _example(kind: str) -> str:
    return EXAMPLES[kind].text


# --- the real readers, one per kind --------------------------------------------------------


def _chart(text: str, source: str = "chart.json") -> Chart:
    """What `chart load` checks before it touches the database."""
    chart = parse_chart(text, source)
    check_chart(chart, source)
    return chart


def _book() -> Book:
    chart = _chart(_example("chart"))
    return Book(assets={asset.code: asset for asset in chart.assets},
                accounts={account.code: account for account in chart.accounts})


def _prepare(text: str, book: Book, posted: dict[str, PostedEntry], source: str) -> PreparedBatch:
    """What `post` checks before it writes: every field, then every invariant in file order."""
    return prepare_batch(list(read_drafts(text.splitlines(), source)), book, posted, source)


def _as_posted(batch: PreparedBatch) -> dict[str, PostedEntry]:
    reversed_keys = {p.entry.reverses for p in batch.entries if p.entry.reverses}
    return {p.entry.key: PostedEntry(p.entry.key, p.content_hash, p.entry.lines,
                                     p.entry.key in reversed_keys) for p in batch.entries}


def _entries_after_the_day(text: str, _: Path) -> PreparedBatch:
    """Entries posted on top of the documented chart and the documented day."""
    book = _book()
    day = _prepare(_example("entries"), book, {}, "day.jsonl")
    return _prepare(text, book, _as_posted(day), "more.jsonl")


def _evidence(name: str) -> Callable[[str, Path], list[Observation]]:
    return lambda text, _: parse_evidence(EvidenceFile(name, text.encode()))


def _rulebook(text: str, tmp_path: Path) -> Rulebook:
    path = tmp_path / ("rulebook.json" if text.lstrip().startswith("{") else "rulebook.yaml")
    path.write_text(text, "utf-8")
    return load_rulebook(str(path))


# --- the administrator's files, recorded in the documented day frozen at its end -----------

CUTOFF = datetime(2025, 11, 26, tzinfo=JST)
ADMINISTRATOR, CASE_NO = "A. Administrator", "2026-1"
DISTRIBUTIONS_ACCOUNT = {"assets": [], "accounts": [{
    "code": "expense:administration:distributions:JPY", "asset": "JPY", "pool": "company",
    "role": "expense"}]}


def _file(directory: Path, name: str, text: str) -> str:
    path = directory / name
    path.write_text(text, "utf-8")
    return str(path)


@contextmanager
def _frozen(directory: Path) -> Iterator[Engine]:
    """The documented chart and day in a new SQLite ledger, frozen as formats.md says."""
    directory.mkdir(exist_ok=True)
    engine = service.init(f"sqlite:///{directory / 'frozen.db'}")
    try:
        service.load_chart_file(engine, _file(directory, "chart.json", _example("chart")))
        service.post_file(engine, _file(directory, "day.jsonl", _example("entries")))
        admin.freeze(engine, CUTOFF, ADMINISTRATOR, CASE_NO)
        yield engine
    finally:
        engine.dispose()


def _commencement_prices(text: str, directory: Path) -> ClaimsReport:
    with _frozen(directory) as engine:
        return admin.claims(engine, _file(directory, "prices.json", text))


def _elections(text: str, directory: Path, *, after_json: bool = False) -> LoadResult:
    with _frozen(directory) as engine:
        if after_json:
            admin.load_elections(engine, _file(directory, "elections.json",
                                                _example("elections")))
        return admin.load_elections(engine, _file(directory, "more-elections", text))


def _disputes(text: str, directory: Path, *, after_json: bool = False) -> LoadResult:
    with _frozen(directory) as engine:
        if after_json:
            admin.load_disputes(engine, _file(directory, "disputes.json", _example("disputes")))
        return admin.load_disputes(engine, _file(directory, "more-disputes", text))


def _plan_rules(text: str, directory: Path) -> PlanResult:
    """The plan with the documented rules, prices, elections and disputes (both files each)."""
    with _frozen(directory) as engine:
        service.load_chart_file(engine, _file(directory, "expense.json",
                                              json.dumps(DISTRIBUTIONS_ACCOUNT)))
        admin.claims(engine, _file(directory, "prices.json", _example("commencement-prices")))
        for kind, name in (("elections", "e.json"), ("elections-csv", "e.csv")):
            admin.load_elections(engine, _file(directory, name, _example(kind)))
        for kind, name in (("disputes", "d.json"), ("disputes-csv", "d.csv")):
            admin.load_disputes(engine, _file(directory, name, _example(kind)))
        return payouts.make_plan(engine, _file(directory, "rules.json", text), None)


def _confirmations(text: str, directory: Path, *, after_json: bool = False) -> ConfirmResult:
    """Confirmations of the payouts of the day's tier-1 plan, distributed."""
    with _frozen(directory) as engine:
        plan = payouts.make_plan(engine, None, None)
        payouts.distribute(engine, _file(directory, "plan.json",
                                         plan.document.decode("ascii") + "\n"))
        if after_json:
            admin_statement.confirm(engine, _file(directory, "sent.json",
                                                  _example("confirmations")))
        return admin_statement.confirm(engine, _file(directory, "more-sent", text))


READERS: dict[str, Callable[[str, Path], Any]] = {
    "chart": lambda text, _: _chart(text),
    "chart-yaml": lambda text, _: _chart(text, "chart.yaml"),
    "entries": _entries_after_the_day,
    "observations-json": _evidence("observations.json"),
    "observations-csv": _evidence("observations.csv"),
    "camt053": _evidence("statement.xml"),
    "prices": lambda text, _: parse_prices(text.encode(), "prices.json"),
    "rulebook": _rulebook,
    "insurance": lambda text, _: parse_register(text.encode(), "insurance.json"),
    "chain-config": lambda text, _: parse_chain_config(text.encode(), "chains.json"),
    "commencement-prices": _commencement_prices,
    "elections": _elections,
    "elections-csv": lambda text, directory: _elections(text, directory, after_json=True),
    "disputes": _disputes,
    "disputes-csv": lambda text, directory: _disputes(text, directory, after_json=True),
    "plan-rules": _plan_rules,
    "confirmations": _confirmations,
    "confirmations-csv": lambda text, directory: _confirmations(text, directory,
                                                                after_json=True),
}


def test_every_marked_block_has_a_reader_and_every_format_an_example() -> None:
    assert {block.kind for block in BLOCKS} <= READERS.keys()
    examples = [block.kind for block in BLOCKS if block.marker == "example"]
    assert sorted(examples) == sorted(READERS), "one example per kind, no more, no less"
    assert {block.kind for block in REFUSED} >= READERS.keys() - {"chart-yaml"}
    assert all(block.fragment for block in REFUSED), "a refused block states its message"


# --- the examples read as documented -------------------------------------------------------


def test_chart_example_declares_assets_and_accounts_with_defaults_filled_in() -> None:
    chart = _chart(_example("chart"))
    assert [(a.code, a.kind.value, a.scale, a.chain) for a in chart.assets] == [
        ("JPY", "fiat", 0, None), ("BTC", "crypto", 8, "bitcoin"), ("USDC", "crypto", 6, "ethereum")]
    assert chart.assets[2].contract == "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
    accounts = {account.code: account for account in chart.accounts}
    assert len(accounts) == len(chart.accounts) == 15
    trust = accounts["custody:customer:trust:JPY"]
    assert (trust.pool, trust.role, trust.location, trust.purpose) == (
        Pool.CUSTOMER, Role.CUSTODY, Location.BANK_TRUST, Purpose.SEGREGATED)
    assert dict(trust.external) == {"bank_account": "1234567"}
    assert accounts["custody:company:operating:JPY"].purpose is Purpose.OPERATING
    assert accounts["custody:company:reserve:JPY"].purpose is Purpose.RESERVE
    assert accounts["custody:company:guarantee:BTC"].purpose is Purpose.GUARANTEE
    assert accounts["custody:customer:hot:BTC"].location is Location.HOT_WALLET
    assert accounts["custody:customer:cold:BTC"].external["descriptors"][0].endswith("/0/*)")
    liability = accounts["customer:c-001:BTC"]
    assert (liability.role, liability.customer) == (Role.CUSTOMER_LIABILITY, "c-001")
    assert accounts["suspense:unidentified:JPY"].role is Role.SUSPENSE
    assert accounts["reserve:liability:JPY"].pool is Pool.COMPANY


def test_chart_yaml_example_reads_like_its_json() -> None:
    chart = _chart(_example("chart-yaml"), "chart.yaml")
    json_chart = _chart(_example("chart"))
    assert chart.assets == json_chart.assets[:1]
    assert chart.accounts == json_chart.accounts[:1]


def test_entries_example_is_a_day_that_keeps_every_invariant() -> None:
    book = _book()
    day = _prepare(_example("entries"), book, {}, "day.jsonl")
    assert (len(day.entries), day.posting_count, day.skipped) == (15, 34, 0)
    assert {account.code for account in day.new_accounts} == {
        "customer:c-001:JPY", "customer:c-002:BTC", "customer:c-002:JPY", "customer:c-003:JPY"}
    reversal = next(p.entry for p in day.entries if p.entry.key == "rev-dep-jpy-2")
    assert reversal.lines == (Line("customer:c-003:JPY", "custody:customer:trust:JPY", 5000),)
    assert day.breach_events == [BreachEvent("BTC", True, "theft-1", -1_000_000, "INC-7"),
                                 BreachEvent("BTC", False, "topup-1", 0)]
    assert day.new_incidents == {"INC-7": "theft-1"}
    assert day.links == [IncidentLink("INC-7", LinkKind.LOSS, "theft-1", "BTC", 1_000_000),
                         IncidentLink("INC-7", LinkKind.DRAW, "draw-1", "JPY", 150_000),
                         IncidentLink("INC-7", LinkKind.TOP_UP, "topup-1", "BTC", 1_000_000)]
    assert book.coverage == {"JPY": 0, "BTC": 0}
    assert {code: book.balances[code] for code in (
        "custody:customer:trust:JPY", "custody:customer:hot:BTC", "custody:customer:cold:BTC",
        "custody:company:operating:JPY", "custody:company:reserve:JPY", "reserve:liability:JPY",
        "customer:c-001:JPY", "customer:c-002:JPY", "customer:c-003:JPY", "customer:c-001:BTC",
        "customer:c-002:BTC", "loss:incident:BTC", "revenue:fees:JPY")} == {
        "custody:customer:trust:JPY": 899_850, "custody:customer:hot:BTC": 1_500_000,
        "custody:customer:cold:BTC": 48_500_000, "custody:company:operating:JPY": 20_000_150,
        "custody:company:reserve:JPY": 29_850_000, "reserve:liability:JPY": 29_850_000,
        "customer:c-001:JPY": 749_850, "customer:c-002:JPY": 150_000, "customer:c-003:JPY": 0,
        "customer:c-001:BTC": 1_000_000, "customer:c-002:BTC": 49_000_000,
        "loss:incident:BTC": 0, "revenue:fees:JPY": 150}


def test_entries_example_posted_again_is_skipped_as_duplicates() -> None:
    book = _book()
    day = _prepare(_example("entries"), book, {}, "day.jsonl")
    again = _prepare(_example("entries"), book, _as_posted(day), "day.jsonl")
    assert (len(again.entries), again.skipped) == (0, 15)


def test_observation_json_example_reads_account_amount_time_and_reporter() -> None:
    evidence = EvidenceFile("observations.json", _example("observations-json").encode())
    assert recognise(evidence) == "observation-json"
    assert [(o.account["account"], o.amount, o.as_of, o.facts["reported_by"])
            for o in parse_evidence(evidence)] == [
        ("custody:customer:cold:BTC", Decimal("0.485"), datetime(2025, 11, 25, 23, 59, 59, tzinfo=JST),
         "custodian-x"),
        ("custody:customer:hot:BTC", Decimal("0.015"), datetime(2025, 11, 25, 23, 59, 59, tzinfo=JST),
         "hot-wallet-node")]


def test_observation_csv_example_reads_one_observation_a_row() -> None:
    evidence = EvidenceFile("observations.csv", _example("observations-csv").encode())
    assert recognise(evidence) == "observation-csv"
    observations = parse_evidence(evidence)
    assert [(o.account["account"], o.amount) for o in observations] == [
        ("custody:company:reserve:JPY", Decimal("29850000")),
        ("custody:company:operating:JPY", Decimal("20000150")),
        ("custody:company:guarantee:BTC", Decimal("0.1")),
        ("custody:customer:cold:USDC", Decimal("0"))]
    assert {o.as_of for o in observations} == {datetime(2025, 11, 25, 23, 59, 59, tzinfo=JST)}


def test_camt053_example_is_the_trust_accounts_statement() -> None:
    evidence = EvidenceFile("statement.xml", _example("camt053").encode())
    assert recognise(evidence) == "camt053"
    [statement] = parse_evidence(evidence)
    assert dict(statement.account) == {"bank_account": "1234567"}
    chart = _chart(_example("chart"))
    assert [a.code for a in chart.accounts if a.external.get("bank_account") == "1234567"] == [
        "custody:customer:trust:JPY"]
    assert (statement.currency, statement.amount, statement.as_of) == (
        "JPY", Decimal("899850"), date(2025, 11, 25))
    assert [(m.amount, m.reference) for m in statement.movements] == [
        (Decimal("1000000"), "E2E-0001"), (Decimal("-100000"), "E2E-0002"), (Decimal("-150"), None)]
    assert statement.facts["version"] == "camt.053.001.02"


def test_prices_example_values_assets_in_the_quote_currency() -> None:
    table: PriceTable = parse_prices(_example("prices").encode(), "prices.json")
    assert (table.quote, table.as_of, table.source) == (
        "JPY", datetime(2025, 11, 25, 14, 59, 59, tzinfo=UTC), "exchange close")
    assert dict(table.prices) == {"BTC": Decimal("15000000"), "USDC": Decimal("155.20")}
    assert table.value("BTC", 1_000_000, 8) == Decimal("150000")
    assert table.value("JPY", 899_850, 0) == Decimal("899850")


def test_rulebook_example_changes_only_what_it_names(tmp_path: Path) -> None:
    book = _rulebook(_example("rulebook"), tmp_path)
    assert (book.name, book.version, book.extends) == ("acme-jp", "2026-11", "jp-fsa")
    assert list(book.rules) == ["SEG-COVERAGE", "SEG-EXTERNAL", "JP-FIAT-TRUST", "JP-COLD-95",
                                "JP-GUARANTEE", "SEG-EXCESS", "JP-RESERVE", "RESERVE-DRAW",
                                "WALLET-DISJOINT"]
    assert book.params("JP-COLD-95").min_cold_share == Decimal("0.96")
    assert book.params("SEG-EXCESS").tolerance == {"JPY": Decimal("1000")}
    reserve = book.params("JP-RESERVE")
    assert (reserve.floor, reserve.rate, reserve.lookback_days) == (
        Decimal("10000000"), Decimal("0.0002"), 365)


def test_insurance_example_reads_one_policy_in_utc() -> None:
    [policy] = parse_register(_example("insurance").encode(), "insurance.json")
    assert isinstance(policy, PolicyDraft)
    assert (policy.policy_id, policy.insurer, policy.currency, policy.limit,
            policy.covered_share) == (
        "CYBER-2025", "Example Fire & Marine", "JPY", "1000000000", Decimal("0.8"))
    assert (policy.period_start, policy.period_end) == (
        datetime(2025, 3, 31, 15, tzinfo=UTC), datetime(2026, 3, 31, 15, tzinfo=UTC))


def test_chain_config_example_names_nodes_and_credential_variables() -> None:
    configs = parse_chain_config(_example("chain-config").encode(), "chains.json")
    assert configs == {
        "bitcoin": ChainConfig("bitcoin", "bitcoin", "http://127.0.0.1:8332", "BTC_RPC_USER",
                               "BTC_RPC_PASSWORD", 30, 1000, "latest"),
        "ethereum": ChainConfig("ethereum", "ethereum", "http://127.0.0.1:8545", None, None, 10,
                                1000, "finalized")}
    chart = _chart(_example("chart"))
    assert {asset.chain for asset in chart.assets if asset.chain} == set(configs)


def test_commencement_prices_example_values_the_claims_at_the_cutoff(tmp_path: Path) -> None:
    report = _commencement_prices(_example("commencement-prices"), tmp_path)
    assert report.prices is not None
    assert (report.prices.quote, report.prices.as_of, dict(report.prices.prices)) == (
        "JPY", datetime(2025, 11, 25, 15, tzinfo=UTC), {"BTC": Decimal("15000000")})
    assert [(line.creditor, line.asset, line.value_minor) for line in report.lines] == [
        ("c-001", "BTC", 150_000), ("c-001", "JPY", 749_850), ("c-002", "BTC", 7_350_000),
        ("c-002", "JPY", 150_000)]
    assert report.value_total_minor == 8_399_850


def test_elections_examples_record_once_and_skip_what_is_recorded(tmp_path: Path) -> None:
    assert _elections(_example("elections"), tmp_path / "json") == LoadResult(2, 0)
    assert _elections(_example("elections-csv"), tmp_path / "csv", after_json=True) == \
        LoadResult(1, 1)


def test_disputes_examples_record_a_claim_then_its_ruling(tmp_path: Path) -> None:
    assert _disputes(_example("disputes"), tmp_path / "json") == LoadResult(1, 0)
    assert _disputes(_example("disputes-csv"), tmp_path / "csv", after_json=True) == \
        LoadResult(2, 0)


def test_plan_rules_example_pays_the_allowed_dispute_and_reserves_the_open_one(
        tmp_path: Path) -> None:
    result = _plan_rules(_example("plan-rules"), tmp_path)
    plan = result.plan
    assert all(asset.covered for asset in plan.tier1.assets)
    assert plan.tier2 is not None and plan.basis is not None
    assert (plan.basis.pay_from, plan.basis.charge_to) == (
        "custody:company:operating:JPY", "expense:administration:distributions:JPY")
    lines = {line.creditor: line for line in plan.tier2.lines}
    assert set(lines) == {"c-002", "c-003"}
    assert (lines["c-003"].allowed_minor, lines["c-003"].basic_minor,
            lines["c-003"].payable_minor, lines["c-003"].reserved_minor) == (3_000, 3_000, 3_000, 0)
    assert (lines["c-002"].disputed_minor, lines["c-002"].payable_minor,
            lines["c-002"].reserved_minor) == (750_000, 0, 750_000)
    assert (plan.tier2.estate_minor, plan.tier2.left_minor) == (1_000_000, 247_000)


def test_confirmations_examples_match_the_payouts_of_the_documented_plan(tmp_path: Path) -> None:
    assert _confirmations(_example("confirmations"), tmp_path / "json") == ConfirmResult(2, 0)
    assert _confirmations(_example("confirmations-csv"), tmp_path / "csv", after_json=True) == \
        ConfirmResult(1, 1)


# --- the counter-examples are refused as documented ----------------------------------------


@pytest.mark.parametrize("block", REFUSED, ids=[f"{b.kind}-{n}" for n, b in enumerate(REFUSED)])
def test_refused_block_is_refused_with_the_documented_message(block: Block, tmp_path: Path) -> None:
    assert block.fragment is not None
    assert f"`{block.fragment}`" in block.prose, "the page shows the reader the message"
    with pytest.raises(InputError) as refused:
        READERS[block.kind](block.text, tmp_path)
    assert block.fragment in str(refused.value)


# --- the examples through the real command -------------------------------------------------


def _write_examples(directory: Path) -> dict[str, Path]:
    names = {"chart": "chart.json", "entries": "day.jsonl", "observations-json": "seen.json",
             "observations-csv": "seen.csv", "camt053": "trust.xml", "prices": "prices.json",
             "rulebook": "acme-jp.yaml", "insurance": "insurance.json"}
    paths = {}
    for kind, name in names.items():
        paths[kind] = directory / name
        paths[kind].write_text(_example(kind), "utf-8")
    return paths


def test_chart_and_entries_examples_post_through_the_cli(tmp_path: Path) -> None:
    files = _write_examples(tmp_path)
    db = f"sqlite:///{tmp_path / 'x.db'}"
    init = cli("--db", db, "init", "--chart", str(files["chart"]))
    assert init.returncode == 0, init.stderr
    assert "3 assets and 15 accounts added" in init.stdout
    posted = cli("--db", db, "post", str(files["entries"]))
    assert posted.returncode == 0, posted.stderr
    assert posted.stdout.strip() == "posted 15 entries (34 postings), skipped 0 duplicates"
    again = cli("--db", db, "post", str(files["entries"]))
    assert again.stdout.strip() == "posted 0 entries (0 postings), skipped 15 duplicates"
    shown = cli("--db", db, "balances", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    balances = {row["account"]: row["balance"] for row in json.loads(shown.stdout)}
    assert (balances["custody:customer:hot:BTC"], balances["custody:customer:trust:JPY"],
            balances["customer:c-003:JPY"]) == ("0.01500000", "899850", "0")
    verified = cli("--db", db, "verify")
    assert verified.returncode == 0, verified.stdout
    insured = cli("--db", db, "insurance", "load", str(files["insurance"]))
    assert insured.returncode == 0, insured.stderr


def test_evidence_prices_and_rulebook_examples_reconcile_the_day(tmp_path: Path) -> None:
    """The documented evidence agrees with the documented day: no break, every check passes,
    and the one finding is the reserve draw, which RESERVE-DRAW flags by design (exit 1)."""
    files = _write_examples(tmp_path)
    db = f"sqlite:///{tmp_path / 'x.db'}"
    assert cli("--db", db, "init", "--chart", str(files["chart"])).returncode == 0
    assert cli("--db", db, "post", str(files["entries"])).returncode == 0
    assert cli("--db", db, "insurance", "load", str(files["insurance"])).returncode == 0
    run = cli("--db", db, "reconcile", "run", "--as-of", "2025-11-25T23:59:59+09:00",
              "--evidence", str(files["observations-json"]),
              "--evidence", str(files["observations-csv"]), "--evidence", str(files["camt053"]),
              "--prices", str(files["prices"]), "--rulebook", str(files["rulebook"]),
              "--format", "json")
    assert run.returncode == 1, run.stderr
    result = json.loads(run.stdout)
    assert (result["status"], result["breaks"]) == ("clean", [])
    assert {row["account"]: Decimal(row["difference"]) for row in result["accounts"]} == {
        code: 0 for code in (
            "custody:company:guarantee:BTC", "custody:company:operating:JPY",
            "custody:company:reserve:JPY", "custody:customer:cold:BTC",
            "custody:customer:cold:USDC", "custody:customer:hot:BTC",
            "custody:customer:trust:JPY")}
    failed = [(c["rule"], c["numbers"].get("entry")) for c in result["checks"] if c["status"] != "pass"]
    assert failed == [("RESERVE-DRAW", "draw-1")]


def test_administrator_examples_through_the_cli(tmp_path: Path) -> None:
    """The documented day frozen as formats.md says, then every administrator's file through
    the real `segledger admin` commands, with the messages the page quotes."""
    files = _write_examples(tmp_path)
    db = f"sqlite:///{tmp_path / 'x.db'}"

    def run(*args: str) -> str:
        done = cli("--db", db, *args)
        assert done.returncode == 0, (args, done.stderr)
        return done.stdout.strip()

    def example(kind: str, name: str) -> str:
        return _file(tmp_path, name, _example(kind))

    run("init", "--chart", str(files["chart"]))
    run("post", str(files["entries"]))
    run("admin", "freeze", "--cutoff", CUTOFF.isoformat(), "--administrator", ADMINISTRATOR,
        "--case", CASE_NO)
    claims = json.loads(run("admin", "claims", "--prices",
                            example("commencement-prices", "commencement.json"),
                            "--format", "json"))
    assert claims["value_total"] == "8399850"
    assert run("admin", "elections", "load", example("elections", "e.json")) == \
        "elections: loaded 2, skipped 0 unchanged"
    assert run("admin", "elections", "load", example("elections-csv", "e.csv")) == \
        "elections: loaded 1, skipped 1 unchanged"
    assert run("admin", "disputes", "load", example("disputes", "d.json")) == \
        "disputes: loaded 1, skipped 0 unchanged"
    assert run("admin", "disputes", "load", example("disputes-csv", "d.csv")) == \
        "disputes: loaded 2, skipped 0 unchanged"
    plan = tmp_path / "plan.json"
    run("admin", "plan", "--format", "json", "--out", str(plan))
    assert run("admin", "distribute", "--plan", str(plan)) == \
        "distributed 4 payouts in 1 batches, 0 already recorded"
    assert run("admin", "payouts", "confirm", example("confirmations", "sent.json")) == \
        "confirmed 2 payouts, 0 already confirmed"
    assert run("admin", "payouts", "confirm", example("confirmations-csv", "sent.csv")) == \
        "confirmed 1 payouts, 1 already confirmed"
    run("chart", "load", _file(tmp_path, "expense.json", json.dumps(DISTRIBUTIONS_ACCOUNT)))
    with_rules = tmp_path / "plan-2.json"
    run("admin", "plan", "--rules", example("plan-rules", "rules.json"), "--format", "json",
        "--out", str(with_rules))
    assert run("admin", "distribute", "--plan", str(with_rules)) == (
        "distributed 1 payouts in 1 batches, 0 already recorded; 4 already paid in full by "
        "earlier plans")
    statement = json.loads(run("admin", "statement", "c-003", "--format", "json"))
    assert [(row["tier"], row["amount"]) for row in statement["distributed"]] == [(2, "3000")]
    assert cli("--db", db, "verify").returncode == 0


# --- the docs stand alone ------------------------------------------------------------------

DOC_FILES = [REPO / "README.md", *sorted(DOCS.glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
PARENT_PATH = re.compile(r"(?<![\w./-])((?:\.\./)+[\w./-]*)")
OUTSIDE = re.compile(r"\.\./shared|/work/|/home/|/tmp/")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    return {_slug(line.lstrip("#")) for line in path.read_text("utf-8").splitlines()
            if line.startswith("#")}


@pytest.mark.parametrize("doc", DOC_FILES, ids=[p.name for p in DOC_FILES])
def test_docs_name_no_path_outside_the_repository(doc: Path) -> None:
    text = doc.read_text("utf-8")
    assert OUTSIDE.findall(text) == []
    for path in PARENT_PATH.findall(text):
        assert (doc.parent / path).resolve().is_relative_to(REPO), path


@pytest.mark.parametrize("doc", DOC_FILES, ids=[p.name for p in DOC_FILES])
def test_every_relative_link_points_to_a_file_that_exists(doc: Path) -> None:
    for target in LINK.findall(doc.read_text("utf-8")):
        if re.match(r"[a-z]+:", target):
            continue  # http:, https:, mailto: are not files of the repository
        path, _, anchor = target.partition("#")
        resolved = (doc.parent / path).resolve() if path else doc
        assert resolved.is_relative_to(REPO), target
        assert resolved.exists(), target
        if anchor:
            assert anchor in _anchors(resolved), target
