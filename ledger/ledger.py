"""The `Ledger` facade: open a database, submit transactions, read proofs and state.

Submissions are group-committed. `submit` checks the transaction's form and signature in
the caller's thread (outside any lock), then queues it for the single committer thread.
The committer takes everything queued (up to `max_batch`), validates each transaction
against the state evolved by the ones before it — a rejected one gets its RuleViolation and
is left out, the others go on — and writes entries, subtree hashes, one signed block and the
state changes in ONE database transaction. Only after that commit does any caller get its
`Receipt`.

The permission index and the rule-relevant state tables live in memory, loaded from the
database at open and updated after each durable commit; the database stays the source of
truth. A second process writing the same database is noticed under the writer lock (the
head moved) and followed by reading and re-deriving the entries it appended.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import hashlib
import json
import logging
import queue
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from envelope import EnvelopeError, PublicIdentity, SigningKey, VerifyKey, b64decode
from ledger import database, merkle, rules, schema
from ledger.categories import DEFAULT_CATEGORIES, Category, CategoryRegistry
from ledger.errors import (
    LedgerConflict,
    LedgerError,
    LedgerUnavailable,
    MalformedTransaction,
    NotFound,
    RuleViolation,
)
from ledger.signatures import SignatureChecker
from ledger.state import Decision, Overlay, Row, State
from ledger.wire.blocks import GENESIS_PREVIOUS_HASH, Block, Entry, Receipt
from ledger.wire.builders import LedgerSigner, genesis as build_genesis
from ledger.wire.clock import Clock, format_time, parse_time, system_clock
from ledger.wire.ids import LEDGER_ID
from ledger.wire.merkle import node_hash
from ledger.wire.transactions import Transaction

_STOP = object()
_ENTRY_COLUMNS = ("idx", "block_height", "tx_id", "tx_type", "signer", "tx", "leaf_hash")
_STATE_TABLE_NAMES = {table.name: name for name, table in schema.STATE_TABLES.items()}
logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Pending:
    tx: Transaction
    capsule: bytes | None
    future: concurrent.futures.Future[Receipt]


@dataclass(slots=True)
class _Plan:
    """One batch as prepared under the writer lock."""

    overlay: Overlay
    accepted: list[tuple[_Pending, int]] = field(default_factory=list)
    results: list[tuple[_Pending, Receipt | LedgerError]] = field(default_factory=list)
    capsules: dict[str, bytes] = field(default_factory=dict)
    nodes: dict[merkle.Node, bytes] = field(default_factory=dict)
    node_rows: list[tuple[int, int, bytes]] = field(default_factory=list)
    entry_rows: list[tuple[int, int, str, str, str, bytes, bytes]] = field(default_factory=list)
    frontier: dict[merkle.Node, bytes] = field(default_factory=dict)
    block: Block = field(default=None)  # type: ignore[assignment]


class Ledger:
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
        self.engine = engine
        self._checker = SignatureChecker(verify_workers)
        self.signer = LedgerSigner(ledger_key)
        self.clock = clock
        self.categories = categories or CategoryRegistry(DEFAULT_CATEGORIES)
        self.max_batch = max_batch
        self._state = State(self.categories, keep_all_tables=False)
        self._frontier: dict[merkle.Node, bytes] = {}
        self._size = 0
        self._last_block: Block | None = None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._write_lock = threading.Lock()
        try:
            with engine.connect() as conn:
                self._reload(conn)
                conn.rollback()
        except BaseException:
            self._checker.close()
            engine.dispose()
            raise
        self._committer = threading.Thread(
            target=self._run_committer, name="ledger-committer", daemon=True
        )
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
        engine = database.create_engine(url)
        try:
            database.check_schema(engine)
        except LedgerError:
            engine.dispose()
            raise
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
        self._queue.put(_STOP)
        self._committer.join()
        self._checker.close()
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
        last = self._last_block
        if last is not None:
            latest = parse_time(last.timestamp)
            if now < latest:
                return latest
        return now

    def _reload(self, conn: Connection) -> None:
        """(Re)build the in-memory state, frontier and head from the database."""
        state = State(self.categories, keep_all_tables=False)
        database.load_state(conn, state)
        height, size = database.read_head(conn)
        frontier_nodes = merkle.frontier_nodes(size)
        found = database.read_nodes(conn, frontier_nodes)
        self._state = state
        self._frontier = {n: found[n] for n in frontier_nodes}
        self._size = size
        self._last_block = database.read_block(conn, height) if height >= 0 else None
        ledger_row = state.get("identities", LEDGER_ID)
        if ledger_row is not None and b64decode(ledger_row["signing_key"]) != (
            self.verify_key.to_bytes()
        ):
            raise LedgerError(
                "this database was started by another ledger key; open it with the key "
                "named in its genesis entry"
            )

    # --- submitting ------------------------------------------------------------------------

    def bootstrap(self, admin: PublicIdentity) -> Receipt:
        """Write the genesis entry naming the first admin (an envelope.PublicIdentity)."""
        return self.submit(build_genesis(self.signer, admin, issued_at=self.clock()))

    def _precheck(self, tx: Transaction) -> None:
        """Verify the signature where the key is already known, outside the commit lock."""
        if tx.type in ("genesis", "register_patient"):
            key = _enclosed_key(tx)
        else:
            row = self._state.get("identities", tx.signer)
            key = None if row is None else rules.signing_key_bytes(row["signing_key"])
        if key is not None:
            tx.verify_signature(key)

    def submit_future(
        self, tx: Transaction | dict[str, Any], *, capsule: bytes | None = None
    ) -> concurrent.futures.Future[Receipt]:
        """Queue *tx*; the future resolves to its Receipt once durable, or a RuleViolation."""
        future: concurrent.futures.Future[Receipt] = concurrent.futures.Future()
        try:
            if self._closed:
                raise LedgerUnavailable("the ledger is closed")
            if isinstance(tx, dict):
                tx = Transaction.from_json(tx)
            if self._checker.workers == 0:
                self._precheck(tx)
            if capsule is not None:
                _check_capsule(tx, capsule)
        except LedgerError as exc:
            future.set_exception(exc)
            return future
        self._queue.put(_Pending(tx, capsule, future))
        return future

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
        return self.submit_future(tx, capsule=capsule).result(timeout)

    async def submit_async(
        self, tx: Transaction | dict[str, Any], *, capsule: bytes | None = None
    ) -> Receipt:
        return await asyncio.wrap_future(self.submit_future(tx, capsule=capsule))

    def submit_many(
        self, txs: Iterable[Transaction], *, timeout: float | None = None
    ) -> list[Receipt | RuleViolation]:
        """Submit several transactions at once; each result is a Receipt or its violation."""
        futures = [self.submit_future(tx) for tx in txs]
        results: list[Receipt | RuleViolation] = []
        for future in futures:
            try:
                results.append(future.result(timeout))
            except RuleViolation as exc:
                results.append(exc)
        return results

    # --- the committer ---------------------------------------------------------------------

    def _run_committer(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stop = True
                    break
                batch.append(more)
            try:
                self._commit_batch(batch)
            except Exception as exc:  # never let the committer die: callers would hang
                logger.exception("ledger commit failed unexpectedly")
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(
                            LedgerUnavailable(f"the ledger failed to commit: {exc}")
                        )
            if stop:
                return

    def _commit_batch(self, batch: list[_Pending]) -> None:
        with self._write_lock:
            try:
                outcome = self._write(batch)
            except Exception as exc:  # the database failed: nothing of the batch is durable
                error = (
                    exc
                    if isinstance(exc, LedgerError)
                    else LedgerUnavailable(f"the ledger database failed: {exc}")
                )
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(error)
                return
        for pending, result in outcome:
            if isinstance(result, Receipt):
                pending.future.set_result(result)
            else:
                pending.future.set_exception(result)

    def _write(self, batch: list[_Pending]) -> list[tuple[_Pending, Receipt | LedgerError]]:
        with self.engine.connect() as conn:
            conn.execution_options(ledger_write=True)
            with conn.begin():
                plan = self._plan(conn, batch)
                if plan.accepted:
                    self._store(conn, plan)
        if not plan.accepted:
            return plan.results
        # Durable: make it visible in memory, then hand out receipts.
        self._state.absorb(plan.overlay.changes)
        self._frontier = plan.frontier
        self._size = plan.block.tree_size
        self._last_block = plan.block
        nodes = plan.nodes

        def lookup(level: int, i: int) -> bytes:
            return nodes[(level, i)]

        # Proofs are made lazily, in the callers' threads, sharing the batch's right-edge
        # hashes: the committer goes straight on to the next batch.
        memo: dict[tuple[int, int], bytes] = {}
        size = plan.block.tree_size
        for pending, index in plan.accepted:
            make = functools.partial(merkle.inclusion_proof, index, size, lookup, memo)
            plan.results.append((pending, Receipt(index, pending.tx.tx_hash, plan.block, make)))
        return plan.results

    def _plan(self, conn: Connection, batch: list[_Pending]) -> _Plan:
        """Under the writer lock: validate the batch and build the block and its rows."""
        _, size = database.lock_head(conn)
        if size != self._size:
            self._catch_up(conn, size)
        last = self._last_block
        now = format_time(self.clock())
        if last is not None and now < last.timestamp:
            now = last.timestamp  # block times never go backwards
        plan = _Plan(self._state.overlay())
        self._check_signatures(batch)
        next_index = self._size
        for pending in batch:
            try:
                changes = rules.apply(plan.overlay, pending.tx, now, next_index)
            except RuleViolation as exc:
                plan.results.append((pending, exc))
                continue
            plan.overlay.evolve(changes)
            if pending.capsule is not None:
                plan.capsules[hashlib.sha256(pending.capsule).hexdigest()] = pending.capsule
            plan.accepted.append((pending, next_index))
            next_index += 1
        if not plan.accepted:
            return plan
        height = (last.height + 1) if last is not None else 0
        nodes = plan.nodes = dict(self._frontier)
        node_rows, entry_rows = plan.node_rows, plan.entry_rows
        for pending, index in plan.accepted:
            tx = pending.tx
            leaf = tx.leaf_hash
            nodes[(0, index)] = leaf
            node_rows.append((0, index, leaf))
            for level, i in merkle.completed_nodes(index):
                value = node_hash(nodes[(level - 1, 2 * i)], nodes[(level - 1, 2 * i + 1)])
                nodes[(level, i)] = value
                node_rows.append((level, i, value))
            entry_rows.append(
                (index, height, tx.body["tx_id"], tx.type, tx.signer, tx.encoded, leaf)
            )
        plan.frontier = {n: nodes[n] for n in merkle.frontier_nodes(next_index)}
        plan.block = Block.signed(
            self.signer.signing_key,
            height=height,
            previous_hash=last.block_hash if last is not None else GENESIS_PREVIOUS_HASH,
            tree_size=next_index,
            root=merkle.root_from_frontier(list(plan.frontier.values())),
            timestamp=now,
        )
        return plan

    def _check_signatures(self, batch: list[_Pending]) -> None:
        """Verify the batch's signatures whose keys are known, all at once; the rules then
        skip them (a failure is left for the rules, which report it)."""
        todo: list[tuple[Transaction, bytes]] = []
        for pending in batch:
            tx = pending.tx
            if tx.type in ("genesis", "register_patient"):
                key = _enclosed_key(tx)
            else:
                row = self._state.get("identities", tx.signer)
                key = None if row is None else rules.signing_key_bytes(row["signing_key"])
            if key is not None and not tx.is_verified_with(key):
                todo.append((tx, key))
        if not todo:
            return
        results = self._checker.check([(key, tx.signed_bytes(), tx.signature) for tx, key in todo])
        for (tx, key), valid in zip(todo, results, strict=True):
            if valid:
                tx._mark_verified(key)

    def _store(self, conn: Connection, plan: _Plan) -> None:
        block = plan.block
        database.insert_tuples(conn, schema.entries, _ENTRY_COLUMNS, plan.entry_rows)
        database.insert_tuples(conn, schema.nodes, ("level", "idx", "hash"), plan.node_rows)
        conn.execute(
            schema.blocks.insert(),
            [
                {
                    "height": block.height,
                    "previous_hash": block.previous_hash,
                    "tree_size": block.tree_size,
                    "root": block.root,
                    "timestamp": block.timestamp,
                    "signature": block.signature,
                    "block_hash": block.block_hash,
                }
            ],
        )
        inserts, updates = _split_state_writes(plan.overlay)
        database.write_state_rows(conn, inserts, updates)
        database.insert_capsules(conn, plan.capsules)
        updated = conn.execute(
            schema.head.update()
            .where(schema.head.c.id == 1, schema.head.c.tree_size == self._size)
            .values(height=block.height, tree_size=block.tree_size)
        )
        if updated.rowcount != 1:
            raise LedgerConflict("another writer moved the ledger head during this commit")

    def _catch_up(self, conn: Connection, size: int) -> None:
        """Another process appended entries: derive their state and move our head."""
        if size < self._size:
            raise LedgerConflict(
                f"the database's ledger has {size} entries but this process knew {self._size}"
            )
        # Replay only the new entries, each under its block's time; their rows in the
        # state tables were written by the other process in the same transactions.
        first_height = self._last_block.height + 1 if self._last_block is not None else 0
        t = schema.blocks
        new_blocks = [
            database.block_from_row(r)
            for r in conn.execute(
                sa.select(t).where(t.c.height >= first_height).order_by(t.c.height)
            )
        ]
        times = {block.height: block.timestamp for block in new_blocks}
        try:
            for index, height, encoded, _ in database.iter_entries(conn, self._size, size):
                tx = Transaction.from_bytes(encoded)
                self._state.absorb([rules.apply(self._state, tx, times[height], index)])
        except (RuleViolation, KeyError) as exc:
            # The other writer's entries do not replay here (say, another category
            # registry): fall back to loading the state tables as they are.
            logger.warning("catching up by reloading the state: %s", exc)
            self._reload(conn)
            return
        frontier = merkle.frontier_nodes(size)
        found = database.read_nodes(conn, frontier)
        self._frontier = {n: found[n] for n in frontier}
        self._size = size
        self._last_block = new_blocks[-1] if new_blocks else self._last_block

    # --- reading the log -------------------------------------------------------------------

    def head(self) -> Block | None:
        """The latest signed tree head (None before genesis)."""
        with self.engine.connect() as conn:
            height, _ = database.read_head(conn)
            return database.read_block(conn, height) if height >= 0 else None

    def block(self, height: int) -> Block:
        with self.engine.connect() as conn:
            block = database.read_block(conn, height)
        if block is None:
            raise NotFound(f"no block at height {height}")
        return block

    def blocks(self, start: int = 0, limit: int = 100) -> list[Block]:
        t = schema.blocks
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t).where(t.c.height >= start).order_by(t.c.height).limit(limit)
            ).all()
        return [database.block_from_row(r) for r in rows]

    def entries(self, start: int = 0, limit: int = 100) -> list[Entry]:
        with self.engine.connect() as conn:
            return database.read_entries(conn, start, limit)

    def entry(self, index: int) -> Entry:
        found = self.entries(index, 1)
        if not found:
            raise NotFound(f"no entry at index {index}")
        return found[0]

    def _known_size(self, conn: Connection, wanted: int | None) -> int:
        """The tree size to prove against: *wanted* if the log has it, else the head's.

        This process's own size is enough when *wanted* is within it (its nodes are durable);
        only a larger one asks the database, which another writer may have extended.
        """
        if wanted is not None and wanted <= self._size:
            return wanted
        current = database.read_head(conn)[1]
        return current if wanted is None else (wanted if wanted <= current else -1)

    def inclusion_proof(self, index: int, tree_size: int | None = None) -> list[bytes]:
        """The inclusion proof of entry *index* in the tree of *tree_size* (default: now)."""
        with self.engine.connect() as conn:
            size = self._known_size(conn, tree_size)
            if not 0 <= index < size:
                raise NotFound(
                    f"entry {index} is not in a tree of {tree_size or size} entries on this log"
                )
            wanted = merkle.proof_nodes_inclusion(index, size)
            found = database.read_nodes(conn, wanted)
        return merkle.inclusion_proof(index, size, lambda lv, i: found[(lv, i)])

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """The consistency proof from *old_size* to *new_size* (default: now)."""
        with self.engine.connect() as conn:
            size = self._known_size(conn, new_size)
            if not 0 < old_size <= size:
                raise NotFound(
                    f"no consistency proof from {old_size} to {new_size or size} on this log"
                )
            wanted = merkle.proof_nodes_consistency(old_size, size)
            found = database.read_nodes(conn, wanted)
        return merkle.consistency_proof(old_size, size, lambda lv, i: found[(lv, i)])

    def receipt(self, index: int) -> Receipt:
        """A receipt for an existing entry against the current head."""
        block = self.head()
        if block is None or index >= block.tree_size:
            raise NotFound(f"no entry at index {index}")
        entry = self.entry(index)
        proof = self.inclusion_proof(index, block.tree_size)
        return Receipt(index, entry.tx.tx_hash, block, tuple(proof))

    # --- state queries ---------------------------------------------------------------------

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
        identity = self._state.get("identities", grantee)
        if identity is None:
            return Decision(False, f"{grantee!r} is not enrolled on this ledger")
        if identity["suspended_at"] is not None:
            return Decision(False, f"{grantee!r} is suspended")
        patient = self._state.get("patients", pseudonym)
        if patient is None:
            return Decision(False, f"pseudonym {pseudonym} is not registered")
        if patient["identity_id"] == grantee:
            return Decision(True, "the patient itself")
        return self._state.check(
            grantee, right, pseudonym, category, self.now() if at is None else at
        )

    def identity(self, identity_id: str) -> Row | None:
        row = self._state.get("identities", identity_id)
        return None if row is None else dict(row)

    def is_suspended(self, identity_id: str) -> bool:
        row = self._state.get("identities", identity_id)
        return row is not None and row["suspended_at"] is not None

    def patient(self, pseudonym: str) -> Row | None:
        row = self._state.get("patients", pseudonym)
        return None if row is None else dict(row)

    def patients_of(self, identity_id: str) -> list[Row]:
        return self._select(schema.patients, schema.patients.c.identity_id == identity_id)

    def permission(self, permission_id: str) -> Row | None:
        row = self._state.get("permissions", permission_id)
        return None if row is None else dict(row)

    def permissions_for(
        self, pseudonym: str, grantee: str | None = None, *, include_revoked: bool = False
    ) -> list[Row]:
        t = schema.permissions
        where = [t.c.pseudonym == pseudonym]
        if grantee is not None:
            where.append(t.c.grantee == grantee)
        if not include_revoked:
            where.append(t.c.revoked_at.is_(None))
        return self._select(t, *where, order=t.c.granted_at)

    def records(self, pseudonym: str, category: str | None = None) -> list[Row]:
        t = schema.records
        where = [t.c.pseudonym == pseudonym]
        if category is not None:
            where.append(t.c.category == category)
        return [_record_out(r) for r in self._select(t, *where, order=t.c.entry_index)]

    def record(self, record_id: str) -> Row | None:
        row = self._state.get("records", record_id)
        return None if row is None else _record_out(row)

    def capsule(self, sha256: str) -> bytes | None:
        t = schema.capsules
        with self.engine.connect() as conn:
            data = conn.execute(sa.select(t.c.data).where(t.c.sha256 == sha256)).scalar()
        return None if data is None else bytes(data)

    def delete_capsule(self, sha256: str) -> bool:
        """Erase a capsule's bytes (crypto-shredding); its hash stays on the log."""
        t = schema.capsules
        with self.engine.begin() as conn:
            return bool(conn.execute(t.delete().where(t.c.sha256 == sha256)).rowcount)

    def key_share(self, pseudonym: str, grantee: str) -> Row | None:
        row = self._state.get("key_shares", (pseudonym, grantee))
        return None if row is None else dict(row)

    def access_history(self, pseudonym: str, limit: int = 1000) -> list[Row]:
        t = schema.access_events
        return self._select(t, t.c.pseudonym == pseudonym, order=t.c.entry_index, limit=limit)

    def access_requests(self, pseudonym: str) -> list[Row]:
        t = schema.access_requests
        return self._select(t, t.c.pseudonym == pseudonym, order=t.c.entry_index)

    def tree_size(self) -> int:
        return self._size

    def _select(
        self, table: sa.Table, *where: Any, order: Any = None, limit: int | None = None
    ) -> list[Row]:
        """Rows of a state table, normalised as the in-memory state has them."""
        name = _STATE_TABLE_NAMES[table.name]
        query = sa.select(table).where(*where)
        if order is not None:
            query = query.order_by(order)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [database.normalise(name, r) for r in conn.execute(query)]


