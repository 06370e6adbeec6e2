"""The `ehrgate` command line: assembles the command groups of `ehrgate.commands`.

Exit codes: 0 ok, 1 denied or verification failed, 2 usage error, 3 gateway or store
unavailable.
"""

from __future__ import annotations

import click

from ehrgate.commands import demo, gc, keys, ledger, seal, serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ehrgate")
def cli() -> None:
    """ehrgate: encrypted, audited off-chain storage for electronic health records."""


cli.add_command(demo.demo)
cli.add_command(keys.keys)
cli.add_command(seal.seal_command)
cli.add_command(seal.open_command)
cli.add_command(ledger.ledger)
cli.add_command(serve.serve)
cli.add_command(gc.gc)


def main() -> None:
    cli(prog_name="ehrgate")
