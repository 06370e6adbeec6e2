"""A witness and gateways on loopback, each under real uvicorn: the federation story.

The witness is configured from a TOML file as `ehrgate witness serve` does; the gateways
are the real application with their real ledgers. Checkpoints travel over HTTP only.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from ehrgate import Client
from ehrgate.trust import LedgerPins
from gateway import Settings
from gateway.bootstrap import ensure_first_start
from gateway.settings import WitnessEndpoint
from ledger.wire.checkpoints import Checkpoint
from ledger.wire.cosignatures import CosignatureVerifier
from ledger.wire.notes import Ed25519Verifier, Verifiers, open_note, parse_note
from ledger.wire.tlog_witness import format_add_checkpoint
from tests.gateway.helpers import ManualClock, World
from tests.gateway.live import live_world, serve_in_thread
from witness import WitnessState, create_witness_app, load_config, open_witness, write_witness_key

ORIGIN = "hospital-a.example/ehrgate"
WITNESS = "witness.hospital-b.example"


@pytest.fixture
def gateway_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "gateway-a", log_origin=ORIGIN)


@pytest.fixture
def witness_config(tmp_path: Path, gateway_settings: Settings) -> Path:
    """A witness that follows gateway A's log (its vkey as /v1/ledger/head publishes it)."""
    log_vkey = ensure_first_start(gateway_settings).checkpoint_signer.verifier.vkey()
    home = tmp_path / "witness"
    home.mkdir()
    write_witness_key(home / "witness.key", WITNESS)
    config = home / "witness.toml"
    config.write_text(
        'key_file = "witness.key"\ndatabase = "state/witness.db"\n\n'
        f'[[logs]]\norigin = "{ORIGIN}"\nvkey = "{log_vkey}"\n'
    )
    return config


@contextmanager
def running_witness(config: Path) -> Iterator[str]:
    with serve_in_thread(create_witness_app(open_witness(load_config(config)))) as url:
        yield url


def witness_vkey(config: Path) -> str:
    return load_config(config).cosigner.verifier.vkey()


def submit(
    witness_url: str, gateway: httpx.Client, old: int, note: bytes | None = None
) -> httpx.Response:
    """What a log sends: its checkpoint and the proof from *old*, both from the gateway."""
    note = note if note is not None else gateway.get("/v1/ledger/checkpoint").content
    size = Checkpoint.from_text(parse_note(note).text).size
    proof: list[bytes] = []
    if 0 < old < size:
        answer = gateway.get("/v1/ledger/consistency", params={"old_size": old, "new_size": size})
        proof = [bytes.fromhex(p) for p in answer.json()["proof"]]
    return httpx.post(
        f"{witness_url}/add-checkpoint", content=format_add_checkpoint(old, proof, note)
    )


def grow(world: World, count: int, prefix: str) -> None:
    for i in range(count):
        world.enroll(f"{prefix}-{i}", "clinician")


def size_of(gateway: httpx.Client) -> int:
    return int(gateway.get("/v1/ledger/head").json()["tree_head"]["tree_size"])


def wait_for_cosigned(gateway: httpx.Client, verifier: CosignatureVerifier, size: int) -> bytes:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        note = gateway.get("/v1/ledger/checkpoint").content
        try:
            opened = open_note(note, Verifiers([verifier]))
        except ValueError:
            opened = None
        if opened is not None and Checkpoint.from_text(opened.text).size == size:
            return note
        time.sleep(0.05)
    raise AssertionError(f"no cosigned checkpoint of size {size} within 20 s")


