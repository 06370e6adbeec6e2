"""Continuous appends to an open ledger from several threads, recording what was acknowledged.

Used by the database fault tests: the fault is injected while the threads append, and
afterwards every acknowledged append must be on the ledger at the index its receipt named.
"""

from __future__ import annotations

import time
from collections import Counter
from functools import partial

import sqlalchemy as sa

from ledger import DatabaseSource, Ledger, LedgerError, schema
from ledger.verify import verify
from ledger.wire import builders as b
from tests.faults.workers import Workers


class AppendLoad(Workers):
    """`threads` threads appending `access` entries until `stop()`."""

    def __init__(self, ledger: Ledger, threads: int = 4, name: str = "load") -> None:
        self.ledger = ledger
        self.acks: dict[int, str] = {}
        self.errors: Counter[str] = Counter()
        self.error_messages: list[str] = []
        super().__init__(
            (partial(self._run, f"{name}-{n}") for n in range(threads)), "an appending thread"
        )

    def _run(self, name: str) -> None:
        n = 0
        while not self._stop.is_set():
            tx = b.access(
                self.ledger.signer,
                actor=self.ledger.signer.id,
                action="list",
                pseudonym="00" * 32,
                decision="denied",
                reason=f"{name} {n}",
            )
            n += 1
            try:
                receipt = self.ledger.submit(tx, timeout=120)
            except LedgerError as exc:
                with self._lock:
                    self.errors[type(exc).__name__] += 1
                    if len(self.error_messages) < 20:
                        self.error_messages.append(str(exc))
                time.sleep(0.01)
                continue
            except Exception as exc:  # anything else is a defect: record it by its type
                with self._lock:
                    self.errors[f"unexpected {type(exc).__name__}"] += 1
                    self.error_messages.append(repr(exc))
                time.sleep(0.01)
                continue
            with self._lock:
                self.acks[receipt.index] = tx.tx_id
                self._lock.notify_all()

    def ack_count(self) -> int:
        with self._lock:
            return len(self.acks)

    def error_count(self) -> int:
        with self._lock:
            return sum(self.errors.values())

    def wait_for_acks(self, count: int, timeout: float = 60) -> None:
        self._wait_until(
            lambda: len(self.acks) >= count,
            timeout,
            lambda: (
                f"only {len(self.acks)} of {count} appends acknowledged; errors: "
                f"{dict(self.errors)} {self.error_messages[-3:]}"
            ),
        )

    def wait_for_errors(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.error_count() < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the fault caused no error in {timeout:.0f}s")
            time.sleep(0.02)


def assert_nothing_acknowledged_was_lost(url: str, acks: dict[int, str]) -> int:
    """The ledger at *url* verifies and holds every acknowledged append; returns its size."""
    with DatabaseSource(url) as source:
        report = verify(source)
    assert report.ok, report.summary()
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            t = schema.entries
            stored = {int(i): str(x) for i, x in conn.execute(sa.select(t.c.idx, t.c.tx_id))}
    finally:
        engine.dispose()
    lost = sorted(i for i, tx_id in acks.items() if stored.get(i) != tx_id)
    assert not lost, f"acknowledged appends lost at indices {lost[:10]}"
    return report.entries
