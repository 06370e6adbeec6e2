"""The gateway's backing services: the ledger (database) and the blob store(s).

`open_backends(settings)` opens them inside the application's lifespan and
`Backends.close()` releases them; `Backends.readiness()` answers `/readyz`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from gateway.auth import IdentityDirectory
from gateway.authstate import SqlAuthState
from gateway.bootstrap import FirstStart, open_ledger
from gateway.clock import Clock, system_clock
from gateway.directory import LedgerDirectory
from gateway.kept_cosignatures import KeptCosignatures
from gateway.settings import Settings
from gateway.witnessing import CheckpointWitnessing
from ledger.ledger import Ledger
from ledger.wire.builders import LedgerSigner
from ledger.wire.cosignatures import CosignatureVerifier
from ledger.wire.notes import Ed25519Signer
from storage import BlobStore, StoreUnavailable, open_store

log = logging.getLogger("gateway.backends")

ReadinessCheck = Callable[[], None]


@dataclass
class Backends:
    """Connected services of one running gateway."""

    ledger: Ledger
    store: BlobStore
    signer: LedgerSigner
    first_start: FirstStart
    witnessing: CheckpointWitnessing | None = None
    auth_state: SqlAuthState | None = None
    """Challenges, tokens and rate limits shared with other replicas (None: in memory)."""
    directory: IdentityDirectory = field(init=False)

    def __post_init__(self) -> None:
        self.directory = LedgerDirectory(self.ledger)

    @property
    def checkpoint_signer(self) -> Ed25519Signer:
        """Signs the log's C2SP checkpoints (name: the log's origin)."""
        return self.first_start.checkpoint_signer

    def readiness(self) -> dict[str, str]:
        """Name of each service → "ok" or a short reason it is not."""
        checks: dict[str, ReadinessCheck] = {
            "database": self._check_database,
            "stores": self.store.check,
        }
        if self.auth_state is not None:
            checks["auth_state"] = self.auth_state.check
        report: dict[str, str] = {}
        for name, check in checks.items():
            try:
                check()
            except Exception as exc:  # each check's failure is reported, never raised
                log.warning("readiness check %s failed: %s", name, exc)
                report[name] = f"unavailable: {type(exc).__name__}"
            else:
                report[name] = "ok"
        return report

    def _check_database(self) -> None:
        self.ledger.head()  # reads the head row: the database answers

    def close(self) -> None:
        if self.witnessing is not None:
            self.witnessing.stop()
        try:
            self.ledger.close()
        finally:
            if self.auth_state is not None:
                self.auth_state.close()
            self.store.close()


def _prepare_local_stores(settings: Settings) -> None:
    for url in settings.store_urls:
        parts = urlsplit(url)
        if parts.scheme == "file":
            Path(unquote(parts.path)).mkdir(parents=True, exist_ok=True)


def open_backends(settings: Settings, *, clock: Clock = system_clock) -> Backends:
    """Open the ledger and stores named by *settings* (first start included)."""
    _prepare_local_stores(settings)
    store = open_store(settings.store_urls, write_quorum=settings.write_quorum, check=False)
    try:
        store.check()
    except StoreUnavailable as exc:
        # A store that is down at start (still booting, say) is not fatal: /readyz says so
        # and writes fail with 503 until it answers. A wrong URL or bucket is fatal.
        log.warning("blob store not reachable at start: %s", exc)
    except BaseException:
        store.close()
        raise
    try:
        ledger, first = open_ledger(settings, clock=clock)
    except BaseException:
        store.close()
        raise
    if first.admin_key_file is not None:
        log.warning("first start: admin key file written to %s", first.admin_key_file)
    backends = Backends(ledger, store, LedgerSigner(first.ledger_keys.signing_key), first)
    if settings.shared_auth_state:
        backends.auth_state = SqlAuthState.open(settings.resolved_database_url)
    if settings.witnesses:
        backends.witnessing = CheckpointWitnessing(
            ledger,
            first.checkpoint_signer,
            [(w.url, CosignatureVerifier.from_vkey(w.vkey)) for w in settings.witnesses],
            interval=settings.witness_interval,
            kept=KeptCosignatures(ledger.engine),
        )
        backends.witnessing.start()
    return backends
