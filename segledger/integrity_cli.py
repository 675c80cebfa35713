"""`segledger seal`: the chain's newest link by a time, in a small file an auditor keeps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ledger import seals, service
from segledger.common import db_url, handled
from segledger.output import print_out


def install(app: typer.Typer) -> None:
    app.command("seal")(handled(seal))


def seal(
    ctx: typer.Context,
    through: Annotated[str, typer.Option(
        "--through", help="The seal covers every link sealed at or before this time (ISO 8601 "
                          "with an offset, or 'now').")],
    out: Annotated[Path | None, typer.Option(
        "--out", help="Write the seal to this new file (else stdout).")] = None,
) -> None:
    """Export the hash chain's root as it stood at a time: the newest link by then, its hash
    and what it seals (links, batches, entries, postings, runs, records), in a small JSON file
    with its own SHA-256. Run daily and keep the file outside the database's reach;
    `segledger verify --seal FILE` proves that nothing before it changed since. The format is
    in docs/integrity.md."""
    document = seals.make_seal(service.connect(db_url(ctx)),
                               service.parse_instant(through, "--through"))

    def write() -> None:
        print(json.dumps(document, indent=1, sort_keys=True))

    if out is None:
        write()
    else:
        print_out(out, write)
        print(f"sealed link {document['link']['seq']} ({document['counts']['entries']} entries) "
              f"into {out}")
