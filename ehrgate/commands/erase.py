"""`ehrgate erase`: erase one record, or every record of a patient (right to be forgotten).

Signed with the caller's key: the patient's own (--as PATIENT.key), or an admin's with the
legal --reason, which the ledger keeps with the `erase` entry (so it must name no person).
"""

from __future__ import annotations

import click

from ehrgate.commands._session import session
from ehrgate.commands._shared import emit, json_option
from ehrgate.errors import UsageError
from ehrgate.models import Erased


def _describe(erased: Erased) -> str:
    what = ", ".join(erased.record_ids)
    lines = [f"erased {len(erased.record_ids)} record(s) of {erased.pseudonym}: {what}"]
    lines.append(f"erase entry {erased.receipt.index}; {erased.deleted} copies deleted")
    if erased.pending:
        lines.append(
            "not deleted yet (a store is down; `ehrgate gc` deletes them when it is back):"
        )
        lines += [f"  {p.locator}: {p.problem}" for p in erased.pending]
    return "\n".join(lines)


@click.command()
@click.argument("record_id", metavar="RECORD_ID", required=False)
@click.option(
    "--all",
    "every",
    is_flag=True,
    help="Erase every record of the patient (the right to be forgotten).",
)
@click.option(
    "--patient",
    "pseudonym",
    metavar="PSEUDONYM",
    help="The patient's pseudonym (default: your own; an admin must give it).",
)
@click.option(
    "--reason",
    metavar="TEXT",
    help="The legal reason (required of an admin; kept on the ledger, so name no person).",
)
@json_option
@click.pass_context
def erase(
    ctx: click.Context,
    record_id: str | None,
    every: bool,
    pseudonym: str | None,
    reason: str | None,
    as_json: bool,
) -> None:
    """Erase RECORD_ID, or with --all every record of a patient: the capsules and bodies
    are deleted everywhere and an `erase` entry records it. Nothing can open them after."""
    if (record_id is None) == (not every):
        raise UsageError("name one RECORD_ID, or give --all to erase every record")
    erased = session(ctx).client().erase(record_id, pseudonym=pseudonym, reason=reason)
    emit(as_json, erased.to_json(), _describe(erased))
