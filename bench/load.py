"""A bounded load test of a real gateway on loopback: mixed uploads, lists and fetches.

    ./dev python -m bench.load [--clients 50] [--duration 180] [--max-requests 30000]
                               [--database URL] [--size 20000] [--seed N]
                               [--replicas N]

Starts `ehrgate serve` in a temporary data directory (embedded SQLite and local blobs
unless --database names another ledger database), enrolls one clinician per client, a few
patients who grant every clinician read and write, then runs `--clients` threads, each with
its own connection and token, for `--duration` seconds or until `--max-requests` operations,
whichever comes first. Each operation is one of

  upload   seal random bytes locally, POST /v1/blobs, POST /v1/records (2 requests)
  list     GET /v1/patients/{pseudonym}/records (audited)
  fetch    GET capsule + GET body of an uploaded record, open and decrypt, compare (2 requests)
  healthz  GET /healthz: the baseline, measured under the same load in the same run

in the ratio 3 : 4 : 3 : 1. Prints, per operation, the count, errors, error rate and the
latency percentiles, and each p50 as a multiple of the healthz p50, and the CPU time the
gateway process(es) spent per operation (user + system, all their threads).

With `--replicas N` (N > 1, and --database naming a PostgreSQL database) it starts N
`ehrgate serve` replicas sharing that ledger behind Debian's HAProxy on loopback
(`tests/replicas.py`) and sends all traffic through the balancer; the balancer's own CPU
time is printed apart.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import click
import httpx
import sqlalchemy as sa

from envelope import IdentityKeys, PatientKeys
from tests.faults.gateway_client import (
    Actor,
    Refused,
    Unavailable,
    enroll,
    fetch_and_open,
    grant,
    register_patient,
    upload,
)
from tests.faults.gateway_load import CATEGORIES, plaintext
from tests.faults.gateway_process import GatewayProcess
from tests.replicas import Deployment

OPERATIONS = (("upload", 3), ("list", 4), ("fetch", 3), ("healthz", 1))
PATIENTS = 5


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    uploaded: list[tuple[PatientKeys, str, int, int]] = field(default_factory=list)
    started: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take_ticket(self, limit: int) -> bool:
        with self.lock:
            if self.started >= limit:
                return False
            self.started += 1
            return True

    def ok(self, operation: str, seconds: float) -> None:
        with self.lock:
            self.latencies[operation].append(seconds)

    def error(self, operation: str, kind: str) -> None:
        with self.lock:
            counts = self.errors[operation]
            counts[kind] = counts.get(kind, 0) + 1


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def _client_loop(
    url: str, keys: IdentityKeys, patients: list[PatientKeys], seed: int, deadline: float,
    limit: int, size: int, results: Results, progress: threading.Event,
) -> None:  # fmt: skip
    rng = random.Random(seed)
    names = [name for name, weight in OPERATIONS for _ in range(weight)]
    with httpx.Client(base_url=url, timeout=120) as client:
        actor = Actor(client, keys)
        while time.monotonic() < deadline and results.take_ticket(limit):
            operation = rng.choice(names)
            with results.lock:
                known = results.uploaded[rng.randrange(len(results.uploaded))] if (
                    results.uploaded and operation == "fetch"
                ) else None  # fmt: skip
            if operation == "fetch" and known is None:
                operation = "upload"
            patient = patients[rng.randrange(len(patients))]
            started = time.perf_counter()
            try:
                if operation == "upload":
                    body_seed, body_size = rng.randrange(2**63), rng.randrange(size * 2)
                    record_id = upload(actor, patient, rng.choice(CATEGORIES),
                                       plaintext(body_seed, body_size))  # fmt: skip
                    with results.lock:
                        results.uploaded.append((patient, record_id, body_seed, body_size))
                elif operation == "list":
                    actor.request("GET", f"/v1/patients/{patient.pseudonym}/records")
                elif operation == "fetch":
                    assert known is not None
                    owner, record_id, body_seed, body_size = known
                    if fetch_and_open(actor, owner, record_id) != plaintext(body_seed, body_size):
                        results.error(operation, "wrong bytes")
                        continue
                else:
                    client.get("/healthz").raise_for_status()
            except Unavailable:
                results.error(operation, "503/unreachable")
                continue
            except Refused as exc:
                results.error(operation, f"HTTP {exc.status}")
                continue
            except httpx.HTTPError as exc:
                results.error(operation, type(exc).__name__)
                continue
            results.ok(operation, time.perf_counter() - started)
            progress.set()


def _set_up(
    url: str, admin_keys: IdentityKeys, clients: int
) -> tuple[list[IdentityKeys], list[PatientKeys]]:
    with httpx.Client(base_url=url, timeout=60) as client:
        admin = Actor(client, admin_keys)
        clinicians = [enroll(admin, f"dr-load-{n}", "clinician") for n in range(clients)]
        patients = [register_patient(admin, f"Load Patient {n}") for n in range(PATIENTS)]
        for patient in patients:
            owner = Actor(client, patient.identity)
            for clinician in clinicians:
                grant(owner, patient.pseudonym, clinician.id, ["read", "write"])
    return clinicians, patients


@click.command()
@click.option("--clients", default=50, show_default=True, help="Concurrent client threads.")
@click.option("--duration", default=180.0, show_default=True, help="Seconds of load at most.")
@click.option("--max-requests", default=30_000, show_default=True, help="Operations at most.")
@click.option("--database", default=None, help="Ledger database URL [default: embedded SQLite].")
@click.option("--size", default=20_000, show_default=True, help="Mean plaintext size of uploads.")
@click.option("--seed", default=1, show_default=True, help="Seed of the operation mix.")
@click.option(
    "--replicas",
    default=1,
    show_default=True,
    help="Gateway replicas behind HAProxy (more than one needs a PostgreSQL --database).",
)
def main(
    clients: int,
    duration: float,
    max_requests: int,
    database: str | None,
    size: int,
    seed: int,
    replicas: int,
) -> None:
    if replicas > 1 and not (database or "").startswith("postgresql"):
        raise click.UsageError("--replicas above 1 needs --database postgresql://...")
    with tempfile.TemporaryDirectory(prefix="ehrgate-load-") as directory:
        if replicas > 1:
            assert database is not None
            _empty(database)
            deployment = Deployment(
                Path(directory), database, replicas=replicas,
                env={"EHRGATE_LOG_LEVEL": "warning", "EHRGATE_AUTH_RATE_LIMIT": "1000000"},
            )  # fmt: skip
            deployment.start()
            url, admin_keys = deployment.url, deployment.admin_keys()
            processes = [r.process for r in deployment.replicas]
            balancer = [deployment.balancer.process]
            stop = deployment.stop
        else:
            env = {"EHRGATE_DATABASE_URL": database} if database else {}
            gateway = GatewayProcess(Path(directory) / "gateway", env=env)
            gateway.start()
            url, admin_keys = gateway.url, gateway.admin_keys()
            processes, balancer, stop = [gateway.process], [], gateway.kill
        try:
            identities, patients = _set_up(url, admin_keys, clients)
            results = Results()
            progress = threading.Event()
            deadline = time.monotonic() + duration
            threads = [
                threading.Thread(
                    target=_client_loop,
                    args=(
                        url,
                        identities[n],
                        patients,
                        seed * 1000 + n,
                        deadline,
                        max_requests,
                        size,
                        results,
                        progress,
                    ),
                    daemon=True,
                )
                for n in range(clients)
            ]
            cpu_before, balancer_before = _cpu_seconds(processes), _cpu_seconds(balancer)
            began = time.monotonic()
            for thread in threads:
                thread.start()
            _wait(threads, results, max_requests, deadline)
            elapsed = time.monotonic() - began
            cpu = _cpu_seconds(processes) - cpu_before
            balancer_cpu = _cpu_seconds(balancer) - balancer_before
        finally:
            stop()
    _print_table(results, clients, elapsed)
    operations = sum(len(v) for v in results.latencies.values())
    print(
        f"gateway CPU: {cpu:.1f} s over {replicas} process(es), "
        f"{cpu / max(1, operations) * 1e3:.2f} ms per operation"
        + (f"; balancer CPU {balancer_cpu:.1f} s" if balancer else "")
    )


def _empty(database: str) -> None:
    """Refuse a database that already holds a ledger: replicas start a new one."""
    engine = sa.create_engine(database)
    try:
        if sa.inspect(engine).has_table("ledger_head"):
            raise click.UsageError(f"{database} already holds a ledger; name an empty database")
    finally:
        engine.dispose()


def _cpu_seconds(processes: list[subprocess.Popen[bytes] | None]) -> float:
    """User + system CPU seconds of *processes* (all their threads), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for process in processes:
        if process is None:
            continue
        fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def _wait(threads: list[threading.Thread], results: Results, limit: int, deadline: float) -> None:
    if sys.stderr.isatty():
        with click.progressbar(length=limit, label="load", file=sys.stderr) as bar:
            shown = 0
            while any(t.is_alive() for t in threads):
                time.sleep(0.5)
                with results.lock:
                    now = results.started
                bar.update(now - shown)
                shown = now
    for thread in threads:
        thread.join(timeout=max(1.0, deadline - time.monotonic() + 120))


