"""`ehrgate patient register`, `publish-keys`, `show` and `link-statement`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ehrgate.commands._session import session
from ehrgate.commands._shared import emit, json_option
from ehrgate.errors import UsageError
from ledger.wire.scoped import DEFAULT_MONTHS_AHEAD, MAX_MONTHS_AHEAD


@click.group()
def patient() -> None:
    """A patient's own registration (with the patient's key file in --as)."""


_MONTHS = click.option(
    "--months",
    type=click.IntRange(0, MAX_MONTHS_AHEAD),
    default=DEFAULT_MONTHS_AHEAD,
    show_default=True,
    help="How many months after the first to publish keys for.",
)


@patient.command()
@_MONTHS
@json_option
@click.pass_context
def register(ctx: click.Context, months: int, as_json: bool) -> None:
    """Register the patient of the --as key file, then publish its record keys for this
    month and the --months coming ones."""
    current = session(ctx)
    keys = current.patient_keys()
    registered, receipt = current.client().register_patient(publish_months=months)
    emit(
        as_json,
        {"patient": registered.to_json(), "receipt": receipt.to_json()},
        f"registered patient {keys.pseudonym} (ledger entry {receipt.index}); published its "
        f"record keys for this month and {months} more",
    )


@patient.command(name="publish-keys")
@_MONTHS
@click.option(
    "--from",
    "start",
    default=None,
    metavar="YYYY-MM",
    help="The first month (default: this UTC month); earlier months for older records.",
)
@json_option
@click.pass_context
def publish_keys(ctx: click.Context, months: int, start: str | None, as_json: bool) -> None:
    """Publish, signed, the public record keys of every category for --from and the --months
    after it (those not yet published): uploads are sealed to them."""
    current = session(ctx)
    keys = current.patient_keys()
    receipts = current.client().publish_keys(months, start=start)
    emit(
        as_json,
        {"pseudonym": keys.pseudonym, "receipts": [r.to_json() for r in receipts]},
        f"published record keys of {keys.pseudonym} in {len(receipts)} ledger entries"
        if receipts
        else "every key asked for was already published",
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
