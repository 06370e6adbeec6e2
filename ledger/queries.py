"""Reads of a ledger database: the log (blocks, entries, proofs) and the state tables.

Every method here reads the database and so may block; a `Ledger` has all of them, and
`open_read_only(url)` reads a ledger without its key (another process may be writing
it), as `ehrgate gc` does. The in-memory lookups that never block are `Ledger`'s own.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ledger import database, merkle, schema
from ledger.errors import NotFound
from ledger.results import (
    AccessEvent,
    AccessRequest,
    Erasure,
    Identity,
    IdentityKey,
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

    def record(self, record_id: str) -> Record | None:
        """One record, from the database (`Ledger.cached_record` answers from memory)."""
        t = schema.records
        found = self._select(t, t.c.record_id == record_id)
        return Record.from_row(found[0]) if found else None

    def erasures_of(self, pseudonym: str) -> list[Erasure]:
        """The erased records of a pseudonym, in the order they were erased."""
        t = schema.erasures
        rows = self._select(t, t.c.pseudonym == pseudonym, order=t.c.entry_index)
        return [Erasure.from_row(r) for r in rows]

    def erasures(self) -> list[Erasure]:
        """Every erased record of the ledger, in the order they were erased."""
        t = schema.erasures
        return [Erasure.from_row(r) for r in self._select(t, order=t.c.entry_index)]

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

    def access_requests(self, pseudonym: str, *, pending: bool = False) -> list[AccessRequest]:
        """Requests for rights made to the patient of *pseudonym*, oldest first (only those
        not answered yet if *pending*)."""
        t = schema.access_requests
        where = [t.c.pseudonym == pseudonym]
        if pending:
            where.append(t.c.decision.is_(None))
        rows = self._select(t, *where, order=t.c.entry_index)
        return [AccessRequest.from_row(r) for r in rows]

    def identity_keys(self, identity_id: str) -> list[IdentityKey]:
        """Every key *identity_id* has held, oldest first, the current one last (no key:
        never enrolled). Each says from which entry to which it was the identity's key."""
        retired, current = schema.retired_keys, schema.identities
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.select(retired)
                .where(retired.c.identity_id == identity_id)
                .order_by(retired.c.valid_until)
            )
            found = [IdentityKey.from_row(database.normalise("retired_keys", r)) for r in rows]
            row = conn.execute(sa.select(current).where(current.c.id == identity_id)).first()
        if row is None:
            return []
        return [
            *found,
            IdentityKey.current(Identity.from_row(database.normalise("identities", row))),
        ]

    def permissions_ending(self, after: str, until: str) -> list[Permission]:
        """Live (unrevoked) permissions whose not_after is in (*after*, *until*], ledger
        times, soonest first."""
        t = schema.permissions
        where = [t.c.revoked_at.is_(None), t.c.not_after > after, t.c.not_after <= until]
        return [Permission.from_row(r) for r in self._select(t, *where, order=t.c.not_after)]

    def access_request(self, request_id: str) -> AccessRequest | None:
        """One access request by its id (the id of its `access_request` transaction)."""
        t = schema.access_requests
        rows = self._select(t, t.c.request_id == request_id)
        return AccessRequest.from_row(rows[0]) if rows else None

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
        """SHA-256 of every blob the ledger still needs: each record's body and capsule, each
        capsule it keeps, and each study export's body and capsule (a blob store may delete
        any other). An erased record needs nothing: its blobs are among `erased_blobs`, unless
        a record not erased or an export shares them."""
        records, capsules, erasures = schema.records, schema.capsules, schema.erasures
        referenced: set[str] = set()
        with self.engine.connect() as conn:
            for body, capsule in conn.execute(
                sa.select(records.c.body_sha256, records.c.capsule_sha256).where(
                    records.c.record_id.not_in(sa.select(erasures.c.record_id))
                )
            ):
                referenced.update((str(body), str(capsule)))
            kept = {str(sha) for (sha,) in conn.execute(sa.select(capsules.c.sha256))}
            exports = schema.study_exports  # an anonymised export's own body, and its capsule
            for body, capsule in conn.execute(
                sa.select(exports.c.body_sha256, exports.c.capsule_sha256)
            ):
                referenced.update((str(body), str(capsule)))
        if kept - referenced:
            kept -= self.erased_blobs()[1]  # a kept row of an erased record is to be deleted
        return referenced | kept

    def erased_blobs(self) -> tuple[set[str], set[str]]:
        """(bodies, capsules): the SHA-256 of every body and capsule an erased record named
        (its capsules before a rekey too) that no record left unerased names. Erasure
        deletes them; `ehrgate gc` deletes those a store still holds."""
        records, erasures = schema.records, schema.erasures
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    records.c.record_id,
                    records.c.body_sha256,
                    records.c.capsule_sha256,
                    records.c.entry_index,
                    records.c.rekeyed_at,
                    erasures.c.record_id.is_not(None),
                ).outerjoin(erasures, erasures.c.record_id == records.c.record_id)
            ).all()
            rekeyed = {str(r[0]): int(r[3]) for r in rows if r[4] is not None}
            earlier = _earlier_capsules(conn, rekeyed)
        bodies: set[str] = set()
        capsules: set[str] = set()
        kept: set[str] = set()
        for record_id, body, capsule, _, _, erased in rows:
            named = {str(capsule), *earlier.get(str(record_id), ())}
            if erased:
                bodies.add(str(body))
                capsules.update(named)
            else:
                kept.update((str(body), *named))
        return bodies - kept, capsules - kept

    def record_capsules(self, record_id: str) -> set[str]:
        """Every capsule SHA-256 a record has named: its current one and any a rekey
        replaced."""
        found = self._select(schema.records, schema.records.c.record_id == record_id)
        if not found:
            return set()
        record = found[0]
        named = {str(record["capsule_sha256"])}
        if record["rekeyed_at"] is not None:
            with self.engine.connect() as conn:
                earlier = _earlier_capsules(conn, {record_id: int(record["entry_index"])})
            named.update(earlier.get(record_id, ()))
        return named

    def blobs_in_use(self, sha256s: set[str]) -> set[str]:
        """Those of *sha256s* that a record not erased names as its body or capsule."""
        if not sha256s:
            return set()
        records, erasures = schema.records, schema.erasures
        wanted = sorted(sha256s)
        query = sa.select(records.c.body_sha256, records.c.capsule_sha256).where(
            sa.or_(records.c.body_sha256.in_(wanted), records.c.capsule_sha256.in_(wanted)),
            records.c.record_id.not_in(sa.select(erasures.c.record_id)),
        )
        with self.engine.connect() as conn:
            named = {str(sha) for row in conn.execute(query) for sha in row}
        return named & sha256s

    def delete_capsules(self, sha256s: set[str]) -> int:
        """Erase capsules' bytes (crypto-shredding); their hashes stay on the log."""
        if not sha256s:
            return 0
        t = schema.capsules
        with self.engine.begin() as conn:
            return int(conn.execute(t.delete().where(t.c.sha256.in_(sorted(sha256s)))).rowcount)


def _earlier_capsules(conn: Connection, rekeyed: dict[str, int]) -> dict[str, set[str]]:
    """Record id -> the capsules its `record` entry and its `rekey` entries named, for the
    *rekeyed* records (id -> index of the record entry). Reads those record entries and
    scans the rekey entries, which are few beside the records."""
    if not rekeyed:
        return {}
    entries = schema.entries
    named: dict[str, set[str]] = {}
    wanted = sa.or_(entries.c.idx.in_(sorted(rekeyed.values())), entries.c.tx_type == "rekey")
    for (raw,) in conn.execute(sa.select(entries.c.tx).where(wanted)):
        body = json.loads(bytes(raw))["body"]
        record_id = body.get("record_id")
        if isinstance(record_id, str) and record_id in rekeyed:
            named.setdefault(record_id, set()).add(str(body.get("capsule_sha256")))
    return named
