"""What the offline commands share: exit codes, output, passphrases, files written whole.

Exit codes follow `ehrgate.cli`: 0 ok, 1 verification failed (a changed or foreign file,
a wrong passphrase), 2 usage error (bad options, missing or malformed input files).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click

from envelope import (
    EnvelopeError,
    HybridPublicKey,
    IdentityKeys,
    InvalidKeyFile,
    PatientKeys,
    PatientPublic,
    PublicIdentity,
    WrongPassphrase,
    load_key_file,
)
from envelope.keyfile import PATIENT_PUBLIC_KIND

IDENTITY_PUBLIC_KIND = "ehrgate-identity-public"


class UsageProblem(click.ClickException):
    """Bad input the user can fix: exit code 2."""

    exit_code = 2


class VerificationFailed(click.ClickException):
    """Something did not verify: exit code 1."""

    exit_code = 1


json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of text."
)
passphrase_option = click.option(
    "--passphrase-env",
    metavar="VAR",
    help="Name of the environment variable that holds the key file's passphrase.",
)
force_option = click.option("--force", is_flag=True, help="Replace the output if it exists.")


def emit(as_json: bool, result: dict[str, Any], text: str) -> None:
    if as_json:
        click.echo(json.dumps(result, indent=2, sort_keys=True))
    else:
        click.echo(text)


def passphrase_from_env(variable: str | None) -> str | None:
    if variable is None:
        return None
    value = os.environ.get(variable)
    if not value:
        raise UsageProblem(f"environment variable {variable} is not set or empty")
    return value


def load_keys(path: str, passphrase_env: str | None) -> IdentityKeys | PatientKeys:
    try:
        return load_key_file(path, passphrase_from_env(passphrase_env))
    except WrongPassphrase as exc:
        raise VerificationFailed(str(exc)) from exc
    except InvalidKeyFile as exc:
        message = str(exc)
        if "protected by a passphrase" in message:
            message += " with --passphrase-env VAR"
        raise UsageProblem(message) from exc


def public_document(keys: IdentityKeys | PatientKeys) -> dict[str, Any]:
    """The shareable half of a key file, as written by `ehrgate keys public`."""
    if isinstance(keys, PatientKeys):
        return keys.public().to_json()
    return {"kind": IDENTITY_PUBLIC_KIND, "version": 1, **keys.public().to_json()}


def load_recipient(path: str) -> tuple[str, HybridPublicKey, bool]:
    """(recipient id, key, is the patient's record key) from a public-key JSON file."""
    try:
        document = json.loads(Path(path).read_bytes())
    except FileNotFoundError as exc:
        raise UsageProblem(f"no public key file at {path}") from exc
    except (OSError, ValueError) as exc:
        raise UsageProblem(f"{path} is not a JSON public key file") from exc
    kind = document.get("kind") if isinstance(document, dict) else None
    try:
        if kind == PATIENT_PUBLIC_KIND:
            patient = PatientPublic.from_json(document)
            return patient.pseudonym, patient.record_public_key, True
        if kind == IDENTITY_PUBLIC_KIND:
            identity = PublicIdentity.from_json(document)
            return identity.id, identity.encryption_key, False
    except EnvelopeError as exc:
        raise UsageProblem(f"{path}: {exc}") from exc
    raise UsageProblem(
        f"{path} is not a public key file (make one with `ehrgate keys public KEYFILE`)"
    )


def load_public_identity(path: str) -> PublicIdentity:
    try:
        document = json.loads(Path(path).read_bytes())
        if isinstance(document, dict) and document.get("kind") == PATIENT_PUBLIC_KIND:
            return PatientPublic.from_json(document).identity
        return PublicIdentity.from_json(document)
    except FileNotFoundError as exc:
        raise UsageProblem(f"no public key file at {path}") from exc
    except (OSError, ValueError, EnvelopeError) as exc:
        raise UsageProblem(f"{path} is not a usable public identity: {exc}") from exc


def refuse_existing(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise UsageProblem(f"{path} already exists (use --force to replace it)")


@contextlib.contextmanager
def output_file(path: Path, *, force: bool, mode: int = 0o644) -> Iterator[IO[bytes]]:
    """A file that appears at *path* only if the block completes; otherwise nothing is left."""
    refuse_existing(path, force)
    temporary = path.with_name(f".{path.name}.{os.urandom(6).hex()}.partial")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except OSError as exc:
        raise UsageProblem(f"cannot write next to {path}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        publish(temporary, path, force=force)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def publish(temporary: Path, path: Path, *, force: bool) -> None:
    """Move a finished temporary file into place; without *force* never replace a file."""
    try:
        if force:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)
    except FileExistsError as exc:
        raise UsageProblem(f"{path} already exists (use --force to replace it)") from exc
