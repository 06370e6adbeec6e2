"""The bridge's witness policy: it serves a record (ITI-68) only under a tree head that k
of its trusted witnesses cosigned, and refuses bad policy settings at start.

Real parts: a gateway whose checkpoints a real witness (uvicorn) cosigns, and bridges in
front of it (uvicorn) with different policies.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from bridge.errors import BridgeUsageError
from bridge.keystore import KeyStore
from bridge.settings import BridgeSettings
from ehrgate.cli import cli
from ehrgate.links import make_link_statement
from ledger.wire.cosignatures import Cosigner
from tests.bridge.conftest import MRN, TOKENS
from tests.bridge.live import PASSPHRASE, FixedTokens, LiveBridge, bridge_settings, live_bridge
from tests.bridge.samples import document_reference, pdf
from tests.client.live import Cast
from tests.client.witnessed import witnessed_cast

ORIGIN = "st-elsewhere.example/ehrgate"
STRANGER = Cosigner.generate("witness.stranger.example").verifier.vkey()


@dataclass
class Witnessed:
    cast: Cast
    witness_vkey: str
    root: Path


@pytest.fixture(scope="module")
def witnessed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Witnessed]:
    """A gateway whose checkpoints one real witness cosigns."""
    root = tmp_path_factory.mktemp("witnessed")
    with witnessed_cast(root, ORIGIN, "witness.st-elsewhere.example") as (cast, vkey):
        yield Witnessed(cast, vkey, root)


def _bridge(stack: ExitStack, setup: Witnessed, name: str, **policy: object) -> LiveBridge:
    settings = bridge_settings(setup.root / name, setup.cast.url, **policy)
    store = KeyStore(settings.keys_dir, PASSPHRASE)
    for keys in (setup.cast.system, setup.cast.doctor, setup.cast.auditor):
        store.add(keys)
    running = stack.enter_context(live_bridge(settings, FixedTokens(TOKENS)))
    statement = make_link_statement(setup.cast.patient, hospital="st-elsewhere", mrn=MRN)
    running.service.links.add(statement.to_json(), running.service.identities.client("aria-export"))
    return running


def _retrieve(bridge: LiveBridge, content: bytes) -> httpx.Response:
    """Publish *content* through *bridge* and retrieve it (ITI-68) as the doctor."""
    with httpx.Client(timeout=60) as http:
        created = http.post(
            f"{bridge.fhir}/DocumentReference",
            json=document_reference(content),
            headers={"Authorization": "Bearer system"},
        )
        assert created.status_code == 201, created.text
        record_id = created.headers["location"].rsplit("/", 1)[1]
        return http.get(
            f"{bridge.fhir}/Binary/{record_id}", headers={"Authorization": "Bearer doctor"}
        )


def test_a_record_is_served_under_a_tree_head_the_witnesses_cosigned(
    witnessed: Witnessed,
) -> None:
    content = pdf(3000)
    policy_file = witnessed.root / "policy.toml"
    policy_file.write_text(
        f'[witnesses]\nquorum = 1\n\n[[witnesses.keys]]\nvkey = "{witnessed.witness_vkey}"\n'
    )
    with ExitStack() as stack:
        by_list = _bridge(
            stack,
            witnessed,
            "by-list",
            witnesses=(witnessed.witness_vkey,),
            witness_quorum=1,
        )
        by_file = _bridge(stack, witnessed, "by-file", witness_policy_file=policy_file)
        for bridge in (by_list, by_file):
            assert bridge.service.settings.witness_policy() is not None
            answer = _retrieve(bridge, content)
            assert answer.status_code == 200, answer.text
            assert answer.content == content


def test_a_tree_head_without_the_quorum_is_refused(witnessed: Witnessed) -> None:
    content = pdf(2000)
    with ExitStack() as stack:
        strict = _bridge(
            stack,
            witnessed,
            "strict",
            witnesses=(witnessed.witness_vkey, STRANGER),
            witness_quorum=2,  # the stranger never cosigns this log
            witness_wait_seconds=0.5,
        )
        answer = _retrieve(strict, content)
    assert answer.status_code == 502
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    diagnostics = outcome["issue"][0]["diagnostics"]
    assert "cosigned by 1 of the trusted witnesses" in diagnostics
    assert "needs 2 of 2" in diagnostics
    assert b"%PDF" not in answer.content


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"WITNESSES": f'["{STRANGER}"]'}, "needs EHRGATE_BRIDGE_WITNESS_QUORUM"),
        ({"WITNESS_QUORUM": "1"}, "EHRGATE_BRIDGE_WITNESSES names no witness"),
        ({"WITNESSES": '["not a vkey"]', "WITNESS_QUORUM": "1"}, "not a witness vkey"),
        ({"WITNESSES": f'["{STRANGER}"]', "WITNESS_QUORUM": "2"}, "between 1 and 1"),
        (
            {
                "WITNESSES": f'["{STRANGER}", "{Cosigner.generate("w2.example").verifier.vkey()}"]',
                "WITNESS_QUORUM": "1",
            },
            "2k - n ≥ 1",
        ),
        (
            {"WITNESSES": f'["{STRANGER}"]', "WITNESS_QUORUM": "1", "WITNESS_POLICY_FILE": "p"},
            "not both",
        ),
        ({"WITNESS_POLICY_FILE": "/nonexistent/policy.toml"}, "no such witness policy file"),
        ({"WITNESSES": "nope"}, 'field "witnesses"'),
    ],
)
def test_bad_policy_settings_refuse_to_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, values: dict[str, str], expected: str
) -> None:
    for name in list(os.environ):
        if name.startswith("EHRGATE_BRIDGE_"):
            monkeypatch.delenv(name)
    base = {
        "GATEWAY_URL": "http://127.0.0.1:9",
        "HOSPITAL_ID": "st-elsewhere",
        "SYSTEM_IDENTITY": "aria-export",
        "PASSPHRASE": "pw",
        "DATA_DIR": str(tmp_path / "bridge"),
    }
    for name, value in {**base, **values}.items():
        monkeypatch.setenv(f"EHRGATE_BRIDGE_{name}", value)
    answer = CliRunner().invoke(cli, ["bridge", "serve"])
    assert answer.exit_code == 2, answer.output
    assert expected in answer.output
    assert not (tmp_path / "bridge").exists()  # refused before anything was made


def test_no_policy_is_none_and_a_policy_keeps_evidence_in_the_data_dir(tmp_path: Path) -> None:
    assert bridge_settings(tmp_path, "http://127.0.0.1:9").witness_policy() is None
    policy = BridgeSettings(
        gateway_url="http://127.0.0.1:9",
        hospital_id="h",
        system_identity="s",
        data_dir=tmp_path,
        witnesses=(STRANGER,),
        witness_quorum=1,
    ).witness_policy()
    assert policy is not None
    assert policy.evidence_dir == tmp_path / "evidence"
    with pytest.raises(BridgeUsageError, match="WITNESS_QUORUM"):
        BridgeSettings(
            gateway_url="http://127.0.0.1:9",
            hospital_id="h",
            system_identity="s",
            witnesses=(STRANGER,),
        ).witness_policy()
