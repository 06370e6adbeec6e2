"""`ehrgate keys`: make patient and identity key files, show their public halves, upgrade
them, back a patient's up in SLIP-39 shares and restore it, and rotate an identity's keys."""

from __future__ import annotations

import json
import os
import sys
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
from envelope.backup import BackupShares, combine_shares, share_lines, split_keys
from envelope.errors import InvalidBackup
from envelope.keyfile import write_private_file
from ledger.wire.ids import RESERVED_IDS, is_patient_id
from ledger.wire.rotation import request_rotation

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


# --- recovery shares ----------------------------------------------------------------------

backup_passphrase_option = click.option(
    "--backup-passphrase-env",
    metavar="VAR",
    help="Environment variable holding a SLIP-39 passphrase that the shares are encrypted "
    "with (printable ASCII); the same passphrase is needed to restore.",
)


def _backup_passphrase(variable: str | None) -> str | None:
    if variable is None:
        return None
    value = os.environ.get(variable)
    if not value:
        raise UsageError(f"environment variable {variable} is not set or empty")
    return value


def _share_text(index: int, shares: BackupShares, pseudonym: str, mnemonic: str) -> str:
    return (
        f"# ehrgate patient key backup of {pseudonym}: share {index} of {shares.count}; "
        f"any {shares.threshold} restore the key file\n{mnemonic}\n"
    )


@keys.command()
@click.argument("keyfile", type=click.Path(dir_okay=False))
@click.option("--threshold", "-k", type=int, required=True, help="Shares needed to restore.")
@click.option("--shares", "-n", type=int, required=True, help="Shares to make (at most 16).")
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write share-1.txt … share-N.txt here (mode 0600) instead of printing them.",
)
@backup_passphrase_option
@passphrase_option()
@json_option
@click.pass_context
def backup(
    ctx: click.Context,
    keyfile: str,
    threshold: int,
    shares: int,
    out_dir: Path | None,
    backup_passphrase_env: str | None,
    passphrase_env: str | None,
    as_json: bool,
) -> None:
    """Split a patient KEYFILE into SLIP-39 mnemonic shares, any THRESHOLD of which restore it.

    Each share holds no usable secret on its own; keep them in different places. A share
    carries K, the pseudonym and the identity keys (see docs/envelope.md).
    """
    content = passphrase(ctx, passphrase_env).load(keyfile)
    if not isinstance(content, PatientKeys):
        raise UsageError(
            f"{keyfile} is the key file of {content.id} ({content.role}); only a patient's "
            "key file is backed up in shares (an identity is given new keys by enrolling or "
            "rotating them)"
        )
    try:
        made = split_keys(
            content,
            threshold=threshold,
            shares=shares,
            passphrase=_backup_passphrase(backup_passphrase_env),
        )
    except InvalidBackup as exc:
        raise UsageError(str(exc)) from exc
    files: list[str] = []
    if out_dir is not None:
        targets = [out_dir / f"share-{i}.txt" for i in range(1, made.count + 1)]
        taken = [str(t) for t in targets if t.exists()]
        if taken:
            raise UsageError(f"{', '.join(taken)} already exist; choose an empty --out-dir")
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            for i, (target, mnemonic) in enumerate(zip(targets, made.mnemonics, strict=True), 1):
                share_file = _share_text(i, made, content.pseudonym, mnemonic)
                write_private_file(target, share_file.encode("utf-8"))
                files.append(str(target))
        except OSError as exc:
            for written in files:
                Path(written).unlink(missing_ok=True)
            raise UsageError(f"cannot write the shares to {out_dir}: {exc}") from exc
    result = {
        "pseudonym": content.pseudonym,
        "threshold": made.threshold,
        "shares": made.count,
        "passphrase": backup_passphrase_env is not None,
        "files": files,
        "mnemonics": [] if files else list(made.mnemonics),
    }

    def text() -> str:
        if files:
            return (
                f"wrote {made.count} shares of {content.pseudonym} to {out_dir}; any "
                f"{made.threshold} restore the key file"
            )
        return "\n".join(
            _share_text(i, made, content.pseudonym, m).rstrip("\n")
            for i, m in enumerate(made.mnemonics, 1)
        )

    emit(as_json, result, text)