def _print_table(results: Results, clients: int, elapsed: float) -> None:
    baseline = _percentile(results.latencies["healthz"], 0.5) or 1e-9
    total_ok = sum(len(v) for v in results.latencies.values())
    total_errors = sum(sum(e.values()) for e in results.errors.values())
    print(f"{clients} clients, {elapsed:.0f} s, {total_ok + total_errors} operations "
          f"({(total_ok + total_errors) / elapsed:.0f}/s), error rate "
          f"{total_errors / max(1, total_ok + total_errors):.2%}")  # fmt: skip
    header = f"{'operation':<9} {'ok':>7} {'errors':>7} {'rate':>7} {'p50 ms':>8} {'p90 ms':>8}"
    print(header + f" {'p99 ms':>8} {'max ms':>8} {'p50/healthz':>12}")
    for name, _ in OPERATIONS:
        done = results.latencies[name]
        failed = sum(results.errors[name].values())
        rate = failed / max(1, len(done) + failed)
        p50 = _percentile(done, 0.5)
        print(
            f"{name:<9} {len(done):>7} {failed:>7} {rate:>7.2%} {p50 * 1e3:>8.1f} "
            f"{_percentile(done, 0.9) * 1e3:>8.1f} {_percentile(done, 0.99) * 1e3:>8.1f} "
            f"{max(done, default=0) * 1e3:>8.1f} {p50 / baseline:>12.1f}"
        )
    for name, counts in results.errors.items():
        if counts:
            print(f"  {name} errors: {dict(counts)}")


if __name__ == "__main__":
    main()
