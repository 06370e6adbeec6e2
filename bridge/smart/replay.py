"""The `jti` replay cache: an assertion is accepted once within its lifetime.

Kept in memory: each `jti` is remembered until its assertion's `exp` (plus leeway), so the
cache holds at most the assertions of the last five minutes, and never more than
`max_entries` (past that, new assertions are refused until old ones expire: a client that
floods the endpoint locks only itself and others out for minutes, never opens a replay).
A restart forgets the cache; an assertion captured before a restart could then be replayed
until its `exp`, at most five minutes later. Run one bridge process per token endpoint.
"""

from __future__ import annotations

import heapq
import threading


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
