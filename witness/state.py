"""The witness's memory, in SQLite: per log the latest cosigned checkpoint, and evidence.

    latest(origin, size, root, note, updated_at)   the largest tree cosigned per origin
    evidence(id, origin, kind, known_size, known_note, submitted_note, proof, reason,
             received_at)                          checkpoints validly signed by a log but
                                                   refused as inconsistent with `latest`,
                                                   each kept once however often it is sent

Every decision runs in one `BEGIN IMMEDIATE` transaction (and under a lock in this
process): the check against `latest` and the write of the new checkpoint are atomic, so
two concurrent requests can never roll the size back, and another process on the same
file waits its turn. `synchronous=FULL`: a cosigned size survives a power cut.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from witness.errors import WitnessStateError

SCHEMA = """
CREATE TABLE IF NOT EXISTS latest (
    origin TEXT PRIMARY KEY,
    size INTEGER NOT NULL CHECK (size >= 0),
    root BLOB NOT NULL CHECK (length(root) = 32),
    note BLOB NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS evidence (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    origin TEXT NOT NULL,
    kind TEXT NOT NULL,
    known_size INTEGER NOT NULL,
    known_note BLOB,
    submitted_note BLOB NOT NULL,
    proof TEXT NOT NULL,
    reason TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    UNIQUE (origin, kind, known_size, submitted_note, proof)
);
"""


@dataclass(frozen=True, slots=True)
class Known:
    """The latest checkpoint the witness cosigned for one origin."""

    size: int
    root: bytes
    note: bytes


@dataclass(frozen=True, slots=True)
class Evidence:
    origin: str
    kind: str
    known_size: int
    known_note: bytes | None
    submitted_note: bytes
    proof: str
    reason: str
    received_at: int


class Transaction:
    """Reads and writes inside one decision."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    def latest(self, origin: str) -> Known | None:
        row = self._db.execute(
            "SELECT size, root, note FROM latest WHERE origin = ?", (origin,)
        ).fetchone()
        return Known(int(row[0]), bytes(row[1]), bytes(row[2])) if row is not None else None

    def store(self, origin: str, known: Known, now: int) -> None:
        self._db.execute(
            "INSERT INTO latest (origin, size, root, note, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root = excluded.root, "
            "note = excluded.note, updated_at = excluded.updated_at",
            (origin, known.size, known.root, known.note, now),
        )

    def keep_evidence(self, evidence: Evidence) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO evidence (origin, kind, known_size, known_note, submitted_note, "
            "proof, reason, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                evidence.origin,
                evidence.kind,
                evidence.known_size,
                evidence.known_note,
                evidence.submitted_note,
                evidence.proof,
                evidence.reason,
                evidence.received_at,
            ),
        )


class WitnessState:
    """The state database; one connection, decisions serialized."""

    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=30
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise WitnessStateError(f"cannot open the witness state at {path}: {exc}") from exc
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One atomic decision: committed when the block ends, rolled back if it raises."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def latest(self, origin: str) -> Known | None:
        with self._lock:
            return Transaction(self._db).latest(origin)

    def evidence(self, origin: str | None = None) -> list[Evidence]:
        query = (
            "SELECT origin, kind, known_size, known_note, submitted_note, proof, reason, "
            "received_at FROM evidence"
        )
        with self._lock:
            rows = (
                self._db.execute(query + " WHERE origin = ? ORDER BY id", (origin,))
                if origin is not None
                else self._db.execute(query + " ORDER BY id")
            ).fetchall()
        return [
            Evidence(
                str(r[0]),
                str(r[1]),
                int(r[2]),
                bytes(r[3]) if r[3] is not None else None,
                bytes(r[4]),
                str(r[5]),
                str(r[6]),
                int(r[7]),
            )
            for r in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._db.close()
