"""The `ehrgate` command line: assembles the command groups of `ehrgate.commands`.

Exit codes: 0 ok, 1 denied or verification failed, 2 usage error, 3 gateway or store
unavailable.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from ehrgate.commands import (
    audit,
    bridge,
    consent,
    demo,
    emergency,
    erase,
    gc,
    identities,
    import_aria,
    keys,
    ledger,
    notify,
    patient,
    records,
    rekey,
    seal,
    serve,
    witness,
)
from ehrgate.commands._keyfiles import DEFAULT_PASSPHRASE_VARIABLE, Passphrase
from ehrgate.commands._session import Session
from ehrgate.commands._shared import EhrgateGroup

F = TypeVar("F", bound=Callable[..., Any])


def _from_environment(flag: str, envvar: str, metavar: str, text: str) -> Callable[[F], F]:
    """A global option that an environment variable can give instead."""
    name = {"--as": "identity_file"}.get(flag, flag.removeprefix("--").replace("-", "_"))
    return click.option(flag, name, envvar=envvar, metavar=metavar, help=f"{text} [env: {envvar}].")


@click.group(cls=EhrgateGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ehrgate")
@_from_environment(
    "--gateway", "EHRGATE_URL", "URL", "The gateway to talk to, e.g. http://127.0.0.1:8000"
)
@_from_environment("--as", "EHRGATE_IDENTITY", "KEYFILE", "Your key file (identity or patient)")
@click.option(
    "--passphrase-env",
    "passphrase_variable",
    default=DEFAULT_PASSPHRASE_VARIABLE,
    show_default=True,
    metavar="VAR",
    help="Environment variable holding the key file's passphrase, if it has one (a "
    "command's own --passphrase-env wins over this one).",
)
@_from_environment(
    "--ledger-key",
    "EHRGATE_LEDGER_KEY",
    "BASE64",
    "Trust tree heads signed by this ledger key only (default: pinned on first use)",
)
@click.option(
    "--known-ledgers",
    envvar="EHRGATE_KNOWN_LEDGERS",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File of ledger keys pinned per gateway [default: ~/.config/ehrgate/known_ledgers.json].",
)
@click.option(
    "--witness-policy",
    envvar="EHRGATE_WITNESS_POLICY",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML file of trusted witnesses and the quorum (k of n) a checkpoint must have "
    "before a read is believed [env: EHRGATE_WITNESS_POLICY] (default: none required).",
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
    witness_policy: Path | None,
    timeout: float,
) -> None:
    """ehrgate: encrypted, audited off-chain storage for electronic health records.

    Start with `ehrgate demo`. Exit codes: 0 ok, 1 denied or verification failed,
    2 usage error, 3 gateway or store unavailable.
    """
    named = ctx.get_parameter_source("passphrase_variable") is not ParameterSource.DEFAULT
    found = Session(
        gateway,
        identity_file,
        Passphrase(passphrase_variable, named=named),
        ledger_key,
        known_ledgers,
        timeout,
        witness_policy=witness_policy,
    )
    ctx.obj = found
    ctx.call_on_close(found.close)


for command in (
    demo.demo,
    keys.keys,
    seal.seal_command,
    seal.open_command,
    ledger.ledger,
    identities.enroll,
    identities.suspend,
    identities.reinstate,
    identities.rotate_keys,
    identities.whoami,
    patient.patient,
    consent.grant,
    consent.revoke,
    consent.permissions,
    consent.share_key,
    emergency.break_glass,
    emergency.review,
    emergency.study,
    records.upload,
    records.records,
    records.fetch,
    erase.erase,
    rekey.rekey,
    audit.audit,
    audit.requests,
    notify.notify,
    import_aria.import_aria,
    serve.serve,
    gc.gc,
    witness.witness,
    bridge.bridge,
):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="ehrgate")
