"""`ehrgate rekey`: the patient of the --as key file rotates its K after a leak."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from ehrgate.commands._session import session
from ehrgate.commands._shared import emit, json_option
from ehrgate.errors import UsageError
from ledger.wire.scoped import MAX_REKEY_BATCH

if TYPE_CHECKING:
    from ehrgate._client.rekey import RotationProgress

_PHASES = {
    "publish": "published the new keys",
    "rewrap": "rewrapped capsules",
    "reshare": "re-shared keys with grantees",
}


@click.command()
@click.option(
    "--status", "status_only", is_flag=True, help="Only show the generation and what is left."
)
@click.option(
    "--batch",
    type=click.IntRange(1, MAX_REKEY_BATCH),
    default=MAX_REKEY_BATCH,
    show_default=True,
    help="Capsules rewrapped per request.",
)
@json_option
@click.pass_context
def rekey(ctx: click.Context, status_only: bool, batch: int, as_json: bool) -> None:
    """Rotate the patient's key K (the --as key file, rewritten in place) after a leak.

    A new K is written to the key file first (the old one kept beside it until the end);
    the new generation's record keys are published; every capsule is rewrapped to them
    (bodies never change; each rewrap is a signed `rekey` entry, and every copy of the old
    capsule is deleted); grantees with a live read grant get new key shares. Interrupted,
    the same command finishes the rest. The pseudonym stays the same.
    """
    current = session(ctx)
    keys = current.patient_keys()
    client = current.client()
    if status_only:
        status = client.rekey_status()
        emit(
            as_json,
            {k: status.get(k) for k in ("pseudonym", "generation", "records", "remaining")},
            f"patient {keys.pseudonym}: key generation {status.get('generation')}, "
            f"{status.get('remaining')} of {status.get('records')} records still to rewrap",
        )
        return
    if not current.identity_file:
        raise UsageError("give the patient's key file with --as KEYFILE")
    shown: dict[str, int] = {}

    def progress(step: RotationProgress) -> None:
        # One line per batch on stderr, so that --json output stays one document.
        if as_json or shown.get(step.phase) == step.done:
            return
        shown[step.phase] = step.done
        click.echo(f"{_PHASES[step.phase]}: {step.done} of {step.total}", err=True)

    done = client.rotate_patient_key(
        current.identity_file,
        passphrase=current.passphrase.read(),
        progress=progress,
        batch=batch,
    )
    unopened = (
        f"; {len(done.unopened)} capsules the old key did not open were left as they were: "
        f"{', '.join(done.unopened)}"
        if done.unopened
        else ""
    )
    emit(
        as_json,
        {"pseudonym": keys.pseudonym, **asdict(done)},
        f"{'finished' if done.resumed else 'rotated'} the key of {keys.pseudonym} to "
        f"generation {done.generation}: {done.rewrapped} capsules rewrapped, "
        f"{done.published} keys published, shares renewed for "
        f"{', '.join(done.reshared) or 'no grantee'}{unopened}",
    )
