"""First start of a gateway: the ledger's key, a first admin key file, the genesis entry,
and the log's checkpoint key.

The ledger key is the gateway's own identity (`ledger`): it signs blocks, `access`
transactions and records sealed on a system's behalf. On an empty ledger the genesis entry
names that key and a first admin, whose key file is written next to it (mode 0600) for the
operator, who uses it to enroll clinicians, systems and auditors. Nothing is ever
overwritten: an existing key file is loaded, an existing admin key file is reused.

The checkpoint key signs the log's C2SP checkpoints (docs/federation.md): a separate
Ed25519 key whose note key name is the log's origin, written as a C2SP private note key
(`PRIVATE+KEY+<origin>+<key ID>+...`, mode 0600). A file whose name is not the configured
origin is refused: witnesses know a log by its origin and key, so neither changes quietly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from envelope import IdentityKeys, SigningKey, load_key_file, write_key_file
from envelope.errors import InvalidKeyFile
from envelope.keyfile import write_private_file
from gateway.clock import Clock, system_clock
from gateway.settings import Settings
from ledger.errors import NoteError
from ledger.ledger import Ledger
from ledger.wire.ids import LEDGER_ID
from ledger.wire.notes import Ed25519Signer

FIRST_ADMIN_ID = "admin"
FIRST_ADMIN_FILE = "admin.key"


@dataclass(frozen=True, slots=True)
class FirstStart:
    """What opening the ledger found or created."""

    ledger_keys: IdentityKeys
    admin_key_file: Path | None  # written now, on an empty ledger
    genesis_written: bool
    checkpoint_signer: Ed25519Signer


def _passphrase(settings: Settings) -> str | None:
    secret = settings.ledger_key_passphrase
    return secret.get_secret_value() if secret is not None else None


def load_or_create_ledger_keys(settings: Settings) -> IdentityKeys:
    """The ledger's identity keys from the key file, created there on first use."""
    path = settings.resolved_ledger_key_file
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        keys = IdentityKeys.generate(LEDGER_ID, "ledger")
        write_key_file(path, keys, passphrase=_passphrase(settings))
        return keys
    loaded = load_key_file(path, _passphrase(settings))
    if not isinstance(loaded, IdentityKeys) or loaded.role != "ledger":
        raise InvalidKeyFile(f"{path} does not hold the ledger's identity keys")
    return loaded


def load_or_create_checkpoint_signer(settings: Settings) -> Ed25519Signer:
    """The log's checkpoint signer from its key file, created there on first use."""
    path = settings.resolved_checkpoint_key_file
    origin = settings.resolved_log_origin
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        signer = Ed25519Signer(origin, SigningKey.generate())
        write_private_file(path, (signer.private_key() + "\n").encode("ascii"))
        return signer
    try:
        signer = Ed25519Signer.from_private_key(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, NoteError) as exc:
        raise InvalidKeyFile(f"{path} does not hold a checkpoint key: {exc}") from exc
    if signer.name != origin:
        raise InvalidKeyFile(
            f"{path} is the checkpoint key of log {signer.name}, but this gateway's log "
            f"origin is {origin}: set EHRGATE_LOG_ORIGIN={signer.name}, or move the key "
            "file away to start a new log identity"
        )
    return signer


def _first_admin(settings: Settings) -> tuple[IdentityKeys, Path | None]:
    path = settings.data_dir / FIRST_ADMIN_FILE
    if path.exists():
        loaded = load_key_file(path)
        if not isinstance(loaded, IdentityKeys) or loaded.role != "admin":
            raise InvalidKeyFile(f"{path} does not hold an admin's identity keys")
        return loaded, None
    admin = IdentityKeys.generate(FIRST_ADMIN_ID, "admin")
    write_key_file(path, admin)
    return admin, path


def open_ledger(settings: Settings, *, clock: Clock = system_clock) -> tuple[Ledger, FirstStart]:
    """Open (creating schema and genesis if needed) the ledger named by *settings*."""
    url = settings.resolved_database_url
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    ledger_keys = load_or_create_ledger_keys(settings)
    checkpoint_signer = load_or_create_checkpoint_signer(settings)
    ledger = Ledger.open(url, ledger_keys.signing_key, clock=clock, create_schema=True)
    try:
        admin_file: Path | None = None
        genesis = ledger.tree_size() == 0
        if genesis:
            admin, admin_file = _first_admin(settings)
            ledger.bootstrap(admin.public())
    except BaseException:
        ledger.close()
        raise
    return ledger, FirstStart(ledger_keys, admin_file, genesis, checkpoint_signer)


def ensure_first_start(settings: Settings, *, clock: Clock = system_clock) -> FirstStart:
    """Do what a first start does (keys, schema, genesis) and close the ledger again."""
    ledger, first = open_ledger(settings, clock=clock)
    ledger.close()
    return first
