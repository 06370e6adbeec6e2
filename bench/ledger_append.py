"""P3: durable ledger appends per second, group-committed and unbatched, against raw SQLite.

    ./dev python -m bench.ledger_append [--count 20000] [--threads 64]

All rows run in the same process on the same disk with the same SQLite settings (WAL,
synchronous=FULL). Transactions are `access` entries signed beforehand, in two forms:
"externally signed" ones are parsed from their JSON bytes as a client's would be, so each
append verifies an Ed25519 signature; "ledger-authored" ones are the Transaction objects the
ledger's own `LedgerSigner` made in this process (the gateway's audit entries), whose
signatures the ledger does not check again. Every append applies the rules, hashes the
leaf and subtree nodes, and writes entry, nodes, state row and block in one commit.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import click

from envelope import IdentityKeys, SigningKey
from ledger import Ledger, Receipt, Transaction
from ledger.committer import Pending
from ledger.database import SQLITE_SYNCHRONOUS
from ledger.migrate import upgrade
from ledger.waiters import Waiter
from ledger.wire import builders as b


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


def _external(txs: list[Transaction]) -> list[Transaction]:
    """The same transactions as a client would send them: parsed from their JSON bytes, so
    nothing marks them as made in this process and each signature is verified on append."""
    return [Transaction.from_bytes(tx.encoded) for tx in txs]


def _batched_raw_sqlite(path: Path, count: int, payload: bytes, batch: int) -> float:
    """*batch* INSERTs per COMMIT (one executemany): the floor under any group commit."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
    started = time.perf_counter()
    for first in range(0, count, batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO t (id, body) VALUES (?, ?)",
            [(n, payload) for n in range(first, min(first + batch, count))],
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def _profile(kind: str, count: int, batch: int) -> None:
    """cProfile of one thread doing an append's whole work: the submitter's signature check
    and the committer's batches of *batch*. Deterministic, unlike sampling a process whose
    64 submitter threads mostly wait (py-spy there shows the wait, not the work)."""
    key = SigningKey.generate()
    txs = _transactions(b.LedgerSigner(key), count)
    if kind == "external":
        txs = _external(txs)
    with tempfile.TemporaryDirectory() as tmp:
        ledger = _open(Path(tmp), "profile.db", key, max_batch=batch)
        committer = ledger._committer

        def run() -> None:
            for first in range(0, len(txs), batch):
                waiters: list[Waiter[Receipt]] = []
                pending = []
                for tx in txs[first : first + batch]:
                    signer = committer.signer_key(tx)
                    if signer is not None:
                        tx.verify_signature(signer)
                    waiters.append(Waiter())
                    pending.append(Pending(tx, None, waiters[-1]))
                committer._commit_batch(pending)
                for waiter in waiters:
                    waiter.result()

        cpu = time.process_time()
        profile = cProfile.Profile()
        profile.runcall(run)
        cpu = time.process_time() - cpu
        ledger.close()
    pstats.Stats(profile).sort_stats("tottime").print_stats(12)
    click.echo(f"{kind}, batches of {batch}: {cpu / count * 1e6:.0f} µs CPU per append")


@click.command()
@click.option("--count", default=20_000, show_default=True, help="Appends per measurement.")
@click.option("--threads", default=64, show_default=True, help="Concurrent submitters.")
@click.option("--unbatched-count", default=2_000, show_default=True)
@click.option(
    "--only",
    type=click.Choice(["external-threads", "external-many", "own-threads", "own-many"]),
    default=None,
    help="Run just this measure (to profile it, e.g. under py-spy).",
)
@click.option(
    "--profile",
    type=click.Choice(["external", "own"]),
    default=None,
    help="Print a cProfile of one thread's appends (see --batch) instead of measuring.",
)
@click.option("--batch", default=64, show_default=True, help="Batch size for --profile.")
def main(
    count: int, threads: int, unbatched_count: int, only: str | None, profile: str | None,
    batch: int,
) -> None:  # fmt: skip
    if profile is not None:
        _profile(profile, count, batch)
        return
    key = SigningKey.generate()
    signer = b.LedgerSigner(key)
    cores = os.cpu_count() or 1
    rows: list[tuple[str, int, float, float]] = []  # name, appends, seconds, CPU seconds

    def measure(name: str, txs: list[Transaction], *, many: bool = False, workers: int = 0,
                max_batch: int = 5000) -> None:  # fmt: skip
        ledger = _open(directory, f"{len(rows)}.db", key, max_batch, workers)
        cpu = time.process_time()
        if many:
            started = time.perf_counter()
            ledger.submit_many(txs)
            seconds = time.perf_counter() - started
        else:
            seconds = _threaded(ledger.submit, txs, threads)
        cpu = time.process_time() - cpu
        ledger.close()
        rows.append((name, len(txs), seconds, cpu))

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        if only is not None:
            txs = _transactions(signer, count)
            if only.startswith("external"):
                txs = _external(txs)
            measure(only, txs, many=only.endswith("many"))
            name, n, secs, cpu = rows[0]
            click.echo(f"{name}: {n / secs:.0f} appends/s, {cpu / n * 1e6:.0f} µs CPU each")
            return
        external = f"externally signed, group commit, {threads} threads"
        own = f"ledger-authored, group commit, {threads} threads"
        measure(external, _external(_transactions(signer, count)))
        measure(own, _transactions(signer, count))
        measure("externally signed, group commit, submit_many",
                _external(_transactions(signer, count)), many=True)  # fmt: skip
        measure("ledger-authored, group commit, submit_many",
                _transactions(signer, count), many=True)  # fmt: skip
        for workers in range(1, cores):
            measure(f"externally signed, {threads} threads, {workers} verify worker(s)",
                    _external(_transactions(signer, count)), workers=workers)  # fmt: skip
        measure(f"externally signed, unbatched (1 per commit), {threads} threads",
                _external(_transactions(signer, unbatched_count)), max_batch=1)  # fmt: skip

        payload = _transactions(signer, 1)[0].encoded
        cpu = time.process_time()
        seconds = _raw_sqlite(directory / "raw.db", unbatched_count, payload)
        rows.append(("raw SQLite, 1 INSERT per COMMIT", unbatched_count, seconds,
                     time.process_time() - cpu))  # fmt: skip
        raw_rate = unbatched_count / seconds
        cpu = time.process_time()
        seconds = _batched_raw_sqlite(directory / "raw-batched.db", count, payload, 2000)
        rows.append(("raw SQLite, 2000 INSERTs per COMMIT", count, seconds,
                     time.process_time() - cpu))  # fmt: skip

    click.echo(
        f"P3 ledger appends (SQLite WAL, synchronous={SQLITE_SYNCHRONOUS}, {cores} cores); "
        "÷ raw = against 1 INSERT per COMMIT; CPU = this process's CPU time (all threads "
        "and, for verify workers, not theirs) per append"
    )
    click.echo(
        f"{'measure':58} {'appends':>8} {'seconds':>8} {'per s':>9} {'÷ raw':>7} {'CPU µs':>7}"
    )
    for name, n, secs, cpu in rows:
        rate = n / secs
        click.echo(
            f"{name:58} {n:8d} {secs:8.2f} {rate:9.0f} {rate / raw_rate:7.2f} {cpu / n * 1e6:7.0f}"
        )


if __name__ == "__main__":
    main()
