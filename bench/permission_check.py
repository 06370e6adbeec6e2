"""P4: permission check latency (p50, p99) at 10^4, 10^6 and 10^7 active grants.

    ./dev python -m bench.permission_check [--sizes 10000,1000000,10000000] [--queries 200000]

The grants are generated straight into the in-memory index the ledger uses (building 10^7
signed transactions would take hours and measures something else): ten grants per patient,
to grantees drawn from 10^4 clinicians, half on one category, half on all. Each query asks
"may G read category C of pseudonym P at t?" for a random (P, G) pair that holds a grant
(90%) or not (10%), timed one by one with perf_counter_ns.
"""

from __future__ import annotations

import gc
import random
import time

import click

from ledger.categories import CategoryRegistry
from ledger.state import PermissionIndex
from ledger.wire.clock import to_micros

NOT_BEFORE = to_micros("2026-01-01T00:00:00.000000Z")
NOT_AFTER = to_micros("2027-01-01T00:00:00.000000Z")
AT = to_micros("2026-06-01T12:00:00.000000Z")
CLINICIANS = [f"clinician-{n:05d}" for n in range(10_000)]
GRANTS_PER_PATIENT = 10


def build(size: int, progress: bool) -> tuple[PermissionIndex, list[str], list[tuple[str, str]]]:
    """The index, the pseudonyms, and a sample of (grantee, pseudonym) pairs holding a grant."""
    index = PermissionIndex(CategoryRegistry())
    patients = [f"{n:064x}" for n in range(max(1, size // GRANTS_PER_PATIENT))]
    rng = random.Random(size)
    lab = 2 << 1  # the bit of "lab-results" in the default registry
    every = max(1, size // 50_000)
    sample: list[tuple[str, str]] = []
    with click.progressbar(
        length=size, label=f"building {size:,} grants", hidden=not progress
    ) as bar:
        for n in range(size):
            pseudonym = patients[n // GRANTS_PER_PATIENT]
            grantee = CLINICIANS[rng.randrange(len(CLINICIANS))]
            categories = 1 if n & 1 else lab
            index.add_grant(pseudonym, grantee, (NOT_BEFORE, NOT_AFTER, 1, categories, f"{n:032x}"))
            if n % every == 0:
                sample.append((grantee, pseudonym))
            if n % 100_000 == 99_999:
                bar.update(100_000)
    return index, patients, sample


def measure(
    index: PermissionIndex, patients: list[str], sample: list[tuple[str, str]], queries: int
) -> tuple[float, float]:
    rng = random.Random(7)
    pairs = []
    for n in range(queries):
        if n % 10 == 0:  # a pair that (almost surely) holds nothing
            pairs.append((CLINICIANS[rng.randrange(len(CLINICIANS))], rng.choice(patients)))
        else:
            pairs.append(sample[rng.randrange(len(sample))])
    timings = []
    check = index.check
    clock = time.perf_counter_ns
    gc.disable()
    try:
        for grantee, pseudonym in pairs:
            started = clock()
            check(grantee, "read", pseudonym, "lab-results", AT)
            timings.append(clock() - started)
    finally:
        gc.enable()
    timings.sort()
    return timings[len(timings) // 2] / 1000, timings[int(len(timings) * 0.99)] / 1000


@click.command()
@click.option("--sizes", default="10000,1000000,10000000", show_default=True)
@click.option("--queries", default=200_000, show_default=True)
def main(sizes: str, queries: int) -> None:
    import sys

    rows = []
    for size in (int(s) for s in sizes.split(",")):
        started = time.perf_counter()
        index, patients, sample = build(size, sys.stderr.isatty())
        built = time.perf_counter() - started
        p50, p99 = measure(index, patients, sample, queries)
        rows.append((size, len(index), built, p50, p99))
        del index, patients, sample
        gc.collect()
    base_p99 = rows[0][4]
    click.echo("P4 permission check (PermissionIndex.check), microseconds")
    click.echo(f"{'grants':>12} {'build s':>8} {'p50 µs':>8} {'p99 µs':>8} {'p99 ÷ first':>12}")
    for size, _count, built, p50, p99 in rows:
        click.echo(f"{size:12,d} {built:8.1f} {p50:8.2f} {p99:8.2f} {p99 / base_p99:12.2f}")


if __name__ == "__main__":
    main()
