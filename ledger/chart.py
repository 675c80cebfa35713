"""The chart of accounts file (JSON, or YAML) read into assets and accounts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from ledger.errors import InputError, shown
from ledger.files import MAX_FILE_BYTES
from ledger.json_input import (
    check_storable,
    field_path,
    first_error,
    from_pydantic,
    kind_of,
    line_of,
    loads_strict,
    locate,
)
from ledger.model import (
    ACCOUNT_CODE,
    ASSET_CODE,
    CUSTOMER_ID,
    MAX_SCALE,
    POOL_PURPOSES,
    ROLE_POOLS,
    Account,
    Asset,
    AssetKind,
    Location,
    Pool,
    Purpose,
    Role,
    implicit_customer_account,
)

# One address, descriptor or account number: a multisig descriptor with several xpubs runs to a
# few thousand characters; more is a damaged file.
MAX_EXTERNAL_CHARS = 5_000


class _AssetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, Field(pattern=ASSET_CODE.pattern)]
    kind: AssetKind
    scale: Annotated[int, Field(ge=0, le=MAX_SCALE, strict=True)]
    chain: Annotated[str | None, Field(max_length=50)] = None
    contract: Annotated[str | None, Field(max_length=200)] = None

    @model_validator(mode="after")
    def _crypto_only(self) -> _AssetIn:
        # The chain adapters ask a node about crypto assets only: a chain on a fiat asset would
        # never be asked about, and the file would say something the ledger does not do.
        if self.kind is not AssetKind.CRYPTO and (self.chain or self.contract):
            named = "a chain" if self.chain else "a contract"
            raise ValueError(f"a {self.kind.value} asset has no chain or contract; only crypto "
                             f"assets name one (this one names {named})")
        return self


def _account_number(value: Any) -> Any:
    """An IBAN or bank account number: text, since what matches a statement is its digits as
    written. YAML reads 0012345 unquoted as the octal number 5349, and JSON 0012345 not at all."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError(f"must be text in quotes, not the number {value}: write the account "
                         "number in quotes (\"0012345\"); unquoted, YAML reads digits as a "
                         "number and loses leading zeros (0012345 becomes 5349)")
    return _external_text(value)


def _external_text(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(f"must be text in quotes, not {kind_of(value)}")
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _external_list(value: Any) -> Any:
    if not isinstance(value, list):
        raise ValueError(f"must be a list of text [\"…\"], not {kind_of(value)}")
    return value


ExternalText = Annotated[str, BeforeValidator(_external_text),
                         Field(max_length=MAX_EXTERNAL_CHARS)]


class _ExternalIn(BaseModel):
    """`external`: the four keys reconciliation reads are typed (a number where a statement
    compares text would never match); other keys are kept with the account as given."""

    model_config = ConfigDict(extra="allow")

    # BeforeValidator on the whole optional type: null is refused, leaving a key out is not.
    iban: Annotated[str | None, BeforeValidator(_account_number),
                    Field(max_length=MAX_EXTERNAL_CHARS)] = None
    bank_account: Annotated[str | None, BeforeValidator(_account_number),
                            Field(max_length=MAX_EXTERNAL_CHARS)] = None
    addresses: Annotated[list[ExternalText] | None, BeforeValidator(_external_list)] = None
    descriptors: Annotated[list[ExternalText] | None, BeforeValidator(_external_list)] = None


class _AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, Field(pattern=ACCOUNT_CODE.pattern)]
    asset: Annotated[str, Field(pattern=ASSET_CODE.pattern)]
    pool: Pool
    role: Role
    location: Location | None = None
    purpose: Purpose | None = None
    customer: Annotated[str | None, Field(pattern=CUSTOMER_ID.pattern)] = None
    external: _ExternalIn = Field(default_factory=_ExternalIn)

    @model_validator(mode="after")
    def _consistent(self) -> _AccountIn:
        if self.pool not in ROLE_POOLS[self.role]:
            raise ValueError(f"a {self.role.value} account cannot be in the {self.pool.value} pool")
        if self.role is Role.CUSTODY:
            if self.location is None:
                raise ValueError("a custody account needs a location")
            if self.purpose is None:
                self.purpose = Purpose.SEGREGATED if self.pool is Pool.CUSTOMER else Purpose.OPERATING
            if self.purpose not in POOL_PURPOSES[self.pool]:
                raise ValueError(
                    f"purpose {self.purpose.value} does not belong to the {self.pool.value} pool"
                )
        elif self.location is not None or self.purpose is not None:
            raise ValueError("only custody accounts have a location and a purpose")
        if self.role is Role.CUSTOMER_LIABILITY and self.customer is None:
            raise ValueError("a customer_liability account names its customer")
        if self.role is not Role.CUSTOMER_LIABILITY and self.customer is not None:
            # A customer named on another role would be stored and never read: refused, so the
            # file cannot say an account is a customer's when the ledger does not treat it so.
            raise ValueError(f"only a customer_liability account names a customer, not a "
                             f"{self.role.value} account")
        return self


