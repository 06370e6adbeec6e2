"""What the bridge's front doors share: settings, key store, links, publisher, the SDK
clients of the key-store identities, and the auditor's view of the ledger's access
entries."""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from bridge.errors import Forbidden
from bridge.fhir.documents import Limits
from bridge.keystore import Identities, KeyStore
from bridge.links import PatientLinks
from bridge.publisher import GatewayPublisher
from bridge.settings import BridgeSettings
from bridge.store import BridgeStore


@dataclass
class AccessLog:
    """The ledger's `access` entries by pseudonym, read as the auditor and kept; each
    call reads only the entries appended since the last."""

    identities: Identities
    auditor: str | None
    _next: int = 0
    _by_pseudonym: defaultdict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def events(self, pseudonym: str) -> list[dict[str, Any]]:
        if self.auditor is None:
            raise Forbidden(
                "this bridge holds no auditor identity: set EHRGATE_BRIDGE_AUDITOR_IDENTITY to "
                "an auditor in its key store to serve AuditEvent"
            )
        client = self.identities.client(self.auditor)
        with self._lock:
            for entry in client.ledger_entries(self._next):
                tx = entry.get("tx") or {}
                body = tx.get("body") or {}
                if tx.get("type") == "access" and isinstance(body.get("pseudonym"), str):
                    self._by_pseudonym[body["pseudonym"]].append(entry)
                self._next = int(entry["index"]) + 1
            return list(self._by_pseudonym.get(pseudonym, ()))


class Bridge:
    """The running bridge's parts, made from its settings."""

    def __init__(self, settings: BridgeSettings) -> None:
        self.settings = settings
        witness_policy = settings.witness_policy()  # a bad policy refuses before anything opens
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = BridgeStore(settings.store_path)
        self.keystore = KeyStore(settings.keys_dir, settings.read_passphrase())
        self.identities = Identities(
            self.keystore,
            settings.gateway_url,
            ledger_key=settings.ledger_key,
            pins_file=settings.data_dir / "known_ledgers.json",
            witness_policy=witness_policy,
        )
        self.links = PatientLinks(self.store, settings.hospital_id)
        self.publisher = GatewayPublisher(self.store, self.links, self.identities)
        self.limits = Limits(
            mrn_system=settings.mrn_system,
            max_bytes=settings.max_document_bytes,
            categories=settings.category_table,
        )
        self.access_log = AccessLog(self.identities, settings.auditor_identity)

    def close(self) -> None:
        self.identities.close()
        self.store.close()
