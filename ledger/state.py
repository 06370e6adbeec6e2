"""Ledger state derived from the log: in-memory tables, the permission index, overlays.

`State` holds the rows that the rules read (identities, patients, permissions, records, key
shares) keyed as in the database, plus the used transaction ids and a `PermissionIndex`.
A batch is validated against an `Overlay` — the base state plus the batch's pending rows —
so that a later transaction sees the effects of an earlier one in the same batch, and the
base is changed only once the batch is durable (`State.absorb`).

Rows have exactly the columns of the state tables in `ledger.state_tables`, so the same
canonical digest can be taken over the database and over a replayed state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ledger.categories import CategoryRegistry
from ledger.state_tables import STATE_TABLES
from ledger.wire.clock import to_micros
from ledger.wire.encoding import canonical

Row = dict[str, Any]
Key = Any  # a column value, or a tuple of them for composite keys

RIGHTS = ("read", "write", "share")
_RIGHT_BITS = {"read": 1, "write": 2, "share": 4}
_ALL_CATEGORIES = 1

RESIDENT_TABLES = frozenset(
    {
        "identities",
        "patients",
        "permissions",
        "records",
        "key_shares",
        "published_keys",
        "erasures",
        "access_requests",
        "break_glass_policies",
        "break_glass_sessions",
        "study_exports",
        "key_generations",
    }
)
"""Tables the rules read, kept in memory by a live ledger; the others are only written."""

SECONDARY_KEYS = {"break_glass_sessions": "pseudonym", "study_exports": "study_id"}
"""Resident tables also indexed by one more column: a patient's sessions, a study's exports."""

_KEYS = {name: table.key for name, table in STATE_TABLES.items()}
_COLUMNS = {name: table.columns for name, table in STATE_TABLES.items()}


def row_key(table: str, row: Mapping[str, Any]) -> Key:
    cols = _KEYS[table]
    if len(cols) == 1:
        return row[cols[0]]
    return tuple(row[c] for c in cols)


def row_columns(table: str) -> tuple[str, ...]:
    return _COLUMNS[table]


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to "may G do R on category C of pseudonym P at time t?"."""

    allowed: bool
    reason: str
    permission_id: str | None = None

    def __bool__(self) -> bool:
        return self.allowed


@dataclass(slots=True)
class Changes:
    """What one transaction does to the state: rows to insert or replace, in order."""

    tx_id: str
    rows: list[tuple[str, Row]] = field(default_factory=list)

    def put(self, table: str, row: Row) -> None:
        self.rows.append((table, row))


# A grant in the index: (not_before µs, not_after µs, rights bits, category bits, id).
Grant = tuple[int, int, int, int, str]


class PermissionIndex:
    """Active (unrevoked) grants by (pseudonym, grantee): one dict lookup per check.

    A check costs one hash lookup plus a scan of that pair's grants (usually one), so its
    time does not grow with the number of grants. Revoked grants are removed.
    """

    __slots__ = ("_by_pair", "_category_bits", "_count")

    def __init__(self, categories: CategoryRegistry) -> None:
        self._by_pair: dict[tuple[str, str], tuple[Grant, ...]] = {}
        self._category_bits = {name: 2 << i for i, name in enumerate(categories.names())}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def grant_from_row(self, row: Mapping[str, Any]) -> Grant:
        rights = 0
        for right in row["rights"].split(","):
            rights |= _RIGHT_BITS[right]
        categories = row["categories"]
        if categories == "all":
            cats = _ALL_CATEGORIES
        else:
            cats = 0
            for name in categories.split(","):
                cats |= self._category_bits.get(name, 0)
        return (
            to_micros(row["not_before"]),
            to_micros(row["not_after"]),
            rights,
            cats,
            row["permission_id"],
        )

    def add(self, row: Mapping[str, Any]) -> None:
        self.add_grant(row["pseudonym"], row["grantee"], self.grant_from_row(row))

    def add_grant(self, pseudonym: str, grantee: str, grant: Grant) -> None:
        pair = (pseudonym, grantee)
        existing = self._by_pair.get(pair)
        self._by_pair[pair] = (*existing, grant) if existing else (grant,)
        self._count += 1

    def remove(self, pseudonym: str, grantee: str, permission_id: str) -> None:
        pair = (pseudonym, grantee)
        existing = self._by_pair.get(pair, ())
        kept = tuple(g for g in existing if g[4] != permission_id)
        self._count -= len(existing) - len(kept)
        if kept:
            self._by_pair[pair] = kept
        else:
            self._by_pair.pop(pair, None)

    def grants(self, pseudonym: str, grantee: str) -> tuple[Grant, ...]:
        return self._by_pair.get((pseudonym, grantee), ())

    def decide(
        self, grants: Iterable[Grant], right: str, category: str, at_micros: int
    ) -> Decision:
        right_bit = _RIGHT_BITS.get(right, 0)
        category_bits = _ALL_CATEGORIES | self._category_bits.get(category, 0)
        reason = "no permission of the patient covers this grantee"
        for not_before, not_after, rights, cats, permission_id in grants:
            if not rights & right_bit:
                reason = f"no permission grants the {right} right"
                continue
            if not cats & category_bits:
                reason = f"no permission covers category {category!r}"
                continue
            if at_micros < not_before:
                reason = f"permission {permission_id} is not valid yet"
                continue
            if at_micros >= not_after:
                reason = f"permission {permission_id} has expired"
                continue
            return Decision(True, f"granted by permission {permission_id}", permission_id)
        return Decision(False, reason)

    def check(
        self, grantee: str, right: str, pseudonym: str, category: str, at: int | datetime | str
    ) -> Decision:
        at_micros = at if isinstance(at, int) else to_micros(at)
        grants = self._by_pair.get((pseudonym, grantee))
        if not grants:
            return Decision(False, "no permission of the patient covers this grantee")
        return self.decide(grants, right, category, at_micros)


