"""The client's witness policy: its file, its refusals, and what a client does with it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from ehrgate import NoQuorum, SplitView, UsageError, WitnessPolicy
from ehrgate.trust import LedgerPins
from ehrgate.witness_policy import POLICY_ENV, load_policy, policy_from_environment
from ledger.wire.cosignatures import Cosigner
from tests.client.live import Cast
from tests.client.test_tamper import forking_gateway

VKEYS = [Cosigner.generate(f"w{i}.example").verifier.vkey() for i in range(4)]


def write_policy(path: Path, quorum: int, vkeys: list[str], extra: str = "") -> Path:
    keys = "".join(f'[[witnesses.keys]]\nvkey = "{vkey}"\n' for vkey in vkeys)
    path.write_text(f"[witnesses]\nquorum = {quorum}\n{extra}{keys}")
    return path


def test_a_policy_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_policy(tmp_path / "p.toml", 3, VKEYS, 'wait_seconds = 2\nevidence_dir = "ev"\n')
    policy = load_policy(path)
    assert policy.quorum == 3
    assert policy.names == tuple(f"w{i}.example" for i in range(4))
    assert policy.wait_seconds == 2
    assert policy.evidence_dir == tmp_path / "ev"
    assert load_policy(write_policy(tmp_path / "q.toml", 1, VKEYS[:1])).evidence_dir == tmp_path
    monkeypatch.setenv(POLICY_ENV, str(path))
    from_environment = policy_from_environment()
    assert from_environment is not None
    assert from_environment.to_json() == policy.to_json()


@pytest.mark.parametrize(
    ("quorum", "vkeys", "message"),
    [
        (2, VKEYS, "2k - n"),  # two disjoint pairs could cosign two forks
        (5, VKEYS, "between 1 and 4"),
        (0, VKEYS, "between 1 and 4"),
        (1, [VKEYS[0], VKEYS[0]], "once"),
        (1, [], "witnesses.keys"),
        (1, ["not a vkey"], "not a witness vkey"),
    ],
)
def test_a_policy_that_protects_nothing_is_refused(
    tmp_path: Path, quorum: int, vkeys: list[str], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        load_policy(write_policy(tmp_path / "p.toml", quorum, vkeys))
    if vkeys and "vkey" not in message:
        with pytest.raises(UsageError, match=message):
            WitnessPolicy.of(vkeys, quorum)
    with pytest.raises(UsageError, match="at least one"):
        WitnessPolicy.of([], 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no \\[witnesses\\]"),
        ("[witnesses]\nkeys = []\n", "quorum"),
        ('[witnesses]\nquorum = "3"\n', "quorum"),
        ("[witnesses]\nquorum = 1\n", "witnesses.keys"),
        ("[witnesses]\nquorum = 1\ncolour = 1\n", "unknown"),
        ("[witnesses\n", "not a readable"),
    ],
)
def test_a_malformed_policy_file_says_what_is_wrong(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        load_policy(path)
    with pytest.raises(UsageError, match="no such"):
        load_policy(tmp_path / "missing.toml")


def test_without_a_quorum_reads_are_refused(cast: Cast) -> None:
    """The cast's gateway has no witnesses: nothing it serves is cosigned."""
    with cast.client(cast.system) as system:
        system.upload(io.BytesIO(b"%PDF-1.4 a"), pseudonym=cast.pseudonym, category="lab-results")
    policy = WitnessPolicy.of(VKEYS[:1], 1, wait_seconds=0.1)
    with cast.client(cast.doctor, pins=LedgerPins(), witness_policy=policy) as doctor:
        with pytest.raises(NoQuorum, match="needs 1 of 1"):
            doctor.ledger_checkpoint()
        listed = doctor.records(cast.pseudonym)
        assert listed  # listing is not a verified read; proving a record is
        with pytest.raises(NoQuorum):
            doctor.record(listed[0].record_id)
    with cast.client(cast.doctor, pins=LedgerPins()) as doctor:  # no policy: as before
        doctor.record(listed[0].record_id)


def test_a_forked_checkpoint_is_a_split_view_kept_as_evidence(cast: Cast, tmp_path: Path) -> None:
    pins = LedgerPins(tmp_path / "trust" / "known_ledgers.json")
    lying, real, forged = forking_gateway(cast, pins)
    with (
        cast.client(cast.doctor, pins=pins, transport=lying) as doctor,
        pytest.raises(SplitView, match="evidence is in") as refused,
    ):
        doctor.ledger_checkpoint()
    evidence = refused.value.evidence
    assert isinstance(evidence, Path)
    assert evidence.parent == tmp_path / "trust" / "evidence"
    saved = json.loads(evidence.read_text())
    notes = [view["signed"] for view in saved["views"]]
    assert forged.decode() in notes
    assert real.note in notes  # the checkpoint seen before, kept whole with its signature
    assert saved["gateway"] == cast.url
