"""`ehrgate ledger verify|proof|head|replay|checkpoint|monitor`: check a ledger (from its
database or a gateway), show a record's proof, rebuild the state from the log, follow a
remote log."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, NoReturn

import click

from ehrgate.commands._session import session
from ehrgate.commands._shared import EXIT_DAMAGED, emit, json_option
from ehrgate.commands.monitor import monitor
from ehrgate.errors import EXIT_OK, EhrgateError, Unavailable, UsageError

if TYPE_CHECKING:
    from ledger.verify import LedgerSource, VerifyReport
    from storage.types import BlobStore


@click.group()
def ledger() -> None:
    """Verify a ledger, show proofs and signed heads, rebuild its state."""


def _open_source(db: str | None) -> LedgerSource:
    """The ledger database named on the command line."""
    from ledger.sources import DatabaseSource

    if db is None:
        raise click.UsageError("give --db URL (e.g. sqlite:///data/ledger.db) or --gateway URL")
    return DatabaseSource(db)


def _print_report(report: VerifyReport, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        click.echo(report.summary())


def _finish(ctx: click.Context, report: VerifyReport, as_json: bool) -> NoReturn:
    _print_report(report, as_json)
    ctx.exit(EXIT_OK if report.ok else EXIT_DAMAGED)


def _verify_gateway(
    ctx: click.Context, gateway: str, ledger_key: str | None, replay: bool, as_json: bool
) -> VerifyReport:
    current = session(ctx)
    current.gateway = gateway
    if ledger_key is not None:
        current.ledger_key = ledger_key
    client = current.client()
    total = None
    if sys.stderr.isatty() and not as_json:
        head = client.ledger_head()
        total = head.tree_head.tree_size if head.tree_head is not None else 0
    if total:
        with click.progressbar(length=total, label="verifying", file=sys.stderr) as bar:
            return client.verify_ledger(replay=replay, progress=bar.update)
    return client.verify_ledger(replay=replay)


@ledger.command()
@click.option("--db", "db", metavar="URL", help="SQLAlchemy URL of the ledger database.")
@click.option(
    "--gateway",
    "gateway",
    metavar="URL",
    help="Mirror the ledger from this gateway (as an auditor or admin: --as KEYFILE).",
)
@click.option("--ledger-key", metavar="BASE64", help="Trusted ledger public key (Ed25519).")
@json_option
@click.option(
    "--no-replay", is_flag=True, help="Check only signatures of blocks, the chain and the tree."
)
@click.option(
    "--store",
    "stores",
    metavar="URL",
    multiple=True,
    help="A blob store to ask for a copy of each capsule missing from the database "
    "(repeatable; file:// and s3:// stores, which keep a body under its SHA-256).",
)
@click.pass_context
def verify(
    ctx: click.Context,
    db: str | None,
    gateway: str | None,
    ledger_key: str | None,
    as_json: bool,
    no_replay: bool,
    stores: tuple[str, ...],
) -> None:
    """Recheck every signature, the block chain, the Merkle tree, the state and the capsules.

    From a database (--db) or from a gateway's /v1/ledger/entries (--gateway, or the
    global --gateway when no --db is given; a gateway exports no capsules). Exits 0 when
    everything holds, 1 naming the first damaged entry, block or state row, and every
    stored capsule that is changed, missing or named by no record.
    """
    if db is not None and gateway is not None:
        raise click.UsageError("give either --db or --gateway, not both")
    if db is None and gateway is None and session(ctx).gateway:
        gateway = session(ctx).gateway
    if gateway is not None:
        if stores:
            raise click.UsageError("--store goes with --db: a gateway exports no capsules")
        _finish(ctx, _verify_gateway(ctx, gateway, ledger_key, not no_replay, as_json), as_json)
    report = _verify_database(db, ledger_key, not no_replay, as_json)
    if stores:
        _look_in_stores(report, stores)
    _finish(ctx, report, as_json)


def _look_in_stores(report: VerifyReport, urls: tuple[str, ...]) -> None:
    """Add to each capsule-missing damage what the stores at *urls* say of a copy."""
    from ledger.report import Damage
    from storage import open_store
    from storage.errors import StoreMisconfigured, StoreUnavailable

    if report.state is None or not any(d.kind == "capsule-missing" for d in report.capsule_damage):
        return
    records = report.state.tables["records"]
    try:
        stores = [open_store(url) for url in urls]
    except StoreMisconfigured as exc:
        raise UsageError(str(exc)) from exc
    except StoreUnavailable as exc:
        raise Unavailable(str(exc)) from exc
    try:
        for i, found in enumerate(report.capsule_damage):
            if found.kind == "capsule-missing":
                sha = records[found.where.removeprefix("record ")]["capsule_sha256"]
                said = "; ".join(_ask_store(store, sha) for store in stores)
                report.capsule_damage[i] = Damage(
                    found.kind, found.where, f"{found.problem}; {said}"
                )
    finally:
        for store in stores:
            store.close()


def _ask_store(store: BlobStore, sha256: str) -> str:
    """Whether *store* holds the body of *sha256*, in words."""
    from storage.errors import BlobNotFound, StorageError

    locator_of = getattr(store, "locator", None)
    if locator_of is None:
        return f"store {store.name} cannot be asked by SHA-256 alone"
    locator = str(locator_of(sha256))
    try:
        store.head(locator)
    except BlobNotFound:
        return f"store {store.name} has no copy"
    except StorageError as exc:
        return f"store {store.name} could not be asked ({exc})"
    return f"store {store.name} holds a copy at {locator}"


def _verify_database(
    db: str | None, ledger_key: str | None, replay: bool, as_json: bool
) -> VerifyReport:
    from envelope import EnvelopeError, VerifyKey, b64decode
    from ledger.errors import LedgerError
    from ledger.verify import verify as run_verify

    trusted = None
    if ledger_key is not None:
        try:
            trusted = VerifyKey(b64decode(ledger_key, length=32, what="--ledger-key"))
        except EnvelopeError as exc:
            raise click.BadParameter(str(exc), param_hint="--ledger-key") from exc
    try:
        source = _open_source(db)
        try:
            total = source.entry_count()
            if sys.stderr.isatty() and not as_json and total:
                with click.progressbar(length=total, label="verifying", file=sys.stderr) as bar:
                    return run_verify(
                        source, ledger_key=trusted, replay=replay, progress=bar.update
                    )
            return run_verify(source, ledger_key=trusted, replay=replay)
        finally:
            source.close()
    except LedgerError as exc:
        raise EhrgateError(str(exc)) from exc


@ledger.command()
@click.argument("record_id", metavar="RECORD_ID")
@json_option
@click.pass_context
def proof(ctx: click.Context, record_id: str, as_json: bool) -> None:
    """Show a record's inclusion proof, checked against a tree head the ledger signed.

    Exits 1 if the proof, the head's signature or the record's transaction do not verify.
    """
    found = session(ctx).client().record(record_id)
    receipt = found.receipt
    head = receipt.tree_head
    emit(
        as_json,
        {**found.to_json(), "verified": True},
        lambda: "\n".join(
            [
                f"record {found.record.record_id} is ledger entry {receipt.index}",
                f"leaf hash   {receipt.tx_hash}",
                f"tree head   height {head.height}, {head.tree_size} entries, {head.timestamp}",
                f"root        {head.root}",
                f"signed by   ledger key {found.ledger_public_key}",
                "proof       " + ("\n            ".join(receipt.inclusion_proof) or "(empty)"),
                "verified: the signed transaction's leaf hash leads to the signed root",
            ]
        ),
    )


@ledger.command()
@json_option
@click.pass_context
def head(ctx: click.Context, as_json: bool) -> None:
    """Show the gateway's latest signed tree head (and pin its ledger key)."""
    found = session(ctx).client(anonymous=True).ledger_head()
    tree_head = found.tree_head
    emit(
        as_json,
        found.to_json(),
        lambda: (
            f"ledger key {found.ledger_public_key}\n"
            + (
                f"height {tree_head.height}, {tree_head.tree_size} entries, root "
                f"{tree_head.root}, {tree_head.timestamp}"
                if tree_head is not None
                else "empty ledger"
            )
        ),
    )


