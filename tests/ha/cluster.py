"""A PostgreSQL cluster on loopback managed by Patroni, with etcd as its consensus store.

Debian's `etcd` (one member) and `patroni` run as child processes, every port on 127.0.0.1
(from `tests.ports`), every file in one temporary directory. PostgreSQL refuses to run as
root, so when the tests run as root the Patroni nodes run as the `postgres` user.

`Cluster.kill(node)` crashes a node as a power cut would: SIGKILL to Patroni and to every
PostgreSQL process of the node at once. `stall_receiver` stops a replica's WAL receiver
(SIGSTOP) and `drop_receiver` kills it, so a test can make a replica lag behind the
primary at the moment of a crash (the WAL the primary sent meanwhile never arrives).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.ports import free_ports
from tests.processes import kill_group, log_tail

ETCD = "/usr/bin/etcd"
PATRONI = "/usr/bin/patroni"
SCOPE = "ehrgate-ha"
TTL = 8  # seconds a leader key lives without renewal: the failover delay after a crash
LOOP_WAIT = 1
RETRY_TIMEOUT = 3


def postgres_bin_dir() -> Path:
    """The newest Debian PostgreSQL server binaries (/usr/lib/postgresql/<version>/bin)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name),
    )
    if not found:
        raise RuntimeError("no PostgreSQL server under /usr/lib/postgresql (Debian postgresql)")
    return found[-1].parent


def missing_tools() -> list[str]:
    return [tool for tool in (ETCD, PATRONI) if not Path(tool).exists()]


@dataclass
class Node:
    name: str
    home: Path
    pg_port: int
    api_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def log(self) -> Path:
        return self.home / "patroni.log"

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None


