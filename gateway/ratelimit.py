"""Token-bucket rate limiting keyed by client address or identity, on the injectable clock.

The buckets themselves live behind `Buckets`: in this process's memory (`MemoryBuckets`,
the embedded default) or in the ledger's database, shared by every replica of the gateway
(`gateway.authstate.SqlAuthState`), so that a limit holds for the whole deployment rather
than per process.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Protocol

from gateway.clock import Clock, checked_now
from gateway.errors import RateLimited


class Buckets(Protocol):
    """Where token buckets are kept."""

    def take(self, key: str, capacity: float, rate: float, now: float) -> float:
        """Refill *key*'s bucket (up to *capacity*, *rate* tokens a second since its last
        use, a new bucket starting full) and take one token: 0.0 if one was there, else
        the part of a token still missing (more than zero; nothing taken)."""
        ...


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class MemoryBuckets:
    """Buckets in this process's memory, at most `max_keys` of them.

    Once more than `max_keys` keys are tracked, buckets that have refilled completely (and
    so carry no information) are dropped; if that is not enough, the oldest are dropped.
    """

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str, capacity: float, rate: float, now: float) -> float:
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                self._make_room(now, capacity / rate)
                bucket = self._buckets[key] = _Bucket(capacity, now)
            else:
                elapsed = max(0.0, now - bucket.updated)
                bucket.tokens = min(capacity, bucket.tokens + elapsed * rate)
                bucket.updated = max(bucket.updated, now)
            if bucket.tokens < 1.0:
                return 1.0 - bucket.tokens
            bucket.tokens -= 1.0
            return 0.0

    def _make_room(self, now: float, full_after: float) -> None:
        if len(self._buckets) < self.max_keys:
            return
        for key in [k for k, b in self._buckets.items() if now - b.updated >= full_after]:
            del self._buckets[key]
        while len(self._buckets) >= self.max_keys:
            del self._buckets[next(iter(self._buckets))]


class RateLimiter:
    """Allow `per_minute` requests per key with bursts of `burst` (default: the same size).

    *name* keeps the keys of different limiters apart where they share one `Buckets`.
    """

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Clock,
        max_keys: int = 100_000,
        burst: int | None = None,
        name: str = "limit",
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        if burst is not None and burst < 1:
            raise ValueError("burst must be at least 1")
        self.capacity = float(burst if burst is not None else per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.name = name
        self.buckets: Buckets = MemoryBuckets(max_keys)

    def hit(self, key: str) -> None:
        """Take one token for *key*, or raise RateLimited with the seconds to wait."""
        wait = self._take(key)
        if wait:
            raise RateLimited(
                "too many authentication attempts; wait before trying again", retry_after=wait
            )

    def allow(self, key: str) -> bool:
        """Take one token for *key* if there is one; False (and nothing taken) if not."""
        return self._take(key) == 0

    def _take(self, key: str) -> int:
        """Take a token and return 0, or return the whole seconds until one is there."""
        now = checked_now(self.clock).timestamp()
        missing = self.buckets.take(f"{self.name}:{key}", self.capacity, self.rate, now)
        if missing <= 0.0:
            return 0
        return max(1, math.ceil(missing / self.rate))
