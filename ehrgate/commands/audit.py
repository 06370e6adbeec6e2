"""`ehrgate audit` and `ehrgate requests list|send`."""

from __future__ import annotations

import click

from ehrgate.commands._session import own_patient_option, session, short, split_list, table
from ehrgate.commands._shared import emit, json_option


@click.command()
@own_patient_option
@json_option
@click.pass_context
def audit(ctx: click.Context, pseudonym: str | None, as_json: bool) -> None:
    """Show who read what of the patient's, when, allowed or denied, and why; and each
    refused attempt to write, grant, revoke or share on the patient's records, and each
    failed login as the patient."""
    events = session(ctx).client().audit(pseudonym)
    emit(
        as_json,
        {"events": [event.to_json() for event in events]},
        lambda: table(
            ("at", "who", "action", "record", "decision", "reason"),
            [
                (e.at, short(e.actor, 20), e.action, e.record_id, e.decision, e.reason)
                for e in events
            ],
        ),
    )


@click.group()
def requests() -> None:
    """Requests for rights: clinicians send them, patients list them."""


@requests.command(name="list")
@own_patient_option
@json_option
@click.pass_context
def list_requests(ctx: click.Context, pseudonym: str | None, as_json: bool) -> None:
    """List the requests for rights made to the patient (patient key file in --as)."""
    found = session(ctx).client().access_requests(pseudonym)
    emit(
        as_json,
        {"access_requests": [item.to_json() for item in found]},
        lambda: table(
            ("request", "requester", "rights", "categories", "reason"),
            [
                (
                    r.request_id,
                    r.requester,
                    ",".join(r.rights),
                    r.categories if isinstance(r.categories, str) else ",".join(r.categories),
                    r.reason,
                )
                for r in found
            ],
        ),
    )


@requests.command(name="send")
@click.option("--patient", "pseudonym", required=True, metavar="PSEUDONYM")
@click.option("--rights", required=True, metavar="read[,write]")
@click.option("--categories", required=True, metavar="C1,C2|all")
@click.option("--reason", required=True, help="Why, in words the patient understands.")
@json_option
@click.pass_context
def send_request(
    ctx: click.Context,
    pseudonym: str,
    rights: str,
    categories: str,
    reason: str,
    as_json: bool,
) -> None:
    """Ask a patient for rights (clinician, system or auditor)."""
    chosen: list[str] | str = (
        "all" if categories.strip() == "all" else split_list(categories, "--categories")
    )
    request, receipt = (
        session(ctx)
        .client()
        .request_access(
            pseudonym, rights=split_list(rights, "--rights"), categories=chosen, reason=reason
        )
    )
    emit(
        as_json,
        {"access_request": request.to_json(), "receipt": receipt.to_json()},
        f"sent request {request.request_id} to {short(pseudonym)}",
    )
