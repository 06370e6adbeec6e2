"""Several `ehrgate serve` replicas on one PostgreSQL ledger behind a real HAProxy, on loopback.

deployment = Deployment(tmp_path, postgres_url, replicas=3)
deployment.start()          # first start, the replicas (each ready), then the balancer
deployment.url              # the balancer; deployment.replicas[n].url: one replica
deployment.replicas[1].kill(); deployment.replicas[1].start()
deployment.stop()

Every replica reads the same ledger key, checkpoint key and blob store and keeps its
authentication state in the ledger's database. HAProxy checks `/readyz` of each, retries a
request whose connection could not be made on another replica, and names the replica that
answered in `X-Ehrgate-Replica`.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from contextlib import suppress
from pathlib import Path

import httpx

from envelope import IdentityKeys, load_key_file
from gateway import Settings
from gateway.bootstrap import ensure_first_start
from tests.faults.gateway_process import GatewayProcess
from tests.ports import free_port
from tests.processes import kill_group, log_tail

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
REPLICA_HEADER = "X-Ehrgate-Replica"


def haproxy_available() -> bool:
    return Path(HAPROXY).exists()


def haproxy_config(port: int, servers: list[tuple[str, int]]) -> str:
    """An HAProxy configuration balancing 127.0.0.1:*port* over *servers* (name, port)."""
    lines = [
        "global",
        "    maxconn 1024",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 120s",
        "    timeout server 120s",
        # A connection a dead replica refused is retried on another one: safe for any
        # method, since the request never reached a gateway.
        "    retries 3",
        "    option redispatch 1",
        "    retry-on conn-failure",
        "frontend ehrgate",
        f"    bind 127.0.0.1:{port}",
        "    option forwardfor",
        "    default_backend replicas",
        "backend replicas",
        "    balance roundrobin",
        "    option httpchk GET /readyz",
        "    http-check expect status 200",
        f"    http-response set-header {REPLICA_HEADER} %s",
        "    default-server check inter 300ms fall 2 rise 2",
    ]
    lines += [f"    server {name} 127.0.0.1:{p}" for name, p in servers]
    return "\n".join(lines) + "\n"


class Balancer:
    """HAProxy in the foreground, in its own process group."""

    def __init__(self, root: Path, servers: list[tuple[str, int]]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = root / "haproxy.cfg"
        self.config.write_text(haproxy_config(self.port, servers))
        self.log_path = root / "haproxy.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, healthy: int, timeout: float = 30) -> None:
        """Start, and return once *healthy* replicas answered through the balancer."""
        check = subprocess.run([HAPROXY, "-c", "-f", str(self.config)], capture_output=True)
        assert check.returncode == 0, check.stdout + check.stderr
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [HAPROXY, "-db", "-f", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        seen: set[str] = set()
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url, timeout=2) as client:
            while len(seen) < healthy:
                if self.process.poll() is not None:
                    raise RuntimeError(f"haproxy exited:\n{log_tail(self.log_path)}")
                with suppress(httpx.TransportError):
                    response = client.get("/readyz")
                    if response.status_code == 200 and REPLICA_HEADER in response.headers:
                        seen.add(response.headers[REPLICA_HEADER])
                if time.monotonic() > deadline:
                    raise TimeoutError(f"only {sorted(seen)} answered through haproxy")
                time.sleep(0.1)

    def stop(self) -> None:
        kill_group(self.process)


class Deployment:
    """*replicas* gateways sharing one PostgreSQL ledger, keys and blob store."""

    def __init__(
        self, root: Path, database_url: str, *, replicas: int = 3, env: dict[str, str] | None = None
    ) -> None:
        self.root = root
        self.shared = root / "shared"
        store = (root / "blobs").resolve()
        self.settings = Settings(
            data_dir=self.shared, database_url=database_url, store_urls=[store.as_uri()]
        )
        common = {
            "EHRGATE_DATABASE_URL": database_url,
            "EHRGATE_STORE_URLS": store.as_uri(),
            "EHRGATE_LEDGER_KEY_FILE": str(self.shared / "ledger.key"),
            "EHRGATE_CHECKPOINT_KEY_FILE": str(self.shared / "checkpoint.key"),
            "EHRGATE_AUTH_STATE": "database",
            # The balancer on loopback names the client in X-Forwarded-For.
            "EHRGATE_TRUSTED_PROXIES": "127.0.0.1",
            **(env or {}),
        }
        self.replicas = [GatewayProcess(root / f"replica-{n}", env=common) for n in range(replicas)]
        self.balancer = Balancer(root, [(f"r{n}", r.port) for n, r in enumerate(self.replicas)])
        self.url = self.balancer.url

    def start(self) -> None:
        (self.root / "blobs").mkdir(parents=True, exist_ok=True)
        ensure_first_start(self.settings)
        for replica in self.replicas:
            replica.start()
        self.balancer.start(healthy=len(self.replicas))

    def stop(self) -> None:
        self.balancer.stop()
        for replica in self.replicas:
            replica.kill()

    def admin_keys(self) -> IdentityKeys:
        keys = load_key_file(self.shared / "admin.key")
        assert isinstance(keys, IdentityKeys)
        return keys

    def logs(self) -> str:
        return "\n".join(f"--- {r.log_path.name}\n{r.log_tail()}" for r in self.replicas)
