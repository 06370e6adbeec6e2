"""The `jti` replay cache: an assertion is accepted once within its lifetime.

Each (client id, `jti`) is remembered until its assertion's `exp` (plus leeway), so a cache
holds at most the assertions of the last five minutes, and never more than `max_entries`:
past that, new assertions are refused until old ones expire (a flood locks clients out for
minutes; it never opens a replay).

`MemoryReplayCache` forgets on restart: an assertion captured before a restart could be
replayed until its `exp`, at most five minutes later. `SqliteReplayCache` keeps the pairs in
a SQLite file and survives restarts. Either serves one bridge process; processes sharing a
token endpoint must share one SQLite file on a local disk.
"""

from __future__ import annotations

import heapq
import sqlite3
import threading
from pathlib import Path
from typing import Protocol


class ReplayCache(Protocol):
    """Where used assertion ids are remembered."""

    def use(self, client_id: str, jti: str, expires: float, now: float) -> bool:
        """Record the pair; False when it was already recorded and has not expired; raises
        `ReplayCacheFull` when no more can be remembered now."""
        ...


class ReplayCacheFull(Exception):
    """Too many unexpired assertions are remembered to accept another now."""


class MemoryReplayCache:
    """Remembers (client id, jti) pairs until their expiry."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._max = max_entries
        self._seen: dict[tuple[str, str], float] = {}
        self._expiries: list[tuple[float, tuple[str, str]]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def use(self, client_id: str, jti: str, expires: float, now: float) -> bool:
        """Record the pair; False when it was already recorded and has not expired."""
        key = (client_id, jti)
        with self._lock:
            self._forget_expired(now)
            if key in self._seen:
                return False
            if len(self._seen) >= self._max:
                raise ReplayCacheFull("too many recent assertions; retry in a minute")
            self._seen[key] = expires
            heapq.heappush(self._expiries, (expires, key))
            return True

    def _forget_expired(self, now: float) -> None:
        while self._expiries and self._expiries[0][0] < now:
            expires, key = heapq.heappop(self._expiries)
            if self._seen.get(key) == expires:
                del self._seen[key]


class SqliteReplayCache:
    """Remembers (client id, jti) pairs in a SQLite file until their expiry."""

    def __init__(self, path: str | Path, max_entries: int = 100_000) -> None:
        self._max = max_entries
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS used_assertions ("
            " client_id TEXT NOT NULL, jti TEXT NOT NULL, expires REAL NOT NULL,"
            " PRIMARY KEY (client_id, jti))"
        )
        self._db.execute(
            "CREATE INDEX IF NOT EXISTS used_assertions_expires ON used_assertions (expires)"
        )

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT count(*) FROM used_assertions").fetchone()
        return int(count)

    def use(self, client_id: str, jti: str, expires: float, now: float) -> bool:
        """Record the pair; False when it was already recorded and has not expired."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                fresh = self._record(client_id, jti, expires, now)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return fresh

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _record(self, client_id: str, jti: str, expires: float, now: float) -> bool:
        self._db.execute("DELETE FROM used_assertions WHERE expires < ?", (now,))
        seen = self._db.execute(
            "SELECT 1 FROM used_assertions WHERE client_id = ? AND jti = ?", (client_id, jti)
        ).fetchone()
        if seen is not None:
            return False
        (count,) = self._db.execute("SELECT count(*) FROM used_assertions").fetchone()
        if count >= self._max:
            raise ReplayCacheFull("too many recent assertions; retry in a minute")
        self._db.execute(
            "INSERT INTO used_assertions (client_id, jti, expires) VALUES (?, ?, ?)",
            (client_id, jti, expires),
        )
        return True
