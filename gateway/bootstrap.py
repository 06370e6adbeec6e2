"""First start of an embedded gateway: the ledger's key and a first admin key file.

Both files are created with mode 0600 and never overwritten. The ledger key is the
gateway's own identity (it signs tree heads and `access` transactions); the admin key
file is handed to the operator, who uses it to enroll clinicians, systems and auditors.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from envelope import IdentityKeys, b64decode, b64encode
from envelope.errors import EnvelopeError, InvalidKeyFile
from gateway.settings import Settings

KEY_FILE_KIND = "ehrgate-identity-key"
FIRST_ADMIN_ID = "admin"
FIRST_ADMIN_FILE = "admin.key"


@dataclass(frozen=True, slots=True)
class Bootstrap:
    """What a first start created or found."""

    ledger_keys: IdentityKeys
    admin_key_file: Path | None
    created: bool


def write_key_file(path: Path, keys: IdentityKeys) -> None:
    """Write *keys* to a new file readable only by its owner; refuse to overwrite."""
    document = {
        "kind": KEY_FILE_KIND,
        "version": 1,
        "id": keys.id,
        "role": keys.role,
        "signing_key": b64encode(keys.signing_key.private_bytes()),
        "encryption_key": b64encode(keys.encryption_key.private_bytes()),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_key_file(path: Path) -> IdentityKeys:
    """Read a key file written by `write_key_file`."""
    from envelope import HybridPrivateKey, SigningKey

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(document, dict) or document.get("kind") != KEY_FILE_KIND:
            raise InvalidKeyFile(f"{path} is not an ehrgate identity key file")
        return IdentityKeys(
            str(document["id"]),
            str(document["role"]),
            SigningKey(b64decode(document["signing_key"], what="signing_key")),
            HybridPrivateKey(b64decode(document["encryption_key"], what="encryption_key")),
        )
    except (OSError, ValueError, KeyError, EnvelopeError) as exc:
        if isinstance(exc, InvalidKeyFile):
            raise
        raise InvalidKeyFile(f"{path} is not a readable ehrgate identity key file: {exc}") from exc


def ensure_first_start(settings: Settings) -> Bootstrap:
    """Create the ledger key and a first admin key file unless the ledger key exists."""
    ledger_key_file = settings.resolved_ledger_key_file
    if ledger_key_file.exists():
        return Bootstrap(read_key_file(ledger_key_file), None, created=False)
    ledger_keys = IdentityKeys.generate(settings.gateway_id, "ledger")
    admin_keys = IdentityKeys.generate(FIRST_ADMIN_ID, "admin")
    admin_file = settings.data_dir / FIRST_ADMIN_FILE
    # The admin file first: if we stop in between, the next start tries again rather than
    # leaving a ledger nobody can administer.
    if not admin_file.exists():
        write_key_file(admin_file, admin_keys)
    write_key_file(ledger_key_file, ledger_keys)
    return Bootstrap(ledger_keys, admin_file, created=True)
