"""The bridge's own SQLite database: patient links, published documents, submission sets.

Nothing here is plaintext of a document: links (MRN, pseudonym and the patient's signed
statement), which sender unique id became which ledger record (with the document's SHA-1,
size and title, so a retry publishes nothing twice and search results carry them), and
the submission sets (ITI-65) with the records they carried.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS links (
    mrn TEXT PRIMARY KEY,
    pseudonym TEXT NOT NULL,
    statement TEXT NOT NULL,
    signed_at TEXT NOT NULL,
    linked_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS published (
    unique_id TEXT PRIMARY KEY,
    record_id TEXT NOT NULL UNIQUE,
    pseudonym TEXT NOT NULL,
    mrn TEXT NOT NULL,
    category TEXT NOT NULL,
    sha1 TEXT NOT NULL,
    size INTEGER NOT NULL,
    title TEXT,
    replaces TEXT,
    published_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS published_by_replaces ON published (replaces);
CREATE TABLE IF NOT EXISTS submission_sets (
    id TEXT PRIMARY KEY,
    unique_id TEXT NOT NULL UNIQUE,
    pseudonym TEXT NOT NULL,
    mrn TEXT NOT NULL,
    record_ids TEXT NOT NULL,
    submitted_at TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Link:
    mrn: str
    pseudonym: str
    statement: dict[str, Any]
    signed_at: str
    linked_at: str
    revoked_at: str | None


@dataclass(frozen=True, slots=True)
class PublishedRow:
    unique_id: str
    record_id: str
    pseudonym: str
    mrn: str
    category: str
    sha1: str
    size: int
    title: str | None
    replaces: str | None
    published_at: str


@dataclass(frozen=True, slots=True)
class SubmissionSet:
    id: str
    unique_id: str
    pseudonym: str
    mrn: str
    record_ids: tuple[str, ...]
    submitted_at: str


class BridgeStore:
    """One SQLite file, safe to use from several threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            # Bookkeeping, not the guard: the ledger refuses a second record under a
            # unique id's record id, so a row lost to a power cut costs no duplicate.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _rows(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._db.execute(sql, params))

    # --- links ---------------------------------------------------------------------------

    def put_link(
        self, mrn: str, pseudonym: str, statement: dict[str, Any], signed_at: str, now: str
    ) -> None:
        """Link *mrn* (replacing a revoked link or an older statement for it)."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO links (mrn, pseudonym, statement, signed_at, linked_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(mrn) DO UPDATE SET pseudonym = "
                "excluded.pseudonym, statement = excluded.statement, signed_at = "
                "excluded.signed_at, linked_at = excluded.linked_at, revoked_at = NULL",
                (mrn, pseudonym, json.dumps(statement, sort_keys=True), signed_at, now),
            )

    def link(self, mrn: str) -> Link | None:
        rows = self._rows("SELECT * FROM links WHERE mrn = ?", mrn)
        return _link(rows[0]) if rows else None

    def links(self, *, include_revoked: bool = False) -> list[Link]:
        sql = "SELECT * FROM links" + ("" if include_revoked else " WHERE revoked_at IS NULL")
        return [_link(row) for row in self._rows(sql + " ORDER BY mrn")]

    def mrns_of(self, pseudonym: str) -> list[str]:
        rows = self._rows(
            "SELECT mrn FROM links WHERE pseudonym = ? AND revoked_at IS NULL ORDER BY mrn",
            pseudonym,
        )
        return [row["mrn"] for row in rows]

    def revoke_link(self, mrn: str, now: str) -> bool:
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE links SET revoked_at = ? WHERE mrn = ? AND revoked_at IS NULL", (now, mrn)
            )
            return cursor.rowcount == 1

    # --- published documents -------------------------------------------------------------

    def published(self, unique_id: str) -> PublishedRow | None:
        rows = self._rows("SELECT * FROM published WHERE unique_id = ?", unique_id)
        return PublishedRow(**dict(rows[0])) if rows else None

    def published_record(self, record_id: str) -> PublishedRow | None:
        rows = self._rows("SELECT * FROM published WHERE record_id = ?", record_id)
        return PublishedRow(**dict(rows[0])) if rows else None

    def replacement_of(self, unique_id: str) -> PublishedRow | None:
        """The document published as replacing *unique_id*, if any."""
        rows = self._rows(
            "SELECT * FROM published WHERE replaces = ? ORDER BY published_at LIMIT 1", unique_id
        )
        return PublishedRow(**dict(rows[0])) if rows else None

    def put_published(self, row: PublishedRow) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO published VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.unique_id,
                    row.record_id,
                    row.pseudonym,
                    row.mrn,
                    row.category,
                    row.sha1,
                    row.size,
                    row.title,
                    row.replaces,
                    row.published_at,
                ),
            )

    # --- submission sets -----------------------------------------------------------------

    def put_submission_set(self, found: SubmissionSet) -> SubmissionSet:
        """Store *found*, or return the set stored before under its unique id."""
        with self._transaction() as db:
            rows = list(
                db.execute("SELECT * FROM submission_sets WHERE unique_id = ?", (found.unique_id,))
            )
            if rows:
                return _submission_set(rows[0])
            db.execute(
                "INSERT INTO submission_sets VALUES (?, ?, ?, ?, ?, ?)",
                (
                    found.id,
                    found.unique_id,
                    found.pseudonym,
                    found.mrn,
                    json.dumps(list(found.record_ids)),
                    found.submitted_at,
                ),
            )
        return found

    def submission_sets(self, pseudonym: str) -> list[SubmissionSet]:
        rows = self._rows(
            "SELECT * FROM submission_sets WHERE pseudonym = ? ORDER BY submitted_at, id",
            pseudonym,
        )
        return [_submission_set(row) for row in rows]


def _link(row: sqlite3.Row) -> Link:
    values = dict(row)
    values["statement"] = json.loads(values["statement"])
    return Link(**values)


def _submission_set(row: sqlite3.Row) -> SubmissionSet:
    values = dict(row)
    values["record_ids"] = tuple(json.loads(values["record_ids"]))
    return SubmissionSet(**values)
