"""Opening a record with the SDK: the one-round-trip open ÷ the old routes, same gateway.

    ./dev python -m bench.open_record [--sizes-kib 4,1024] [--rounds 40] [--latency-ms 0]

`ehrgate serve` runs in a process of its own on 127.0.0.1 (uvicorn, SQLite ledger, the
default local store, a fresh data directory). Its admin enrolls a clinician and a system,
registers a patient who grants the clinician read access to lab results and shares the
month keys, and the system uploads one record of each size. Then, alternating round by
round on the same records, the same clinician (two clients, each signed in once, its key
share already held):

- old: `Client.fetch_bytes` through the old routes (GET /v1/records/{id}, /capsule,
  /body: three audited requests); the client is made to see an older gateway, which
  answers 404 for the open route, as the SDK's fallback does;
- new: `Client.fetch_bytes` through GET /v1/records/{id}/open and its ticketed body (one
  audited request, one `access` entry).

Both make the same checks (proof against the pinned head, capsule hash and signature,
body hash, size and segments). `--latency-ms` adds that much delay before each request
the clients send (a round trip to a gateway further away than loopback).

For each size it prints each side's median wall time per open, the ratio new ÷ old, the
gateway process's CPU time per open (user + system, all threads, from /proc), and the
requests and `access` entries per open (counted, not assumed).
"""

from __future__ import annotations

import io
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import click
import httpx

from bench._cast import lab_results_cast
from bench._http import free_port, run_server
from bench._proc import cpu_seconds
from ehrgate import Client
from envelope import IdentityKeys
from tests.gateway.helpers import World

KIB = 1024


class Counting(httpx.BaseTransport):
    """Forwards to the gateway after *latency* seconds, counting requests; with *older*,
    answers 404 for the open route as a gateway from before it does."""

    def __init__(self, latency: float, *, older: bool) -> None:
        self._real = httpx.HTTPTransport()
        self._latency = latency
        self._older = older
        self.requests = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self._latency:
            time.sleep(self._latency)
        if self._older and request.url.path.endswith(("/open", "/open/body")):
            return httpx.Response(
                404,
                json={
                    "type": "urn:ehrgate:problem:not-found",
                    "title": "Not found",
                    "status": 404,
                    "detail": f"there is no resource at {request.url.path}",
                },
                headers={"Content-Type": "application/problem+json"},
            )
        return self._real.handle_request(request)

    def close(self) -> None:
        self._real.close()


@dataclass
class Side:
    name: str
    client: Client
    transport: Counting
    seconds: list[float] = field(default_factory=list)
    cpu: float = 0.0
    requests: int = 0
    opens: int = 0


def _entries(http: httpx.Client, world: World, patient_id: IdentityKeys, pseudonym: str) -> int:
    answer = http.get(f"/v1/patients/{pseudonym}/audit", headers=world.headers(patient_id))
    answer.raise_for_status()
    return sum(1 for e in answer.json()["events"] if e["actor"] == "dr-bench")


@click.command()
@click.option("--sizes-kib", default="4,1024", help="Record sizes in KiB, comma separated.")
@click.option("--rounds", type=click.IntRange(1, 10_000), default=40)
@click.option("--latency-ms", type=click.FloatRange(0, 1000), default=0.0)
def main(sizes_kib: str, rounds: int, latency_ms: float) -> None:
    sizes = [int(s) * KIB for s in sizes_kib.split(",") if s.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        data_dir = Path(tmp) / "data"
        env = {"EHRGATE_DATA_DIR": str(data_dir), "EHRGATE_LOG_LEVEL": "warning"}
        with (
            run_server(["-m", "ehrgate", "serve", "--port", str(port)], port=port, env=env) as srv,
            httpx.Client(base_url=srv.url, timeout=600) as http,
        ):
            cast = lab_results_cast(http, data_dir)
            world, doctor, system, patient = cast.world, cast.doctor, cast.system, cast.patient
            with Client(srv.url, system) as uploader:
                records = {
                    size: uploader.upload(
                        io.BytesIO(b"%PDF-1.4\n" + os.urandom(max(size - 9, 0))),
                        pseudonym=patient.pseudonym,
                        category="lab-results",
                    ).record.record_id
                    for size in sizes
                }
            latency = latency_ms / 1000
            print(
                f"gateway pid {srv.pid}; {rounds} rounds per size, alternating; "
                f"added latency {latency_ms:g} ms per request"
            )
            print(
                "| size | old ms (median) | new ms (median) | new ÷ old | gateway CPU ms/open "
                "old / new | requests/open old / new | access entries/open old / new |"
            )
            print("|---|---|---|---|---|---|---|")
            for size, record_id in records.items():
                sides = [
                    Side(name, Client(srv.url, doctor, transport=t), t)
                    for name, t in (
                        ("old", Counting(latency, older=True)),
                        ("new", Counting(latency, older=False)),
                    )
                ]
                for side in sides:  # sign in, pin, hold the share; the old one learns the 404
                    side.client.fetch_bytes(record_id)
                entries = {side.name: 0 for side in sides}
                for _ in range(rounds):
                    for side in sides:
                        before_entries = _entries(http, world, patient.identity, patient.pseudonym)
                        before_requests = side.transport.requests
                        before_cpu = cpu_seconds(srv.pid)
                        started = time.perf_counter()
                        _, plaintext = side.client.fetch_bytes(record_id)
                        side.seconds.append(time.perf_counter() - started)
                        side.cpu += cpu_seconds(srv.pid) - before_cpu
                        side.requests += side.transport.requests - before_requests
                        side.opens += 1
                        assert len(plaintext) == max(size, 9)
                        after = _entries(http, world, patient.identity, patient.pseudonym)
                        entries[side.name] += after - before_entries
                old, new = sides
                old_ms = statistics.median(old.seconds) * 1000
                new_ms = statistics.median(new.seconds) * 1000
                print(
                    f"| {size // KIB} KiB | {old_ms:.1f} | {new_ms:.1f} | {new_ms / old_ms:.2f} | "
                    f"{old.cpu / old.opens * 1000:.1f} / {new.cpu / new.opens * 1000:.1f} | "
                    f"{old.requests / old.opens:g} / {new.requests / new.opens:g} | "
                    f"{entries['old'] / old.opens:g} / {entries['new'] / new.opens:g} |"
                )
                for side in sides:
                    side.client.close()


if __name__ == "__main__":
    main()
