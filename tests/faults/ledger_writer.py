"""A ledger writer process for the crash tests: several threads appending with group commit.

    python -m tests.faults.ledger_writer URL LEDGER_KEY_HEX THREADS NAME

Prints ``ready`` once the ledger is open, then one line ``<index> <tx_id>`` for every
append whose receipt it was handed, flushed at once: a line the parent reads is an
acknowledged append. It runs until it is killed.

Every database commit is delayed by a few milliseconds just before it is sent (a slow
disk), so that a kill often lands while a batch is committing: if receipts were handed out
before the commit, appends acknowledged in that window would be lost and the test would
see it.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from typing import Any

from sqlalchemy import event

from envelope import SigningKey
from ledger import Ledger
from ledger.wire import builders as b

_print_lock = threading.Lock()


def _report(line: str) -> None:
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _append_forever(ledger: Ledger, name: str, thread: int) -> None:
    n = 0
    while True:
        tx = b.access(
            ledger.signer,
            actor=ledger.signer.id,
            action="list",
            pseudonym="00" * 32,
            decision="denied",
            reason=f"{name} thread {thread} append {n}",
        )
        receipt = ledger.submit(tx)
        _report(f"{receipt.index} {tx.tx_id}")
        n += 1


def _slow_commit(_connection: Any) -> None:
    time.sleep(random.uniform(0.005, 0.02))


def main() -> None:
    url, key_hex, threads, name = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    ledger = Ledger.open(url, SigningKey(bytes.fromhex(key_hex)))
    event.listen(ledger.engine, "commit", _slow_commit)
    workers = [
        threading.Thread(target=_append_forever, args=(ledger, name, t), daemon=True)
        for t in range(threads)
    ]
    for worker in workers:
        worker.start()
    _report("ready")
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    main()
