"""`ehrgate witness`: run a C2SP tlog-witness that cosigns other hospitals' checkpoints.

    ehrgate witness keygen NAME --key-file witness.key   make a cosigning key, print its vkey
    ehrgate witness vkey --key-file witness.key          print the vkey of an existing key
    ehrgate witness serve --config witness.toml          serve add-checkpoint on 127.0.0.1

The configuration file is described in docs/federation.md (and `witness.config`).
"""

from __future__ import annotations

from pathlib import Path

import click

from ehrgate.errors import Unavailable, UsageError


@click.group()
def witness() -> None:
    """Cosign other logs' checkpoints (C2SP tlog-witness)."""


_key_file = click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The witness's key file.",
)


@witness.command()
@click.argument("name")
@_key_file
def keygen(name: str, key_file: Path) -> None:
    """Make a cosigning key called NAME (e.g. witness.hospital-b.example) in --key-file.

    Prints the verifier key (vkey) that logs and clients configure to trust this witness.
    """
    from witness import WitnessConfigError, write_witness_key

    try:
        cosigner = write_witness_key(key_file, name)
    except WitnessConfigError as exc:
        raise UsageError(str(exc)) from exc
    click.echo(cosigner.verifier.vkey())


@witness.command()
@_key_file
def vkey(key_file: Path) -> None:
    """Print the verifier key (vkey) of the witness key in --key-file."""
    from witness import WitnessConfigError, load_witness_key

    try:
        click.echo(load_witness_key(key_file).verifier.vkey())
    except WitnessConfigError as exc:
        raise UsageError(str(exc)) from exc


@witness.command()
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The witness's TOML configuration (key file, database, logs).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=click.IntRange(1, 65535), default=7380, show_default=True)
def serve(config_file: Path, host: str, port: int) -> None:
    """Serve POST /add-checkpoint for the logs named in --config."""
    import uvicorn

    from witness import (
        WitnessConfigError,
        WitnessStateError,
        create_witness_app,
        load_config,
        open_witness,
    )

    try:
        config = load_config(config_file)
    except WitnessConfigError as exc:
        raise UsageError(str(exc)) from exc
    try:
        served = open_witness(config)
    except WitnessStateError as exc:
        raise Unavailable(str(exc)) from exc
    click.echo(f"witness {config.cosigner.name} on http://{host}:{port}")
    click.echo(f"vkey {config.cosigner.verifier.vkey()}")
    for origin in sorted(config.logs):
        click.echo(f"follows {origin}")
    uvicorn.run(create_witness_app(served), host=host, port=port, log_level="info")
