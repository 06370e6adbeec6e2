"""The import's resumable state: a small SQLite file that remembers, per file, the record id
chosen for it and whether its upload was acknowledged.

The record id is written (and made durable) before the upload starts, so a run killed
half-way resumes with the same id: the ledger refuses a second record with that id, and the
importer takes that refusal as "already imported". Nothing is ever uploaded twice.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from ehrgate.importer.errors import ImportConfigError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    relpath   TEXT NOT NULL,
    sha256    TEXT NOT NULL,
    record_id TEXT NOT NULL UNIQUE,
    status    TEXT NOT NULL CHECK (status IN ('pending', 'done')),
    PRIMARY KEY (relpath, sha256)
)
"""


@dataclass(frozen=True)
class JournalEntry:
    record_id: str
    done: bool


class Journal:
    """Thread-safe; every change is committed before the call returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise ImportConfigError(f"{path}: not a usable import state file ({exc})") from exc
        self._lock = threading.Lock()

    def begin(self, relpath: str, sha256: str) -> JournalEntry:
        """The entry for this file's content, created as pending with a new record id."""
        with self._lock:
            row = self._db.execute(
                "SELECT record_id, status FROM items WHERE relpath = ? AND sha256 = ?",
                (relpath, sha256),
            ).fetchone()
            if row is not None:
                return JournalEntry(row[0], row[1] == "done")
            record_id = uuid.uuid4().hex
            self._db.execute(
                "INSERT INTO items (relpath, sha256, record_id, status)"
                " VALUES (?, ?, ?, 'pending')",
                (relpath, sha256, record_id),
            )
            return JournalEntry(record_id, False)

    def finish(self, record_id: str) -> None:
        with self._lock:
            self._db.execute("UPDATE items SET status = 'done' WHERE record_id = ?", (record_id,))

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT status, count(*) FROM items GROUP BY status")
            return {str(status): int(count) for status, count in rows.fetchall()}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
