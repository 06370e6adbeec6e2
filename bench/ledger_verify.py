"""P6: full offline verification of a ledger ÷ the time of three SHA-256 per entry; and
inclusion proof make + verify latency.

    ./dev python -m bench.ledger_verify [--entries 100000] [--db URL]

Builds (or reuses, with --db) a SQLite ledger of `access` entries, then measures in one run:
the bare cost of 3 SHA-256 per entry (leaf hash of the entry's bytes + two 64-byte node
hashes), the tree-only verify (chain, block signatures, Merkle roots), the full verify
(also every entry's signature, the rules replay and the state comparison), and proofs.
"""

from __future__ import annotations

import hashlib
import random
import sys
import tempfile
import time
from pathlib import Path

import click
import sqlalchemy as sa

from envelope import IdentityKeys, SigningKey
from ledger import DatabaseSource, Ledger
from ledger.migrate import upgrade
from ledger.schema import entries as entries_table
from ledger.verify import verify
from ledger.wire import builders as b
from ledger.wire.merkle import verify_inclusion


def build(url: str, key: SigningKey, count: int) -> None:
    upgrade(url)
    signer = b.LedgerSigner(key)
    with Ledger.open(url, key, max_batch=5000, verify_workers=1) as ledger:
        ledger.bootstrap(IdentityKeys.generate("admin-1", "admin").public())
        with click.progressbar(
            length=count, label=f"building {count:,} entries", hidden=not sys.stderr.isatty()
        ) as bar:
            for start in range(1, count, 5000):
                txs = [
                    b.access(
                        signer, actor=signer.id, action="body", pseudonym=f"{n % 997:064x}",
                        decision="allowed", reason="granted by permission 0123456789abcdef",
                        record_id=f"{n:032x}",
                    )
                    for n in range(start, min(count, start + 5000))
                ]  # fmt: skip
                ledger.submit_many(txs)
                bar.update(len(txs))


def sha256_baseline(url: str) -> tuple[int, float]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        payloads = [bytes(r[0]) for r in conn.execute(sa.select(entries_table.c.tx))]
    engine.dispose()
    node = bytes(65)
    started = time.perf_counter()
    sha = hashlib.sha256
    for payload in payloads:
        sha(b"\x00" + payload).digest()
        sha(node).digest()
        sha(node).digest()
    return len(payloads), time.perf_counter() - started


def timed_verify(url: str, key: SigningKey, replay: bool) -> float:
    with DatabaseSource(url) as source:
        started = time.perf_counter()
        report = verify(source, ledger_key=key.verify_key, replay=replay)
        elapsed = time.perf_counter() - started
    if not report.ok:
        raise SystemExit(f"the ledger does not verify: {report.summary()}")
    return elapsed


def proofs(url: str, key: SigningKey, samples: int) -> tuple[float, float, float, float]:
    rng = random.Random(3)
    make, check = [], []
    with Ledger.open(url, key) as ledger:
        head = ledger.head()
        assert head is not None
        chosen = [rng.randrange(head.tree_size) for _ in range(samples)]
        leaves = {e.index: e.tx.leaf_hash for i in chosen for e in ledger.entries(i, 1)}
        for index in chosen:
            started = time.perf_counter_ns()
            proof = ledger.inclusion_proof(index, head.tree_size)
            make.append(time.perf_counter_ns() - started)
            started = time.perf_counter_ns()
            verify_inclusion(index, head.tree_size, leaves[index], proof, head.root)
            check.append(time.perf_counter_ns() - started)
    make.sort()
    check.sort()

    def pct(values: list[int], q: float) -> float:
        return values[int(len(values) * q)] / 1000

    return pct(make, 0.5), pct(make, 0.99), pct(check, 0.5), pct(check, 0.99)


@click.command()
@click.option("--entries", default=100_000, show_default=True)
@click.option(
    "--keep",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="SQLite file to build into and keep (its key beside it, .key); reused if present.",
)
@click.option("--proof-samples", default=2000, show_default=True)
def main(entries: int, keep: Path | None, proof_samples: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = keep or Path(tmp) / "verify.db"
        key_file = path.with_suffix(".key")
        url = f"sqlite:///{path}"
        if path.exists() and key_file.exists():
            key = SigningKey(bytes.fromhex(key_file.read_text().strip()))
        else:
            key = SigningKey.generate()
            started = time.perf_counter()
            build(url, key, entries)
            key_file.write_text(key.private_bytes().hex())
            click.echo(f"built {entries:,} entries in {time.perf_counter() - started:.0f} s")
        count, baseline = sha256_baseline(url)
        tree = timed_verify(url, key, replay=False)
        full = timed_verify(url, key, replay=True)
        make50, make99, check50, check99 = proofs(url, key, proof_samples)
    click.echo(f"P6 ledger verification, {count:,} entries (SQLite)")
    click.echo(f"{'measure':52} {'seconds':>9} {'us/entry':>9} {'/ 3 x SHA-256':>14}")
    for name, secs in (
        ("3 x SHA-256 per entry (baseline)", baseline),
        ("verify: tree, chain, block signatures", tree),
        ("verify: full (+ entry signatures, rules, state)", full),
    ):
        click.echo(f"{name:52} {secs:9.2f} {secs / count * 1e6:9.2f} {secs / baseline:14.2f}")
    click.echo(
        f"inclusion proof at {count:,}: make p50 {make50:.1f} us p99 {make99:.1f} us "
        f"(from the database); verify p50 {check50:.1f} us p99 {check99:.1f} us"
    )


if __name__ == "__main__":
    main()
