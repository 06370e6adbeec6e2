"""Offline verification of a whole ledger: signatures, rules, hash chain, Merkle tree, state.

`verify(source)` reads every entry and block once, in order, and checks:

* each entry is well formed, in canonical JSON, at the next index, in the block it names;
* its transaction passes the rules against the state replayed so far — this re-verifies
  every signature against the key the log itself enrolled, and refuses replays;
* each block links to the hash of the previous one, is signed by the ledger key named in
  the genesis entry (or the key the caller trusts), has non-decreasing time, and its root
  equals the root recomputed from the entries;
* the stored per-entry leaf hash (when the source has one) matches the transaction, so a
  changed or moved entry is named itself and not only the block that covers it;
* the state tables (when the source has them) equal the state rebuilt by the replay;
* the stored capsules (when the source has them) hash to their keys, each record's current
  capsule is stored and no stored capsule is foreign to the log (`ledger.capsule_check`);
  an erased record's capsules must be gone, and the report names every erased record.

The report names the first damage of the log or state and what is wrong with it, and every
damaged capsule.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple, Protocol

from envelope import EnvelopeError, InvalidSignature, VerifyKey, b64decode
from ledger import merkle, rules
from ledger.capsule_check import check_capsules
from ledger.categories import DEFAULT_CATEGORIES, CategoryRegistry
from ledger.errors import MalformedExport, RuleViolation
from ledger.report import Damage, VerifyReport
from ledger.state import Changes, Key, Row, State, row_columns, row_key, state_digest
from ledger.state_tables import STATE_TABLES
from ledger.wire.blocks import GENESIS_PREVIOUS_HASH, Block
from ledger.wire.merkle import node_hash
from ledger.wire.transactions import Transaction


class SourceEntry(NamedTuple):
    """An entry as a verification source yields it (a tuple: one is made per entry)."""

    position: int  # the entry's index on the log
    block: int
    tx: bytes | dict[str, Any]
    stored_leaf_hash: bytes | None = None


class LedgerSource(Protocol):
    """Where verification reads a ledger from (a database, a gateway's export, files)."""

    def entries(self) -> Iterator[SourceEntry]: ...

    def blocks(self) -> Iterator[Block]: ...

    def entry_count(self) -> int | None: ...

    def head(self) -> tuple[int, int] | None:
        """(height, tree size) the source claims, if it records one."""
        ...

    def state_tables(self) -> Mapping[str, Iterable[Row]] | None:
        """The stored state tables, or None when the source has none (an export)."""
        ...

    def capsules(self) -> Iterable[tuple[str, bytes]] | None:
        """The stored capsules (key, bytes), streamed; None when the source has none."""
        ...

    def close(self) -> None: ...


class _Found(Exception):
    def __init__(self, damage: Damage) -> None:
        self.damage = damage


def _entry_damage(index: int, problem: str) -> _Found:
    return _Found(Damage("entry", f"entry {index}", problem))


def _block_damage(height: int, problem: str) -> _Found:
    return _Found(Damage("block", f"block {height}", problem))


def verify(
    source: LedgerSource,
    *,
    ledger_key: VerifyKey | None = None,
    categories: CategoryRegistry | None = None,
    replay: bool = True,
    progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Check everything *source* holds; see the module docstring.

    *ledger_key*: the key the caller trusts; without it the key in the genesis entry is
    used (and reported, so it can be compared with one published elsewhere).
    *replay=False* checks only the tree, the chain and the block signatures.
    """
    started = time.perf_counter()
    report = VerifyReport()
    state = State(categories or CategoryRegistry(DEFAULT_CATEGORIES), keep_all_tables=True)
    try:
        _verify_log(source, report, state, ledger_key, replay, progress)
        if replay:
            report.state_digest = state.digest()
            report.state = state
            report.erased = sorted(
                (int(row["entry_index"]), str(row["record_id"]))
                for row in state.tables["erasures"].values()
            )
            stored = source.state_tables()
            if stored is not None:
                _compare_state(stored, state)
                report.state_compared = True
        _check_capsules(source, report, state if replay else None)
    except _Found as found:
        report.damage = found.damage
    except MalformedExport as exc:
        report.damage = Damage("source", "the export", str(exc))
    report.seconds = time.perf_counter() - started
    return report


def _check_capsules(source: LedgerSource, report: VerifyReport, state: State | None) -> None:
    """Check the source's stored capsules, against the replayed records when there are."""
    rows = source.capsules()
    if rows is None:
        return
    records = None if state is None else state.tables["records"]
    erased = None if state is None else state.tables["erasures"]
    exports = None if state is None else state.tables["study_exports"]
    found = check_capsules(rows, records, report.named_capsules, erased, exports=exports)
    report.capsules_checked = found.checked
    report.capsule_damage = found.damage
    report.notes = found.notes


def _verify_log(
    source: LedgerSource,
    report: VerifyReport,
    state: State,
    trusted_key: VerifyKey | None,
    replay: bool,
    progress: Callable[[int], None] | None,
) -> None:
    blocks = source.blocks()
    entries = source.entries()
    try:
        _walk(report, state, trusted_key, replay, progress, blocks, entries)
    finally:
        # Close sources' generators now, so that a database connection held by a
        # half-read page goes back before the caller closes the source.
        for iterator in (entries, blocks):
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
    head = source.head()
    if head is not None:
        height, size = head
        last_height = report.blocks - 1
        if (height, size) != (last_height, report.entries):
            raise _Found(
                Damage(
                    "head",
                    "ledger head",
                    f"records block {height} / {size} entries but the log has block "
                    f"{last_height} / {report.entries} entries",
                )
            )


def _walk(
    report: VerifyReport,
    state: State,
    trusted_key: VerifyKey | None,
    replay: bool,
    progress: Callable[[int], None] | None,
    blocks: Iterator[Block],
    entries: Iterator[SourceEntry],
) -> None:
    block = next(blocks, None)
    previous: Block | None = None
    block_start = 0
    key = trusted_key
    stack: list[tuple[int, bytes]] = []  # complete subtrees (size, hash), left to right
    expected = 0
    for entry in entries:
        index = entry.position
        if index != expected or block is None or entry.block != block.height:
            raise _misplaced(entry, expected, block)
        if replay or index == 0 or not isinstance(entry.tx, bytes):
            tx = _parse(entry)
            leaf = tx.leaf_hash
        else:
            # Tree-only mode: the leaf hash of the stored bytes is all the tree needs.
            leaf = hashlib.sha256(b"\x00" + entry.tx).digest()
        if entry.stored_leaf_hash is not None and entry.stored_leaf_hash != leaf:
            raise _entry_damage(index, _LEAF_MISMATCH)
        if index == 0:
            key = _genesis_key(tx, key)
            report.ledger_key = _b64(key)
        if replay:
            state.absorb([_apply(state, tx, block.timestamp, index, report.named_capsules)])
        # Fold the leaf into the compact range of complete subtrees.
        size, current = 1, leaf
        while stack and stack[-1][0] == size:
            left_size, left = stack.pop()
            current = node_hash(left, current)
            size += left_size
        stack.append((size, current))
        expected += 1
        if progress is not None:
            progress(1)
        if expected == block.tree_size:
            assert key is not None
            _check_block(block, previous, block_start, stack, key)
            report.blocks += 1
            report.root = block.root.hex()
            previous, block_start = block, block.tree_size
            block = _next_block(blocks, expected)
    report.entries = expected
    if block is not None:
        raise _block_damage(
            block.height,
            f"claims tree size {block.tree_size} but the log ends after {expected} entries "
            "(entries were removed from the end)",
        )


_LEAF_MISMATCH = (
    "its transaction does not hash to the tree's leaf at this index "
    "(the entry was changed, moved or replaced)"
)


def _apply(
    state: State, tx: Transaction, now: str, index: int, named_capsules: dict[str, str]
) -> Changes:
    """The replay of one entry: its changes, or the damage of breaking the rules. The
    capsule a record or rekey names is noted in *named_capsules*."""
    try:
        changes = rules.apply(state, tx, now, index)
    except RuleViolation as exc:
        raise _entry_damage(index, f"breaks the rules [{exc.code}]: {exc}") from exc
    if tx.type in _CAPSULE_TYPES:
        named_capsules[tx.body["capsule_sha256"]] = tx.body["record_id"]
    return changes


_CAPSULE_TYPES = frozenset({"record", "rekey"})


def _misplaced(entry: SourceEntry, expected: int, block: Block | None) -> _Found:
    """The damage of an entry not at the next index or not in the block being read."""
    index = entry.position
    if index > expected:
        return _entry_damage(expected, f"is missing (the next stored entry is {index})")
    if index < expected:
        return _entry_damage(index, f"is out of order or repeated (expected {expected})")
    if block is None:
        return _entry_damage(index, "is not covered by any block (inserted after the head?)")
    return _entry_damage(index, f"claims block {entry.block} but lies in block {block.height}")


def _next_block(blocks: Iterator[Block], covered: int) -> Block | None:
    """The next block, which must cover more than the *covered* entries before it."""
    block = next(blocks, None)
    if block is not None and block.tree_size <= covered:
        raise _block_damage(
            block.height,
            f"claims tree size {block.tree_size}, not more than the previous block's",
        )
    return block


def _parse(entry: SourceEntry) -> Transaction:
    try:
        if isinstance(entry.tx, bytes | bytearray | memoryview):
            return Transaction.from_bytes(bytes(entry.tx))
        return Transaction.from_json(entry.tx)
    except RuleViolation as exc:
        raise _entry_damage(entry.position, f"is not a valid transaction: {exc}") from exc


def _genesis_key(tx: Transaction, trusted: VerifyKey | None) -> VerifyKey:
    if tx.type != "genesis":
        raise _entry_damage(0, f"is a {tx.type} transaction, not the genesis entry")
    try:
        key = VerifyKey(b64decode(tx.body["ledger"]["signing_public_key"], length=32))
    except (KeyError, TypeError, EnvelopeError) as exc:
        raise _entry_damage(0, "the genesis entry does not name a valid ledger key") from exc
    if trusted is not None and key != trusted:
        raise _entry_damage(0, "the genesis entry names a ledger key other than the trusted one")
    return key


def _b64(key: VerifyKey) -> str:
    from envelope import b64encode

    return b64encode(key.to_bytes())


def _check_block(
    block: Block,
    previous: Block | None,
    start: int,
    stack: list[tuple[int, bytes]],
    key: VerifyKey,
) -> None:
    expected_height = 0 if previous is None else previous.height + 1
    if block.height != expected_height:
        raise _block_damage(block.height, f"should have height {expected_height}")
    try:
        block.verify_signature(key)
    except (InvalidSignature, EnvelopeError) as exc:
        raise _block_damage(
            block.height, "its signature does not verify with the ledger key"
        ) from exc
    expected_previous = GENESIS_PREVIOUS_HASH if previous is None else previous.block_hash
    if block.previous_hash != expected_previous:
        raise _block_damage(block.height, "does not link to the hash of the previous block")
    if previous is not None and block.timestamp < previous.timestamp:
        raise _block_damage(block.height, "is dated before the previous block")
    root = merkle.root_from_frontier([h for _, h in stack])
    if root != block.root:
        raise _block_damage(
            block.height,
            f"its root {block.root.hex()} differs from the root {root.hex()} of entries "
            f"0..{block.tree_size - 1}: an entry in {start}..{block.tree_size - 1} was changed",
        )


def _compare_state(stored: Mapping[str, Iterable[Row]], replayed: State) -> None:
    for table in STATE_TABLES:
        expected: dict[Key, Row] = replayed.tables[table]
        seen: set[Key] = set()
        name = STATE_TABLES[table].table
        for row in stored[table]:
            key = row_key(table, row)
            seen.add(key)
            want = expected.get(key)
            if want is None:
                raise _Found(Damage("state", f"{name} row {key!r}", "is not produced by the log"))
            for column in row_columns(table):
                if row[column] != want[column]:
                    raise _Found(
                        Damage(
                            "state",
                            f"{name} row {key!r}",
                            f"column {column} is {row[column]!r} in the database but "
                            f"{want[column]!r} by replaying the log",
                        )
                    )
        missing = [k for k in expected if k not in seen]
        if missing:
            raise _Found(
                Damage("state", f"{name} row {missing[0]!r}", "is missing from the database")
            )


__all__ = [
    "Damage",
    "LedgerSource",
    "SourceEntry",
    "VerifyReport",
    "state_digest",
    "verify",
]
