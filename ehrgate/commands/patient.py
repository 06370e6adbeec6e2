"""`ehrgate patient register` and `ehrgate patient show`."""

from __future__ import annotations

import click

from ehrgate.commands._session import session
from ehrgate.commands._shared import emit, json_option


@click.group()
def patient() -> None:
    """A patient's own registration (with the patient's key file in --as)."""


@patient.command()
@json_option
@click.pass_context
def register(ctx: click.Context, as_json: bool) -> None:
    """Register the patient of the --as key file: pseudonym and record public key."""
    current = session(ctx)
    keys = current.patient_keys()
    registered, receipt = current.client().register_patient()
    emit(
        as_json,
        {"patient": registered.to_json(), "receipt": receipt.to_json()},
        f"registered patient {keys.pseudonym} (ledger entry {receipt.index})",
    )


@patient.command()
@click.argument("pseudonym")
@json_option
@click.pass_context
def show(ctx: click.Context, pseudonym: str, as_json: bool) -> None:
    """Show a registered patient's record public key (what uploads are sealed to)."""
    found = session(ctx).client().patient(pseudonym)
    emit(
        as_json,
        found.to_json(),
        f"patient {found.pseudonym}\nrecord public key {found.record_public_key[:32]}…",
    )
