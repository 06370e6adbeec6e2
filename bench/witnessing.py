"""P11: what witnessing costs a log, on loopback.

    ./dev python -m bench.witnessing              # about a minute
    ./dev python -m bench.witnessing --quick
    ./dev python -m bench.witnessing --pinned     # also the throughput with pinned CPUs

Four witnesses (`ehrgate witness serve`, each its own process and SQLite file) and a
gateway (`ehrgate serve`, SQLite ledger) that submits every checkpoint to all four, and
the same gateway setup without witnesses, side by side in one run:

- latency: for each of `--samples` appends made one after another, the time from the
  append's receipt (the block is committed) until `GET /v1/ledger/checkpoint` serves a
  checkpoint of at least that size with `--quorum` valid cosignatures (polled every
  millisecond): p50 and p99;
- throughput: appends/s (identities enrolled by `--clients` threads for `--seconds`) with
  the four witnesses ÷ appends/s without; and, steadier on a shared machine, the gateway
  process's CPU time per append (all threads) and the witnesses' CPU per append.

On one machine the witnesses take their CPU from the cores that serve the appends, which
they would not do in a federation (each witness runs on its own hospital's machine).
`--pinned` measures the throughput a second time, beside the unpinned figures: the
gateway and this process (the load clients) on CPU 0, in both the run with and the run
without witnesses, and the four witnesses on CPU 1. It models witnesses that cost the
gateway's machine nothing but the gateway's own witnessing work; it does not model the
network between hospitals (loopback answers in well under a millisecond).
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import click
import httpx

from bench._http import Server, free_port, run_server
from bench._proc import cpu_seconds
from ehrgate import Client
from ehrgate.trust import LedgerPins
from envelope import IdentityKeys, load_key_file
from gateway import Settings
from gateway.bootstrap import ensure_first_start
from ledger.wire.checkpoints import Checkpoint
from ledger.wire.cosignatures import CosignatureVerifier
from ledger.wire.notes import Verifiers, open_note, parse_note
from witness import write_witness_key

ORIGIN = "bench.example/ehrgate"


@contextmanager
def _witnesses(
    root: Path, log_vkey: str, count: int, servers: list[Server]
) -> Iterator[list[tuple[str, str]]]:
    """*count* witness processes of the log (added to *servers*); their (URL, vkey)."""
    with ExitStack() as stack:
        found = []
        for i in range(count):
            home = root / f"witness-{i}"
            home.mkdir()
            cosigner = write_witness_key(home / "witness.key", f"w{i}.bench.example")
            (home / "witness.toml").write_text(
                'key_file = "witness.key"\ndatabase = "witness.db"\n\n'
                f'[[logs]]\norigin = "{ORIGIN}"\nvkey = "{log_vkey}"\n'
            )
            port = free_port()
            args = ["-m", "ehrgate", "witness", "serve", "--config", str(home / "witness.toml")]
            server = stack.enter_context(run_server([*args, "--port", str(port)], port=port))
            servers.append(server)
            found.append((server.url, cosigner.verifier.vkey()))
        yield found


@contextmanager
def _gateway(root: Path, witnesses: list[tuple[str, str]]) -> Iterator[tuple[Server, IdentityKeys]]:
    data_dir = root / "gateway"
    ensure_first_start(Settings(data_dir=data_dir, log_origin=ORIGIN))
    env = {
        "EHRGATE_DATA_DIR": str(data_dir),
        "EHRGATE_LOG_ORIGIN": ORIGIN,
        "EHRGATE_LOG_LEVEL": "warning",
        "EHRGATE_AUTH_RATE_LIMIT": "1000000",
        "EHRGATE_WITNESSES": json.dumps([{"url": u, "vkey": v} for u, v in witnesses]),
        "EHRGATE_WITNESS_INTERVAL": "1",
    }
    port = free_port()
    with run_server(["-m", "ehrgate", "serve", "--port", str(port)], port=port, env=env) as server:
        admin = load_key_file(data_dir / "admin.key")
        assert isinstance(admin, IdentityKeys)
        yield server, admin


def _log_vkey(root: Path) -> str:
    first = ensure_first_start(Settings(data_dir=root / "gateway", log_origin=ORIGIN))
    return first.checkpoint_signer.verifier.vkey()


def _latencies(url: str, admin: IdentityKeys, vkeys: list[str], quorum: int, n: int) -> list[float]:
    verifiers = Verifiers(CosignatureVerifier.from_vkey(v) for v in vkeys)
    found = []
    with Client(url, admin, pins=LedgerPins()) as writer, httpx.Client(base_url=url) as reader:
        for i in range(n):
            receipt = writer.enroll(IdentityKeys.generate(f"lat-{i}", "clinician").public())
            committed = time.perf_counter()
            size = receipt.tree_head.tree_size
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                note = reader.get("/v1/ledger/checkpoint", params={"cosignatures": quorum}).content
                checkpoint = Checkpoint.from_text(parse_note(note).text)
                if checkpoint.size >= size and _count(note, verifiers) >= quorum:
                    found.append(time.perf_counter() - committed)
                    break
                time.sleep(0.001)
            else:
                raise RuntimeError(f"no checkpoint of {size} with {quorum} cosignatures in 30 s")
    return found


def _count(note: bytes, verifiers: Verifiers) -> int:
    try:
        return len(open_note(note, verifiers).verified)
    except ValueError:
        return 0


def _appends_per_second(
    url: str, admin: IdentityKeys, clients: int, seconds: float
) -> tuple[float, int]:
    """Appends/s of *clients* threads sharing one SDK client (one login), and how many."""
    counts = [0] * clients
    with Client(url, admin, pins=LedgerPins()) as client:
        client.whoami()  # logged in once, before the clock starts
        stop = time.monotonic() + seconds

        def work(index: int) -> None:
            while time.monotonic() < stop:
                name = f"tp-{index}-{counts[index]}"
                client.enroll(IdentityKeys.generate(name, "clinician").public())
                counts[index] += 1

        threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sum(counts) / (time.perf_counter() - started), sum(counts)


def _cpu(servers: list[Server]) -> float:
    return sum(cpu_seconds(server.pid) for server in servers)


def _pin(pid: int, cpus: set[int]) -> None:
    """Run every thread of process *pid* (0: this one) on *cpus*; the threads it starts
    later inherit the mask from the thread that starts them."""
    tasks = Path(f"/proc/{pid or os.getpid()}/task")
    for tid in tasks.iterdir():
        try:
            os.sched_setaffinity(int(tid.name), cpus)
        except ProcessLookupError:
            continue  # a thread that ended meanwhile


@dataclass
class _Throughput:
    bare: float  # appends/s without witnesses
    bare_cpu: float  # gateway CPU seconds per append, without
    witnessed: float
    gateway_cpu: float  # with witnesses
    witness_cpu: float  # the witnesses together, per append


def _throughput(
    root: Path, count: int, clients: int, seconds: float, *, pinned: bool
) -> _Throughput:
    """Appends/s and CPU per append without, then with, *count* witnesses (the gateway
    and the load on CPU 0 and the witnesses on CPU 1 if *pinned*)."""
    plain_root, witnessed_root = root / "plain", root / "witnessed"
    plain_root.mkdir()
    witnessed_root.mkdir()
    everywhere = os.sched_getaffinity(0)
    try:
        with _gateway(plain_root, []) as (gateway, admin):
            if pinned:
                _pin(0, {0})
                _pin(gateway.pid, {0})
            before = _cpu([gateway])
            bare, bare_count = _appends_per_second(gateway.url, admin, clients, seconds)
            bare_cpu = (_cpu([gateway]) - before) / bare_count
            _pin(0, everywhere)
        witness_servers: list[Server] = []
        with (
            _witnesses(witnessed_root, _log_vkey(witnessed_root), count, witness_servers) as ws,
            _gateway(witnessed_root, ws) as (gateway, admin),
        ):
            if pinned:
                _pin(0, {0})
                _pin(gateway.pid, {0})
                for server in witness_servers:
                    _pin(server.pid, {1})
            before, before_w = _cpu([gateway]), _cpu(witness_servers)
            witnessed, count_w = _appends_per_second(gateway.url, admin, clients, seconds)
            gateway_cpu = (_cpu([gateway]) - before) / count_w
            witness_cpu = (_cpu(witness_servers) - before_w) / count_w
    finally:
        _pin(0, everywhere)
    return _Throughput(bare, bare_cpu, witnessed, gateway_cpu, witness_cpu)


def _report(label: str, count: int, t: _Throughput) -> None:
    click.echo(
        f"P11 appends/s{label} with {count} witnesses {t.witnessed:.0f} ÷ without {t.bare:.0f}"
        f" = {t.witnessed / t.bare:.2f} (target ≥ 0.90)"
    )
    click.echo(
        f"gateway CPU per append{label}: {t.gateway_cpu * 1000:.2f} ms with witnesses ÷ "
        f"{t.bare_cpu * 1000:.2f} ms without = {t.gateway_cpu / t.bare_cpu:.2f}; the {count} "
        f"witnesses together {t.witness_cpu * 1000:.2f} ms per append"
    )


@click.command()
@click.option("--witnesses", "count", default=4, show_default=True)
@click.option("--quorum", default=3, show_default=True)
@click.option("--samples", default=100, show_default=True)
@click.option("--clients", default=8, show_default=True)
@click.option("--seconds", default=15.0, show_default=True)
@click.option("--quick", is_flag=True, help="20 samples, 5 s of load.")
@click.option(
    "--pinned",
    is_flag=True,
    help="Also measure the throughput with the gateway and the load on CPU 0, the witnesses "
    "on CPU 1 (reported beside the unpinned figures).",
)
def main(
    count: int, quorum: int, samples: int, clients: int, seconds: float, quick: bool, pinned: bool
) -> None:
    if quick:
        samples, seconds = 20, 5.0
    if pinned and not {0, 1} <= os.sched_getaffinity(0):
        raise click.UsageError("--pinned needs CPUs 0 and 1")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "latency").mkdir()
        witness_servers: list[Server] = []
        with (
            _witnesses(root / "latency", _log_vkey(root / "latency"), count, witness_servers) as ws,
            _gateway(root / "latency", ws) as (gateway, admin),
        ):
            vkeys = [vkey for _, vkey in ws]
            latencies = sorted(_latencies(gateway.url, admin, vkeys, quorum, samples))
        (root / "shared").mkdir()
        shared = _throughput(root / "shared", count, clients, seconds, pinned=False)
        if pinned:
            (root / "pinned").mkdir()
            separate = _throughput(root / "pinned", count, clients, seconds, pinned=True)
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
    click.echo(
        f"P11 commit → {quorum} of {count} cosignatures ({len(latencies)} appends): "
        f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms (target p99 ≤ 100 ms)"
    )
    _report("", count, shared)
    if pinned:
        _report(" (gateway and load on CPU 0, witnesses on CPU 1)", count, separate)
    click.echo(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