class Cluster:
    """etcd and *size* Patroni nodes; `synchronous` sets Patroni's synchronous_mode."""

    def __init__(self, *, size: int = 2, synchronous: bool = True) -> None:
        self.synchronous = synchronous
        self.root = Path(tempfile.mkdtemp(prefix="ehrgate-ha-"))
        ports = free_ports(2 + 2 * size)
        self.etcd_client, self.etcd_peer = ports[0], ports[1]
        self.nodes = [
            Node(f"pg{i}", self.root / f"pg{i}", ports[2 + 2 * i], ports[3 + 2 * i])
            for i in range(size)
        ]
        self._etcd: subprocess.Popen[bytes] | None = None
        self._user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None

    # --- the URL the gateway uses ----------------------------------------------------------

    def database_url(self, database: str = "postgres") -> str:
        """A libpq multi-host URL: every node, and only a read-write session is accepted,
        so a connection always lands on the current primary."""
        hosts = "&".join(f"host=127.0.0.1:{n.pg_port}" for n in self.nodes)
        return (
            f"postgresql+psycopg://postgres@/{database}?{hosts}"
            "&target_session_attrs=read-write&connect_timeout=2"
        )

    # --- starting and stopping -----------------------------------------------------------

    def start(self, timeout: float = 60.0) -> Cluster:
        try:
            self._start_etcd()
            for node in self.nodes:
                self._write_config(node)
            self.start_node(self.nodes[0])
            self.wait_for_leader(timeout)
            for node in self.nodes[1:]:
                self.start_node(node)
            self.wait_for_replicas(len(self.nodes) - 1, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in self.nodes:
            self.kill(node)
        kill_group(self._etcd)
        shutil.rmtree(self.root, ignore_errors=True)

    def _start_etcd(self) -> None:
        data = self.root / "etcd"
        client = f"http://127.0.0.1:{self.etcd_client}"
        peer = f"http://127.0.0.1:{self.etcd_peer}"
        with (self.root / "etcd.log").open("wb") as out:
            self._etcd = subprocess.Popen(
                [
                    ETCD,
                    "--name=etcd0",
                    f"--data-dir={data}",
                    f"--listen-client-urls={client}",
                    f"--advertise-client-urls={client}",
                    f"--listen-peer-urls={peer}",
                    f"--initial-advertise-peer-urls={peer}",
                    f"--initial-cluster=etcd0={peer}",
                    "--initial-cluster-state=new",
                    "--listen-metrics-urls=",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{client}/health", timeout=1).status_code == 200:
                    return
            if self._etcd.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"etcd did not start:\n{log_tail(self.root / 'etcd.log')}")

    def _write_config(self, node: Node) -> None:
        node.home.mkdir(parents=True)
        config: dict[str, Any] = {
            "scope": SCOPE,
            "name": node.name,
            "log": {"level": "INFO"},
            "restapi": {
                "listen": f"127.0.0.1:{node.api_port}",
                "connect_address": f"127.0.0.1:{node.api_port}",
            },
            "etcd3": {"hosts": [f"127.0.0.1:{self.etcd_client}"]},
            "bootstrap": {
                "dcs": {
                    "ttl": TTL,
                    "loop_wait": LOOP_WAIT,
                    "retry_timeout": RETRY_TIMEOUT,
                    "maximum_lag_on_failover": 16 * 1024 * 1024,
                    "synchronous_mode": self.synchronous,
                    "synchronous_mode_strict": False,
                    "postgresql": {
                        "use_pg_rewind": False,
                        "parameters": {
                            "wal_level": "replica",
                            "max_wal_senders": 5,
                            "max_replication_slots": 5,
                            "wal_keep_size": "64MB",
                        },
                    },
                },
                "initdb": [{"encoding": "UTF8"}, {"locale": "C"}],
            },
            "postgresql": {
                "listen": f"127.0.0.1:{node.pg_port}",
                "connect_address": f"127.0.0.1:{node.pg_port}",
                "data_dir": str(node.data_dir),
                "bin_dir": str(postgres_bin_dir()),
                "pgpass": str(node.home / "pgpass"),
                "authentication": {
                    "superuser": {"username": "postgres", "password": "postgres"},
                    "replication": {"username": "replicator", "password": "replicator"},
                },
                "pg_hba": [
                    "local all all trust",
                    "host all all 127.0.0.1/32 trust",
                    "host replication replicator 127.0.0.1/32 trust",
                ],
                "parameters": {
                    "unix_socket_directories": str(node.home),
                    "fsync": "on",
                    "shared_buffers": "32MB",
                },
            },
            "watchdog": {"mode": "off"},
        }
        # JSON is YAML: Patroni reads it as its configuration file.
        (node.home / "patroni.yml").write_text(json.dumps(config, indent=2))
        if self._user is not None:
            for path in (self.root, node.home, node.home / "patroni.yml"):
                os.chown(path, self._user.pw_uid, self._user.pw_gid)

    def start_node(self, node: Node) -> None:
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(node.home),
            "LANG": "C.UTF-8",
        }
        with node.log.open("ab") as out:
            node.process = subprocess.Popen(
                [PATRONI, str(node.home / "patroni.yml")],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=node.home,
                start_new_session=True,
                user=self._user.pw_uid if self._user else None,
                group=self._user.pw_gid if self._user else None,
            )

    def kill(self, node: Node) -> None:
        """Crash *node*: SIGKILL to Patroni and to its PostgreSQL processes, together."""
        victims = []
        postmaster = node.postmaster_pid()
        if postmaster is not None and _alive(postmaster):
            victims = [postmaster, *_children(postmaster)]
        kill_group(node.process)
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in victims) and time.monotonic() < deadline:
            time.sleep(0.05)
        node.process = None

    # --- what the cluster says -------------------------------------------------------------

    def members(self) -> list[dict[str, Any]]:
        """Patroni's view of the cluster (GET /cluster) from any node that answers."""
        for node in self.nodes:
            if node.process is None:
                continue
            with contextlib.suppress(httpx.HTTPError, ValueError):
                answer = httpx.get(f"{node.api}/cluster", timeout=2)
                members: list[dict[str, Any]] = answer.json().get("members", [])
                return members
        return []

    def leader(self) -> Node | None:
        names = [m["name"] for m in self.members() if m.get("role") == "leader"]
        return next((n for n in self.nodes if n.name in names and n.process), None)

    def wait_for_leader(self, timeout: float, *, not_: Node | None = None) -> Node:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader = self.leader()
            if leader is not None and leader is not not_ and self._accepts_writes(leader):
                return leader
            time.sleep(0.2)
        raise RuntimeError(f"no primary after {timeout} s:\n{self.logs()}")

    def wait_for_replicas(self, count: int, timeout: float) -> None:
        """Until *count* replicas stream from the primary (as synchronous standby when the
        cluster is synchronous: one of them)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            members = self.members()
            streaming = [
                m
                for m in members
                if m.get("role") in ("replica", "sync_standby")
                and m.get("state") in ("streaming", "running")
                and m.get("lag", "unknown") != "unknown"
            ]
            synced = any(m.get("role") == "sync_standby" for m in members)
            if len(streaming) >= count and (synced or not self.synchronous):
                return
            time.sleep(0.2)
        raise RuntimeError(f"the replicas did not catch up in {timeout} s:\n{self.logs()}")

    def _accepts_writes(self, node: Node) -> bool:
        """Patroni holds the leader key for *node* and its PostgreSQL has left recovery (the
        REST answer comes first, while the promotion may still be under way)."""
        try:
            if httpx.get(f"{node.api}/primary", timeout=2).status_code != 200:
                return False
            with psycopg.connect(
                host="127.0.0.1", port=node.pg_port, user="postgres", dbname="postgres",
                connect_timeout=2, target_session_attrs="read-write",
            ):  # fmt: skip
                return True
        except (httpx.HTTPError, psycopg.Error):
            return False

    def receiver_pids(self, node: Node) -> list[int]:
        """The WAL receiver process(es) of a replica node."""
        postmaster = node.postmaster_pid()
        if postmaster is None:
            return []
        return [pid for pid in _children(postmaster) if b"walreceiver" in _cmdline(pid)]

    def stall_receiver(self, node: Node) -> list[int]:
        pids = self.receiver_pids(node)
        if not pids:
            raise RuntimeError(f"{node.name} has no WAL receiver to stall")
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        return pids

    def drop_receiver(self, pids: list[int]) -> None:
        """SIGKILL a stalled WAL receiver: the WAL still unread in its socket is lost, as
        if it had never been sent (PostgreSQL restarts the replica's processes, which
        recover from the WAL on disk and go on as a replica)."""
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def logs(self) -> str:
        parts = [f"--- etcd\n{log_tail(self.root / 'etcd.log')}"]
        parts += [f"--- {n.name}\n{log_tail(n.log)}" for n in self.nodes]
        return "\n".join(parts)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and int(fields[1]) == parent:
            found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return b""
