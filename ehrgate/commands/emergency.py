"""Break-glass and research on the command line.

- `ehrgate break-glass opt-in` (patient): the policy and the key share to the hospital's
  emergency identity; `ehrgate break-glass open PSEUDONYM` (clinician): the act;
- `ehrgate review list|accept|flag` (auditor or admin): the review queue;
- `ehrgate study export RECORD_ID` (the grantee of a share right) and `ehrgate study list`
  (the study): exports to a study.
"""

from __future__ import annotations

import click

from ehrgate.commands._session import parse_when, session, split_list, table
from ehrgate.commands._shared import emit, json_option
from ehrgate.models import BreakGlassSession
from ledger.wire.emergency import REASONS


def _session_row(s: BreakGlassSession) -> tuple[str, ...]:
    categories = s.categories if isinstance(s.categories, str) else ",".join(s.categories)
    return (s.session_id, s.invoker, s.pseudonym[:12], categories, s.reason, s.ends_at,
            "active" if s.active else "ended", s.verdict or "pending")  # fmt: skip


_HEADERS = ("session", "clinician", "patient", "categories", "reason", "until", "state", "review")


@click.group(name="break-glass")
def break_glass() -> None:
    """Emergency access: a patient's opt-in, a clinician's act."""


@break_glass.command(name="opt-in")
@click.option("--emergency", "emergency_identity", required=True, metavar="ID",
              help="The hospital's emergency identity (name@hospital).")  # fmt: skip
@click.option("--categories", required=True, metavar="C1,C2", help="Categories it may open.")
@click.option("--max-minutes", type=click.IntRange(1, 24 * 60), default=60, show_default=True,
              help="The longest one act may last.")  # fmt: skip
@click.option("--until", required=True, metavar="WHEN", help="When the opt-in ends.")
@click.option("--roles", default="clinician", show_default=True, metavar="R1,R2",
              help="Roles that may invoke it (clinician, system).")  # fmt: skip
@json_option
@click.pass_context
def opt_in(
    ctx: click.Context,
    emergency_identity: str,
    categories: str,
    max_minutes: int,
    until: str,
    roles: str,
    as_json: bool,
) -> None:
    """Opt in to break-glass access through a hospital (patient key file in --as)."""
    current = session(ctx)
    current.patient_keys()
    receipt = current.client().opt_in_break_glass(
        emergency_identity,
        categories=split_list(categories, "categories"),
        max_minutes=max_minutes,
        until=parse_when(until),
        roles=split_list(roles, "roles"),
    )
    emit(
        as_json,
        {"receipt": receipt.to_json()},
        f"break-glass opt-in through {emergency_identity} until {until} (entry {receipt.index})",
    )


@break_glass.command(name="open")
@click.argument("pseudonym")
@click.option("--emergency", "emergency_identity", required=True, metavar="ID",
              help="The emergency identity of the patient's policy.")  # fmt: skip
@click.option("--reason", required=True, type=click.Choice(REASONS), help="Why.")
@click.option("--details", required=True, metavar="TEXT", help="What happened, in words.")
@click.option("--minutes", type=click.IntRange(1, 24 * 60), default=30, show_default=True,
              help="How long (within the patient's policy).")  # fmt: skip
@json_option
@click.pass_context
def open_session(
    ctx: click.Context,
    pseudonym: str,
    emergency_identity: str,
    reason: str,
    details: str,
    minutes: int,
    as_json: bool,
) -> None:
    """Open emergency access to a patient who opted in (clinician key file in --as)."""
    opened, receipt = session(ctx).client().break_glass(
        pseudonym, emergency_identity=emergency_identity, reason=reason, details=details,
        minutes=minutes,
    )  # fmt: skip
    emit(
        as_json,
        {"session": opened.to_json(), "receipt": receipt.to_json()},
        f"break-glass session {opened.session_id} open until {opened.ends_at}; every read is "
        "audited and the patient is told",
    )


@click.group()
def review() -> None:
    """The break-glass review queue (auditor or admin key file in --as)."""


@review.command(name="list")
@click.option("--all", "everything", is_flag=True, help="Reviewed sessions too.")
@json_option
@click.pass_context
def review_list(ctx: click.Context, everything: bool, as_json: bool) -> None:
    """Sessions awaiting review, oldest first."""
    found = session(ctx).client().review_queue(everything=everything)
    emit(
        as_json,
        {"sessions": [s.to_json() for s in found]},
        lambda: table(_HEADERS, [_session_row(s) for s in found]) if found else "nothing to review",
    )


def _review(ctx: click.Context, session_id: str, verdict: str, note: str, as_json: bool) -> None:
    reviewed, receipt = (
        session(ctx).client().review_break_glass(session_id, verdict=verdict, note=note)
    )
    emit(
        as_json,
        {"session": reviewed.to_json(), "receipt": receipt.to_json()},
        f"{session_id} {verdict} (entry {receipt.index})",
    )


@review.command()
@click.argument("session_id")
@click.option("--note", required=True, metavar="TEXT", help="Why it is accepted.")
@json_option
@click.pass_context
def accept(ctx: click.Context, session_id: str, note: str, as_json: bool) -> None:
    """Accept a break-glass act as justified."""
    _review(ctx, session_id, "accepted", note, as_json)


@review.command()
@click.argument("session_id")
@click.option("--note", required=True, metavar="TEXT", help="What is wrong with it.")
@json_option
@click.pass_context
def flag(ctx: click.Context, session_id: str, note: str, as_json: bool) -> None:
    """Flag a break-glass act for follow-up."""
    _review(ctx, session_id, "flagged", note, as_json)


@click.group()
def study() -> None:
    """Exports to research studies."""


@study.command(name="export")
@click.argument("record_id")
@click.option("--permission", "permission_id", metavar="ID", help="The share right to use.")
@json_option
@click.pass_context
def study_export(
    ctx: click.Context, record_id: str, permission_id: str | None, as_json: bool
) -> None:
    """Export a record to the study of your share right (clinician key file in --as)."""
    export, receipt = session(ctx).client().export_to_study(record_id, permission_id=permission_id)
    emit(
        as_json,
        {"export": export.to_json(), "receipt": receipt.to_json()},
        f"exported {record_id} to {export.study_id} as {export.export_id} "
        f"({'anonymised' if export.anonymised else 'rewrapped'})",
    )


@study.command(name="list")
@json_option
@click.pass_context
def study_list(ctx: click.Context, as_json: bool) -> None:
    """What was exported to your study (study key file in --as)."""
    found = session(ctx).client().study_exports()
    emit(
        as_json,
        {"exports": [e.to_json() for e in found]},
        lambda: table(
            ("export", "subject", "category", "created", "anonymised"),
            [
                (
                    e.export_id,
                    e.study_pseudonym[:12],
                    e.category,
                    e.created_at,
                    "yes" if e.anonymised else "no",
                )
                for e in found
            ],
        ),
    )