@ledger.command()
@click.option("--db", "db", metavar="URL", required=True, help="The ledger database.")
@json_option
@click.pass_context
def replay(ctx: click.Context, db: str, as_json: bool) -> None:
    """Rebuild the state tables from the log (after verifying the log)."""
    from ledger.errors import LedgerError
    from ledger.replay import replay_database

    try:
        report = replay_database(db)
    except LedgerError as exc:
        raise EhrgateError(str(exc)) from exc
    _print_report(report, as_json)
    if report.ok and not as_json:
        click.echo(f"state rebuilt from {report.entries} entries")
    ctx.exit(EXIT_OK if report.ok else EXIT_DAMAGED)


@ledger.command()
@click.option(
    "--witness",
    "witnesses",
    multiple=True,
    metavar="VKEY",
    help="A witness's cosignature vkey; its cosignature on the checkpoint is checked (repeatable).",
)
@json_option
@click.pass_context
def checkpoint(ctx: click.Context, witnesses: tuple[str, ...], as_json: bool) -> None:
    """Show the log's C2SP checkpoint (and pin its checkpoint key), verified."""
    found = session(ctx).client(anonymous=True).ledger_checkpoint(witnesses)
    cosigned = ", ".join(found.cosigned_by) or "no trusted witness"
    emit(as_json, found.to_json(), lambda: f"{found.note}cosigned by: {cosigned}")


ledger.add_command(monitor)