def _read_shares(sources: tuple[Path, ...]) -> tuple[list[str], list[str]]:
    """The shares (and where each is from) in the files, or on standard input."""
    shares: list[str] = []
    names: list[str] = []
    if not sources:
        lines = share_lines(sys.stdin.read())
        return lines, [f"share {i} (line {i} of standard input)" for i in range(1, len(lines) + 1)]
    for source in sources:
        try:
            found = share_lines(source.read_text("utf-8"))
        except FileNotFoundError as exc:
            raise UsageError(f"no share file at {source}") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {source} as a share file") from exc
        if not found:
            raise UsageError(f"{source} holds no share")
        shares.extend(found)
        names.extend(
            [str(source)]
            if len(found) == 1
            else [f"{source} (share {i})" for i in range(1, len(found) + 1)]
        )
    return shares, names


@keys.command()
@click.argument("share_files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@out_option
@backup_passphrase_option
@protect_option
@force_option
@json_option
@click.pass_context
def restore(
    ctx: click.Context,
    share_files: tuple[Path, ...],
    out: Path,
    backup_passphrase_env: str | None,
    passphrase_env: str | None,
    force: bool,
    as_json: bool,
) -> None:
    """Rebuild a patient key file from SLIP-39 shares (SHARE_FILES, or one per line on
    standard input). Nothing is written unless the shares restore the keys whole."""
    shares, names = _read_shares(share_files)
    try:
        content = combine_shares(
            shares, passphrase=_backup_passphrase(backup_passphrase_env), names=names
        )
    except InvalidBackup as exc:
        raise UsageError(f"{exc}; nothing was written") from exc
    protected = _write(ctx, out, content, passphrase_env, force)
    emit(
        as_json,
        {"pseudonym": content.pseudonym, "key_file": str(out), "passphrase_protected": protected},
        f"restored the key file of {content.pseudonym} to {out}",
    )


# --- identity key rotation ----------------------------------------------------------------


@keys.command()
@click.argument("keyfile", type=click.Path(dir_okay=False))
@out_option
@click.option(
    "--request",
    "request_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the rotation request an admin submits (`ehrgate rotate-keys`).",
)
@protect_option
@force_option
@json_option
@click.pass_context
def rotate(
    ctx: click.Context,
    keyfile: str,
    out: Path,
    request_path: Path,
    passphrase_env: str | None,
    force: bool,
    as_json: bool,
) -> None:
    """Make new identity keys for KEYFILE's identity and a request, signed by the old and
    the new key, that an admin submits with `ehrgate rotate-keys REQUEST`.

    The new key file goes to --out (a patient's keeps its K and pseudonym); KEYFILE is left
    as it is: keep it until the rotation is on the ledger (`ehrgate --as NEW whoami`).
    """
    source = passphrase(ctx, passphrase_env)
    old = source.load(keyfile)
    old_identity = old.identity if isinstance(old, PatientKeys) else old
    new_identity = IdentityKeys.generate(old_identity.id, old_identity.role)
    new: IdentityKeys | PatientKeys = (
        PatientKeys(old.patient_key, old.pseudonym, new_identity)
        if isinstance(old, PatientKeys)
        else new_identity
    )
    request = request_rotation(old_identity, new_identity)
    refuse_existing(request_path, force)
    if Path(out).resolve() == Path(keyfile).resolve():
        raise UsageError("--out must be a new file: the old key file is kept until the rotation")
    protected = _write(ctx, out, new, passphrase_env, force)
    try:
        write_private_file(
            request_path,
            json.dumps(request.to_json(), indent=2, sort_keys=True).encode("utf-8") + b"\n",
            overwrite=force,
        )
    except (OSError, FileExistsError) as exc:
        Path(out).unlink(missing_ok=True)
        raise UsageError(f"cannot write {request_path}: {exc}; nothing was kept") from exc
    emit(
        as_json,
        {
            "id": old_identity.id,
            "key_file": str(out),
            "request": str(request_path),
            "passphrase_protected": protected,
        },
        f"wrote new keys for {old_identity.id} to {out} and the rotation request to "
        f"{request_path}; an admin submits it with `ehrgate rotate-keys {request_path}`. "
        f"Keep {keyfile} until then.",
    )
