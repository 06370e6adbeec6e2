"""A bounded load test of a real gateway on loopback: mixed uploads, lists and fetches.

    ./dev python -m bench.load [--clients 50] [--duration 180] [--max-requests 30000]
                               [--database URL] [--size 20000] [--seed N]
                               [--replicas N] [--bridge-clients N] [--web-clients N]
                               [--mix upload=3,list=4,fetch=3,healthz=1] [--profile PREFIX]

P9 (DESIGN §8) is `./dev python -m bench.load --clients 16 --duration 60`.

Starts `ehrgate serve` in a temporary data directory (embedded SQLite and local blobs
unless --database names another ledger database), enrolls one clinician per client, a few
patients who grant every clinician read and write, then runs `--clients` threads, each with
its own connection and token, for `--duration` seconds or until `--max-requests` operations,
whichever comes first. Each operation is one of

  upload   seal random bytes locally, POST /v1/blobs, POST /v1/records (2 requests)
  list     GET /v1/patients/{pseudonym}/records (audited)
  fetch    open an uploaded record in one audited request (GET /v1/records/{id}/open: its
           capsule, under one `access` entry) and read its body on the open's ticket, then
           decrypt and compare (2 requests), as the SDK and the web app open records
  healthz  GET /healthz: the baseline, measured under the same load in the same run

in the ratio 3 : 4 : 3 : 1 (`--mix` sets other weights, e.g. `--mix list=1,healthz=1` to
measure one kind alone: the gateway CPU per operation is then that kind's).

With `--bridge-clients N` the bridge (`ehrgate bridge`'s app, its own process on loopback,
key store, linked MRN and test bearer tokens as in bench/bridge.py; bench/_load_bridge.py)
runs against the same gateway (warmed up by one untimed publish and retrieve), and N more
threads each alternate, in turn,

  iti105   ITI-105 publish: POST /fhir/DocumentReference, a PDF of about --size bytes inline
  iti68    ITI-68 retrieve: GET /fhir/Binary/ID of a published PDF, compared byte for byte

With `--web-clients N`, N more threads each sign in as the web app does and repeat, 1 : 2,

  web-list  the app's record list (GET /v1/patients/{pseudonym}/records)
  web-open  the app's open of one record: record with proof, consistency proof, capsule,
            key share, uploader's key history, body, with the app's checks (bench/_load_web.py)

of the bridge's patient's records (seeded with the SDK, then those ITI-105 published).

Prints, per operation, the count, errors, error rate, the latency percentiles, each p50
as a multiple of the healthz p50, and the median CPU time the client thread itself spent on
one (its sealing, opening, verifying and HTTP handling: part of the operation's latency,
and of the same two cores' load); then the CPU time (user + system, all threads, from /proc)
of the gateway process(es) per operation and per HTTP request it served, of this load
generator (the clients' sealing, opening and verifying run on the same cores), of the bridge
process, and how busy the machine's cores were (every process, other users' included) with
the load averages before and after; the time the gateway's threads and the client threads
waited for a CPU (on a run queue: runnable, not running; /proc/.../schedstat), summed over
threads, per operation; last, from the gateway's own /metrics (one replica),
each route's requests and mean time inside the app (from the first middleware to the last
byte handed to uvicorn: threadpool queueing, the wait for the group commit and the blob
store's fsync included; uvicorn's parsing, the socket and the client excluded).

With `--replicas N` (N > 1, and --database naming a PostgreSQL database) it starts N
`ehrgate serve` replicas sharing that ledger behind Debian's HAProxy on loopback
(`tests/replicas.py`) and sends all traffic through the balancer; the balancer's own CPU
time is printed apart.

With `--profile PREFIX`, py-spy records the gateway and this process during the run
(PREFIX-gateway.txt, PREFIX-clients.txt); `./dev python -m bench._load_profile FILE` gives
the share per thread kind and the top frames. The analysis of P9 is in docs/performance.md
("Mixed load (P9)").
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import click
import httpx
import sqlalchemy as sa

from bench._load_bridge import start_mixed
from bench._load_profile import spying
from bench._load_routes import route_times
from bench._load_web import WebCheckFailed, WebReader
from ehrgate.errors import VerificationFailed
from envelope import EnvelopeError, IdentityKeys, PatientKeys, b64decode, open_body, open_capsule
from ledger.errors import LedgerError
from tests.bridge.samples import document_reference, pdf
from tests.faults.gateway_client import (
    Actor,
    Refused,
    Unavailable,
    enroll,
    grant,
    register_patient,
    upload,
)
from tests.faults.gateway_load import CATEGORIES, plaintext
from tests.faults.gateway_process import GatewayProcess
from tests.replicas import Deployment


def open_and_read(reader: Actor, patient: PatientKeys, record_id: str) -> bytes:
    """A record's plaintext, as its patient opens it: the one-round-trip open, then the body
    on the open's ticket (no second `access` entry)."""
    answer = reader.request("GET", f"/v1/records/{record_id}/open").json()
    body = reader.request(
        "GET", f"/v1/records/{record_id}/open/body", params={"ticket": answer["ticket"]}
    ).content
    capsule = b64decode(answer["capsule"])
    opened = open_capsule(capsule, patient.patient_key.record_private_key(), patient.pseudonym)
    return b"".join(open_body([body], opened))


