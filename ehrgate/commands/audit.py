"""`ehrgate audit` and `ehrgate requests list|send|approve|decline`."""

from __future__ import annotations

import click

from ehrgate.commands._session import (
    own_patient_option,
    parse_when,
    session,
    short,
    split_list,
    table,
)
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
@click.option("--pending", is_flag=True, help="Only the requests not answered yet.")
@json_option
@click.pass_context
def list_requests(ctx: click.Context, pseudonym: str | None, pending: bool, as_json: bool) -> None:
    """List the requests for rights made to the patient (patient key file in --as)."""
    found = session(ctx).client().access_requests(pseudonym, pending=pending)
    emit(
        as_json,
        {"access_requests": [item.to_json() for item in found]},
        lambda: table(
            ("request", "requester", "rights", "categories", "period", "answer", "reason"),
            [
                (
                    r.request_id,
                    r.requester,
                    ",".join(r.rights),
                    r.categories if isinstance(r.categories, str) else ",".join(r.categories),
                    f"{r.not_before} .. {r.not_after}" if r.not_after else "",
                    r.decision or "pending",
                    r.reason,
                )
                for r in found
            ],
        ),
    )


@requests.command(name="approve")
@click.argument("request_id")
@click.option("--from", "not_before", metavar="T", help="Grant from (default: as requested).")
@click.option(
    "--until",
    "not_after",
    metavar="T",
    help="Grant until (default: as requested; needed if the request names no period): "
    "ISO 8601 or +30s, +15m, +2h, +7d.",
)
@click.option(
    "--permission",
    "permission_id",
    metavar="ID",
    help="Name an existing grant to the requester instead of making one.",
)
@json_option
@click.pass_context
def approve_request(
    ctx: click.Context,
    request_id: str,
    not_before: str | None,
    not_after: str | None,
    permission_id: str | None,
    as_json: bool,
) -> None:
    """Approve a request: grant what it asks for, then sign the answer (the patient)."""
    request, permission, receipt = (
        session(ctx)
        .client()
        .approve_request(
            request_id,
            not_before=parse_when(not_before) if not_before is not None else None,
            not_after=parse_when(not_after) if not_after is not None else None,
            permission_id=permission_id,
        )
    )
    emit(
        as_json,
        {
            "access_request": request.to_json(),
            "permission": permission.to_json(),
            "receipt": receipt.to_json(),
        },
        f"approved request {request_id}: permission {permission.permission_id} for"
        f" {request.requester} until {permission.not_after}",
    )


@requests.command(name="decline")
@click.argument("request_id")
@json_option
@click.pass_context
def decline_request(ctx: click.Context, request_id: str, as_json: bool) -> None:
    """Decline a request; the signed answer goes on the ledger (the patient)."""
    request, receipt = session(ctx).client().decline_request(request_id)
    emit(
        as_json,
        {"access_request": request.to_json(), "receipt": receipt.to_json()},
        f"declined request {request_id} of {request.requester}",
    )


@requests.command(name="send")
@click.option("--patient", "pseudonym", required=True, metavar="PSEUDONYM")
@click.option("--rights", required=True, metavar="read[,write]")
@click.option("--categories", required=True, metavar="C1,C2|all")
@click.option("--reason", required=True, help="Why, in words the patient understands.")
@click.option("--from", "not_before", metavar="T", help="Start of the period asked for.")
@click.option("--until", "not_after", metavar="T", help="End of the period asked for.")
@json_option
@click.pass_context
def send_request(
    ctx: click.Context,
    pseudonym: str,
    rights: str,
    categories: str,
    reason: str,
    not_before: str | None,
    not_after: str | None,
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
            pseudonym,
            rights=split_list(rights, "--rights"),
            categories=chosen,
            reason=reason,
            not_before=parse_when(not_before) if not_before is not None else None,
            not_after=parse_when(not_after) if not_after is not None else None,
        )
    )
    emit(
        as_json,
        {"access_request": request.to_json(), "receipt": receipt.to_json()},
        f"sent request {request.request_id} to {short(pseudonym)}",
    )
