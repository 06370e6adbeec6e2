"""The `Ledger` facade: open a database, submit transactions, read proofs and state.

Submissions are group-committed. `submit` checks the transaction's form and signature in
the caller's thread (outside any lock), then queues it for the single committer thread
(`ledger.committer`), which validates and writes each batch in one database transaction;
only after that commit does any caller get its `Receipt`.

Reads come in two kinds. The lookups here — `check`, `precheck`, `identity`, `is_suspended`,
`patient`, `permission`, `cached_record`, `key_share` — answer from the in-memory state
the committer keeps, never block, and may be called from an event loop. The reads of
`ledger.queries` — blocks, entries, proofs, `records_of`, `permissions_for`,
`access_history`, ... — query the database and block. Both return the frozen types of
`ledger.results`, not the state's rows.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import os
import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine

from envelope import PublicIdentity, SigningKey, VerifyKey
from ledger import database, rules
from ledger.categories import DEFAULT_CATEGORIES, Category, CategoryRegistry
from ledger.committer import Committer, Pending
from ledger.errors import LedgerError, LedgerUnavailable, MalformedTransaction, RuleViolation
from ledger.queries import LedgerQueries
from ledger.results import (
    Converted,
    Erasure,
    Identity,
    KeyShare,
    Patient,
    Permission,
    PublishedKey,
    Record,
)
from ledger.signatures import SignatureChecker
from ledger.state import SECONDARY_KEYS, Decision, Row
from ledger.waiters import Batch, Sink, Waiter
from ledger.wire.blocks import Receipt
from ledger.wire.builders import LedgerSigner, genesis as build_genesis
from ledger.wire.clock import Clock, format_time, parse_time, system_clock
from ledger.wire.transactions import Transaction

VERIFY_CHUNK = 128
"""`submit_many` checks signatures in chunks of this many, one chunk per core at a time."""


class Ledger(LedgerQueries):
    """One ledger database. Thread-safe; create with `Ledger.open`."""

    def __init__(
        self,
        engine: Engine,
        ledger_key: SigningKey,
        *,
        clock: Clock = system_clock,
        categories: CategoryRegistry | None = None,
        max_batch: int = 2000,
        verify_workers: int = 0,
    ) -> None:
        super().__init__(engine)
        self.signer = LedgerSigner(ledger_key)
        self.clock = clock
        self.categories = categories or CategoryRegistry(DEFAULT_CATEGORIES)
        self.max_batch = max_batch
        self._closed = False
        self._verifiers_lock = threading.Lock()
        self._verifier_pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._identities = Converted(Identity.from_row)
        self._patients = Converted(Patient.from_row)
        self._permissions = Converted(Permission.from_row)
        self._records = Converted(Record.from_row)
        self._key_shares = Converted(KeyShare.from_row)
        checker = SignatureChecker(verify_workers)
        try:
            self._committer = Committer(
                engine,
                self.signer,
                clock,
                self.categories,
                max_batch=max_batch,
                checker=checker,
            )
        except BaseException:
            checker.close()
            engine.dispose()
            raise
        self._committer.start()

    # --- opening and closing --------------------------------------------------------------

    @classmethod
    def open(
        cls,
        url: str,
        ledger_key: SigningKey,
        *,
        clock: Clock = system_clock,
        categories: Iterable[Category] | CategoryRegistry | None = None,
        create_schema: bool = False,
        max_batch: int = 2000,
        verify_workers: int = 0,
    ) -> Ledger:
        """Open the ledger at database *url*, signing blocks with *ledger_key*.

        *create_schema* runs the Alembic migrations first (what `alembic upgrade head`
        does); otherwise a database without the schema raises SchemaMissing.
        *verify_workers* > 0 checks the signatures of each batch in that many worker
        processes (plus the committer) instead of in each submitting thread: Ed25519 in
        `cryptography` holds the GIL, so only processes verify in parallel.
        """
        if create_schema:
            from ledger.migrate import upgrade

            upgrade(url)
        engine = database.open_engine(url)
        registry = (
            categories
            if isinstance(categories, CategoryRegistry)
            else CategoryRegistry(categories if categories is not None else DEFAULT_CATEGORIES)
        )
        return cls(
            engine,
            ledger_key,
            clock=clock,
            categories=registry,
            max_batch=max_batch,
            verify_workers=verify_workers,
        )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._committer.stop()
        self._committer.checker.close()
        if self._verifier_pool is not None:
            self._verifier_pool.shutdown(wait=True)
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def verify_key(self) -> VerifyKey:
        return self.signer.signing_key.verify_key

    def now(self) -> datetime:
        """The ledger's time: the clock's, but never earlier than the latest block's.

        A clock that jumps backwards can therefore neither move ledger time back nor make a
        right that had expired by the latest block valid again.
        """
        now = self.clock()
        last = self._committer.last_block
        if last is not None:
            latest = parse_time(last.timestamp)
            if now < latest:
                return latest
        return now

    def tree_size(self) -> int:
        return self._committer.size

    def follow(self, size: int) -> None:
        """If the database holds more than the *size* entries this process knows, or more
        than it knows at all: read what other processes appended (their state changes
        included) before the next lookup. Cheap when nothing is new."""
        self._committer.follow(size)

    def _known_size(self, conn: Connection, wanted: int | None) -> int:
        # This process's own size is enough when *wanted* is within it (its nodes are
        # durable); only a larger one asks the database, which another writer may extend.
        if wanted is not None and wanted <= self._committer.size:
            return wanted
        return super()._known_size(conn, wanted)

    # --- submitting ------------------------------------------------------------------------

    def bootstrap(self, admin: PublicIdentity) -> Receipt:
        """Write the genesis entry naming the first admin (an envelope.PublicIdentity)."""
        return self.submit(build_genesis(self.signer, admin, issued_at=self.clock()))

    def submit_future(
        self, tx: Transaction | dict[str, Any], *, capsule: bytes | None = None
    ) -> concurrent.futures.Future[Receipt]:
        """Queue *tx*; the future resolves to its Receipt once durable, or a RuleViolation."""
        future: concurrent.futures.Future[Receipt] = concurrent.futures.Future()
        self._enqueue(tx, capsule, future)
        return future

    def _enqueue(
        self, tx: Transaction | dict[str, Any], capsule: bytes | None, sink: Sink[Receipt]
    ) -> None:
        """Check what can be checked before the batch, then queue *tx* with its *sink*."""
        committer = self._committer
        try:
            if self._closed:
                raise LedgerUnavailable("the ledger is closed")
            if isinstance(tx, dict):
                tx = Transaction.from_json(tx)
            if committer.checker.workers == 0:
                # Verify where the key is already known, outside the commit lock.
                key = committer.signer_key(tx)
                if key is not None:
                    tx.verify_signature(key)
            if capsule is not None:
                _check_capsule(tx, capsule)
        except LedgerError as exc:
            sink.set_exception(exc)
            return
        committer.put(Pending(tx, capsule, sink))

    def submit(
        self,
        tx: Transaction | dict[str, Any],
        *,
        capsule: bytes | None = None,
        timeout: float | None = None,
    ) -> Receipt:
        """Append *tx* and wait until it is durable. Raises RuleViolation if refused.

        *capsule* (for `record` and `rekey`) is stored in the same database transaction;
        its SHA-256 must be the transaction's capsule_sha256.
        """
        waiter: Waiter[Receipt] = Waiter()
        self._enqueue(tx, capsule, waiter)
        return waiter.result(timeout)

    async def submit_async(
        self, tx: Transaction | dict[str, Any], *, capsule: bytes | None = None
    ) -> Receipt:
        return await asyncio.wrap_future(self.submit_future(tx, capsule=capsule))

    def submit_many(
        self, txs: Iterable[Transaction], *, timeout: float | None = None
    ) -> list[Receipt | RuleViolation]:
        """Submit several transactions at once; each result is a Receipt or its violation.

        Any other error (the ledger closed or its database failed) is raised, as `submit`
        raises it.
        """
        pending = list(txs)
        batch: Batch[Receipt] = Batch(len(pending))
        chunks = [
            range(start, min(start + VERIFY_CHUNK, len(pending)))
            for start in range(0, len(pending), VERIFY_CHUNK)
        ]
        if len(chunks) > 1 and self._committer.checker.workers == 0:
            # OpenSSL verifies with the GIL released: chunks are checked on every core, and
            # each is queued as soon as it is checked, in order, while the next ones are.
            checked: Iterable[None] = self._verifiers().map(
                self._verify_ahead, [pending[chunk.start : chunk.stop] for chunk in chunks]
            )
        else:
            checked = (None for _ in chunks)
        for chunk, _ in zip(chunks, checked, strict=True):
            for position in chunk:
                self._enqueue(pending[position], None, batch.slot(position))
        results: list[Receipt | RuleViolation] = []
        for outcome in batch.wait(timeout):
            if isinstance(outcome, Receipt | RuleViolation):
                results.append(outcome)
            else:
                raise outcome
        return results

    def _verify_ahead(self, txs: list[Transaction]) -> None:
        """Verify the signatures whose keys are known (a failure is left to `_enqueue`,
        which checks again and reports it)."""
        committer = self._committer
        for tx in txs:
            key = committer.signer_key(tx)
            if key is not None:
                with contextlib.suppress(LedgerError):
                    tx.verify_signature(key)

    def _verifiers(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._verifiers_lock:
            if self._verifier_pool is None:
                self._verifier_pool = concurrent.futures.ThreadPoolExecutor(
                    os.cpu_count() or 2, thread_name_prefix="ledger-verify"
                )
            return self._verifier_pool

    def precheck(self, tx: Transaction) -> None:
        """Raise the RuleViolation the rules would refuse *tx* with if it were committed now.

        Nothing is written. It answers from the in-memory state (never blocks) and is
        advisory: the committer applies the rules again, so a transaction that passes here
        is still refused if the state changes first (say, the right it needs is revoked).
        The gateway calls it before it stores anything a refused transaction would leave.
        """
        committer = self._committer
        rules.apply(committer.state.overlay(), tx, format_time(self.now()), committer.size)

    # --- in-memory lookups: never block ----------------------------------------------------

    def check(
        self,
        grantee: str,
        right: str,
        pseudonym: str,
        category: str,
        at: datetime | str | int | None = None,
    ) -> Decision:
        """May *grantee* use *right* on *category* records of *pseudonym* at *at* (default:
        `now()`, the ledger's time, which a clock jumping backwards does not move back)?

        The patient itself always may; a suspended grantee never may.
        """
        state = self._committer.state
        identity = state.get("identities", grantee)
        if identity is None:
            return Decision(False, f"{grantee!r} is not enrolled on this ledger")
        if identity["suspended_at"] is not None:
            return Decision(False, f"{grantee!r} is suspended")
        patient = state.get("patients", pseudonym)
        if patient is None:
            return Decision(False, f"pseudonym {pseudonym} is not registered")
        if patient["identity_id"] == grantee:
            return Decision(True, "the patient itself")
        return state.check(grantee, right, pseudonym, category, self.now() if at is None else at)

    def identity(self, identity_id: str) -> Identity | None:
        row = self._committer.state.get("identities", identity_id)
        return self._identities.get(identity_id, row)

    def is_suspended(self, identity_id: str) -> bool:
        row = self._committer.state.get("identities", identity_id)
        return row is not None and row["suspended_at"] is not None

    def patient(self, pseudonym: str) -> Patient | None:
        row = self._committer.state.get("patients", pseudonym)
        return self._patients.get(pseudonym, row)

    def permission(self, permission_id: str) -> Permission | None:
        row = self._committer.state.get("permissions", permission_id)
        return self._permissions.get(permission_id, row)

    def cached_record(self, record_id: str) -> Record | None:
        """A record from the in-memory state (`records_of` queries the database)."""
        row = self._committer.state.get("records", record_id)
        return self._records.get(record_id, row)

    def erasure(self, record_id: str) -> Erasure | None:
        """How a record was erased (None if it was not): from the in-memory state."""
        row = self._committer.state.get("erasures", record_id)
        return None if row is None else Erasure.from_row(row)

    def key_share(self, pseudonym: str, grantee: str) -> KeyShare | None:
        key = (pseudonym, grantee)
        return self._key_shares.get(key, self._committer.state.get("key_shares", key))

    def key_generation(self, pseudonym: str) -> tuple[int, int | None]:
        """The generation of *pseudonym*'s K (1 until it rotates) and the index of the
        publish_keys entry that started it (None for generation 1)."""
        row = self._committer.state.get("key_generations", pseudonym)
        return (1, None) if row is None else (int(row["generation"]), int(row["entry_index"]))

    def published_key(self, pseudonym: str, category: str, period: str) -> PublishedKey | None:
        """The published (category, month) key of *pseudonym*, if any."""
        row = self._committer.state.get("published_keys", (pseudonym, category, period))
        return PublishedKey.from_row(row) if row is not None else None

    def consent_row(self, table: str, key: Any) -> dict[str, Any] | None:
        """A row of a break-glass or study-export state table (kept in memory), as a copy."""
        if table not in _CONSENT_TABLES:
            raise ValueError(f"{table} is not a break-glass or study-export table")
        row = self._committer.state.get(table, key)
        return None if row is None else dict(row)

    def consent_rows(self, table: str, **equal: Any) -> list[dict[str, Any]]:
        """The rows of a break-glass or study-export state table whose columns have the
        values *equal* names (every row without), in log order."""
        if table not in _CONSENT_TABLES:
            raise ValueError(f"{table} is not a break-glass or study-export table")
        state = self._committer.state
        rows: list[Row]
        column = SECONDARY_KEYS.get(table)
        if column is not None and column in equal:  # the patient's or study's rows only
            found_keys = state.keys_by(table, equal[column])
            rows = [row for row in map(state.tables[table].get, found_keys) if row is not None]
        else:
            rows = list(state.tables[table].values())  # one step under the GIL
        found = [
            dict(row) for row in rows if all(row[name] == value for name, value in equal.items())
        ]
        return sorted(found, key=lambda row: int(row["entry_index"]))


_CONSENT_TABLES = frozenset({"break_glass_policies", "break_glass_sessions", "study_exports"})


def _check_capsule(tx: Transaction, capsule: bytes) -> None:
    if tx.type not in ("record", "rekey", "study_export"):
        raise MalformedTransaction(
            "only record, rekey and study_export transactions carry a capsule"
        )
    if hashlib.sha256(capsule).hexdigest() != tx.body.get("capsule_sha256"):
        raise MalformedTransaction(
            "the capsule's SHA-256 differs from body.capsule_sha256; send the capsule the "
            "transaction names",
            code="capsule-mismatch",
        )