OPERATIONS = (("upload", 3), ("list", 4), ("fetch", 3), ("healthz", 1))
BRIDGE_OPERATIONS = (("iti105", 1), ("iti68", 1))
WEB_OPERATIONS = (("web-list", 1), ("web-open", 2))
ROWS = [name for name, _ in OPERATIONS + BRIDGE_OPERATIONS + WEB_OPERATIONS]
PATIENTS = 5


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    client_cpu: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    """CPU seconds the client thread itself spent on each successful operation."""
    errors: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    uploaded: list[tuple[PatientKeys, str, int, int]] = field(default_factory=list)
    published: list[tuple[str, str]] = field(default_factory=list)
    """(record id, SHA-256 of the PDF) of the bridge patient's records."""
    started: int = 0
    queued: float = 0.0
    """Seconds the client threads waited for a CPU (run queue), summed over the threads."""
    requests: int = 0
    """HTTP requests the load generator's gateway clients sent (not the bridge's own)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take_ticket(self, limit: int) -> bool:
        with self.lock:
            if self.started >= limit:
                return False
            self.started += 1
            return True

    def ok(self, operation: str, seconds: float, cpu: float) -> None:
        with self.lock:
            self.latencies[operation].append(seconds)
            self.client_cpu[operation].append(cpu)

    def error(self, operation: str, kind: str) -> None:
        with self.lock:
            counts = self.errors[operation]
            counts[kind] = counts.get(kind, 0) + 1

    def count_request(self, _request: httpx.Request) -> None:
        with self.lock:
            self.requests += 1

    def a_published(self, rng: random.Random) -> tuple[str, str]:
        with self.lock:
            return self.published[rng.randrange(len(self.published))]


@dataclass(frozen=True)
class Plan:
    url: str
    deadline: float
    limit: int
    size: int
    results: Results
    mix: tuple[tuple[str, int], ...] = OPERATIONS


def parse_mix(text: str) -> tuple[tuple[str, int], ...]:
    """`upload=3,list=4,...`: the weights of the main clients' operations."""
    known = {name for name, _ in OPERATIONS}
    weights = []
    for part in text.split(","):
        name, _, weight = part.partition("=")
        if name.strip() not in known or not weight.strip().isdigit():
            raise click.BadParameter(f"{part!r}: give NAME=WEIGHT, NAME one of {sorted(known)}")
        weights.append((name.strip(), int(weight)))
    if not any(weight for _, weight in weights):
        raise click.BadParameter("every weight is 0")
    return tuple(weights)


