"""`Client.ledger_checkpoint()`: the log's C2SP checkpoint, verified with a pinned key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ehrgate import VerificationFailed
from ehrgate.cli import cli
from ehrgate.errors import UsageError
from ehrgate.trust import LedgerPins
from ledger.wire.cosignatures import Cosigner
from ledger.wire.notes import Ed25519Signer
from tests.client.live import Cast
from tests.client.test_tamper import LyingGateway, forking_gateway, json_change, on_path


def test_the_checkpoint_is_verified_and_its_key_pinned(cast: Cast, tmp_path: Path) -> None:
    pins = LedgerPins(tmp_path / "pins.json")
    with cast.client(cast.doctor, pins=pins) as doctor:
        head = doctor.ledger_head()
        found = doctor.ledger_checkpoint([Cosigner.generate("w.example").verifier.vkey()])
    assert head.tree_head is not None
    assert found.tree_size >= head.tree_head.tree_size
    assert found.origin == "ehrgate-gateway/ehrgate"
    assert found.checkpoint_key.startswith("ehrgate-gateway/ehrgate+")
    assert found.cosigned_by == ()  # no witness cosigned it
    saved = json.loads((tmp_path / "pins.json").read_text())["gateways"][cast.url]
    assert saved["checkpoint_key"] == found.checkpoint_key
    assert LedgerPins(tmp_path / "pins.json").check_or_pin_checkpoint_key(
        cast.url, found.checkpoint_key
    )


def test_a_changed_checkpoint_is_refused(cast: Cast) -> None:
    lying = LyingGateway(
        on_path("/v1/ledger/checkpoint", lambda body: body.replace(b"\n", b"\n\n", 1))
    )
    with (
        cast.client(cast.doctor, pins=LedgerPins(), transport=lying) as doctor,
        pytest.raises(VerificationFailed, match="checkpoint does not verify"),
    ):
        doctor.ledger_checkpoint()


def test_another_checkpoint_key_after_the_pin_is_refused(cast: Cast) -> None:
    pins = LedgerPins()
    with cast.client(cast.doctor, pins=pins) as doctor:
        doctor.ledger_checkpoint()
    impostor = Ed25519Signer("ehrgate-gateway/ehrgate", Cosigner.generate("x").key)

    def swap(document: dict[str, Any]) -> None:
        document["checkpoint_key"] = impostor.verifier.vkey()

    lying = LyingGateway(on_path("/v1/ledger/head", json_change(swap)))
    with (
        cast.client(cast.doctor, pins=pins, transport=lying) as doctor,
        pytest.raises(VerificationFailed, match="checkpoint key"),
    ):
        doctor.ledger_checkpoint()


def test_a_forked_checkpoint_signed_by_the_real_key_is_refused(cast: Cast) -> None:
    pins = LedgerPins()
    lying, _, _ = forking_gateway(cast, pins)
    with (
        cast.client(cast.doctor, pins=pins, transport=lying) as doctor,
        pytest.raises(VerificationFailed, match="rewritten or forked"),
    ):
        doctor.ledger_checkpoint()


def test_a_malformed_witness_vkey_is_a_usage_error(cast: Cast) -> None:
    with cast.client(cast.doctor) as doctor, pytest.raises(UsageError, match="witness vkey"):
        doctor.ledger_checkpoint(["not-a-vkey"])


def test_the_command_prints_the_checkpoint(cast: Cast, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["--gateway", cast.url, "--known-ledgers", str(tmp_path / "pins.json"), "ledger",
         "checkpoint", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["origin"] == "ehrgate-gateway/ehrgate"
    assert shown["note"].startswith("ehrgate-gateway/ehrgate\n")
    assert shown["cosigned_by"] == []
