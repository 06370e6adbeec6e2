"""Peak memory growth while streaming 1 GiB through the S3 store to and from SeaweedFS.

    ./dev python -m bench.storage_memory [--gib 1]

Starts one SeaweedFS (``weed mini``, 127.0.0.1, telemetry off). Each operation (put with
unknown SHA-256, put with announced SHA-256, checked get) runs in a fresh spawned process
that opens the store, loads its code paths with a 1 MiB round trip, resets the kernel's
peak-RSS mark (``/proc/self/clear_refs``), streams a generated 1 GiB body and reads the
peak (``VmHWM``). Growth = peak minus the resident size just before. Target: at most
64 MiB for every operation.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import re
from collections.abc import Iterator
from multiprocessing.queues import Queue
from pathlib import Path

import click

from storage import open_store
from tests.seaweedfs import SeaweedFS

MIB = 1024 * 1024
LIMIT = 64 * MIB


def _status(field: str) -> int:
    """A size field of /proc/self/status, in bytes."""
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    assert match, field
    return int(match.group(1)) * 1024


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def generated(total: int, seed: bytes = b"ehrgate") -> Iterator[bytes]:
    """``total`` bytes in 1 MiB chunks, each distinct, made without holding the whole body."""
    block = hashlib.sha256(seed).digest() * (MIB // 32)
    for index in range(total // MIB):
        yield index.to_bytes(8, "big") + block[8:]


def _measure(
    url: str, operation: str, total: int, results: Queue[tuple[int, int, tuple[str, int]]]
) -> None:
    """Run one operation in this (fresh) process and report (RSS before, peak growth, blob)."""
    store = open_store(url)
    # Load every code path once with a tiny body, so imports and connection setup are not
    # counted; anything that grows with the body size still is.
    warm = store.put(generated(MIB, b"warm"))
    for _ in store.get(warm.locators, sha256=warm.sha256, size=warm.size):
        pass
    announced = None
    if operation == "put-announced":
        digest = hashlib.sha256()
        for chunk in generated(total, b"announced"):
            digest.update(chunk)
        announced = digest.hexdigest()
    sha = hashlib.sha256()
    for chunk in generated(total):
        sha.update(chunk)
    blob_sha = sha.hexdigest()
    before = _status("VmRSS")
    _reset_peak()
    if operation == "put":
        store.put(generated(total))
    elif operation == "put-announced":
        store.put(generated(total, b"announced"), sha256=announced)
    else:
        locator = f"s3://{store.name}/blobs/{blob_sha[:2]}/{blob_sha}"
        for _ in store.get((locator,), sha256=blob_sha, size=total):
            pass
    results.put((before, _status("VmHWM") - before, (blob_sha, total)))
    store.close()


OPERATIONS = (
    ("put", "put, SHA-256 unknown"),
    ("put-announced", "put, SHA-256 announced"),
    ("get", "get (checked)"),
)


@click.command()
@click.option("--gib", default=1, show_default=True, help="Body size in GiB.")
def main(gib: int) -> None:
    """Measure peak RSS growth of 1 GiB uploads and downloads through the S3 store."""
    total = gib * 1024 * MIB
    with SeaweedFS.start() as server:
        bucket = server.create_bucket("memory")
        url = server.store_url(bucket)
        context = multiprocessing.get_context("spawn")
        rows = []
        for operation, label in OPERATIONS:
            results: Queue[tuple[int, int, tuple[str, int]]] = context.Queue()
            child = context.Process(target=_measure, args=(url, operation, total, results))
            child.start()
            before, growth, _ = results.get()
            child.join()
            if child.exitcode != 0:
                raise SystemExit(f"measuring {operation} failed (exit code {child.exitcode})")
            rows.append((label, before, growth))
    click.echo(f"streaming {gib} GiB through s3:// on SeaweedFS, one fresh process each")
    click.echo(f"{'operation':<26} | {'RSS before':>10} | {'peak growth':>11} | {'limit':>6}")
    for label, before, growth in rows:
        verdict = "ok" if growth <= LIMIT else "OVER"
        click.echo(
            f"{label:<26} | {before / MIB:7.1f} MiB | {growth / MIB:7.1f} MiB | "
            f"{LIMIT // MIB} MiB {verdict}"
        )


if __name__ == "__main__":
    main()
