"""The patient's consent: `ehrgate grant`, `revoke`, `permissions` and `share-key`.

Each is a ledger transaction signed with the patient's own key (--as PATIENT.key); the
gateway only forwards it, so it cannot forge consent.
"""

from __future__ import annotations

from pathlib import Path

import click

from ehrgate.commands._keyfiles import read_public_identity
from ehrgate.commands._session import (
    own_patient_option,
    parse_when,
    session,
    short,
    split_list,
    table,
)
from ehrgate.commands._shared import emit, file_option, json_option
from ehrgate.errors import UsageError
from ehrgate.models import Permission
from envelope import PublicIdentity

RIGHTS = ("read", "write", "share")


def _describe(permission: Permission) -> str:
    categories = (
        permission.categories
        if isinstance(permission.categories, str)
        else ",".join(permission.categories)
    )
    return (
        f"{','.join(permission.rights)} on {categories} for {permission.grantee}, "
        f"{permission.not_before} until {permission.not_after}"
    )


@click.command()
@click.option("--to", "grantee", required=True, metavar="ID", help="Who receives the rights.")
@click.option(
    "--rights", required=True, metavar="read[,write,share]", help="Comma-separated rights."
)
@click.option(
    "--categories", required=True, metavar="C1,C2|all", help="Categories, or all of them."
)
@click.option("--from", "not_before", metavar="T", help="Valid from (default now).")
@click.option(
    "--until",
    "not_after",
    required=True,
    metavar="T",
    help="Valid until (exclusive): ISO 8601 or +30s, +15m, +2h, +7d.",
)
@click.option("--study", metavar="S", help="Study id (a share right needs one).")
@click.option("--anonymise", is_flag=True, help="Shared data must be anonymised (share right).")
@json_option
@click.pass_context
def grant(
    ctx: click.Context,
    grantee: str,
    rights: str,
    categories: str,
    not_before: str | None,
    not_after: str,
    study: str | None,
    anonymise: bool,
    as_json: bool,
) -> None:
    """Grant time-bounded rights on the patient's records (patient key file in --as)."""
    wanted = split_list(rights, "--rights")
    unknown = [right for right in wanted if right not in RIGHTS]
    if unknown:
        raise UsageError(f"unknown right {unknown[0]!r}; rights are {', '.join(RIGHTS)}")
    chosen: list[str] | str = (
        "all" if categories.strip() == "all" else split_list(categories, "--categories")
    )
    if "share" in wanted and study is None:
        raise UsageError("a share right needs --study S (and --anonymise if it must be)")
    if "share" not in wanted and (study is not None or anonymise):
        raise UsageError("--study and --anonymise belong to a share right only")
    start = parse_when(not_before) if not_before is not None else None
    end = parse_when(not_after)
    current = session(ctx)
    current.patient_keys()
    permission, receipt = current.client().grant(
        grantee,
        rights=wanted,
        categories=chosen,
        not_before=start,
        not_after=end,
        study_id=study,
        anonymise=anonymise if "share" in wanted else None,
    )
    emit(
        as_json,
        {"permission": permission.to_json(), "receipt": receipt.to_json()},
        f"granted {permission.permission_id}: {_describe(permission)}",
    )


@click.command()
@click.argument("permission_id", metavar="PERMISSION_ID")
@json_option
@click.pass_context
def revoke(ctx: click.Context, permission_id: str, as_json: bool) -> None:
    """Revoke one of the patient's permissions at once (patient key file in --as)."""
    current = session(ctx)
    current.patient_keys()
    permission, receipt = current.client().revoke(permission_id)
    emit(
        as_json,
        {"permission": permission.to_json(), "receipt": receipt.to_json()},
        f"revoked {permission.permission_id}: {_describe(permission)}",
    )


@click.command()
@own_patient_option
@json_option
@click.pass_context
def permissions(ctx: click.Context, pseudonym: str | None, as_json: bool) -> None:
    """List permissions on a patient (all for the patient, your own otherwise)."""
    found = session(ctx).client().permissions(pseudonym)
    emit(
        as_json,
        {"permissions": [permission.to_json() for permission in found]},
        lambda: table(
            ("permission", "grantee", "rights", "categories", "from", "until", "revoked"),
            [
                (
                    p.permission_id,
                    p.grantee,
                    ",".join(p.rights),
                    p.categories if isinstance(p.categories, str) else ",".join(p.categories),
                    p.not_before,
                    p.not_after,
                    "yes" if p.revoked else "no",
                )
                for p in found
            ],
        ),
    )


@click.command(name="share-key")
@click.option("--to", "grantee", required=True, metavar="ID", help="Who receives the keys.")
@click.option(
    "--until",
    "until",
    default=None,
    metavar="WHEN",
    help="Share months only up to this time's month (ISO 8601 or +30s, +15m, +2h, +7d).",
)
@file_option(
    "--to-key",
    "grantee_file",
    metavar="PUBLIC.json",
    help_text="The grantee's public key file, to not rely on the gateway for its key.",
)
@json_option
@click.pass_context
def share_key(
    ctx: click.Context, grantee: str, until: str | None, grantee_file: Path | None, as_json: bool
) -> None:
    """Share with a grantee the keys of exactly what its read permissions cover: their
    categories, every month from their start to their end (never the patient key K)."""
    current = session(ctx)
    keys = current.patient_keys()
    target: str | PublicIdentity = grantee
    if grantee_file is not None:
        identity = read_public_identity(grantee_file)
        if identity.id != grantee:
            raise UsageError(
                f"{grantee_file} is the public key of {identity.id!r}, not {grantee!r}"
            )
        target = identity
    client = current.client()
    receipt = client.share_key(target, until=parse_when(until) if until is not None else None)
    emit(
        as_json,
        {"pseudonym": keys.pseudonym, "grantee": grantee, "receipt": receipt.to_json()},
        f"shared the keys {grantee}'s permissions cover on {short(keys.pseudonym)} with "
        f"{grantee} (ledger entry {receipt.index})",
    )
