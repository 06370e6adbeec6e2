"""Key files for every command: the passphrase that opens them, loading them, and the
public key files made from them.

The passphrase is read from an environment variable: the one the command's own
`--passphrase-env VAR` names (keys, seal, open), else the one the global
`ehrgate --passphrase-env VAR` names, else `EHRGATE_PASSPHRASE`. A variable named with
either option must be set; `EHRGATE_PASSPHRASE` is read only if it is. A new key file is
protected only when a variable was named.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ehrgate.errors import UsageError, VerificationFailed
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

DEFAULT_PASSPHRASE_VARIABLE = "EHRGATE_PASSPHRASE"
IDENTITY_PUBLIC_KIND = "ehrgate-identity-public"


@dataclass(frozen=True)
class Passphrase:
    """Where a key file's passphrase is: *variable*, *named* with --passphrase-env or not."""

    variable: str = DEFAULT_PASSPHRASE_VARIABLE
    named: bool = False

    def read(self) -> str | None:
        value = os.environ.get(self.variable) or None
        if value is None and self.named:
            raise UsageError(f"environment variable {self.variable} is not set or empty")
        return value

    def for_new_file(self) -> str | None:
        """The passphrase to protect a new key file with: only a named variable's."""
        return self.read() if self.named else None

    def load(self, path: str | Path) -> IdentityKeys | PatientKeys:
        """The key file at *path*, opened with this passphrase if it is protected."""
        try:
            return load_key_file(path, self.read())
        except WrongPassphrase as exc:
            raise VerificationFailed(f"{exc} (from ${self.variable})") from exc
        except InvalidKeyFile as exc:
            message = str(exc)
            if "protected by a passphrase" in message:
                message += (
                    f": put it in ${self.variable} "
                    "(or name another variable with --passphrase-env VAR)"
                )
            raise UsageError(message) from exc


def public_document(keys: IdentityKeys | PatientKeys) -> dict[str, Any]:
    """The shareable half of a key file, as written by `ehrgate keys public`."""
    if isinstance(keys, PatientKeys):
        return keys.public().to_json()
    return {"kind": IDENTITY_PUBLIC_KIND, "version": 1, **keys.public().to_json()}


def _read_json(path: str | Path) -> Any:
    try:
        return json.loads(Path(path).read_bytes())
    except FileNotFoundError as exc:
        raise UsageError(f"no public key file at {path}") from exc
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path} is not a JSON public key file") from exc


def load_recipient(path: str | Path) -> tuple[str, HybridPublicKey, bool]:
    """(recipient id, key, is the patient's record key) from a public key file."""
    document = _read_json(path)
    kind = document.get("kind") if isinstance(document, dict) else None
    try:
        if kind == PATIENT_PUBLIC_KIND:
            patient = PatientPublic.from_json(document)
            return patient.pseudonym, patient.record_public_key, True
        if kind == IDENTITY_PUBLIC_KIND:
            identity = PublicIdentity.from_json(document)
            return identity.id, identity.encryption_key, False
    except EnvelopeError as exc:
        raise UsageError(f"{path}: {exc}") from exc
    raise UsageError(
        f"{path} is not a public key file (make one with `ehrgate keys public KEYFILE`)"
    )


def read_public_identity(path: str | Path) -> PublicIdentity:
    """An identity's public half (a patient's too), as `ehrgate keys public` writes it."""
    document = _read_json(path)
    try:
        if isinstance(document, dict) and document.get("kind") == PATIENT_PUBLIC_KIND:
            return PatientPublic.from_json(document).identity
        return PublicIdentity.from_json(document)
    except EnvelopeError as exc:
        raise UsageError(
            f"{path} is not a public identity ({exc}); make one with `ehrgate keys public KEYFILE`"
        ) from exc
