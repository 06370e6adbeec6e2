"""`ehrgate keys`: make patient and identity key files, and show their public halves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ehrgate.commands._keyfiles import public_document
from ehrgate.commands._session import passphrase
from ehrgate.commands._shared import (
    emit,
    force_option,
    json_option,
    passphrase_option,
    refuse_existing,
)
from ehrgate.errors import UsageError, VerificationFailed
from envelope import (
    ROLES,
    IdentityKeys,
    InvalidKeyFile,
    InvalidUII,
    KeyFileUpgrade,
    PatientKeys,
    WrongPassphrase,
    upgrade_key_file,
    write_key_file,
)
from ledger.wire.ids import RESERVED_IDS, is_patient_id

USER_ROLES = tuple(role for role in ROLES if role not in {"patient", "ledger"})


@click.group()
def keys() -> None:
    """Make key files and show their public halves (offline)."""


def _write(
    ctx: click.Context,
    path: Path,
    content: IdentityKeys | PatientKeys,
    passphrase_env: str | None,
    force: bool,
) -> bool:
    secret = passphrase(ctx, passphrase_env).for_new_file()
    refuse_existing(path, force)
    try:
        write_key_file(path, content, passphrase=secret, overwrite=force)
    except FileExistsError as exc:
        raise UsageError(f"{path} already exists (use --force to replace it)") from exc
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from exc
    return secret is not None


protect_option = passphrase_option(
    "Protect the key file with the passphrase in this environment variable (or in the one "
    "the global --passphrase-env names; without either it is not protected)."
)
out_option = click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Key file to write.",
)


class RepeatedField(ValueError):
    """A JSON object names one field twice (JSON parsers would silently keep the last)."""


def _refuse_repeated_fields(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, value in pairs:
        if name in fields:
            raise RepeatedField(repr(name))
        fields[name] = value
    return fields


@keys.command()
@click.option(
    "--uii",
    "uii_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON object of the patient's identifying fields (never stored).",
)
@out_option
@protect_option
@force_option
@json_option
@click.pass_context
def patient(
    ctx: click.Context,
    uii_path: Path,
    out: Path,
    passphrase_env: str | None,
    force: bool,
    as_json: bool,
) -> None:
    """Make a patient key K and print the patient's pseudonym H(K‖UII)."""
    try:
        uii = json.loads(uii_path.read_bytes(), object_pairs_hook=_refuse_repeated_fields)
    except FileNotFoundError as exc:
        raise UsageError(f"no UII file at {uii_path}") from exc
    except RepeatedField as exc:
        raise UsageError(f"{uii_path} names the field {exc} twice") from exc
    except (OSError, ValueError) as exc:
        raise UsageError(f"{uii_path} is not a JSON file") from exc
    if not isinstance(uii, dict):
        raise UsageError(f"{uii_path} must hold a JSON object of identifying fields")
    try:
        content = PatientKeys.generate(uii)
    except InvalidUII as exc:
        raise UsageError(f"{uii_path}: {exc}") from exc
    protected = _write(ctx, out, content, passphrase_env, force)
    emit(
        as_json,
        {"pseudonym": content.pseudonym, "key_file": str(out), "passphrase_protected": protected},
        content.pseudonym,
    )


@keys.command()
@click.option("--id", "ident", required=True, help="The identity's id, e.g. dr-house.")
@click.option("--role", required=True, type=click.Choice(USER_ROLES), help="What the identity is.")
@out_option
@protect_option
@force_option
@json_option
@click.pass_context
def identity(
    ctx: click.Context,
    ident: str,
    role: str,
    out: Path,
    passphrase_env: str | None,
    force: bool,
    as_json: bool,
) -> None:
    """Make identity keys (Ed25519 signing + ML-KEM-768/X25519 encryption)."""
    if not ident.strip() or any(ord(c) < 0x20 for c in ident):
        raise UsageError("--id must be printable, non-empty text")
    if ident in RESERVED_IDS:
        raise UsageError(f"--id {ident} is reserved for the ledger's own key; choose another")
    if is_patient_id(ident):
        raise UsageError(
            "--id must not be 64 lowercase hex characters: that is the form of a patient's "
            "id (its pseudonym); choose a name such as dr-house"
        )
    content = IdentityKeys.generate(ident, role)
    protected = _write(ctx, out, content, passphrase_env, force)
    emit(
        as_json,
        {"id": ident, "role": role, "key_file": str(out), "passphrase_protected": protected},
        f"wrote {role} identity {ident} to {out}",
    )


@keys.command()
@click.argument("keyfile", type=click.Path(dir_okay=False))
@passphrase_option()
@json_option
@click.pass_context
def public(ctx: click.Context, keyfile: str, passphrase_env: str | None, as_json: bool) -> None:
    """Print the public half of KEYFILE as JSON (share it; it opens nothing)."""
    del as_json  # the public half is JSON either way; the flag is accepted for uniformity
    click.echo(
        json.dumps(
            public_document(passphrase(ctx, passphrase_env).load(keyfile)), indent=2, sort_keys=True
        )
    )


_KEPT_V1 = {
    "encryption_key": (
        "the encryption key (made before version 2 as 96 expanded bytes: no X-Wing seed "
        "can be recovered from it)"
    ),
    "record_key": (
        "the record key (derived from K the version 1 way: its public key is the one "
        "registered on the ledger and sealed to)"
    ),
}


def _upgrade_text(done: KeyFileUpgrade) -> str:
    if done.changed:
        lines = [
            f"upgraded {done.path} from key file version {done.from_version} to "
            f"{done.to_version}; the old file is kept as {done.backup}. The keys, public "
            "keys and pseudonym are unchanged (checked)."
        ]
    else:
        lines = [f"{done.path} is already key file version {done.to_version}; nothing to do."]
    if done.kept_v1:
        kept = "; ".join(_KEPT_V1[part] for part in done.kept_v1)
        lines.append(
            f"Still in version 1 form: {kept}. Stock X-Wing implementations cannot load "
            "these; re-keying replaces them with X-Wing seeds."
        )
    return "\n".join(lines)


@keys.command()
@click.argument("keyfile", type=click.Path(dir_okay=False))
@passphrase_option()
@json_option
@click.pass_context
def upgrade(ctx: click.Context, keyfile: str, passphrase_env: str | None, as_json: bool) -> None:
    """Rewrite KEYFILE as key file version 2, keeping the old one as KEYFILE.v1.bak.

    The new file must yield exactly the same keys as the old one, or nothing is written.
    """
    source = passphrase(ctx, passphrase_env)
    try:
        done = upgrade_key_file(keyfile, source.read())
    except WrongPassphrase as exc:
        raise VerificationFailed(f"{exc} (from ${source.variable})") from exc
    except InvalidKeyFile as exc:
        raise UsageError(str(exc)) from exc
    except FileExistsError as exc:
        raise UsageError(f"{exc}: move it away first; nothing was changed") from exc
    except OSError as exc:
        raise UsageError(f"cannot upgrade {keyfile}: {exc.strerror}; nothing was changed") from exc
    emit(
        as_json,
        {
            "key_file": done.path,
            "changed": done.changed,
            "from_version": done.from_version,
            "version": done.to_version,
            "backup": done.backup,
            "kept_v1": list(done.kept_v1),
        },
        _upgrade_text(done),
    )