def test_the_gateway_submits_its_checkpoints_and_serves_them_cosigned(
    gateway_settings: Settings, witness_config: Path
) -> None:
    cosigning = CosignatureVerifier.from_vkey(witness_vkey(witness_config))
    with running_witness(witness_config) as witness_url:
        witnessed = Settings(
            data_dir=gateway_settings.data_dir,
            log_origin=ORIGIN,
            witnesses=[WitnessEndpoint(url=witness_url, vkey=cosigning.vkey())],
            witness_interval=0.05,
        )
        with live_world(witnessed, ManualClock()) as (url, world):
            grow(world, 3, "dr")
            note = wait_for_cosigned(world.client, cosigning, size_of(world.client))
            # The served note also carries the log's own signature, verifiable with its vkey.
            log_key = world.client.get("/v1/ledger/head").json()["checkpoint_key"]
            assert open_note(note, Verifiers([Ed25519Verifier.from_vkey(log_key)])).verified
            # The SDK names the trusted witnesses whose cosignatures it checked.
            with Client(url, pins=LedgerPins()) as reader:
                seen = reader.ledger_checkpoint([cosigning.vkey()])
            assert seen.cosigned_by == (WITNESS,)
        # A restarted gateway no longer knows the witness's size: it asks from 0, gets 409
        # with the size, and proves consistency from there.
        with live_world(witnessed, ManualClock()) as (_, world):
            grow(world, 2, "nurse")
            wait_for_cosigned(world.client, cosigning, size_of(world.client))
            final = size_of(world.client)
    state = WitnessState(load_config(witness_config).database)
    try:
        known = state.latest(ORIGIN)
        assert known is not None
        assert known.size == final
        assert state.evidence() == []
    finally:
        state.close()


def test_a_restarted_witness_never_cosigns_a_smaller_tree(
    gateway_settings: Settings, witness_config: Path
) -> None:
    with live_world(gateway_settings, ManualClock()) as (_, world):
        gateway = world.client
        with running_witness(witness_config) as witness_url:
            first = gateway.get("/v1/ledger/checkpoint").content
            small = size_of(gateway)
            assert submit(witness_url, gateway, 0, first).status_code == 200
            grow(world, 4, "dr")
            large = size_of(gateway)
            assert submit(witness_url, gateway, small).status_code == 200
        with running_witness(witness_config) as witness_url:
            # The older, smaller checkpoint is never cosigned again, whatever old size says.
            stale = submit(witness_url, gateway, 0, first)
            assert (stale.status_code, stale.text) == (409, f"{large}\n")
            assert stale.headers["content-type"] == "text/x.tlog.size"
            assert submit(witness_url, gateway, small, first).status_code == 409
            assert submit(witness_url, gateway, large, first).status_code == 400
            # The log itself goes on from the size the witness kept.
            grow(world, 1, "nurse")
            assert submit(witness_url, gateway, large).status_code == 200


def test_a_rewritten_log_is_refused_and_kept_as_evidence(
    tmp_path: Path, gateway_settings: Settings, witness_config: Path
) -> None:
    with (
        live_world(gateway_settings, ManualClock()) as (_, world),
        running_witness(witness_config) as witness_url,
    ):
        grow(world, 2, "dr")
        assert submit(witness_url, world.client, 0).status_code == 200
        witnessed = size_of(world.client)
    # The same log identity (origin and checkpoint key) over another history: a rewrite.
    rewritten_dir = tmp_path / "gateway-a-rewritten"
    rewritten_dir.mkdir()
    shutil.copy2(gateway_settings.resolved_checkpoint_key_file, rewritten_dir / "checkpoint.key")
    rewritten = Settings(data_dir=rewritten_dir, log_origin=ORIGIN)
    with live_world(rewritten, ManualClock()) as (_, world), running_witness(witness_config) as url:
        grow(world, 6, "someone-else")
        assert size_of(world.client) > witnessed
        refused = submit(url, world.client, witnessed)
        assert refused.status_code == 422
        assert "consistency proof" in refused.text
    state = WitnessState(load_config(witness_config).database)
    try:
        (evidence,) = state.evidence(ORIGIN)
        assert evidence.kind == "inconsistent"
        assert evidence.known_size == witnessed
        assert state.latest(ORIGIN).size == witnessed  # type: ignore[union-attr]
    finally:
        state.close()