class StateView(Protocol):
    """What the rules may read."""

    categories: CategoryRegistry

    def get(self, table: str, key: Key) -> Row | None: ...

    def tx_id_used(self, tx_id: str) -> bool: ...

    def is_empty(self) -> bool: ...

    def check(
        self, grantee: str, right: str, pseudonym: str, category: str, at: int | datetime | str
    ) -> Decision: ...

    def live_grants(self, pseudonym: str, grantee: str) -> list[Row]:
        """The unrevoked permission rows of *grantee* on *pseudonym*, in grant order."""
        ...

    def record_ids_of(self, pseudonym: str) -> list[str]:
        """The ids of every record of *pseudonym*, sorted."""
        ...


class State:
    """The base state. A live ledger keeps only `RESIDENT_TABLES`; a replay keeps all."""

    def __init__(self, categories: CategoryRegistry, *, keep_all_tables: bool = True) -> None:
        self.categories = categories
        self.keep_all_tables = keep_all_tables
        self.tables: dict[str, dict[Key, Row]] = {name: {} for name in STATE_TABLES}
        self.tx_ids: set[str] = set()
        self.index = PermissionIndex(categories)
        self._records_by_pseudonym: dict[str, set[str]] = {}
        self.secondary: dict[str, dict[Any, set[Key]]] = {name: {} for name in SECONDARY_KEYS}

    def get(self, table: str, key: Key) -> Row | None:
        return self.tables[table].get(key)

    def keys_by(self, table: str, value: Any) -> tuple[Key, ...]:
        """The keys of *table*'s rows whose `SECONDARY_KEYS` column is *value*."""
        return tuple(self.secondary[table].get(value, ()))

    def tx_id_used(self, tx_id: str) -> bool:
        return tx_id in self.tx_ids

    def is_empty(self) -> bool:
        return not self.tables["identities"]

    def check(
        self, grantee: str, right: str, pseudonym: str, category: str, at: int | datetime | str
    ) -> Decision:
        return self.index.check(grantee, right, pseudonym, category, at)

    def live_grants(self, pseudonym: str, grantee: str) -> list[Row]:
        permissions = self.tables["permissions"]
        rows = [permissions[grant[4]] for grant in self.index.grants(pseudonym, grantee)]
        return sorted(rows, key=lambda row: int(row["granted_at"]))

    def record_ids_of(self, pseudonym: str) -> list[str]:
        return sorted(self._records_by_pseudonym.get(pseudonym, ()))

    def load_row(self, table: str, row: Row) -> None:
        """Put a row as read from the database or produced by a rule."""
        if table == "records":
            self._records_by_pseudonym.setdefault(row["pseudonym"], set()).add(row["record_id"])
        if table == "permissions":
            key = row["permission_id"]
            old = self.tables[table].get(key)
            if old is not None and old["revoked_at"] is None:
                self.index.remove(old["pseudonym"], old["grantee"], key)
            if row["revoked_at"] is None:
                self.index.add(row)
        if self.keep_all_tables or table in RESIDENT_TABLES:
            key = row_key(table, row)
            self.tables[table][key] = row
            column = SECONDARY_KEYS.get(table)
            if column is not None:
                self.secondary[table].setdefault(row[column], set()).add(key)

    def absorb(self, changes: Iterable[Changes]) -> None:
        for change in changes:
            self.tx_ids.add(change.tx_id)
            for table, row in change.rows:
                self.load_row(table, row)

    def overlay(self) -> Overlay:
        return Overlay(self)

    def rows(self, table: str) -> list[Row]:
        if not self.keep_all_tables and table not in RESIDENT_TABLES:
            raise ValueError(f"table {table} is not kept in memory by this state")
        return [self.tables[table][k] for k in sorted(self.tables[table], key=_sort_key)]

    def digest(self) -> str:
        return state_digest({name: self.rows(name) for name in STATE_TABLES})


