"""Chain answers as stored evidence: what the node said, serialised, so that a run can be
re-run months later without the node."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ledger.errors import InputError
from ledger.model import Account, Asset
from reconcile.adapters import bitcoin, ethereum
from reconcile.chains import ChainConfig, http_rpc
from reconcile.evidence import EvidenceFile, Movement, Observation


def to_evidence(observation: Observation) -> EvidenceFile:
    document = {
        "source": observation.source, "kind": observation.kind,
        "account": dict(observation.account), "currency": observation.currency,
        "amount": str(observation.amount), "as_of": observation.as_of.isoformat(),
        "raw_minor": None if observation.raw_minor is None else str(observation.raw_minor),
        "raw_scale": observation.raw_scale, "facts": observation.facts,
        "movements": [{"amount": str(m.amount), "booked_on": m.booked_on.isoformat(),
                       "reference": m.reference, "description": m.description}
                      for m in observation.movements]}
    content = json.dumps(document, sort_keys=True, ensure_ascii=False, default=str).encode()
    return EvidenceFile(f"{observation.source}:{observation.account.get('account')}", content)


def from_evidence(evidence: EvidenceFile) -> Observation:
    document = json.loads(evidence.content)
    as_of_text = document["as_of"]
    as_of: date | datetime = (datetime.fromisoformat(as_of_text) if "T" in as_of_text
                              else date.fromisoformat(as_of_text))
    return Observation(
        source=document["source"], kind=document["kind"], account=document["account"],
        currency=document["currency"], amount=Decimal(document["amount"]), as_of=as_of,
        movements=tuple(Movement(Decimal(m["amount"]), date.fromisoformat(m["booked_on"]),
                                 m["reference"], m["description"])
                        for m in document["movements"]),
        facts=document["facts"],
        raw_minor=None if document["raw_minor"] is None else int(document["raw_minor"]),
        raw_scale=document["raw_scale"])


Progress = Callable[[str, int, int], None]


def observe_chains(configs: Mapping[str, ChainConfig], assets: Mapping[str, Asset],
                   custody: Sequence[Account], progress: Progress | None = None,
                   environ: Mapping[str, str] = os.environ,
                   clients: Mapping[str, Any] | None = None) -> list[Observation]:
    """Ask each configured chain for the balances of the custody accounts on it.

    `clients` lets a caller hand in its own client per chain (the tests' in-process EVM);
    otherwise each chain is reached over HTTP as its config says.
    """
    targets = [a for a in custody if assets[a.asset].chain in configs and a.external]
    observations = []
    pinned: dict[str, Any] = {}
    for done, account in enumerate(targets, start=1):
        asset = assets[account.asset]
        assert asset.chain is not None
        config = configs[asset.chain]
        client = (clients or {}).get(config.name)
        try:
            if config.kind == "bitcoin":
                rpc = client or pinned.setdefault(config.name, http_rpc(config, environ))
                observations.append(bitcoin.observe(rpc, config, account.code, asset.code,
                                                    account.external))
            else:
                w3 = client or pinned.setdefault(config.name, ethereum.connect(config, environ))
                block = pinned.setdefault(f"{config.name}:block", ethereum.pin_block(w3, config))
                observations.append(ethereum.observe(w3, config, account.code, asset.code,
                                                     asset.contract, account.external, block))
        except InputError as error:
            raise error.located(source=f"chain {config.name}") from None
        if progress:
            progress("chains", done, len(targets))
    return observations
