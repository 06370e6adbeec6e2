"""`ehrgate patient register`, `show` and `link-statement`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ehrgate.commands._session import session
from ehrgate.commands._shared import emit, json_option
from ehrgate.errors import UsageError


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


@patient.command("link-statement")
@click.option("--hospital", required=True, help="The hospital's id, as its bridge is set up.")
@click.option("--mrn", required=True, help="Your medical record number at that hospital.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the statement here (default: print it).",
)
@click.pass_context
def link_statement(ctx: click.Context, hospital: str, mrn: str, output: Path | None) -> None:
    """Sign a statement that MRN at HOSPITAL is yours, for the hospital's bridge.

    Needs only your key file (--as); give the file to the hospital, which adds it with
    `ehrgate bridge link add FILE`.
    """
    from ehrgate.links import make_link_statement

    statement = make_link_statement(session(ctx).patient_keys(), hospital=hospital, mrn=mrn)
    text = json.dumps(statement.to_json(), indent=2, sort_keys=True) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        with output.open("x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError as exc:
        raise UsageError(f"{output} already exists") from exc
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror}") from exc
    click.echo(f"wrote the link statement for MRN {mrn} at {hospital} to {output}")
