"""`ehrgate ledger verify|replay`: check a ledger offline, rebuild its state from its log."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ledger.verify import LedgerSource, VerifyReport


@click.group()
def ledger() -> None:
    """Verify a ledger offline or rebuild its state."""


def _open_source(db: str | None) -> LedgerSource:
    """The source named on the command line (a database URL; later also a gateway)."""
    from ledger.sources import DatabaseSource

    if db is None:
        raise click.UsageError("give --db URL (e.g. sqlite:///data/ledger.db)")
    return DatabaseSource(db)


def _print_report(report: VerifyReport, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        click.echo(report.summary())


@ledger.command()
@click.option("--db", "db", metavar="URL", help="SQLAlchemy URL of the ledger database.")
@click.option("--ledger-key", metavar="BASE64", help="Trusted ledger public key (Ed25519).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--no-replay", is_flag=True, help="Check only signatures of blocks, the chain and the tree."
)
def verify(db: str | None, ledger_key: str | None, as_json: bool, no_replay: bool) -> None:
    """Recheck every signature, the block chain, the Merkle tree and the state.

    Exits 0 when everything holds, 1 naming the first damaged entry, block or state row.
    """
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
                    report = run_verify(
                        source, ledger_key=trusted, replay=not no_replay, progress=bar.update
                    )
            else:
                report = run_verify(source, ledger_key=trusted, replay=not no_replay)
        finally:
            source.close()
    except LedgerError as exc:
        raise click.ClickException(str(exc)) from exc
    _print_report(report, as_json)
    sys.exit(0 if report.ok else 1)


@ledger.command()
@click.option("--db", "db", metavar="URL", required=True, help="The ledger database.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def replay(db: str, as_json: bool) -> None:
    """Rebuild the state tables from the log (after verifying the log)."""
    from ledger.errors import LedgerError
    from ledger.replay import replay_database

    try:
        report = replay_database(db)
    except LedgerError as exc:
        raise click.ClickException(str(exc)) from exc
    _print_report(report, as_json)
    if report.ok and not as_json:
        click.echo(f"state rebuilt from {report.entries} entries")
    sys.exit(0 if report.ok else 1)