class Overlay:
    """The base state plus a batch's pending changes; what the rules see inside a batch."""

    def __init__(self, base: State) -> None:
        self.base = base
        self.categories = base.categories
        self.pending: dict[str, dict[Key, Row]] = {name: {} for name in STATE_TABLES}
        self.tx_ids: set[str] = set()
        self.changes: list[Changes] = []

    def get(self, table: str, key: Key) -> Row | None:
        row = self.pending[table].get(key)
        return row if row is not None else self.base.get(table, key)

    def tx_id_used(self, tx_id: str) -> bool:
        return tx_id in self.tx_ids or self.base.tx_id_used(tx_id)

    def is_empty(self) -> bool:
        return not self.pending["identities"] and self.base.is_empty()

    def check(
        self, grantee: str, right: str, pseudonym: str, category: str, at: int | datetime | str
    ) -> Decision:
        at_micros = at if isinstance(at, int) else to_micros(at)
        pending = self.pending["permissions"]
        index = self.base.index
        grants = [g for g in index.grants(pseudonym, grantee) if g[4] not in pending]
        grants += [
            index.grant_from_row(row)
            for row in pending.values()
            if row["pseudonym"] == pseudonym
            and row["grantee"] == grantee
            and row["revoked_at"] is None
        ]
        return index.decide(grants, right, category, at_micros)

    def live_grants(self, pseudonym: str, grantee: str) -> list[Row]:
        pending = self.pending["permissions"]
        rows = [
            row
            for row in self.base.live_grants(pseudonym, grantee)
            if row["permission_id"] not in pending
        ]
        rows += [
            row
            for row in pending.values()
            if row["pseudonym"] == pseudonym
            and row["grantee"] == grantee
            and row["revoked_at"] is None
        ]
        return sorted(rows, key=lambda row: int(row["granted_at"]))

    def record_ids_of(self, pseudonym: str) -> list[str]:
        pending = {
            row["record_id"]
            for row in self.pending["records"].values()
            if row["pseudonym"] == pseudonym
        }
        return sorted(pending.union(self.base.record_ids_of(pseudonym)))

    def evolve(self, changes: Changes) -> Overlay:
        """Add one transaction's changes; returns self (the new state of the batch)."""
        self.changes.append(changes)
        self.tx_ids.add(changes.tx_id)
        for table, row in changes.rows:
            self.pending[table][row_key(table, row)] = row
        return self

    def existed_before(self, table: str, key: Key) -> bool:
        return self.base.get(table, key) is not None


def _sort_key(key: Key) -> tuple[Any, ...]:
    return key if isinstance(key, tuple) else (key,)


def canonical_row(table: str, row: Mapping[str, Any]) -> bytes:
    return canonical([table, *(row[c] for c in _COLUMNS[table])])


def state_digest(tables: Mapping[str, Iterable[Mapping[str, Any]]]) -> str:
    """SHA-256 over every row of every state table in key order, as hex."""
    digest = hashlib.sha256()
    for name in STATE_TABLES:
        digest.update(canonical([name]))
        for row in tables[name]:
            digest.update(canonical_row(name, row))
    return digest.hexdigest()
