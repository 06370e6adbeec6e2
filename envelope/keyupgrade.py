"""Rewriting a version 1 key file as version 2, without losing or changing any key.

What a version 1 file holds cannot become X-Wing seeds: its hybrid encryption key is 96
random expanded bytes (SHAKE256 cannot be inverted, so no seed exists), and a patient's
record key is the version 1 derivation from K, whose public key is registered on the
ledger and sealed to by every capsule. The upgrade therefore keeps both in version 1 form
(``encryption_key_v1``, ``record_key_version: 1``) and changes only the file's layout;
re-keying is what later replaces them with seeds.

The upgrade refuses to lose anything: the new file is made next to the old one, read back,
and must yield exactly the same keys (hence public keys and pseudonym); the old file is kept
as ``FILE.v1.bak`` (never overwritten); and the new file replaces FILE by one rename after
an fsync, so FILE is at every moment either the old file or the whole new one.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from envelope.errors import InvalidKeyFile
from envelope.keyfile import (
    KEY_FILE_VERSION,
    SCRYPT_N,
    KeyFileContent,
    PatientKeys,
    encode_key_file,
    key_file_header,
    parse_key_file,
    read_key_file_bytes,
)

BACKUP_SUFFIX = ".v1.bak"


@dataclass(frozen=True, slots=True)
class KeyFileUpgrade:
    """What `upgrade_key_file` did: *changed* is False for a file already at version 2."""

    path: str
    from_version: int
    to_version: int
    changed: bool
    backup: str | None
    kept_v1: tuple[str, ...]  # "encryption_key", "record_key": still in version 1 form


def kept_in_v1_form(keys: KeyFileContent) -> tuple[str, ...]:
    """The parts of *keys* that are not standard X-Wing seeds (re-keying replaces them)."""
    identity = keys.identity if isinstance(keys, PatientKeys) else keys
    kept = [] if identity.encryption_key.is_seed else ["encryption_key"]
    if isinstance(keys, PatientKeys) and keys.patient_key.record_key_version == 1:
        kept.append("record_key")
    return tuple(kept)


def _fingerprint(keys: KeyFileContent) -> tuple[object, ...]:
    """Every secret and public value a key file holds, to compare two loads of it."""
    identity = keys.identity if isinstance(keys, PatientKeys) else keys
    parts: list[object] = [
        identity.id,
        identity.role,
        identity.signing_key.private_bytes(),
        identity.encryption_key.private_bytes(),
        identity.public().to_json(),
    ]
    if isinstance(keys, PatientKeys):
        parts += [
            keys.pseudonym,
            keys.patient_key.to_bytes(),
            keys.patient_key.record_key_version,
            keys.public().to_json(),
        ]
    return tuple(parts)


def _scrypt_n(raw: bytes, where: str) -> int:
    encrypted = key_file_header(raw, where).get("encrypted")
    if isinstance(encrypted, dict) and type(encrypted.get("n")) is int:
        return int(encrypted["n"])
    return SCRYPT_N


def _write_temporary(path: Path, data: bytes) -> Path:
    temporary = path.with_name(f".{path.name}.{os.urandom(6).hex()}.upgrade.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return temporary


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def upgrade_key_file(path: str | os.PathLike[str], passphrase: str | None = None) -> KeyFileUpgrade:
    """Rewrite the key file at *path* as version 2, keeping the old one as PATH.v1.bak.

    InvalidKeyFile/WrongPassphrase if it cannot be read; FileExistsError if the backup
    exists; InvalidKeyFile (nothing changed) if the new file would not yield the same keys
    or the file changed while being upgraded. A passphrase-protected file stays protected
    by the same passphrase and scrypt cost.
    """
    where = os.fspath(path)
    original = read_key_file_bytes(where)
    from_version = key_file_header(original, where)["version"]
    keys = parse_key_file(original, passphrase, where)
    kept = kept_in_v1_form(keys)
    if from_version == KEY_FILE_VERSION:
        return KeyFileUpgrade(where, from_version, from_version, False, None, kept)
    protected = "encrypted" in key_file_header(original, where)
    new = encode_key_file(
        keys,
        passphrase=passphrase if protected else None,
        _scrypt_n=_scrypt_n(original, where),
    )
    if _fingerprint(parse_key_file(new, passphrase, where)) != _fingerprint(keys):
        raise InvalidKeyFile(f"{where}: the rewritten file would not hold the same keys")
    target = Path(where)
    backup = target.with_name(target.name + BACKUP_SUFFIX)
    if backup.exists():
        raise FileExistsError(f"{backup} already exists")
    temporary = _write_temporary(target, new)
    try:
        if read_key_file_bytes(where) != original:
            raise InvalidKeyFile(f"{where} changed while it was being upgraded; nothing done")
        os.link(target, backup)  # fails if the backup appeared meanwhile: never clobbers
        os.replace(temporary, target)
        _fsync_directory(target.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    return KeyFileUpgrade(where, from_version, KEY_FILE_VERSION, True, str(backup), kept)
