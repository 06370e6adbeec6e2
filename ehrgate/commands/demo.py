"""`ehrgate demo`: the whole system in one command (`--offline`: the cryptography only)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option(
    "--offline", is_flag=True, help="Only the cryptography, in memory, without a gateway."
)
@click.option(
    "--expiry",
    type=click.FloatRange(1, 60),
    default=4.0,
    show_default=True,
    help="Seconds the doctor's read permission lasts.",
)
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the demo's files (gateway data, fetched reports) in this directory.",
)
def demo(offline: bool, expiry: float, keep: Path | None) -> None:
    """Show ehrgate end to end: an embedded gateway, a doctor, a hospital system and a
    patient; uploads, an ARIA-style import, verified reads, an expired grant, the audit
    and the ledger's verification."""
    if offline:
        from ehrgate.demo.offline import run_offline

        run_offline()
        return
    from ehrgate.demo.story import run

    run(expiry_seconds=expiry, keep=keep)
