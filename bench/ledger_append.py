"""P3: durable ledger appends per second, group-committed and unbatched, against raw SQLite.

    ./dev python -m bench.ledger_append [--count 20000] [--threads 64]

All three run in the same process on the same disk with the same SQLite settings (WAL,
synchronous=FULL). Transactions are `access` entries signed beforehand (clients sign; the
ledger verifies): each append verifies an Ed25519 signature, applies the rules, hashes the
leaf and subtree nodes, and writes entry, nodes, state row and block in one commit.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import click

from envelope import IdentityKeys, SigningKey
from ledger import Ledger, Transaction
from ledger import builders as b
from ledger.database import SQLITE_SYNCHRONOUS
from ledger.migrate import upgrade


def _transactions(signer: b.Actor, count: int) -> list[Transaction]:
    return [
        b.access(
            signer,
            actor=signer.id,
            action="body",
            pseudonym=f"{n % 1000:064x}",
            decision="allowed",
            reason="granted by permission 0123456789abcdef0123456789abcdef",
            record_id=f"{n:032x}",
        )
        for n in range(count)
    ]


def _open(directory: Path, name: str, key: SigningKey, max_batch: int, workers: int = 0) -> Ledger:
    url = f"sqlite:///{directory / name}"
    upgrade(url)
    ledger = Ledger.open(url, key, max_batch=max_batch, verify_workers=workers)
    ledger.bootstrap(IdentityKeys.generate("admin-1", "admin").public())
    return ledger


def _threaded(
    submit: Callable[[Transaction], object], txs: list[Transaction], threads: int
) -> float:
    def worker(chunk: list[Transaction]) -> None:
        for tx in chunk:
            submit(tx)

    workers = [threading.Thread(target=worker, args=(txs[i::threads],)) for i in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.perf_counter() - started


def _raw_sqlite(path: Path, count: int, payload: bytes) -> float:
    """One INSERT + COMMIT per row: what a durable SQLite commit costs here."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
    started = time.perf_counter()
    for n in range(count):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (id, body) VALUES (?, ?)", (n, payload))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


@click.command()
@click.option("--count", default=20_000, show_default=True, help="Appends per measurement.")
@click.option("--threads", default=64, show_default=True, help="Concurrent submitters.")
@click.option("--unbatched-count", default=2_000, show_default=True)
def main(count: int, threads: int, unbatched_count: int) -> None:
    key = SigningKey.generate()
    signer = b.LedgerSigner(key)
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        rows: list[tuple[str, int, float]] = []

        ledger = _open(directory, "batched.db", key, max_batch=5000)
        txs = _transactions(signer, count)
        seconds = _threaded(ledger.submit, txs, threads)
        head = ledger.head()
        blocks = head.height + 1 if head is not None else 0
        ledger.close()
        rows.append((f"ledger, group commit, {threads} threads", count, seconds))

        ledger = _open(directory, "many.db", key, max_batch=5000)
        txs = _transactions(signer, count)
        started = time.perf_counter()
        ledger.submit_many(txs)
        rows.append(("ledger, group commit, submit_many", count, time.perf_counter() - started))
        ledger.close()

        for workers in range(1, cores):
            ledger = _open(directory, f"workers{workers}.db", key, 5000, workers)
            txs = _transactions(signer, count)
            seconds = _threaded(ledger.submit, txs, threads)
            ledger.close()
            rows.append(
                (f"ledger, group commit, {threads} threads, {workers} verify worker(s)",
                 count, seconds)
            )  # fmt: skip

        ledger = _open(directory, "unbatched.db", key, max_batch=1)
        txs = _transactions(signer, unbatched_count)
        seconds = _threaded(ledger.submit, txs, threads)
        ledger.close()
        rows.append(
            (f"ledger, unbatched (1 per commit), {threads} threads", unbatched_count, seconds)
        )

        payload = txs[0].encoded
        seconds = _raw_sqlite(directory / "raw.db", unbatched_count, payload)
        rows.append(("raw SQLite, 1 INSERT per COMMIT", unbatched_count, seconds))

    raw_rate = rows[-1][1] / rows[-1][2]
    click.echo(
        f"P3 ledger appends (SQLite WAL, synchronous={SQLITE_SYNCHRONOUS}); "
        f"{blocks} blocks for the first run"
    )
    click.echo(f"{'measure':55} {'appends':>8} {'seconds':>8} {'per s':>9} {'÷ raw':>7}")
    for name, n, secs in rows:
        rate = n / secs
        click.echo(f"{name:55} {n:8d} {secs:8.2f} {rate:9.0f} {rate / raw_rate:7.2f}")


if __name__ == "__main__":
    main()
