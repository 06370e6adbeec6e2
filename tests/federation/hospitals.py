"""Hospitals on loopback: each with a gateway (its own SQLite log) and a witness that
witnesses the other hospitals' logs, every server real uvicorn on 127.0.0.1.

Hospital X's gateway submits its checkpoints to the witnesses of the other hospitals;
the witness of hospital C is reached through a `TcpProxy`, so a test can partition it.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from ehrgate import Client
from ehrgate.trust import LedgerPins
from ehrgate.witness_policy import WitnessPolicy
from envelope import IdentityKeys, load_key_file
from gateway import Settings, create_app
from gateway.bootstrap import ensure_first_start
from gateway.settings import WitnessEndpoint
from ledger.wire.checkpoints import Checkpoint
from ledger.wire.notes import parse_note
from tests.federation.proxy import TcpProxy
from tests.ports import free_port
from witness import create_witness_app, load_config, open_witness, write_witness_key

NAMES = ("a", "b", "c", "d")
PROXIED = "c"  # this hospital's witness is reached through a proxy that can be cut
INTERVAL = 0.05


class LoopbackServer:
    """A uvicorn server on a fixed loopback port that can be stopped and started again."""

    def __init__(self, make_app: Callable[[], FastAPI], port: int | None = None) -> None:
        self.make_app = make_app
        self.port = port or free_port()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LoopbackServer:
        config = uvicorn.Config(
            self.make_app(),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            access_log=False,
        )
        self._server = server = uvicorn.Server(config)
        self._thread = threading.Thread(target=server.run, name=f"uvicorn-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=20)
        self._server = self._thread = None


@dataclass
class Hospital:
    name: str
    home: Path
    origin: str
    checkpoint_vkey: str = ""
    witness_vkey: str = ""
    gateway: LoopbackServer | None = None
    witness: LoopbackServer | None = None
    witness_url: str = ""  # what the gateways are configured with (maybe the proxy)
    admin: IdentityKeys | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return self.home / "gateway"

    @property
    def witness_config(self) -> Path:
        return self.home / "witness" / "witness.toml"

    @property
    def url(self) -> str:
        assert self.gateway is not None
        return self.gateway.url


def gateway_settings(data_dir: Path, origin: str, witnesses: list[tuple[str, str]]) -> Settings:
    return Settings(
        data_dir=data_dir,
        log_origin=origin,
        witnesses=[WitnessEndpoint(url=url, vkey=vkey) for url, vkey in witnesses],
        witness_interval=INTERVAL,
        auth_rate_limit=1_000_000,
    )


def witness_app(config: Path) -> Callable[[], FastAPI]:
    return lambda: create_witness_app(open_witness(load_config(config)))


def gateway_app(settings: Settings) -> Callable[[], FastAPI]:
    return lambda: create_app(settings)


class Federation:
    """Four hospitals, each witnessing the other three."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.hospitals = {
            name: Hospital(name, root / name, f"hospital-{name}.example/ehrgate") for name in NAMES
        }
        self.proxy: TcpProxy | None = None

    def __getitem__(self, name: str) -> Hospital:
        return self.hospitals[name]

    def start(self) -> Federation:
        for hospital in self.hospitals.values():
            self._prepare(hospital)
        for hospital in self.hospitals.values():
            self._configure_witness(hospital)
            hospital.witness = LoopbackServer(witness_app(hospital.witness_config)).start()
            hospital.witness_url = hospital.witness.url
        proxied = self[PROXIED]
        assert proxied.witness is not None
        self.proxy = TcpProxy(proxied.witness.port).start()
        proxied.witness_url = self.proxy.url
        for hospital in self.hospitals.values():
            hospital.gateway = LoopbackServer(gateway_app(self.settings_of(hospital))).start()
        return self

    def stop(self) -> None:
        for hospital in self.hospitals.values():
            for server in (hospital.gateway, hospital.witness, *hospital.extra.values()):
                if isinstance(server, LoopbackServer):
                    server.stop()
        if self.proxy is not None:
            self.proxy.stop()

    def _prepare(self, hospital: Hospital) -> None:
        first = ensure_first_start(gateway_settings(hospital.data_dir, hospital.origin, []))
        hospital.checkpoint_vkey = first.checkpoint_signer.verifier.vkey()
        admin = load_key_file(hospital.data_dir / "admin.key")
        assert isinstance(admin, IdentityKeys)
        hospital.admin = admin
        (hospital.home / "witness").mkdir(parents=True)
        cosigner = write_witness_key(
            hospital.home / "witness" / "witness.key", f"witness.hospital-{hospital.name}.example"
        )
        hospital.witness_vkey = cosigner.verifier.vkey()

    def _configure_witness(self, hospital: Hospital) -> None:
        logs = "".join(
            f'[[logs]]\norigin = "{other.origin}"\nvkey = "{other.checkpoint_vkey}"\n\n'
            for other in self.hospitals.values()
            if other is not hospital
        )
        hospital.witness_config.write_text(
            f'key_file = "witness.key"\ndatabase = "witness.db"\n\n{logs}'
        )

    def witnesses_of(self, hospital: Hospital) -> list[tuple[str, str]]:
        """(URL, vkey) of the witnesses of *hospital*'s log: the other hospitals'."""
        return [
            (other.witness_url, other.witness_vkey)
            for other in self.hospitals.values()
            if other is not hospital
        ]

    def settings_of(
        self, hospital: Hospital, data_dir: Path | None = None, witnesses: Any = None
    ) -> Settings:
        return gateway_settings(
            data_dir or hospital.data_dir,
            hospital.origin,
            self.witnesses_of(hospital) if witnesses is None else witnesses,
        )

    def policy(self, evidence_dir: Path, quorum: int = 3, wait: float = 10.0) -> WitnessPolicy:
        return WitnessPolicy.of(
            [h.witness_vkey for h in self.hospitals.values()],
            quorum,
            wait_seconds=wait,
            evidence_dir=evidence_dir,
        )

    def fork(self, hospital: Hospital, copy: Path) -> None:
        """Stop *hospital*'s gateway and copy its data (SQLite log and keys) to *copy*."""
        assert hospital.gateway is not None
        hospital.gateway.stop()
        shutil.copytree(hospital.data_dir, copy)


