"""Reads of a ledger database: the log (blocks, entries, proofs) and the state tables.

Every method here reads the database and so may block; a `Ledger` has all of them, and
`open_read_only(url)` reads a ledger without its key (another process may be writing
it), as `ehrgate gc` does. The in-memory lookups that never block are `Ledger`'s own.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ledger import database, merkle, schema
from ledger.errors import NotFound
from ledger.results import (
    AccessEvent,
    AccessRequest,
    Patient,
    Permission,
    PublishedKey,
    Record,
)
from ledger.state import Row
from ledger.wire.blocks import Block, Entry, Receipt

_STATE_TABLE_NAMES = {table.name: name for name, table in schema.STATE_TABLES.items()}


def open_read_only(url: str) -> LedgerQueries:
    """Reads of the ledger at database *url*, without its key; `close()` them when done."""
    return LedgerQueries(database.open_engine(url))


class LedgerQueries:
    """The database reads of one ledger; thread-safe."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def close(self) -> None:
        self.engine.dispose()

    # --- the log ---------------------------------------------------------------------------

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
        """The tree size to prove against: *wanted* if the log has it (else -1), or the
        head's when *wanted* is None."""
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

    # --- the state tables ------------------------------------------------------------------

    def patients_of(self, identity_id: str) -> list[Patient]:
        """The pseudonyms a patient identity registered."""
        t = schema.patients
        return [Patient.from_row(r) for r in self._select(t, t.c.identity_id == identity_id)]

    def permissions_for(
        self, pseudonym: str, grantee: str | None = None, *, include_revoked: bool = False
    ) -> list[Permission]:
        """Permissions on *pseudonym* (of one grantee), in the order they were granted."""
        t = schema.permissions
        where = [t.c.pseudonym == pseudonym]
        if grantee is not None:
            where.append(t.c.grantee == grantee)
        if not include_revoked:
            where.append(t.c.revoked_at.is_(None))
        return [Permission.from_row(r) for r in self._select(t, *where, order=t.c.granted_at)]

    def published_keys_of(self, pseudonym: str) -> list[PublishedKey]:
        """The (category, month) keys *pseudonym* published, by category then month."""
        t = schema.published_keys
        rows = self._select(t, t.c.pseudonym == pseudonym, order=t.c.category)
        return sorted(
            (PublishedKey.from_row(r) for r in rows), key=lambda k: (k.category, k.period)
        )

    def records_of(self, pseudonym: str, category: str | None = None) -> list[Record]:
        """A pseudonym's records (of one category), in the order they were committed."""
        t = schema.records
        where = [t.c.pseudonym == pseudonym]
        if category is not None:
            where.append(t.c.category == category)
        return [Record.from_row(r) for r in self._select(t, *where, order=t.c.entry_index)]

    # --- re-keying ---------------------------------------------------------------------------

    def records_to_rekey(
        self, pseudonym: str, generation: int, limit: int, after: int = -1
    ) -> list[Record]:
        """Up to *limit* records of *pseudonym* sealed to keys older than *generation*,
        committed after entry *after*, in the order they were committed: what a rotation to
        *generation* has still to do."""
        t = schema.records
        where = (
            t.c.pseudonym == pseudonym,
            t.c.key_generation < generation,
            t.c.entry_index > after,
        )
        rows = self._select(t, *where, order=t.c.entry_index, limit=limit)
        return [Record.from_row(r) for r in rows]

    def rekey_counts(self, pseudonym: str, generation: int) -> tuple[int, int]:
        """(records of *pseudonym*, those of them sealed to keys older than *generation*)."""
        t = schema.records
        older = sa.func.sum(sa.case((t.c.key_generation < generation, 1), else_=0))
        query = sa.select(sa.func.count(), older).where(t.c.pseudonym == pseudonym)
        with self.engine.connect() as conn:
            total, left = conn.execute(query).one()
        return int(total or 0), int(left or 0)

    def key_share_entries(self, pseudonym: str) -> list[tuple[str, int]]:
        """(grantee, index of the key_share entry) of each share deposited on *pseudonym*."""
        t = schema.key_shares
        query = sa.select(t.c.grantee, t.c.entry_index).where(t.c.pseudonym == pseudonym)
        with self.engine.connect() as conn:
            return sorted((str(g), int(i)) for g, i in conn.execute(query))

    def record_periods(self, pseudonym: str) -> list[tuple[str, str]]:
        """Every (category, "YYYY-MM" of created_at) that *pseudonym* has records of."""
        t = schema.records
        month = sa.func.substr(t.c.created_at, 1, 7)
        query = (
            sa.select(t.c.category, month)
            .where(t.c.pseudonym == pseudonym)
            .group_by(t.c.category, month)
        )
        with self.engine.connect() as conn:
            return sorted((str(c), str(p)) for c, p in conn.execute(query))

    def access_history(self, pseudonym: str, limit: int = 1000) -> list[AccessEvent]:
        """The first *limit* audited reads of a pseudonym's data, oldest first."""
        t = schema.access_events
        rows = self._select(t, t.c.pseudonym == pseudonym, order=t.c.entry_index, limit=limit)
        return [AccessEvent.from_row(r) for r in rows]

    def access_requests(self, pseudonym: str) -> list[AccessRequest]:
        """Requests for rights made to the patient of *pseudonym*, oldest first."""
        t = schema.access_requests
        rows = self._select(t, t.c.pseudonym == pseudonym, order=t.c.entry_index)
        return [AccessRequest.from_row(r) for r in rows]

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

    # --- capsules and blobs ----------------------------------------------------------------

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

    def capsule_referenced(self, sha256: str) -> bool:
        """Does a record name this capsule, or the ledger keep it? (A scan of the records: for
        the rare refusal that comes after the gateway stored a capsule's copy.)"""
        records, capsules = schema.records, schema.capsules
        named = sa.select(records.c.record_id).where(records.c.capsule_sha256 == sha256)
        kept = sa.select(capsules.c.sha256).where(capsules.c.sha256 == sha256)
        with self.engine.connect() as conn:
            return conn.execute(sa.union_all(named, kept).limit(1)).first() is not None

    def referenced_blobs(self) -> set[str]:
        """SHA-256 of every blob the ledger still needs: each record's body and capsule, and
        each capsule it keeps (a blob store may delete any other)."""
        records, capsules = schema.records, schema.capsules
        referenced: set[str] = set()
        with self.engine.connect() as conn:
            for body, capsule in conn.execute(
                sa.select(records.c.body_sha256, records.c.capsule_sha256)
            ):
                referenced.update((str(body), str(capsule)))
            referenced.update(str(sha) for (sha,) in conn.execute(sa.select(capsules.c.sha256)))
        return referenced