def _record_out(row: Row) -> Row:
    out = dict(row)
    out["locators"] = json.loads(row["locators"])
    return out


def _enclosed_key(tx: Transaction) -> bytes | None:
    """The key a self-signed transaction (genesis, register_patient) carries, if well formed."""
    try:
        if tx.type == "genesis":
            return b64decode(tx.body["ledger"]["signing_public_key"], length=32)
        return b64decode(tx.body["identity"]["signing_public_key"], length=32)
    except (KeyError, TypeError, EnvelopeError):
        return None  # malformed: the rules will say precisely what is wrong


def _check_capsule(tx: Transaction, capsule: bytes) -> None:
    if tx.type not in ("record", "rekey"):
        raise MalformedTransaction("only record and rekey transactions carry a capsule")
    if hashlib.sha256(capsule).hexdigest() != tx.body.get("capsule_sha256"):
        raise MalformedTransaction(
            "the capsule's SHA-256 differs from body.capsule_sha256; send the capsule the "
            "transaction names",
            code="capsule-mismatch",
        )


def _split_state_writes(overlay: Overlay) -> tuple[dict[str, list[Row]], dict[str, list[Row]]]:
    inserts: dict[str, list[Row]] = {}
    updates: dict[str, list[Row]] = {}
    for table, rows in overlay.pending.items():
        for key, row in rows.items():
            target = updates if overlay.existed_before(table, key) else inserts
            target.setdefault(table, []).append(row)
    return inserts, updates
