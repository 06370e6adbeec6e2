"""The witness's configuration: its own key, its state database and the logs it follows.

A TOML file (paths relative to the file's directory):

    key_file = "witness.key"          # made by `ehrgate witness keygen`
    database = "witness.db"           # SQLite; created on first start

    [[logs]]
    origin = "hospital-a.example/ehrgate"
    vkey = "hospital-a.example/ehrgate+1a2b3c4d+AcQ..."   # or a list of vkeys

A log is known by its origin; its checkpoints must carry a valid signature from one of its
vkeys (Ed25519 note keys, signature type 0x01). The key file holds the witness's
cosigning key as a C2SP private note key (`PRIVATE+KEY+<name>+<key ID>+...`, type 0x04).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envelope.keyfile import write_private_file
from ledger.errors import NoteError
from ledger.wire.cosignatures import Cosigner
from ledger.wire.notes import Ed25519Verifier, Verifiers
from witness.errors import WitnessConfigError


@dataclass(frozen=True, slots=True)
class TrustedLog:
    """A log the witness cosigns: its origin and the keys that sign its checkpoints."""

    origin: str
    verifiers: Verifiers


@dataclass(frozen=True, slots=True)
class WitnessConfig:
    cosigner: Cosigner
    database: Path
    logs: dict[str, TrustedLog]


def write_witness_key(path: Path, name: str) -> Cosigner:
    """Make a new cosigning key named *name* in *path* (mode 0600; never overwritten)."""
    try:
        cosigner = Cosigner.generate(name)
    except NoteError as exc:
        raise WitnessConfigError(f"{name!r} cannot name a witness: {exc}") from exc
    try:
        write_private_file(path, (cosigner.private_key() + "\n").encode("ascii"))
    except FileExistsError as exc:
        raise WitnessConfigError(f"{path} exists already; a witness key is never replaced") from exc
    return cosigner


def load_witness_key(path: Path) -> Cosigner:
    try:
        return Cosigner.from_private_key(path.read_text("utf-8"))
    except FileNotFoundError as exc:
        raise WitnessConfigError(
            f"no witness key at {path}: make one with `ehrgate witness keygen`"
        ) from exc
    except (OSError, UnicodeDecodeError, NoteError) as exc:
        raise WitnessConfigError(f"{path} does not hold a witness key: {exc}") from exc


def _log(entry: Any, where: Path) -> TrustedLog:
    if not isinstance(entry, dict) or not isinstance(entry.get("origin"), str):
        raise WitnessConfigError(f"{where}: each [[logs]] entry needs an origin")
    origin: str = entry["origin"]
    vkeys = entry.get("vkey")
    vkeys = [vkeys] if isinstance(vkeys, str) else vkeys
    if not isinstance(vkeys, list) or not vkeys or not all(isinstance(v, str) for v in vkeys):
        raise WitnessConfigError(f"{where}: log {origin} needs a vkey (a string or a list)")
    extra = set(entry) - {"origin", "vkey"}
    if extra:
        raise WitnessConfigError(f"{where}: log {origin} has unknown keys {sorted(extra)}")
    try:
        verifiers = Verifiers(Ed25519Verifier.from_vkey(v) for v in vkeys)
    except NoteError as exc:
        raise WitnessConfigError(f"{where}: log {origin}: {exc}") from exc
    return TrustedLog(origin, verifiers)


def load_config(path: Path) -> WitnessConfig:
    """Read and check a witness configuration file; WitnessConfigError says what is wrong."""
    try:
        document = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError as exc:
        raise WitnessConfigError(f"no witness configuration at {path}") from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise WitnessConfigError(f"{path} is not a readable TOML file: {exc}") from exc
    extra = set(document) - {"key_file", "database", "logs"}
    if extra:
        raise WitnessConfigError(f"{path}: unknown settings {sorted(extra)}")
    base = path.parent
    key_file, database = document.get("key_file"), document.get("database", "witness.db")
    if not isinstance(key_file, str) or not isinstance(database, str):
        raise WitnessConfigError(f"{path}: key_file and database are paths (strings)")
    logs: dict[str, TrustedLog] = {}
    for entry in document.get("logs", []):
        log = _log(entry, path)
        if log.origin in logs:
            raise WitnessConfigError(f"{path}: log {log.origin} is listed twice")
        logs[log.origin] = log
    return WitnessConfig(load_witness_key(base / key_file), base / database, logs)