def _runqueue_seconds(task: str) -> float:
    """Seconds the task (`/proc/...` directory of a thread) has waited on a run queue."""
    try:
        return int(Path(task, "schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


@contextmanager
def counting_runqueue(results: Results) -> Iterator[None]:
    """Add the run-queue wait of the calling thread during the block to *results*."""
    before = _runqueue_seconds("/proc/thread-self")
    try:
        yield
    finally:
        waited = _runqueue_seconds("/proc/thread-self") - before
        with results.lock:
            results.queued += waited


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def _timed(results: Results, operation: str, run: Callable[[], bool]) -> None:
    """Run one operation (*run* returns False on wrong bytes) and file its outcome."""
    started, cpu = time.perf_counter(), time.thread_time()
    try:
        right = run()
    except Unavailable:
        results.error(operation, "503/unreachable")
        return
    except Refused as exc:
        results.error(operation, f"HTTP {exc.status}")
        return
    except httpx.HTTPStatusError as exc:
        results.error(operation, f"HTTP {exc.response.status_code}")
        return
    except httpx.HTTPError as exc:
        results.error(operation, type(exc).__name__)
        return
    except (VerificationFailed, WebCheckFailed, EnvelopeError, LedgerError) as exc:
        results.error(operation, type(exc).__name__)
        return
    if not right:
        results.error(operation, "wrong bytes")
        return
    results.ok(operation, time.perf_counter() - started, time.thread_time() - cpu)


def _client_loop(plan: Plan, keys: IdentityKeys, patients: list[PatientKeys], seed: int) -> None:
    results = plan.results
    rng = random.Random(seed)
    names = [name for name, weight in plan.mix for _ in range(weight)]
    hooks = {"request": [results.count_request]}
    with (
        counting_runqueue(results),
        httpx.Client(base_url=plan.url, timeout=120, event_hooks=hooks) as client,
    ):
        actor = Actor(client, keys)
        while time.monotonic() < plan.deadline and results.take_ticket(plan.limit):
            operation = rng.choice(names)
            with results.lock:
                known = results.uploaded[rng.randrange(len(results.uploaded))] if (
                    results.uploaded and operation == "fetch"
                ) else None  # fmt: skip
            if operation == "fetch" and known is None:
                operation = "upload"
            patient = patients[rng.randrange(len(patients))]

            def run(
                operation: str = operation,
                patient: PatientKeys = patient,
                known: tuple[PatientKeys, str, int, int] | None = known,
            ) -> bool:
                if operation == "upload":
                    body_seed, body_size = rng.randrange(2**63), rng.randrange(plan.size * 2)
                    record_id = upload(actor, patient, rng.choice(CATEGORIES),
                                       plaintext(body_seed, body_size))  # fmt: skip
                    with results.lock:
                        results.uploaded.append((patient, record_id, body_seed, body_size))
                elif operation == "list":
                    actor.request("GET", f"/v1/patients/{patient.pseudonym}/records")
                elif operation == "fetch":
                    assert known is not None
                    owner, record_id, body_seed, body_size = known
                    return open_and_read(actor, owner, record_id) == plaintext(body_seed, body_size)
                else:
                    client.get("/healthz").raise_for_status()
                return True

            _timed(results, operation, run)


def _bridge_loop(plan: Plan, fhir: str, seed: int) -> None:
    """ITI-105 publishes (as the hospital system) and ITI-68 retrievals (as the doctor)."""
    results = plan.results
    rng = random.Random(seed)
    names = itertools.cycle([name for name, weight in BRIDGE_OPERATIONS for _ in range(weight)])
    with (
        counting_runqueue(results),
        httpx.Client(headers={"Authorization": "Bearer system"}, timeout=120) as publisher,
        httpx.Client(headers={"Authorization": "Bearer doctor"}, timeout=120) as reader,
    ):
        while time.monotonic() < plan.deadline and results.take_ticket(plan.limit):
            operation = next(names)

            def publish() -> bool:
                content = pdf(max(16, rng.randrange(plan.size * 2)))
                answer = publisher.post(f"{fhir}/DocumentReference",
                                        json=document_reference(content))  # fmt: skip
                answer.raise_for_status()
                record_id = answer.headers["location"].rsplit("/", 1)[1]
                with results.lock:
                    results.published.append((record_id, hashlib.sha256(content).hexdigest()))
                return answer.status_code == 201

            def retrieve() -> bool:
                record_id, digest = results.a_published(rng)
                answer = reader.get(f"{fhir}/Binary/{record_id}",
                                    headers={"Accept": "application/pdf"})  # fmt: skip
                answer.raise_for_status()
                return hashlib.sha256(answer.content).hexdigest() == digest

            _timed(results, operation, publish if operation == "iti105" else retrieve)


def _web_loop(plan: Plan, doctor: IdentityKeys, pseudonym: str, seed: int) -> None:
    """The web app's list and open of the bridge patient's records, as the doctor."""
    results = plan.results
    rng = random.Random(seed)
    names = [name for name, weight in WEB_OPERATIONS for _ in range(weight)]
    hooks = {"request": [results.count_request]}
    with (
        counting_runqueue(results),
        httpx.Client(base_url=plan.url, timeout=120, event_hooks=hooks) as client,
    ):
        web = WebReader(client, doctor)
        try:
            web.sign_in()
        except (httpx.HTTPError, VerificationFailed, EnvelopeError) as exc:
            results.error("web-open", f"sign-in: {type(exc).__name__}")
            return
        while time.monotonic() < plan.deadline and results.take_ticket(plan.limit):
            operation = rng.choice(names)

            def opened() -> bool:
                record_id, digest = results.a_published(rng)
                return hashlib.sha256(web.open_record(record_id)).hexdigest() == digest

            def listed() -> bool:
                return bool(web.list_records(pseudonym))

            _timed(results, operation, opened if operation == "web-open" else listed)


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
@click.option(
    "--bridge-clients",
    default=0,
    show_default=True,
    help="More threads doing ITI-105 publishes and ITI-68 retrievals through the bridge.",
)
@click.option(
    "--mix",
    default=",".join(f"{name}={weight}" for name, weight in OPERATIONS),
    show_default=True,
    help="Weights of the main clients' operations (a fetch before any upload is an upload).",
)
@click.option(
    "--profile",
    default=None,
    type=click.Path(dir_okay=False),
    help="Record the gateway and this load generator with py-spy during the run, to "
    "PROFILE-gateway.txt and PROFILE-clients.txt (collapsed stacks of the running threads; "
    "`python -m bench._load_profile` summarises them).",
)
@click.option(
    "--web-clients",
    default=0,
    show_default=True,
    help="More threads doing the web app's record list and record open.",
)
def main(
    clients: int,
    duration: float,
    max_requests: int,
    database: str | None,
    size: int,
    seed: int,
    replicas: int,
    bridge_clients: int,
    web_clients: int,
    profile: str | None,
    mix: str,
) -> None:
    weights = parse_mix(mix)
    if replicas > 1 and not (database or "").startswith("postgresql"):
        raise click.UsageError("--replicas above 1 needs --database postgresql://...")
    with tempfile.TemporaryDirectory(prefix="ehrgate-load-") as directory, ExitStack() as stack:
        if replicas > 1:
            assert database is not None
            _empty(database)
            deployment = Deployment(
                Path(directory), database, replicas=replicas,
                env={"EHRGATE_LOG_LEVEL": "warning", "EHRGATE_AUTH_RATE_LIMIT": "1000000"},
            )  # fmt: skip
            deployment.start()
            stack.callback(deployment.stop)
            url, admin_keys = deployment.url, deployment.admin_keys()
            processes = [r.process for r in deployment.replicas]
            balancer = [deployment.balancer.process]
        else:
            env = {"EHRGATE_DATABASE_URL": database} if database else {}
            gateway = GatewayProcess(Path(directory) / "gateway", env=env)
            gateway.start()
            stack.callback(gateway.kill)
            url, admin_keys = gateway.url, gateway.admin_keys()
            processes, balancer = [gateway.process], []
        identities, patients = _set_up(url, admin_keys, clients)
        results = Results()
        bridge: list[subprocess.Popen[bytes] | None] = []
        mixed = None
        if bridge_clients or web_clients:
            work = Path(directory)
            mixed = stack.enter_context(
                start_mixed(url, admin_keys, work / "gateway", work / "mixed", size)
            )
            bridge = [mixed.process]
            results.published.extend(mixed.seeded)
        plan = Plan(url, time.monotonic() + duration, max_requests, size, results, weights)
        threads = [
            threading.Thread(
                target=_client_loop, args=(plan, identities[n], patients, seed * 1000 + n),
                daemon=True,
            )
            for n in range(clients)
        ]  # fmt: skip
        if mixed is not None:
            threads += [
                threading.Thread(target=_bridge_loop, args=(plan, mixed.fhir, seed * 2000 + n),
                                 daemon=True)
                for n in range(bridge_clients)
            ]  # fmt: skip
            threads += [
                threading.Thread(
                    target=_web_loop, args=(plan, mixed.doctor, mixed.pseudonym, seed * 3000 + n),
                    daemon=True,
                )
                for n in range(web_clients)
            ]  # fmt: skip
        if profile is not None:
            gateway_pid = processes[0].pid if processes[0] is not None else 0
            for name, pid in (("gateway", gateway_pid), ("clients", os.getpid())):
                stack.enter_context(spying(pid, f"{profile}-{name}.txt", duration))
        inside_before = route_times(url) if replicas == 1 else None
        before = Usage.now(processes, balancer, bridge)
        began = time.monotonic()
        for thread in threads:
            thread.start()
        _wait(threads, results, max_requests, plan.deadline)
        elapsed = time.monotonic() - began
        used = Usage.now(processes, balancer, bridge).minus(before)
        inside = route_times(url).minus(inside_before) if inside_before is not None else None
    _print_table(results, clients, elapsed)
    _print_cpu(results, used, replicas, elapsed)
    if inside is not None:
        print(inside.table())


def _print_cpu(results: Results, used: Usage, replicas: int, elapsed: float) -> None:
    operations = sum(len(v) for v in results.latencies.values())
    per_operation = used.gateway / max(1, operations) * 1e3
    print(
        f"gateway CPU: {used.gateway:.1f} s over {replicas} process(es), "
        f"{per_operation:.2f} ms per operation"
        + (
            f", {used.gateway / max(1, results.requests) * 1e3:.2f} ms per HTTP request "
            f"({results.requests} requests)"
            if not results.published
            else ""
        )
        + (f"; balancer CPU {used.balancer:.1f} s" if used.balancer else "")
    )
    print(
        f"load generator CPU: {used.generator:.1f} s "
        f"({used.generator / max(1, operations) * 1e3:.2f} ms per operation)"
        + (f"; bridge CPU {used.bridge:.1f} s" if used.bridge else "")
    )
    print(
        f"waiting for a CPU (run queue, /proc schedstat): gateway threads "
        f"{used.gateway_queued:.1f} s ({used.gateway_queued / max(1, operations) * 1e3:.1f} ms "
        f"per operation), client threads {results.queued:.1f} s "
        f"({results.queued / max(1, operations) * 1e3:.1f} ms per operation)"
    )
    ours = used.gateway + used.generator + used.bridge + used.balancer
    print(
        f"machine: {used.busy / elapsed:.2f} of {os.cpu_count()} cores busy (gateway "
        f"{used.gateway / elapsed:.2f}, load generator {used.generator / elapsed:.2f}, "
        f"everything else {max(0.0, used.busy - ours) / elapsed:.2f}); "
        f"load average before {used.load_before}, after {used.load_after}"
    )


def _empty(database: str) -> None:
    """Refuse a database that already holds a ledger: replicas start a new one."""
    engine = sa.create_engine(database)
    try:
        if sa.inspect(engine).has_table("ledger_head"):
            raise click.UsageError(f"{database} already holds a ledger; name an empty database")
    finally:
        engine.dispose()


def _gateway_runqueue(processes: list[subprocess.Popen[bytes] | None]) -> float:
    """Seconds the threads of *processes* have waited on a run queue, summed."""
    return sum(
        _runqueue_seconds(str(task))
        for process in processes
        if process is not None
        for task in Path(f"/proc/{process.pid}/task").iterdir()
    )


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


def _busy_seconds() -> float:
    """CPU seconds every core of the machine spent on anything but idle and I/O wait."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    """User + system CPU seconds of this process (the load generator), all its threads."""
    times = os.times()
    return times.user + times.system


@dataclass(frozen=True)
class Usage:
    gateway: float
    balancer: float
    bridge: float
    generator: float
    gateway_queued: float
    busy: float
    load_before: str
    load_after: str

    @classmethod
    def now(
        cls,
        gateway: list[subprocess.Popen[bytes] | None],
        balancer: list[subprocess.Popen[bytes] | None],
        bridge: list[subprocess.Popen[bytes] | None],
    ) -> Usage:
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        return cls(_cpu_seconds(gateway), _cpu_seconds(balancer), _cpu_seconds(bridge),
                   _own_seconds(), _gateway_runqueue(gateway), _busy_seconds(), load,
                   load)  # fmt: skip

    def minus(self, before: Usage) -> Usage:
        return Usage(
            self.gateway - before.gateway,
            self.balancer - before.balancer,
            self.bridge - before.bridge,
            self.generator - before.generator,
            self.gateway_queued - before.gateway_queued,
            self.busy - before.busy,
            before.load_before,
            self.load_after,
        )


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
    print(header + f" {'p99 ms':>8} {'max ms':>8} {'p50/healthz':>12} {'client CPU ms':>14}")
    for name in ROWS:
        done = results.latencies[name]
        failed = sum(results.errors[name].values())
        if not done and not failed:
            continue
        rate = failed / max(1, len(done) + failed)
        p50 = _percentile(done, 0.5)
        print(
            f"{name:<9} {len(done):>7} {failed:>7} {rate:>7.2%} {p50 * 1e3:>8.1f} "
            f"{_percentile(done, 0.9) * 1e3:>8.1f} {_percentile(done, 0.99) * 1e3:>8.1f} "
            f"{max(done, default=0) * 1e3:>8.1f} {p50 / baseline:>12.1f} "
            f"{_percentile(results.client_cpu[name], 0.5) * 1e3:>14.2f}"
        )
    for name, counts in results.errors.items():
        if counts:
            print(f"  {name} errors: {dict(counts)}")


if __name__ == "__main__":
    main()
