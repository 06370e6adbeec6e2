"""The group committer: the one thread of a `Ledger` that appends to the log.

`Ledger.submit` queues a `Pending` transaction. The committer takes everything queued (up
to `max_batch`), validates each transaction against the state evolved by the ones before
it — a rejected one gets its RuleViolation and is left out, the others go on — and writes
entries, subtree hashes, one signed block and the state changes in ONE database
transaction. Only after that commit does any caller get its `Receipt`.

The committer owns what this process knows of the log: the in-memory state (the permission
index and the rule-relevant tables), the Merkle frontier, the tree size and the latest
block, loaded from the database at open and updated after each durable commit; the
database stays the source of truth. A second process writing the same database is noticed
under the writer lock (the head moved) and followed by reading and re-deriving the entries
it appended.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import logging
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from envelope import EnvelopeError, b64decode
from ledger import database, merkle, rules, schema
from ledger.categories import CategoryRegistry
from ledger.errors import LedgerConflict, LedgerError, LedgerUnavailable, RuleViolation
from ledger.signatures import SignatureChecker
from ledger.state import Overlay, Row, State
from ledger.waiters import Sink
from ledger.wire.blocks import GENESIS_PREVIOUS_HASH, Block, Receipt
from ledger.wire.builders import LedgerSigner
from ledger.wire.clock import Clock, format_time
from ledger.wire.ids import LEDGER_ID
from ledger.wire.merkle import node_hash
from ledger.wire.transactions import Transaction

_STOP = object()
_ENTRY_COLUMNS = ("idx", "block_height", "tx_id", "tx_type", "signer", "tx", "leaf_hash")
_BLOCK_COLUMNS = (
    "height", "previous_hash", "tree_size", "root", "timestamp", "signature", "block_hash",
)  # fmt: skip
logger = logging.getLogger(__name__)

Outcome = list[tuple["Pending", Receipt | LedgerError]]


@dataclass(slots=True)
class Pending:
    """A submitted transaction (and its capsule) waiting for the committer."""

    tx: Transaction
    capsule: bytes | None
    future: Sink[Receipt]  # a Future, or a lighter Waiter for blocking callers


@dataclass(slots=True)
class _Plan:
    """One batch as prepared under the writer lock."""

    overlay: Overlay
    start: int
    accepted: list[tuple[Pending, int]] = field(default_factory=list)
    results: Outcome = field(default_factory=list)
    capsules: dict[str, bytes] = field(default_factory=dict)
    superseded: list[tuple[str, str]] = field(default_factory=list)  # (record id, capsule)
    nodes: dict[merkle.Node, bytes] = field(default_factory=dict)
    node_rows: list[tuple[int, int, bytes]] = field(default_factory=list)
    entry_rows: list[tuple[int, int, str, str, str, bytes, bytes]] = field(default_factory=list)
    frontier: dict[merkle.Node, bytes] = field(default_factory=dict)
    block: Block = field(default=None)  # type: ignore[assignment]


def _superseded(overlay: Overlay, tx: Transaction) -> tuple[str, str]:
    """(record id, the capsule it names now) of an accepted rekey, before it applies."""
    record_id = str(tx.body["record_id"])
    row = overlay.get("records", record_id)
    assert row is not None  # the rule accepted the rekey
    return record_id, str(row["capsule_sha256"])


def _current(overlay: Overlay, record_id: str) -> object:
    row = overlay.get("records", record_id)
    return None if row is None else row["capsule_sha256"]


def enclosed_key(tx: Transaction) -> bytes | None:
    """The key a self-signed transaction (genesis, register_patient) carries, if well formed."""
    try:
        if tx.type == "genesis":
            return b64decode(tx.body["ledger"]["signing_public_key"], length=32)
        return b64decode(tx.body["identity"]["signing_public_key"], length=32)
    except (KeyError, TypeError, EnvelopeError):
        return None  # malformed: the rules will say precisely what is wrong


class Committer:
    """The writer of one ledger database and this process's view of its log."""

    def __init__(
        self,
        engine: Engine,
        signer: LedgerSigner,
        clock: Clock,
        categories: CategoryRegistry,
        *,
        max_batch: int,
        checker: SignatureChecker,
    ) -> None:
        self.engine = engine
        self.signer = signer
        self.clock = clock
        self.categories = categories
        self.max_batch = max_batch
        self.checker = checker
        self.state = State(categories, keep_all_tables=False)
        self.frontier: dict[merkle.Node, bytes] = {}
        self.size = 0
        self.last_block: Block | None = None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._write_lock = threading.Lock()
        # Guards changes to the state, frontier, size and head: the committer's, and those
        # of readers catching up with other processes (`follow`), which never wait for the
        # committer's database transaction.
        self._state_lock = threading.RLock()
        self._shared = False  # True once another process was seen appending
        with engine.connect() as conn:
            self.reload(database.snapshot(conn))
            conn.rollback()
        self._thread = threading.Thread(target=self._run, name="ledger-committer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, pending: Pending) -> None:
        self._queue.put(pending)

    def stop(self) -> None:
        """Commit what is queued, then end the thread."""
        self._queue.put(_STOP)
        self._thread.join()

    def follow(self, size: int) -> None:
        """Catch up with entries other processes appended, if the log has more than ours."""
        if size <= self.size:
            return
        with self._state_lock:
            if size <= self.size:  # caught up meanwhile
                return
            self._follow_head()

    def _follow_head(self) -> None:
        """Read the head and catch up with it (the state lock is held)."""
        with self.engine.connect() as conn:
            # a snapshot: if the entries do not replay here, the state is reloaded from it
            _, current = database.read_head(database.snapshot(conn))
            if current > self.size:
                self._catch_up(conn, current)
            conn.rollback()

    def signer_key(self, tx: Transaction) -> bytes | None:
        """The key that must have signed *tx*, where the state already knows it."""
        if tx.type in ("genesis", "register_patient"):
            return enclosed_key(tx)
        row = self.state.get("identities", tx.signer)
        return None if row is None else rules.signing_key_bytes(row["signing_key"])

    def reload(self, conn: Connection) -> None:
        """(Re)build the in-memory state, frontier and head from the database."""
        state = State(self.categories, keep_all_tables=False)
        database.load_state(conn, state)
        height, size = database.read_head(conn)
        frontier_nodes = merkle.frontier_nodes(size)
        found = database.read_nodes(conn, frontier_nodes)
        self.state = state
        self.frontier = {n: found[n] for n in frontier_nodes}
        self.size = size
        self.last_block = database.read_block(conn, height) if height >= 0 else None
        ledger_row = state.get("identities", LEDGER_ID)
        if ledger_row is not None and b64decode(ledger_row["signing_key"]) != (
            self.signer.signing_key.verify_key.to_bytes()
        ):
            raise LedgerError(
                "this database was started by another ledger key; open it with the key "
                "named in its genesis entry"
            )

    # --- the thread --------------------------------------------------------------------------

    def _next_batch(self) -> tuple[list[Pending], bool]:
        """Wait for a submission, then take what else is queued: (batch, stop after it)."""
        item = self._queue.get()
        if item is _STOP:
            return [], True
        batch = [item]
        while len(batch) < self.max_batch:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                break
            if more is _STOP:
                return batch, True
            batch.append(more)
        return batch, False

    def _run(self) -> None:
        stop = False
        while not stop:
            batch, stop = self._next_batch()
            if not batch:
                continue
            try:
                self._commit_batch(batch)
            except Exception as exc:  # never let the committer die: callers would hang
                logger.exception("ledger commit failed unexpectedly")
                _fail(batch, LedgerUnavailable(f"the ledger failed to commit: {exc}"))

    def _commit_batch(self, batch: list[Pending]) -> None:
        with self._write_lock:
            try:
                with _collector_paused():
                    outcome = self._write(batch)
            except Exception as exc:  # the database failed: nothing of the batch is durable
                error = (
                    exc
                    if isinstance(exc, LedgerError)
                    else LedgerUnavailable(f"the ledger database failed: {exc}")
                )
                _fail(batch, error)
                return
        for pending, result in outcome:
            if isinstance(result, Receipt):
                pending.future.set_result(result)
            else:
                pending.future.set_exception(result)

    # --- one batch ---------------------------------------------------------------------------

    def _write(self, batch: list[Pending]) -> Outcome:
        if self._shared:
            # Another process appends too: read what it appended before taking the head's
            # lock, so that the lock is held only for the tail appended since.
            with self._state_lock:
                self._follow_head()
        with self.engine.connect() as conn:
            conn.execution_options(ledger_write=True)
            with conn.begin():
                plan = self._plan(conn, batch)
                if plan.accepted:
                    self._store(conn, plan)
        if not plan.accepted:
            return plan.results
        # Durable: make it visible in memory, then hand out receipts.
        with self._state_lock:
            if self.size == plan.start:
                self.state.absorb(plan.overlay.changes)
                self.frontier = plan.frontier
                self.size = plan.block.tree_size
                self.last_block = plan.block
            # else a reader following the database replayed this very block already.
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

    def _plan(self, conn: Connection, batch: list[Pending]) -> _Plan:
        """Under the writer lock: validate the batch and build the block and its rows."""
        _, size = database.lock_head(conn)
        # Holding the head's row lock, no one can append: once caught up, the state stays
        # as it is until this transaction ends (a reader's follow finds nothing new).
        with self._state_lock:
            if size != self.size:
                self._catch_up(conn, size)
        last = self.last_block
        now = format_time(self.clock())
        if last is not None and now < last.timestamp:
            now = last.timestamp  # block times never go backwards
        plan = _Plan(self.state.overlay(), start=self.size)
        self._check_signatures(batch)
        next_index = self.size
        for pending in batch:
            try:
                changes = rules.apply(plan.overlay, pending.tx, now, next_index)
            except RuleViolation as exc:
                plan.results.append((pending, exc))
                continue
            if pending.tx.type == "rekey":
                plan.superseded.append(_superseded(plan.overlay, pending.tx))
            plan.overlay.evolve(changes)
            if pending.capsule is not None:
                plan.capsules[hashlib.sha256(pending.capsule).hexdigest()] = pending.capsule
            plan.accepted.append((pending, next_index))
            next_index += 1
        if plan.accepted:
            self._build_block(plan, now)
        return plan

    def _build_block(self, plan: _Plan, now: str) -> None:
        """The accepted entries' rows, the subtree hashes they complete, the signed block."""
        last = self.last_block
        height = (last.height + 1) if last is not None else 0
        nodes = plan.nodes = dict(self.frontier)
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
        size = plan.accepted[-1][1] + 1
        plan.frontier = {n: nodes[n] for n in merkle.frontier_nodes(size)}
        plan.block = Block.signed(
            self.signer.signing_key,
            height=height,
            previous_hash=last.block_hash if last is not None else GENESIS_PREVIOUS_HASH,
            tree_size=size,
            root=merkle.root_from_frontier(list(plan.frontier.values())),
            timestamp=now,
        )

    def _check_signatures(self, batch: list[Pending]) -> None:
        """Verify the batch's signatures whose keys are known, all at once; the rules then
        skip them (a failure is left for the rules, which report it)."""
        todo: list[tuple[Transaction, bytes]] = []
        for pending in batch:
            tx = pending.tx
            key = self.signer_key(tx)
            if key is not None and not tx.is_verified_with(key):
                todo.append((tx, key))
        if not todo:
            return
        results = self.checker.check([(key, tx.signed_bytes(), tx.signature) for tx, key in todo])
        for (tx, key), valid in zip(todo, results, strict=True):
            if valid:
                tx._mark_verified(key)

    def _store(self, conn: Connection, plan: _Plan) -> None:
        block = plan.block
        database.insert_tuples(conn, schema.entries, _ENTRY_COLUMNS, plan.entry_rows)
        database.insert_tuples(conn, schema.nodes, ("level", "idx", "hash"), plan.node_rows)
        database.insert_tuples(
            conn,
            schema.blocks,
            _BLOCK_COLUMNS,
            [
                (
                    block.height,
                    block.previous_hash,
                    block.tree_size,
                    block.root,
                    block.timestamp,
                    block.signature,
                    block.block_hash,
                )
            ],
        )
        inserts, updates = _split_state_writes(plan.overlay)
        database.write_state_rows(conn, inserts, updates)
        database.insert_capsules(conn, plan.capsules)
        # A rekey replaces the capsule: the old one (which the leaked key may open) goes in
        # the same database transaction, unless the record still names it.
        database.delete_capsules(
            conn,
            {sha for record_id, sha in plan.superseded if _current(plan.overlay, record_id) != sha},
        )
        if not database.move_head(conn, self.size, block.height, block.tree_size):
            raise LedgerConflict("another writer moved the ledger head during this commit")

    def _catch_up(self, conn: Connection, size: int) -> None:
        """Another process appended entries: derive their state and move our head."""
        self._shared = True
        if size < self.size:
            raise LedgerConflict(
                f"the database's ledger has {size} entries but this process knew {self.size}"
            )
        # Replay only the new entries, each under its block's time; their rows in the
        # state tables were written by the other process in the same transactions.
        first_height = self.last_block.height + 1 if self.last_block is not None else 0
        t = schema.blocks
        new_blocks = [
            database.block_from_row(r)
            for r in conn.execute(
                sa.select(t)
                .where(t.c.height >= first_height, t.c.tree_size <= size)
                .order_by(t.c.height)
            )
        ]
        times = {block.height: block.timestamp for block in new_blocks}
        try:
            for index, height, encoded, _ in database.iter_entries(conn, self.size, size):
                tx = Transaction.from_bytes(encoded)
                self.state.absorb([rules.apply(self.state, tx, times[height], index)])
        except (RuleViolation, KeyError) as exc:
            # The other writer's entries do not replay here (say, another category
            # registry): fall back to loading the state tables as they are.
            logger.warning("catching up by reloading the state: %s", exc)
            self.reload(conn)
            return
        frontier = merkle.frontier_nodes(size)
        found = database.read_nodes(conn, frontier)
        self.frontier = {n: found[n] for n in frontier}
        self.size = size
        self.last_block = new_blocks[-1] if new_blocks else self.last_block


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic collector off while one batch is planned and written.

    A batch allocates a few dozen container objects per entry (rows, tuples, receipts), so
    the collector would run every few dozen entries, and each of its older-generation passes
    walks the whole heap (the state, the caller's pending transactions): measured, about
    half of an append's CPU. Paused, it runs once after the batch, over what the batch left.
    Nothing here makes reference cycles; if the collector was already off, it stays off.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _fail(batch: list[Pending], error: Exception) -> None:
    for pending in batch:
        if not pending.future.done():
            pending.future.set_exception(error)


def _split_state_writes(overlay: Overlay) -> tuple[dict[str, list[Row]], dict[str, list[Row]]]:
    inserts: dict[str, list[Row]] = {}
    updates: dict[str, list[Row]] = {}
    for table, rows in overlay.pending.items():
        for key, row in rows.items():
            target = updates if overlay.existed_before(table, key) else inserts
            target.setdefault(table, []).append(row)
    return inserts, updates
