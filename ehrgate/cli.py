"""The `ehrgate` command line: assembles the command groups of `ehrgate.commands`.

Exit codes: 0 ok, 1 denied or verification failed, 2 usage error, 3 gateway or store
unavailable.
"""

from __future__ import annotations

from pathlib import Path

import click

from ehrgate.commands import (
    audit,
    consent,
    demo,
    gc,
    identities,
    import_aria,
    keys,
    ledger,
    patient,
    records,
    seal,
    serve,
)
from ehrgate.commands._session import DEFAULT_PASSPHRASE_VARIABLE, EhrgateGroup, Session


@click.group(cls=EhrgateGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ehrgate")
@click.option(
    "--gateway",
    envvar="EHRGATE_URL",
    metavar="URL",
    help="The gateway to talk to, e.g. http://127.0.0.1:8000 [env: EHRGATE_URL].",
)
@click.option(
    "--as",
    "identity_file",
    envvar="EHRGATE_IDENTITY",
    metavar="KEYFILE",
    help="Your key file (identity or patient) [env: EHRGATE_IDENTITY].",
)
@click.option(
    "--passphrase-env",
    "passphrase_variable",
    default=DEFAULT_PASSPHRASE_VARIABLE,
    show_default=True,
    metavar="VAR",
    help="Environment variable holding the key file's passphrase, if it has one.",
)
@click.option(
    "--ledger-key",
    envvar="EHRGATE_LEDGER_KEY",
    metavar="BASE64",
    help="Trust tree heads signed by this ledger key only (default: pinned on first use).",
)
@click.option(
    "--known-ledgers",
    envvar="EHRGATE_KNOWN_LEDGERS",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File of ledger keys pinned per gateway [default: ~/.config/ehrgate/known_ledgers.json].",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds to wait for the gateway.",
)
@click.pass_context
def cli(
    ctx: click.Context,
    gateway: str | None,
    identity_file: str | None,
    passphrase_variable: str,
    ledger_key: str | None,
    known_ledgers: Path | None,
    timeout: float,
) -> None:
    """ehrgate: encrypted, audited off-chain storage for electronic health records.

    Start with `ehrgate demo`. Exit codes: 0 ok, 1 denied or verification failed,
    2 usage error, 3 gateway or store unavailable.
    """
    found = Session(gateway, identity_file, passphrase_variable, ledger_key, known_ledgers, timeout)
    ctx.obj = found
    ctx.call_on_close(found.close)


cli.add_command(demo.demo)
cli.add_command(keys.keys)
cli.add_command(seal.seal_command)
cli.add_command(seal.open_command)
cli.add_command(ledger.ledger)
cli.add_command(identities.enroll)
cli.add_command(identities.suspend)
cli.add_command(identities.whoami)
cli.add_command(patient.patient)
cli.add_command(consent.grant)
cli.add_command(consent.revoke)
cli.add_command(consent.permissions)
cli.add_command(consent.share_key)
cli.add_command(records.upload)
cli.add_command(records.records)
cli.add_command(records.fetch)
cli.add_command(audit.audit)
cli.add_command(audit.requests)
cli.add_command(import_aria.import_aria)
cli.add_command(serve.serve)
cli.add_command(gc.gc)


def main() -> None:
    cli(prog_name="ehrgate")
