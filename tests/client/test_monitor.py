"""`ehrgate ledger monitor`: a remote log followed round by round, and its alerts."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ehrgate import Client, SplitView
from ehrgate.cli import cli
from ehrgate.monitor import LogMonitor
from ehrgate.trust import LedgerPins
from envelope import IdentityKeys
from ledger.wire.checkpoints import Checkpoint, sign_checkpoint
from ledger.wire.notes import Ed25519Signer
from tests.client.live import Cast
from tests.client.test_tamper import LyingGateway, json_change, on_path


def run_monitor(cast: Cast, state: Path, *extra: str) -> tuple[int, list[dict[str, Any]]]:
    result = CliRunner().invoke(
        cli,
        ["--as", str(cast.key_file("auditor")), "ledger", "monitor", cast.url,
         "--state-dir", str(state), "--json", *extra],
    )  # fmt: skip
    lines = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    return result.exit_code, lines


def grow(cast: Cast, count: int) -> None:
    with cast.client(cast.admin) as admin:
        for i in range(count):
            name = f"monitored-{os.urandom(4).hex()}-{i}"
            admin.enroll(IdentityKeys.generate(name, "clinician").public())


def test_rounds_follow_the_log_and_verify_only_what_is_new(cast: Cast, tmp_path: Path) -> None:
    state = tmp_path / "state"
    status, (first,) = run_monitor(cast, state, "--once")
    assert status == 0, first
    assert first["ok"]
    assert first["new_entries"] == first["entries"] == first["tree_size"] > 0
    grow(cast, 3)
    status, rounds = run_monitor(cast, state, "--rounds", "2", "--interval", "0.1")
    assert status == 0
    assert [r["ok"] for r in rounds] == [True, True]
    assert rounds[0]["previous_size"] == first["tree_size"]
    assert rounds[0]["new_entries"] == rounds[0]["tree_size"] - first["tree_size"] >= 3
    assert rounds[1]["new_entries"] == 0
    saved = json.loads((state / "state.json").read_text())
    assert saved["entries"] == rounds[1]["entries"]
    assert len((state / "entries.jsonl").read_text().splitlines()) == saved["entries"]


def test_a_forked_checkpoint_stops_the_monitor_with_evidence(cast: Cast, tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert run_monitor(cast, state, "--once")[0] == 0
    signer = Ed25519Signer.from_private_key((cast.data_dir / "checkpoint.key").read_text())
    with Client(cast.url, pins=LedgerPins()) as reader:
        real = reader.ledger_checkpoint()
    forged = sign_checkpoint(Checkpoint(real.origin, real.tree_size, bytes(32)), signer)
    lying = LyingGateway(on_path("/v1/ledger/checkpoint", lambda _: forged))
    pins = LedgerPins(state / "known_ledgers.json")
    with (
        Client(cast.url, cast.auditor, pins=pins, transport=lying) as client,
        pytest.raises(SplitView) as refused,
    ):
        LogMonitor(client, state).round()
    assert refused.value.evidence is not None
    saved = json.loads(Path(refused.value.evidence).read_text())
    signed = [view["signed"] for view in saved["views"]]
    assert forged.decode() in signed
    assert real.note in signed  # the checkpoint of the previous round, whole


def test_a_changed_entry_is_reported_as_damage(cast: Cast, tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert run_monitor(cast, state, "--once")[0] == 0
    grow(cast, 1)

    def rewrite(page: dict[str, Any]) -> None:
        for entry in page["entries"]:
            entry["tx"]["body"]["identity"]["name"] = "someone else"

    lying = LyingGateway(on_path("/v1/ledger/entries", json_change(rewrite)))
    pins = LedgerPins(state / "known_ledgers.json")
    with Client(cast.url, cast.auditor, pins=pins, transport=lying) as client:
        report = LogMonitor(client, state).round()
    assert not report.ok
    assert report.damage is not None
    assert "does not verify" in (report.problem or "")
    status, (alert,) = run_monitor(cast, state, "--once")  # the mirror keeps the damage
    assert status == 1
    assert not alert["ok"]


def test_a_state_directory_of_another_gateway_is_refused(cast: Cast, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "state.json").write_text(json.dumps({"gateway": "http://elsewhere:1"}))
    result = CliRunner().invoke(
        cli,
        ["--as", str(cast.key_file("auditor")), "ledger", "monitor", cast.url,
         "--state-dir", str(state), "--once"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "another gateway" in result.output
