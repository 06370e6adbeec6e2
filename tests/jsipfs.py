"""A real IPFS node for tests: js-ipfs from ``tests/node/jsipfs`` (npm ``ipfs`` 0.66.1).

The node is started offline and bound to 127.0.0.1 only: ``jsipfs init --profile test
--empty-repo`` in a temporary repository, then its config is rewritten with no swarm
addresses, no bootstrap peers or delegates, MDNS, webRTCStar and pubsub off, routing
``none``, and the RPC API, gateway and gRPC endpoints on free ports of 127.0.0.1; then
``jsipfs daemon --offline --enable-preload=false`` with ``NO_UPDATE_NOTIFIER=1``. It is
ready when its log says "Daemon is ready"; it is killed (its whole process group) and its
repository and log removed at the end.

Use in tests: the session fixture ``jsipfs`` (registered in ``tests/conftest.py``) starts
one node per test session; ``JsIpfs.start()`` starts one of a test's own.
``tests/node/install`` (run by ``./dev test``) installs js-ipfs into
``tests/node/jsipfs/node_modules``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ports import free_ports
from tests.processes import kill_group, log_tail

PROJECT = Path(__file__).resolve().parent / "node" / "jsipfs"
START_TIMEOUT = 120.0
READY = "Daemon is ready"
INSTALL_HINT = "run tests/node/install (./dev test runs it) to install js-ipfs from its lock file"


def jsipfs_binary() -> Path:
    """The ``jsipfs`` command of the installed npm ``ipfs`` package."""
    binary = PROJECT / "node_modules" / ".bin" / "jsipfs"
    if not binary.exists():
        raise RuntimeError(
            f"js-ipfs is not installed in {PROJECT / 'node_modules'}: {INSTALL_HINT}"
        )
    if shutil.which("node") is None:
        raise RuntimeError("js-ipfs needs Node.js 20 on PATH (the node command is missing)")
    return binary


def offline_config(config: dict[str, Any], api: int, gateway: int, rpc: int) -> dict[str, Any]:
    """``config`` (as ``jsipfs init`` wrote it) made offline and bound to 127.0.0.1 only."""
    addresses = config.setdefault("Addresses", {})
    addresses.update(
        {
            "Swarm": [],
            "Announce": [],
            "NoAnnounce": [],
            "Delegates": [],
            "API": f"/ip4/127.0.0.1/tcp/{api}",
            "Gateway": f"/ip4/127.0.0.1/tcp/{gateway}",
            "RPC": f"/ip4/127.0.0.1/tcp/{rpc}",
        }
    )
    config["Bootstrap"] = []
    discovery = config.setdefault("Discovery", {})
    discovery["MDNS"] = {**discovery.get("MDNS", {}), "Enabled": False}
    discovery["webRTCStar"] = {**discovery.get("webRTCStar", {}), "Enabled": False}
    config["Pubsub"] = {**config.get("Pubsub", {}), "Enabled": False}
    config["Routing"] = {**config.get("Routing", {}), "Type": "none"}
    return config


@dataclass
class JsIpfs:
    """A running js-ipfs daemon with its Kubo-style RPC API on 127.0.0.1."""

    api_url: str
    repo: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    @contextmanager
    def start(cls) -> Iterator[JsIpfs]:
        """Start a node, wait until it is ready, kill it and remove its repository after."""
        binary = jsipfs_binary()
        base = Path(tempfile.mkdtemp(prefix="jsipfs-"))
        repo = base / "repo"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(base),
            "IPFS_PATH": str(repo),
            "NO_UPDATE_NOTIFIER": "1",
        }
        log_path = base / "daemon.log"
        log = log_path.open("wb")
        process: subprocess.Popen[bytes] | None = None
        try:
            init = subprocess.run(
                [str(binary), "init", "--profile", "test", "--empty-repo"],
                env=env,
                cwd=base,
                capture_output=True,
                timeout=START_TIMEOUT,
                check=False,
            )
            if init.returncode != 0:
                raise RuntimeError(
                    f"jsipfs init failed ({init.returncode}):\n"
                    f"{(init.stdout + init.stderr).decode(errors='replace')[-3000:]}"
                )
            api, gateway, rpc = free_ports(3)
            config_path = repo / "config"
            config = offline_config(json.loads(config_path.read_text()), api, gateway, rpc)
            config_path.write_text(json.dumps(config, indent=2))
            process = subprocess.Popen(
                [str(binary), "daemon", "--offline", "--enable-preload=false"],
                env=env,
                cwd=base,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            node = cls(f"http://127.0.0.1:{api}", repo, process, log_path)
            node._wait_ready()
            yield node
        finally:
            if process is not None and process.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
            log.close()
            shutil.rmtree(base, ignore_errors=True)

    def store_url(self, **params: str) -> str:
        """An ``ipfs+http://`` store URL for this node."""
        query = "&".join(f"{key}={value}" for key, value in params.items())
        return f"ipfs+{self.api_url}" + (f"?{query}" if query else "")

    def block_file(self, cid: str) -> Path:
        """Where the node's flatfs blockstore keeps the block of a base32 CIDv1: the
        multihash in upper-case base32, sharded by the two characters before the last."""
        encoded = cid.removeprefix("b").upper()
        raw = base64.b32decode(encoded + "=" * (-len(encoded) % 8))
        key = base64.b32encode(raw[2:]).decode().rstrip("=")  # drop version and codec
        return self.repo / "blocks" / key[-3:-1] / f"{key}.data"

    def corrupt(self, cid: str) -> None:
        """Flip one byte of a body behind the node's back: of its only block, or of the
        middle leaf of a larger body (leaves listed by ``refs``)."""
        answer = httpx.post(
            f"{self.api_url}/api/v0/refs",
            params={"arg": cid, "recursive": "true", "cid-base": "base32", "timeout": "30s"},
            timeout=60,
        )
        answer.raise_for_status()
        leaves = [json.loads(line)["Ref"] for line in answer.text.splitlines() if line.strip()]
        path = self.block_file(leaves[len(leaves) // 2] if leaves else cid)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """Stop the node at once (SIGKILL to its process group), as a crash would."""
        kill_group(self.process)

    def log_tail(self) -> str:
        return log_tail(self.log_path)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while READY not in self.log_tail():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"jsipfs daemon exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"jsipfs daemon was not ready within {START_TIMEOUT:.0f}s:\n{self.log_tail()}"
                )
            time.sleep(0.2)


@pytest.fixture(scope="session")
def jsipfs() -> Iterator[JsIpfs]:
    """One real js-ipfs node for the whole test session."""
    with JsIpfs.start() as node:
        yield node
