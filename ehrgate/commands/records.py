"""`ehrgate upload`, `ehrgate records` and `ehrgate fetch`."""

from __future__ import annotations

from pathlib import Path

import click

from ehrgate.commands._session import session, short, table
from ehrgate.commands._shared import emit, json_option
from ehrgate.errors import UsageError
from ehrgate.models import Uploaded


@click.command()
@click.option("--patient", "pseudonym", required=True, metavar="PSEUDONYM")
@click.option("--category", required=True, metavar="C", help="e.g. lab-results.")
@click.option("--content-type", help="Media type (default: guessed from the file name).")
@click.option("--record-id", metavar="ID", help="Choose the record id (one FILE only).")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@json_option
@click.pass_context
def upload(
    ctx: click.Context,
    pseudonym: str,
    category: str,
    content_type: str | None,
    record_id: str | None,
    files: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Seal each FILE to the patient and record it on the ledger (clinician or system)."""
    if record_id is not None and len(files) != 1:
        raise UsageError("--record-id names one record: give exactly one FILE")
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        raise UsageError(f"no such file: {', '.join(missing)}")
    client = session(ctx).client()
    done: list[Uploaded] = []
    for path in files:
        uploaded = client.upload(
            path,
            pseudonym=pseudonym,
            category=category,
            content_type=content_type,
            record_id=record_id,
        )
        done.append(uploaded)
        if not as_json:
            click.echo(
                f"{path}: record {uploaded.record.record_id} "
                f"({uploaded.plaintext_size:,} bytes, ledger entry {uploaded.receipt.index})"
            )
    if as_json:
        emit(True, {"uploaded": [item.to_json() for item in done]}, "")


@click.command()
@click.option("--patient", "pseudonym", required=True, metavar="PSEUDONYM")
@click.option("--category", metavar="C", help="Only this category.")
@click.option(
    "--gateway",
    "gateways",
    multiple=True,
    metavar="URL",
    help="Read at each of these gateways (repeatable; one per hospital), every record "
    "proved on its own log; with --witness-policy, the same policy for each.",
)
@click.option(
    "--federation",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML file of the hospitals' gateways, their keys and witness policies.",
)
@json_option
@click.pass_context
def records(
    ctx: click.Context,
    pseudonym: str,
    category: str | None,
    gateways: tuple[str, ...],
    federation: Path | None,
    as_json: bool,
) -> None:
    """List a patient's records you may read (the read is audited).

    With --gateway (repeated) or --federation, across several hospitals: each record is
    proved on its own hospital's log (and witnessed under its policy) before it is listed.
    """
    if gateways or federation is not None:
        _federated_records(ctx, pseudonym, category, gateways, federation, as_json)
        return
    found = session(ctx).client().records(pseudonym, category)
    emit(
        as_json,
        {"pseudonym": pseudonym, "records": [record.to_json() for record in found]},
        lambda: (
            table(
                ("record", "category", "created", "size", "uploader"),
                [(r.record_id, r.category, r.created_at, f"{r.size:,}", r.writer) for r in found],
            )
            if found
            else "no records you may read"
        ),
    )


def _federated_records(
    ctx: click.Context,
    pseudonym: str,
    category: str | None,
    gateways: tuple[str, ...],
    federation: Path | None,
    as_json: bool,
) -> None:
    from ehrgate.federation import FederatedClient, GatewayConfig, load_federation
    from ehrgate.trust import LedgerPins, default_pins_path
    from ehrgate.witness_policy import load_policy

    current = session(ctx)
    if federation is not None and gateways:
        raise UsageError("give either --gateway URL (repeated) or --federation FILE")
    if federation is not None:
        configs = load_federation(federation)
    else:
        policy = load_policy(current.witness_policy) if current.witness_policy else None
        configs = [GatewayConfig(url, witness_policy=policy) for url in gateways]
    pins = LedgerPins(current.known_ledgers or default_pins_path())
    with FederatedClient(configs, current.keys(), pins=pins, timeout=current.timeout) as client:
        found = client.records(pseudonym, category)
    rows = [
        (f.gateway, f.proof.record.record_id, f.proof.record.category, f.proof.record.created_at)
        for f in found.records
    ]
    skipped = [f"{gateway}: {why}" for gateway, why in found.skipped.items()]
    emit(
        as_json,
        {"pseudonym": pseudonym, **found.to_json()},
        lambda: "\n".join(
            [
                table(("gateway", "record", "category", "created"), rows)
                if rows
                else "no records you may read",
                *(f"skipped {line}" for line in skipped),
            ]
        ),
    )


@click.command()
@click.argument("record_id", metavar="RECORD_ID")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="File (or directory) to write; default: the uploader's file name, here.",
)
@click.option("--force", is_flag=True, help="Replace the output if it exists.")
@json_option
@click.pass_context
def fetch(
    ctx: click.Context, record_id: str, output: Path | None, force: bool, as_json: bool
) -> None:
    """Fetch, verify end to end and decrypt a record.

    Checks the signed tree head, the inclusion proof, the record's signed transaction,
    the capsule's hash and signature, the body's SHA-256 and every segment; writes
    nothing unless all hold.
    """
    destination = output if output is not None else Path.cwd()
    fetched = session(ctx).client().fetch(record_id, destination, overwrite=force)
    emit(
        as_json,
        fetched.to_json(),
        f"{fetched.path}: {fetched.plaintext_size:,} bytes, {fetched.content_type}, "
        f"signed by {fetched.signer_id}; verified against ledger entry "
        f"{fetched.receipt.index} (tree head {fetched.receipt.tree_head.height}, "
        f"root {short(fetched.receipt.tree_head.root)})",
    )
