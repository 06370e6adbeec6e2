"""The log's C2SP checkpoint: GET /v1/ledger/checkpoint, its key, and its origin."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from envelope import SigningKey, b64decode
from envelope.errors import InvalidKeyFile
from gateway import Settings
from gateway.bootstrap import ensure_first_start
from gateway.settings import WitnessEndpoint
from ledger.errors import UntrustedNote
from ledger.wire.checkpoints import open_checkpoint
from ledger.wire.cosignatures import Cosigner
from ledger.wire.merkle import verify_consistency
from ledger.wire.notes import Ed25519Signer, Ed25519Verifier, Verifiers
from tests.gateway.helpers import TestClient, World


def trusted(client: TestClient) -> Verifiers:
    head = client.get("/v1/ledger/head").json()
    return Verifiers([Ed25519Verifier.from_vkey(head["checkpoint_key"])])


def test_the_checkpoint_is_the_signed_head_as_a_c2sp_note(
    client: TestClient, settings: Settings
) -> None:
    answer = client.get("/v1/ledger/checkpoint")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    head = client.get("/v1/ledger/head").json()
    checkpoint, opened = open_checkpoint(answer.content, trusted(client))
    assert checkpoint.origin == head["log_origin"] == "ehrgate-gateway/ehrgate"
    assert checkpoint.size == head["tree_head"]["tree_size"]
    assert checkpoint.root.hex() == head["tree_head"]["root"]
    assert checkpoint.extensions == ()
    assert [s.name for s in opened.verified] == [checkpoint.origin]


def test_the_checkpoint_key_is_not_the_ledger_key(client: TestClient) -> None:
    head = client.get("/v1/ledger/head").json()
    vkey = Ed25519Verifier.from_vkey(head["checkpoint_key"])
    assert vkey.public_key.to_bytes() != b64decode(head["ledger_public_key"])


def test_each_new_checkpoint_is_consistent_with_the_last(world: World) -> None:
    client = world.client
    verifiers = trusted(client)
    first, _ = open_checkpoint(client.get("/v1/ledger/checkpoint").content, verifiers)
    world.enroll("dr-house", "clinician")
    second, _ = open_checkpoint(client.get("/v1/ledger/checkpoint").content, verifiers)
    assert second.size > first.size
    proof = client.get(
        "/v1/ledger/consistency", params={"old_size": first.size, "new_size": second.size}
    ).json()["proof"]
    verify_consistency(
        first.size, second.size, first.root, second.root, [bytes.fromhex(p) for p in proof]
    )


def test_a_checkpoint_signed_by_another_key_is_refused(client: TestClient) -> None:
    note = client.get("/v1/ledger/checkpoint").content
    stranger = Ed25519Signer("ehrgate-gateway/ehrgate", SigningKey.generate())
    with pytest.raises(UntrustedNote):
        open_checkpoint(note, Verifiers([stranger.verifier]))


def test_the_checkpoint_key_is_made_once_private_and_kept(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, log_origin="hospital-a.example/ehrgate")
    first = ensure_first_start(settings).checkpoint_signer
    path = tmp_path / "checkpoint.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("PRIVATE+KEY+hospital-a.example/ehrgate+")
    again = ensure_first_start(settings).checkpoint_signer
    assert again.verifier.vkey() == first.verifier.vkey()


def test_a_key_file_of_another_origin_stops_the_start(tmp_path: Path) -> None:
    ensure_first_start(Settings(data_dir=tmp_path, log_origin="hospital-a.example/ehrgate"))
    renamed = Settings(data_dir=tmp_path, log_origin="hospital-b.example/ehrgate")
    with pytest.raises(
        InvalidKeyFile, match=re.escape("EHRGATE_LOG_ORIGIN=hospital-a.example/ehrgate")
    ):
        ensure_first_start(renamed)


def test_a_damaged_key_file_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / "checkpoint.key").write_text("PRIVATE+KEY+x+00000000+AAAA\n")
    with pytest.raises(InvalidKeyFile, match="checkpoint key"):
        ensure_first_start(Settings(data_dir=tmp_path))


def test_the_origin_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EHRGATE_LOG_ORIGIN", "oncology.hospital.example/ehrgate")
    settings = Settings(data_dir=tmp_path)
    assert settings.resolved_log_origin == "oncology.hospital.example/ehrgate"
    assert settings.resolved_checkpoint_key_file == tmp_path / "checkpoint.key"


def test_the_default_origin_is_made_a_key_name(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, gateway_id="St Mary+Co")
    assert settings.resolved_log_origin == "St-Mary-Co/ehrgate"


@pytest.mark.parametrize("origin", ["has space/x", "a+b/ehrgate", "tab\tx", ""])
def test_an_origin_that_cannot_name_a_key_is_refused(origin: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path, log_origin=origin)


def test_witnesses_come_from_the_environment_as_json(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    vkey = Cosigner.generate("witness.hospital-b.example").verifier.vkey()
    monkeypatch.setenv(
        "EHRGATE_WITNESSES", f'[{{"url": "http://127.0.0.1:7380", "vkey": "{vkey}"}}]'
    )
    monkeypatch.setenv("EHRGATE_WITNESS_INTERVAL", "0.5")
    settings = Settings(data_dir=tmp_path)
    assert [(w.url, w.vkey) for w in settings.witnesses] == [("http://127.0.0.1:7380", vkey)]
    assert settings.witness_interval == 0.5


def test_a_witness_with_a_log_key_instead_of_a_cosigning_key_is_refused() -> None:
    log_vkey = Ed25519Signer("w.example", SigningKey.generate()).verifier.vkey()
    with pytest.raises(ValidationError, match="not a witness vkey"):
        WitnessEndpoint(url="http://w", vkey=log_vkey)
