"""`ehrgate enroll`, `ehrgate suspend`, `ehrgate reinstate`, `ehrgate rotate-keys` (admin)
and `ehrgate whoami`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ehrgate.commands._keyfiles import read_public_identity
from ehrgate.commands._session import session
from ehrgate.commands._shared import emit, json_option
from ehrgate.errors import UsageError
from ledger.errors import RuleViolation
from ledger.wire.rotation import RotationRequest


@click.command()
@click.option(
    "--id", "identity_id", metavar="ID", help="The identity's id (checked against the file)."
)
@click.option("--role", metavar="ROLE", help="Its role (checked against the file).")
@click.argument(
    "public_file", metavar="PUBLIC.json", type=click.Path(dir_okay=False, path_type=Path)
)
@json_option
@click.pass_context
def enroll(
    ctx: click.Context,
    identity_id: str | None,
    role: str | None,
    public_file: Path,
    as_json: bool,
) -> None:
    """Enroll the identity in PUBLIC.json (`ehrgate keys public` output); admin only."""
    identity = read_public_identity(public_file)
    if identity_id is not None and identity_id != identity.id:
        raise UsageError(f"{public_file} is the public key of {identity.id!r}, not {identity_id!r}")
    if role is not None and role != identity.role:
        raise UsageError(f"{public_file} is for role {identity.role!r}, not {role!r}")
    receipt = session(ctx).client().enroll(identity)
    emit(
        as_json,
        {"id": identity.id, "role": identity.role, "receipt": receipt.to_json()},
        f"enrolled {identity.role} {identity.id} (ledger entry {receipt.index})",
    )


@click.command()
@click.argument("identity_id", metavar="ID")
@click.option("--reason", default="suspended by an administrator", show_default=True)
@json_option
@click.pass_context
def suspend(ctx: click.Context, identity_id: str, reason: str, as_json: bool) -> None:
    """Suspend identity ID at once (its tokens stop working); admin only."""
    receipt = session(ctx).client().suspend(identity_id, reason)
    emit(
        as_json,
        {"id": identity_id, "reason": reason, "receipt": receipt.to_json()},
        f"suspended {identity_id} (ledger entry {receipt.index})",
    )


@click.command()
@click.argument("identity_id", metavar="ID")
@click.option("--reason", required=True, help="Why the suspension is lifted (on the ledger).")
@json_option
@click.pass_context
def reinstate(ctx: click.Context, identity_id: str, reason: str, as_json: bool) -> None:
    """Lift the suspension of identity ID: it may log in and sign again; admin only."""
    if not reason.strip():
        raise UsageError("--reason must say why the suspension is lifted")
    receipt = session(ctx).client().reinstate(identity_id, reason)
    emit(
        as_json,
        {"id": identity_id, "reason": reason, "receipt": receipt.to_json()},
        f"reinstated {identity_id} (ledger entry {receipt.index})",
    )


@click.command("rotate-keys")
@click.argument(
    "request_file", metavar="REQUEST.json", type=click.Path(dir_okay=False, path_type=Path)
)
@json_option
@click.pass_context
def rotate_keys(ctx: click.Context, request_file: Path, as_json: bool) -> None:
    """Submit an identity's key rotation REQUEST.json (`ehrgate keys rotate` output),
    countersigned by you; admin only. Check out of band that its holder asked for it."""
    try:
        request = RotationRequest.from_json(json.loads(request_file.read_bytes()))
    except FileNotFoundError as exc:
        raise UsageError(f"no rotation request at {request_file}") from exc
    except (OSError, ValueError) as exc:
        raise UsageError(f"{request_file} is not a JSON rotation request") from exc
    except RuleViolation as exc:
        raise UsageError(f"{request_file}: {exc.message}") from exc
    receipt = session(ctx).client().rotate_keys(request)
    emit(
        as_json,
        {
            "id": request.identity_id,
            "signing_public_key": request.signing_public_key,
            "receipt": receipt.to_json(),
        },
        f"rotated the keys of {request.identity_id} (ledger entry {receipt.index}); its old "
        "key signs nothing from now on",
    )


@click.command()
@json_option
@click.pass_context
def whoami(ctx: click.Context, as_json: bool) -> None:
    """Log in and show the identity the gateway knows you as."""
    me = session(ctx).client().whoami()
    emit(
        as_json,
        me.to_json(),
        f"{me.id} ({me.role}{', SUSPENDED' if me.suspended else ''})",
    )
