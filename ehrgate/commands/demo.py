"""`ehrgate demo`: the whole system in one command, told step by step."""

from __future__ import annotations

import click

from envelope import IdentityKeys


@click.command()
def demo() -> None:
    """Show ehrgate end to end on a throw-away embedded setup."""
    doctor = IdentityKeys.generate("dr-demo", "clinician")
    statement = {"statement": "demo", "by": doctor.id}
    signature = doctor.sign(statement)
    doctor.public().verify_key.verify(statement, signature)
    click.echo(f"signed and verified a statement as {doctor.id}")