def append(url: str, admin: IdentityKeys, count: int, prefix: str) -> list[int]:
    """Enroll *count* identities (one log entry each); the tree sizes of their receipts."""
    sizes = []
    with Client(url, admin, pins=LedgerPins()) as client:
        for i in range(count):
            receipt = client.enroll(IdentityKeys.generate(f"{prefix}-{i}", "clinician").public())
            sizes.append(receipt.tree_head.tree_size)
    return sizes


def served_checkpoint(url: str, quorum: int = 3) -> tuple[Checkpoint, bytes]:
    note = httpx.get(f"{url}/v1/ledger/checkpoint", params={"cosignatures": quorum}).content
    return Checkpoint.from_text(parse_note(note).text), note


def cosigners(note: bytes, policy: WitnessPolicy) -> set[str]:
    """The policy's witnesses whose cosignatures on *note* verify."""
    from ledger.wire.notes import Verifiers, open_note

    try:
        return {s.name for s in open_note(note, Verifiers(policy.witnesses)).verified}
    except ValueError:
        return set()


def wait_for_quorum(
    url: str, policy: WitnessPolicy, size: int, timeout: float = 15.0
) -> tuple[Checkpoint, bytes, float]:
    """The first served checkpoint of ≥ *size* entries with the policy's quorum, and how
    long it took to appear (polled every 2 ms)."""
    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        checkpoint, note = served_checkpoint(url, policy.quorum)
        if checkpoint.size >= size and len(cosigners(note, policy)) >= policy.quorum:
            return checkpoint, note, time.perf_counter() - started
        time.sleep(0.002)
    raise AssertionError(f"{url}: no checkpoint of {size} entries with a quorum in {timeout} s")
