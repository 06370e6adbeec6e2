"""The web app's witness policy end to end, in Debian's Chromium against a real gateway and
three real witnesses (uvicorn on 127.0.0.1, as tests/federation runs them), the browser
reaching the gateway through a TCP proxy so that one origin can lead to either side of a
fork (the browser keeps the policy, the witnessed checkpoint and the evidence per origin):

- policy met (2 of the 3 witnesses): the patient's record opens, its tree head covered by a
  checkpoint the witnesses cosigned;
- too few cosignatures (a policy of 3 of 4 that the gateway's witnesses can only meet 2 of):
  the record is refused, nothing shown;
- a forked gateway (its database copied, the two copies shown to different witnesses, and the
  browser led from one to the other): a hard error, the alarm shows both views, and the
  evidence is kept in the browser and downloads as the SDK's evidence file; its two
  checkpoints, verified here by `ledger.wire`, are of one size with different roots.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from ehrgate import Client
from ehrgate.trust import LedgerPins
from envelope import IdentityKeys, PatientKeys
from envelope.keyfile import encode_key_file
from gateway import Settings, create_app
from gateway.bootstrap import ensure_first_start
from gateway.settings import WitnessEndpoint
from ledger.errors import UntrustedNote
from ledger.wire.checkpoints import Checkpoint, open_checkpoint
from ledger.wire.cosignatures import CosignatureVerifier, Cosigner
from ledger.wire.notes import Ed25519Verifier, Verifiers, open_note, parse_note
from tests.federation.hospitals import LoopbackServer, served_checkpoint, witness_app
from tests.federation.proxy import TcpProxy
from tests.gateway.conftest import first_admin
from tests.gateway.helpers import ManualClock, World
from witness import write_witness_key

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
CHROMIUM = Path("/usr/bin/chromium")
ORIGIN = "hospital-a.example/ehrgate"


class Driver:
    """tests/web/witness_scenario.mjs, told one action at a time."""

    def __init__(self, plan: dict[str, Any]) -> None:
        env = {**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1", "TZ": "UTC"}
        self.process = subprocess.Popen(
            ["node", str(Path(__file__).with_name("witness_scenario.mjs"))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self._send(plan)

    def _send(self, value: dict[str, Any]) -> None:
        stdin: IO[str] | None = self.process.stdin
        assert stdin is not None
        stdin.write(json.dumps(value) + "\n")
        stdin.flush()

    def do(self, action: str, **fields: Any) -> dict[str, Any]:
        self._send({"do": action, **fields})
        stdout: IO[str] | None = self.process.stdout
        assert stdout is not None
        line = stdout.readline()
        assert line, f"the browser stopped during {action}"
        answer: dict[str, Any] = json.loads(line)
        assert "error" not in answer, answer["error"] + "\n" + json.dumps(answer.get("console"))
        assert answer["did"] == action, answer
        return answer

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


@dataclass
class Witnessed:
    """A gateway with three witnesses, the browser's way in (a proxy) and a patient."""

    root: Path
    settings: Settings
    gateway: LoopbackServer
    front: TcpProxy
    witnesses: list[tuple[LoopbackServer, str]]
    admin: IdentityKeys
    patient: PatientKeys
    servers: list[LoopbackServer] = field(default_factory=list)

    @property
    def vkeys(self) -> list[str]:
        return [vkey for _, vkey in self.witnesses]

    def settings_with(self, data_dir: Path, witnesses: list[int]) -> Settings:
        return _settings(
            data_dir, [(self.witnesses[i][0].url, self.witnesses[i][1]) for i in witnesses]
        )


def _settings(data_dir: Path, witnesses: list[tuple[str, str]]) -> Settings:
    return Settings(
        data_dir=data_dir,
        log_origin=ORIGIN,
        web_dir=WEB / "dist",
        witnesses=[WitnessEndpoint(url=url, vkey=vkey) for url, vkey in witnesses],
        witness_interval=0.05,
        auth_rate_limit=1_000_000,
    )


def _witness(home: Path, index: int, log_vkey: str) -> tuple[LoopbackServer, str]:
    home.mkdir(parents=True)
    cosigner = write_witness_key(home / "witness.key", f"witness-{index}.example")
    config = home / "witness.toml"
    config.write_text(
        'key_file = "witness.key"\ndatabase = "witness.db"\n\n'
        f'[[logs]]\norigin = "{ORIGIN}"\nvkey = "{log_vkey}"\n'
    )
    return LoopbackServer(witness_app(config)).start(), cosigner.verifier.vkey()