class _ChartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assets: list[_AssetIn] = Field(default_factory=list)
    accounts: list[_AccountIn] = Field(default_factory=list)


@dataclass(frozen=True)
class Chart:
    assets: tuple[Asset, ...]
    accounts: tuple[Account, ...]
    # 1-based line in the file where each asset / account code first appears, for errors.
    lines: dict[str, int]


def _line_of(text: str, needle: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    return None


def parse_chart(text: str, source: str) -> Chart:
    if len(text) > MAX_FILE_BYTES:
        raise InputError(f"the file is larger than the {MAX_FILE_BYTES // 1_000_000} MB limit "
                         "for one file", source=source)
    raw = load_document(text, source)
    try:
        parsed = _ChartIn.model_validate(raw)
    except ValidationError as error:
        loc = first_error(error)["loc"]
        # The field's own line if the file has it (a misspelt field); else the line of the
        # code of the asset or account it belongs to (a missing field, a wrong combination).
        line = line_of(text, field_path(loc), exact=True) if len(loc) > 2 else None
        if line is None and len(loc) >= 2 and isinstance(loc[1], int) and isinstance(raw, dict):
            items = raw.get(str(loc[0])) or []
            if isinstance(items, list) and loc[1] < len(items) and isinstance(items[loc[1]], dict):
                code = items[loc[1]].get("code")
                line = _line_of(text, f'"{code}"') or _line_of(text, str(code)) if code else None
        problem = from_pydantic(error, _ChartIn).located(source=source, line=line)
        raise locate(problem, text) from None
    assets = tuple(Asset(a.code, a.kind, a.scale, a.chain, a.contract) for a in parsed.assets)
    accounts = tuple(
        Account(a.code, a.asset, a.pool, a.role, a.location, a.purpose, a.customer,
                a.external.model_dump(exclude_unset=True))
        for a in parsed.accounts
    )
    lines: dict[str, int] = {}
    for code in [a.code for a in assets] + [a.code for a in accounts]:
        found = _line_of(text, f'"{code}"') or _line_of(text, code)
        if found is not None:
            lines.setdefault(code, found)
    return Chart(assets, accounts, lines)


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice in one mapping, as JSON input does: a rulebook that
    names a rule twice must not quietly apply whichever came last."""


def _unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *base` then an override is YAML's way to extend, not a repeat
        key = loader.construct_object(key_node, deep=True)
        try:
            repeated = key in seen
        except TypeError:
            continue  # unhashable: SafeLoader refuses it below with its own message
        if repeated:
            raise yaml.constructor.ConstructorError(
                None, None, f"the key {shown(key)} appears twice in one mapping",
                key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def load_document(text: str, source: str) -> Any:
    """JSON or YAML (told apart by the first character), holding only what JSON can say."""
    # ledger.files drops a byte-order mark; text that reaches here by another way may have one.
    text = text.removeprefix("\ufeff")
    if text.lstrip().startswith(("{", "[")):
        try:
            json.loads(text)
        except json.JSONDecodeError as json_error:
            raise InputError(f"malformed JSON: {json_error.msg} at column {json_error.colno}",
                             source=source, line=json_error.lineno) from None
        except (ValueError, RecursionError):
            pass  # loads_strict below says what is wrong
        try:
            return loads_strict(text)
        except InputError as error:
            raise error.located(source=source) from None
    try:
        value = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no Python objects
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(error, "problem", None) or "not valid YAML"
        raise InputError(f"malformed YAML: {problem}", source=source, line=line) from None
    except RecursionError:
        raise InputError("YAML nested too deeply", source=source) from None
    try:
        # YAML has dates, sets and binary; a chart holds only what JSON can say.
        check_storable(value)
    except InputError as error:
        raise error.located(source=source) from None
    return value


def check_chart(chart: Chart, source: str) -> None:
    """Inside one file: no code twice with different definitions, accounts on known assets."""
    assets: dict[str, Asset] = {}
    for asset in chart.assets:
        if asset.code in assets and assets[asset.code] != asset:
            raise InputError(f"asset {asset.code} is defined twice, differently", source=source,
                             line=chart.lines.get(asset.code), field="assets")
        assets[asset.code] = asset
    accounts: dict[str, Account] = {}
    for account in chart.accounts:
        if account.code in accounts and accounts[account.code] != account:
            raise InputError(f"account {account.code} is defined twice, differently",
                             source=source, line=chart.lines.get(account.code), field="accounts")
        implicit = implicit_customer_account(account.code)
        if implicit is not None and account != implicit:
            raise InputError(
                f"{account.code} names a customer account, which is always the customer's "
                f"{implicit.asset} liability in the customer pool (customer {implicit.customer})",
                source=source, line=chart.lines.get(account.code), field="accounts")
        accounts[account.code] = account
