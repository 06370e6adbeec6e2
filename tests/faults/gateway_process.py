"""The gateway as a real process (`python -m ehrgate serve`) that the tests kill with -9.

gateway = GatewayProcess(data_dir, env={"EHRGATE_DATABASE_URL": url})
gateway.start()          # returns once /readyz answers 200
gateway.kill()           # SIGKILL to its process group, no chance to clean up
gateway.start()          # the same data directory, database and port again
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import httpx

from envelope import IdentityKeys, load_key_file
from tests.faults.harness import ROOT
from tests.ports import free_port
from tests.processes import kill_group, log_tail


class GatewayProcess:
    def __init__(self, data_dir: Path, *, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "EHRGATE_LOG_LEVEL": "warning",
            # Every restart logs every client out; they log in again at once.
            "EHRGATE_AUTH_RATE_LIMIT": "1000000",
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.log_path = data_dir.parent / f"{data_dir.name}-gateway.log"

    def start(self, timeout: float = 60) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ehrgate", "serve", "--port", str(self.port),
                 "--data-dir", str(self.data_dir)],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.starts += 1
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url, timeout=2) as client:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"the gateway exited with {self.process.returncode}:\n{self.log_tail()}"
                    )
                with suppress(httpx.TransportError):
                    if client.get("/readyz").status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the gateway was not ready in {timeout:.0f}s")
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would."""
        kill_group(self.process)

    def log_tail(self) -> str:
        return log_tail(self.log_path)

    @property
    def admin_key_file(self) -> Path:
        return self.data_dir / "admin.key"

    def admin_keys(self) -> IdentityKeys:
        """The first admin's keys, written by the gateway's first start."""
        keys = load_key_file(self.admin_key_file)
        assert isinstance(keys, IdentityKeys)
        return keys

    @property
    def store_url(self) -> str:
        return f"file://{self.data_dir / 'blobs'}"