@pytest.fixture
def witnessed(tmp_path: Path) -> Iterator[Witnessed]:
    if shutil.which("node") is None or not CHROMIUM.exists():
        pytest.fail("the browser tests need Node.js 20 and Debian's chromium")
    if not (WEB / "dist" / "index.html").is_file():
        pytest.fail("web/dist is not built: run web/build (./dev runs it)")
    data = tmp_path / "gateway"
    first = ensure_first_start(_settings(data, []))
    log_vkey = first.checkpoint_signer.verifier.vkey()
    witnesses = [_witness(tmp_path / f"witness-{i}", i, log_vkey) for i in range(3)]
    settings = _settings(data, [(server.url, vkey) for server, vkey in witnesses])
    gateway = LoopbackServer(lambda: create_app(settings)).start()
    front = TcpProxy(gateway.port).start()
    servers = [gateway, *(server for server, _ in witnesses)]
    try:
        with httpx.Client(base_url=gateway.url, timeout=30) as client:
            world = World(client, ManualClock.system(), first_admin(settings))
            patient = world.register_patient("Ana Example")
            system = world.enroll("his-1", "system")
            world.grant(patient, system, ["write"], "all")
        report = tmp_path / "report.pdf"
        report.write_bytes(
            b"%PDF-1.4\n% lab results\n" + os.urandom(32).hex().encode() + b"\n%%EOF\n"
        )
        with Client(gateway.url, system, pins=LedgerPins()) as sdk:
            sdk.upload(report, pseudonym=patient.pseudonym, category="lab-results")
        yield Witnessed(
            tmp_path, settings, gateway, front, witnesses, world.admin, patient, servers
        )
    finally:
        front.stop()
        for server in servers:
            server.stop()


def _size(url: str) -> int:
    head = httpx.get(f"{url}/v1/ledger/head").json()["tree_head"]
    return int(head["tree_size"])


def _append(url: str, admin: IdentityKeys, count: int, prefix: str) -> None:
    with Client(url, admin, pins=LedgerPins()) as client:
        for i in range(count):
            client.enroll(IdentityKeys.generate(f"{prefix}-{i}", "clinician").public())


def _cosigners(note: bytes, vkeys: list[str]) -> set[str]:
    trusted = Verifiers(CosignatureVerifier.from_vkey(vkey) for vkey in vkeys)
    try:
        return {s.name for s in open_note(note, trusted).verified}
    except UntrustedNote:
        return set()


def _cosigned_by(url: str, vkeys: list[str], names: set[str], size: int) -> bytes:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        checkpoint, note = served_checkpoint(url, 1)
        if checkpoint.size >= size and _cosigners(note, vkeys) == names:
            return note
        time.sleep(0.02)
    raise AssertionError(f"{url}: not cosigned by {names} at {size}")


