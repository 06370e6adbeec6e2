"""How many refused acts reach the ledger: token buckets per identity and act, and overall.

Anyone who knows an enrolled identity's id can make the gateway refuse a login as it, and
an authenticated caller can repeat a refused write as fast as it likes; without a limit each
refusal would be a signed ledger entry, forever. So a refusal is written only while two
buckets have a token: one per (identity, act) (`refusal_audit_rate` per minute, bursts of
`refusal_audit_burst`) and one for the whole gateway (`refusal_audit_global_rate`). The
others are counted in `ehrgate_refusals_unrecorded_total{action, why="rate-limited"}`,
and the next entry written for the same identity and act says how many were left out and
since when, so that the ledger still shows that the refusals went on.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from gateway.clock import Clock
from gateway.metrics import GatewayMetrics
from gateway.ratelimit import Buckets, RateLimiter
from ledger.wire.clock import format_time

_MAX_KEYS = 100_000


@dataclass(slots=True)
class _Skipped:
    count: int
    since: str


class RefusalLimiter:
    """Decides which refusals are written; remembers how many were not, per identity and act."""

    def __init__(
        self,
        *,
        per_minute: int,
        burst: int,
        global_per_minute: int,
        clock: Clock,
        metrics: GatewayMetrics,
    ) -> None:
        self.clock = clock
        self.metrics = metrics
        self._each = RateLimiter(
            per_minute, clock=clock, burst=burst, max_keys=_MAX_KEYS, name="refusal"
        )
        self._all = RateLimiter(global_per_minute, clock=clock, max_keys=1, name="refusal-all")
        self.blocking = False
        """True once the buckets are shared: `admit` may then wait for the database."""
        self._skipped: OrderedDict[tuple[str, str], _Skipped] = OrderedDict()
        self._lock = threading.Lock()

    def share(self, buckets: Buckets) -> None:
        """Keep the buckets in *buckets*, which other replicas share: the limits then hold
        for the whole deployment (the counts of refusals left out stay per replica, and
        each replica's next written refusal says how many it left out)."""
        self._each.buckets = buckets
        self._all.buckets = buckets
        self.blocking = True

    def admit(self, actor: str, action: str, at: datetime) -> str | None:
        """None if this refusal is not to be written (it is counted); otherwise the note to
        add to its reason about earlier refusals left out ("" if there were none)."""
        key = (actor, action)
        if self._each.allow(f"{actor}\n{action}") and self._all.allow("all"):
            with self._lock:
                skipped = self._skipped.pop(key, None)
            if skipped is None:
                return ""
            return (
                f" ({skipped.count} more refused {action} attempt(s) by {actor} since "
                f"{skipped.since} were not recorded one by one)"
            )
        self.metrics.refusals_unrecorded.labels(action, "rate-limited").inc()
        with self._lock:
            skipped = self._skipped.get(key)
            if skipped is None:
                while len(self._skipped) >= _MAX_KEYS:
                    self._skipped.popitem(last=False)
                self._skipped[key] = _Skipped(1, format_time(at))
            else:
                skipped.count += 1
        return None
