"""The bridge's key store: the hospital system's and its clinicians' ehrgate identities.

A directory of ehrgate identity key files (`envelope.keyfile`), one per identity, named
`<id>.key`, each encrypted at rest with the store's passphrase (scrypt and AES-256-GCM, the
key files' own protection); a file without a passphrase is refused. Keys are opened on
first use and kept in memory. `Identities` gives each identity its SDK client, which
seals and signs uploads and verifies every read (pinned ledger key, inclusion proof,
hashes, segments, the uploader's signature).
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

from bridge.errors import BridgeUnavailable, BridgeUsageError
from ehrgate.client import Client
from ehrgate.trust import LedgerPins
from ehrgate.witness_policy import WitnessPolicy
from envelope import (
    EnvelopeError,
    IdentityKeys,
    InvalidKeyFile,
    WrongPassphrase,
    load_key_file,
    write_key_file,
)

_FILE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")


class KeyStore:
    """Encrypted identity key files in one directory."""

    def __init__(self, directory: Path, passphrase: str) -> None:
        if not passphrase:
            raise BridgeUsageError("the key store needs a non-empty passphrase")
        self.directory = Path(directory)
        self._passphrase = passphrase
        self._opened: dict[str, IdentityKeys] = {}
        self._lock = threading.Lock()

    def path_of(self, identity_id: str) -> Path:
        if not _FILE_ID.fullmatch(identity_id):
            raise BridgeUsageError(f"{identity_id!r} cannot name a key-store identity")
        return self.directory / f"{identity_id}.key"

    def ids(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(path.stem for path in self.directory.glob("*.key"))

    def add(self, keys: IdentityKeys, *, overwrite: bool = False) -> Path:
        """Store *keys* encrypted with the store's passphrase."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.path_of(keys.id)
        try:
            write_key_file(path, keys, passphrase=self._passphrase, overwrite=overwrite)
        except FileExistsError as exc:
            raise BridgeUsageError(f"the key store already holds {keys.id}") from exc
        with self._lock:
            self._opened[keys.id] = keys
        return path

    def identity(self, identity_id: str) -> IdentityKeys:
        """The identity's keys; BridgeUsageError if the store does not hold them."""
        with self._lock:
            known = self._opened.get(identity_id)
        if known is not None:
            return known
        keys = self._load(identity_id)
        with self._lock:
            self._opened[identity_id] = keys
        return keys

    def _load(self, identity_id: str) -> IdentityKeys:
        path = self.path_of(identity_id)
        if not path.is_file():
            raise BridgeUsageError(
                f"the key store ({self.directory}) holds no identity {identity_id}; add it "
                "with `ehrgate bridge keys add KEYFILE`"
            )
        try:
            if "encrypted" not in json.loads(path.read_bytes()):
                raise BridgeUsageError(f"{path} is not encrypted; the key store refuses it")
            keys = load_key_file(path, self._passphrase)
        except WrongPassphrase as exc:
            raise BridgeUsageError(f"the key store's passphrase does not open {path}") from exc
        except (InvalidKeyFile, EnvelopeError, ValueError, OSError) as exc:
            raise BridgeUnavailable(f"the key store cannot read {path}: {exc}") from exc
        if not isinstance(keys, IdentityKeys) or keys.id != identity_id:
            raise BridgeUsageError(f"{path} is not the identity key file of {identity_id}")
        return keys


class Identities:
    """One SDK client per key-store identity, made on first use and kept."""

    def __init__(
        self,
        store: KeyStore,
        gateway_url: str,
        *,
        ledger_key: str | None = None,
        pins_file: Path | None = None,
        witness_policy: WitnessPolicy | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.store = store
        self._url = gateway_url
        self._ledger_key = ledger_key
        self._witness_policy = witness_policy
        self._pins = LedgerPins(pins_file) if pins_file is not None else LedgerPins()
        self._timeout = timeout
        self._clients: dict[str, Client] = {}
        self._lock = threading.Lock()

    def client(self, identity_id: str) -> Client:
        with self._lock:
            known = self._clients.get(identity_id)
        if known is not None:
            return known
        keys = self.store.identity(identity_id)
        with self._lock:
            client = self._clients.get(identity_id)
            if client is None:
                client = Client(
                    self._url,
                    keys,
                    ledger_key=self._ledger_key,
                    pins=self._pins,
                    witness_policy=self._witness_policy,
                    timeout=self._timeout,
                )
                self._clients[identity_id] = client
        return client

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