def test_the_web_app_holds_tree_heads_to_its_witness_policy(
    witnessed: Witnessed, tmp_path: Path
) -> None:
    key_file = tmp_path / "patient.key"
    key_file.write_bytes(encode_key_file(witnessed.patient))
    names = [f"witness-{i}.example" for i in range(3)]
    shots = Path(os.environ.get("EHRGATE_WEB_SCREENSHOTS", ROOT / "docs" / "web"))
    shots.mkdir(parents=True, exist_ok=True)
    browser = Driver(
        {
            "screenshots": str(shots),
            "url": witnessed.front.url,
            "web_dir": str(WEB),
            "chromium": str(CHROMIUM),
            "patient_key": str(key_file),
        }
    )
    try:
        # 1. a policy of 2 of the 3 witnesses: the record opens, its head covered
        saved = browser.do("policy", vkeys=witnessed.vkeys, quorum=2, wait=10)
        assert "Witness policy saved: 2 of 3" in saved["status"], saved
        assert json.loads(saved["storage"]["policy"])["witnesses"] == witnessed.vkeys
        browser.do("shot", name="witnesses")
        browser.do("sign_in")
        opened = browser.do("open")
        assert opened["viewer"] == 1, opened
        assert "Verified and opened" in opened["status"], opened
        assert re.search(r"cosigned by [23] of 3 trusted witnesses \(witness-", opened["checks"])
        kept = json.loads(opened["storage"]["witnessed"])
        assert kept["note"].startswith(ORIGIN + "\n")
        assert opened["alarm"] is None
        assert opened["storage"]["evidence"] is None

        # 2. a policy the gateway's witnesses cannot meet: 3 of 4, two of them never asked
        strangers = [Cosigner.generate(f"stranger-{i}.example").verifier.vkey() for i in (1, 2)]
        browser.do("policy", vkeys=[*witnessed.vkeys[:2], *strangers], quorum=3, wait=1)
        browser.do("sign_in")
        refused = browser.do("open")
        assert refused["viewer"] == 0, refused
        assert "Not shown, verification failed" in refused["status"], refused
        assert "cosigned by 2 of the trusted witnesses" in refused["status"], refused
        assert "the policy needs 3 of 4" in refused["status"], refused

        # 3. the gateway forks: its database copied, the original shown to witnesses 0 and 1,
        #    the copy to witness 2; the browser reads the original, then is led to the copy
        browser.do("policy", vkeys=witnessed.vkeys, quorum=2, wait=30)
        gateway = witnessed.gateway
        gateway.stop()
        fork = tmp_path / "fork"
        shutil.copytree(witnessed.settings.data_dir, fork)
        original_settings = witnessed.settings_with(witnessed.settings.data_dir, [0, 1])
        copy_settings = witnessed.settings_with(fork, [2])
        original = LoopbackServer(lambda: create_app(original_settings), gateway.port).start()
        copy = LoopbackServer(lambda: create_app(copy_settings)).start()
        witnessed.servers[0] = original
        witnessed.servers.append(copy)
        forked_at = _size(original.url)
        _append(original.url, witnessed.admin, 1, "fork-one")
        _cosigned_by(original.url, witnessed.vkeys, set(names[:2]), forked_at + 1)
        browser.do("sign_in")
        first = browser.do("open")
        assert first["viewer"] == 1, first
        assert "cosigned by 2 of 3 trusted witnesses" in first["checks"], first
        held = json.loads(first["storage"]["witnessed"])["note"]
        held_checkpoint = Checkpoint.from_text(parse_note(held.encode()).text)
        assert held_checkpoint.size > forked_at

        # a new session at the copy (sessions do not survive the fork: nothing is pinned in
        # memory); the witnessed checkpoint kept in the browser catches the other history
        witnessed.front.retarget(copy.port)
        browser.do("sign_in")
        _append(
            copy.url, witnessed.admin, max(1, held_checkpoint.size - _size(copy.url)), "fork-two"
        )
        _cosigned_by(copy.url, witnessed.vkeys, {names[2]}, held_checkpoint.size)
        forked = browser.do("open")
        assert forked["viewer"] == 0, forked
        assert "SPLIT VIEW" in forked["status"], forked
        assert forked["alarm"] is not None, forked
        assert "showed two histories (1 split view" in forked["alarm"], forked
        browser.do("shot", name="split-view")
        evidence = json.loads(forked["storage"]["evidence"])
        assert len(evidence) == 1
        assert evidence[-1]["kind"] == "split-view"

        saved_file = tmp_path / "evidence.json"
        downloaded = browser.do("download", path=str(saved_file))
        assert "Split-view evidence on this device" in downloaded["evidence_page"]
        document = json.loads(saved_file.read_text())
        assert document == evidence[-1]
        assert set(document) == {"kind", "gateway", "found_at", "reason", "views"}
        assert document["gateway"] == witnessed.front.url
        # the kept views prove the fork to anyone with the log's key: two checkpoints the log
        # signed, of one size, with different roots (or a head that the witnessed one excludes)
        log = Verifiers([Ed25519Verifier.from_vkey(_checkpoint_vkey(copy.url))])
        notes = [v["signed"] for v in document["views"] if isinstance(v["signed"], str)]
        assert held in notes
        checkpoints = [open_checkpoint(note.encode(), log)[0] for note in notes]
        others = [cp for cp in checkpoints if cp.root != held_checkpoint.root]
        assert others, document
        assert all(cp.origin == ORIGIN for cp in checkpoints), document
        same_size = "two checkpoints of" in document["reason"] or (
            "different roots" in document["reason"]
        )
        if any(cp.size == held_checkpoint.size for cp in others):
            assert same_size, document["reason"]
        else:
            # a larger tree of the copy's history (no consistency proof to the witnessed one),
            # or the copy's signed tree head of the witnessed size with another root
            assert same_size or "does not extend" in document["reason"], document["reason"]
        # the copy never reached the quorum: only witness 2 cosigned its history
        assert _cosigners(served_checkpoint(copy.url, 1)[1], witnessed.vkeys) == {names[2]}
        # a later visit still shows the alarm (the evidence stays until deleted)
        browser.do("sign_in")
        again = browser.do("open")
        assert "SPLIT VIEW" in again["status"]
        assert again["alarm"] is not None
        done = browser.do("done")
        unexpected = [e for e in done["console"] if "Failed to load resource" not in e["text"]]
        assert unexpected == [], unexpected
    finally:
        browser.close()


def _checkpoint_vkey(url: str) -> str:
    vkey: str = httpx.get(f"{url}/v1/ledger/head").json()["checkpoint_key"]
    return vkey
