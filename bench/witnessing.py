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
- throughput: appends/s (identities enrolled by `--clients` threads, `--seconds` of load
  on each gateway) with the four witnesses ÷ appends/s without. Both gateways run at once
  and are loaded in turn, in `--slices` short turns (A B B A ...), so that the drifting
  load of a shared machine falls on both alike; and, steadier there, each gateway
  process's CPU time per append (all threads, over the whole run) and the witnesses'.

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


def _appends(client: Client, clients: int, seconds: float, prefix: str) -> tuple[float, int]:
    """Appends/s of *clients* threads sharing one SDK *client*, and how many (the
    identities enrolled are named *prefix*-thread-count)."""
    counts = [0] * clients
    stop = time.monotonic() + seconds

    def work(index: int) -> None:
        while time.monotonic() < stop:
            name = f"{prefix}-{index}-{counts[index]}"
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
    root: Path, count: int, clients: int, seconds: float, slices: int, *, pinned: bool
) -> _Throughput:
    """Appends/s and CPU per append of a gateway without and one with *count* witnesses,
    all running at once, loaded in turn: *slices* slices of *seconds* / *slices* each,
    in the order A B B A A B ..., so that both see the same machine (the other load of a
    shared machine drifts within seconds). CPU is each process's over the whole run, per
    append it served (an unloaded gateway does no rounds). If *pinned*: the gateways and
    the load on CPU 0, the witnesses on CPU 1."""
    plain_root, witnessed_root = root / "plain", root / "witnessed"
    plain_root.mkdir()
    witnessed_root.mkdir()
    everywhere = os.sched_getaffinity(0)
    witness_servers: list[Server] = []
    done = {"plain": [0.0, 0], "witnessed": [0.0, 0]}  # seconds loaded, appends
    with (
        _gateway(plain_root, []) as (plain, plain_admin),
        _witnesses(witnessed_root, _log_vkey(witnessed_root), count, witness_servers) as ws,
        _gateway(witnessed_root, ws) as (witnessed, witnessed_admin),
        Client(plain.url, plain_admin, pins=LedgerPins()) as plain_client,
        Client(witnessed.url, witnessed_admin, pins=LedgerPins()) as witnessed_client,
    ):
        plain_client.whoami()  # logged in before the clock starts
        witnessed_client.whoami()
        clients_of = {"plain": plain_client, "witnessed": witnessed_client}
        try:
            if pinned:
                _pin(0, {0})
                _pin(plain.pid, {0})
                _pin(witnessed.pid, {0})
                for server in witness_servers:
                    _pin(server.pid, {1})
            before = {"plain": _cpu([plain]), "witnessed": _cpu([witnessed])}
            before_w = _cpu(witness_servers)
            for i in range(slices):
                order = ("plain", "witnessed") if i % 2 == 0 else ("witnessed", "plain")
                for which in order:
                    rate, appended = _appends(
                        clients_of[which], clients, seconds / slices, f"tp{i}"
                    )
                    done[which][0] += appended / rate if rate else seconds / slices
                    done[which][1] += appended
            time.sleep(0.5)  # the last round of the witnessed gateway ends
            cpu = {
                "plain": _cpu([plain]) - before["plain"],
                "witnessed": _cpu([witnessed]) - before["witnessed"],
            }
            witness_cpu = _cpu(witness_servers) - before_w
        finally:
            _pin(0, everywhere)
    appended_plain, appended_witnessed = int(done["plain"][1]), int(done["witnessed"][1])
    return _Throughput(
        bare=appended_plain / done["plain"][0],
        bare_cpu=cpu["plain"] / appended_plain,
        witnessed=appended_witnessed / done["witnessed"][0],
        gateway_cpu=cpu["witnessed"] / appended_witnessed,
        witness_cpu=witness_cpu / appended_witnessed,
    )


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
@click.option("--seconds", default=15.0, show_default=True, help="Of load, on each gateway.")
@click.option("--slices", default=6, show_default=True, help="Turns the load is split into.")
@click.option("--quick", is_flag=True, help="20 samples, 6 s of load on each gateway.")
@click.option(
    "--pinned",
    is_flag=True,
    help="Also measure the throughput with the gateway and the load on CPU 0, the witnesses "
    "on CPU 1 (reported beside the unpinned figures).",
)
def main(
    count: int,
    quorum: int,
    samples: int,
    clients: int,
    seconds: float,
    slices: int,
    quick: bool,
    pinned: bool,
) -> None:
    if quick:
        samples, seconds = 20, 6.0
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
        shared = _throughput(root / "shared", count, clients, seconds, slices, pinned=False)
        if pinned:
            (root / "pinned").mkdir()
            separate = _throughput(root / "pinned", count, clients, seconds, slices, pinned=True)
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
