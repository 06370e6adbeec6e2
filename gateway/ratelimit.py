"""Token-bucket rate limiting keyed by client address or identity, on the injectable clock."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from gateway.clock import Clock, checked_now
from gateway.errors import RateLimited


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Allow `per_minute` requests per key with bursts of `burst` (default: the same size).

    Memory is bounded: once more than `max_keys` keys are tracked, buckets that have refilled
    completely (and so carry no information) are dropped; if that is not enough, the oldest
    are dropped.
    """

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Clock,
        max_keys: int = 100_000,
        burst: int | None = None,
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        if burst is not None and burst < 1:
            raise ValueError("burst must be at least 1")
        self.capacity = float(burst if burst is not None else per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

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
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                self._make_room(now)
                bucket = self._buckets[key] = _Bucket(self.capacity, now)
            else:
                elapsed = max(0.0, now - bucket.updated)
                bucket.tokens = min(self.capacity, bucket.tokens + elapsed * self.rate)
                bucket.updated = now
            if bucket.tokens < 1.0:
                return max(1, math.ceil((1.0 - bucket.tokens) / self.rate))
            bucket.tokens -= 1.0
            return 0

    def _make_room(self, now: float) -> None:
        if len(self._buckets) < self.max_keys:
            return
        full_after = self.capacity / self.rate
        for key in [k for k, b in self._buckets.items() if now - b.updated >= full_after]:
            del self._buckets[key]
        while len(self._buckets) >= self.max_keys:
            del self._buckets[next(iter(self._buckets))]
