"""A clinician reads one patient's records at two hospitals, each record proved on its own
hospital's log and witnessed under that log's policy (real gateways and witnesses)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from ehrgate import Client, FederatedClient, GatewayConfig, NoQuorum
from ehrgate.cli import cli
from ehrgate.federation import load_federation
from ehrgate.trust import LedgerPins
from ehrgate.witness_policy import WitnessPolicy
from envelope import IdentityKeys, PatientKeys, load_key_file, write_key_file
from gateway.bootstrap import ensure_first_start
from ledger.wire.cosignatures import Cosigner
from tests.federation.hospitals import (
    LoopbackServer,
    gateway_app,
    gateway_settings,
    wait_for_quorum,
    witness_app,
)
from tests.ports import free_port
from witness import write_witness_key

pytestmark = pytest.mark.federation

REPORT = b"%PDF-1.4 potassium 4.1 mmol/L\n"


@dataclass
class Two:
    urls: list[str]
    policy: WitnessPolicy
    doctor: IdentityKeys
    patient: PatientKeys
    root: Path


def _witnesses(root: Path, logs: list[tuple[str, str]]) -> list[tuple[Path, str]]:
    made = []
    for name in ("w1", "w2"):
        home = root / name
        home.mkdir()
        cosigner = write_witness_key(home / "witness.key", f"{name}.example")
        entries = "".join(f'[[logs]]\norigin = "{o}"\nvkey = "{v}"\n\n' for o, v in logs)
        (home / "witness.toml").write_text(
            f'key_file = "witness.key"\ndatabase = "witness.db"\n\n{entries}'
        )
        made.append((home / "witness.toml", cosigner.verifier.vkey()))
    return made


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Two]:
    root = tmp_path_factory.mktemp("two-hospitals")
    origins = ["hospital-1.example/ehrgate", "hospital-2.example/ehrgate"]
    firsts = [
        ensure_first_start(gateway_settings(root / f"g{i}", origin, []))
        for i, origin in enumerate(origins)
    ]
    logs = [(o, f.checkpoint_signer.verifier.vkey()) for o, f in zip(origins, firsts, strict=True)]
    witnesses = [
        LoopbackServer(witness_app(config)).start() for config, _ in _witnesses(root, logs)
    ]
    vkeys = [
        Cosigner.from_private_key((root / n / "witness.key").read_text()).verifier.vkey()
        for n in ("w1", "w2")
    ]
    endpoints = [(w.url, vkey) for w, vkey in zip(witnesses, vkeys, strict=True)]
    gateways = [
        LoopbackServer(gateway_app(gateway_settings(root / f"g{i}", origin, endpoints))).start()
        for i, origin in enumerate(origins)
    ]
    doctor = IdentityKeys.generate("dr-grey", "clinician")
    system = IdentityKeys.generate("lab-system", "system")
    patient = PatientKeys.generate({"name": "Ana Müller", "birth_date": "1961-04-12"})
    until = datetime.now(UTC) + timedelta(days=1)
    for i, gateway in enumerate(gateways):
        admin = load_key_file(root / f"g{i}" / "admin.key")
        assert isinstance(admin, IdentityKeys)
        with Client(gateway.url, admin, pins=LedgerPins()) as client:
            client.enroll(doctor.public())
            client.enroll(system.public())
        with Client(gateway.url, patient, pins=LedgerPins()) as client:
            client.register_patient()
            client.grant(system.id, rights=["write"], categories="all", not_after=until)
            client.grant(doctor.id, rights=["read"], categories=["lab-results"], not_after=until)
            client.share_key(doctor.id)
        with Client(gateway.url, system, pins=LedgerPins()) as client:
            for _ in range(i + 1):  # one record at hospital 1, two at hospital 2
                client.upload(
                    io.BytesIO(REPORT), pseudonym=patient.pseudonym, category="lab-results"
                )
    policy = WitnessPolicy.of(vkeys, 2, wait_seconds=10, evidence_dir=root / "evidence")
    try:
        yield Two([g.url for g in gateways], policy, doctor, patient, root)
    finally:
        for server in (*gateways, *witnesses):
            server.stop()


def test_a_patients_records_are_read_across_hospitals_each_on_its_own_log(two: Two) -> None:
    configs = [
        GatewayConfig(url, name=f"hospital-{i + 1}", witness_policy=two.policy)
        for i, url in enumerate(two.urls)
    ]
    with FederatedClient(configs, two.doctor) as federated:
        found = federated.records(two.patient.pseudonym)
        assert found.skipped == {}
        assert sorted(f.gateway for f in found.records) == [
            "hospital-1",
            "hospital-2",
            "hospital-2",
        ]
        for located in found.records:
            # The proof's tree head is covered by a checkpoint both witnesses cosigned.
            head = located.proof.receipt.tree_head
            url = two.urls[int(located.gateway[-1]) - 1]
            checkpoint = federated.client(located.gateway).ledger_checkpoint()
            assert checkpoint.tree_size >= head.tree_size
            assert len(checkpoint.cosigned_by) == 2
            assert checkpoint.origin == f"{located.gateway}.example/ehrgate"
            wait_for_quorum(url, two.policy, head.tree_size)
        one = found.records[0]
        fetched, body = federated.client(one.gateway).fetch_bytes(one.proof.record.record_id)
        assert body == REPORT
        assert fetched.record == one.proof.record


def test_a_hospital_without_the_quorum_stops_the_read_and_a_down_one_is_skipped(
    two: Two,
) -> None:
    stranger = Cosigner.generate("w3.example").verifier.vkey()
    strict = WitnessPolicy.of(
        [*(w.vkey() for w in two.policy.witnesses), stranger], 3, wait_seconds=0.2
    )
    down = f"http://127.0.0.1:{free_port()}"
    configs = [
        GatewayConfig(down, name="hospital-down"),
        GatewayConfig(two.urls[0], name="hospital-1", witness_policy=two.policy),
    ]
    with FederatedClient(configs, two.doctor) as federated:
        found = federated.records(two.patient.pseudonym)
    assert [f.gateway for f in found.records] == ["hospital-1"]
    assert found.skipped["hospital-down"].startswith("Unavailable")
    configs = [GatewayConfig(two.urls[1], name="hospital-2", witness_policy=strict)]
    with FederatedClient(configs, two.doctor) as federated, pytest.raises(NoQuorum):
        federated.records(two.patient.pseudonym)


def test_the_command_line_reads_across_gateways_and_from_a_federation_file(
    two: Two, tmp_path: Path
) -> None:
    write_key_file(tmp_path / "doctor.key", two.doctor)
    policy_file = tmp_path / "policy.toml"
    keys = "".join(f'[[witnesses.keys]]\nvkey = "{w.vkey()}"\n' for w in two.policy.witnesses)
    policy_file.write_text(f"[witnesses]\nquorum = 2\n{keys}")
    base = ["--as", str(tmp_path / "doctor.key"), "--known-ledgers", str(tmp_path / "pins.json")]
    runner = CliRunner()
    gateways = [arg for url in two.urls for arg in ("--gateway", url)]
    result = runner.invoke(
        cli,
        [*base, "--witness-policy", str(policy_file), "records", "--patient",
         two.patient.pseudonym, *gateways, "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert [r["gateway"] for r in listed["records"]].count(two.urls[1]) == 2
    federation = tmp_path / "federation.toml"
    federation.write_text(
        "".join(
            f'[[gateways]]\nname = "h{i}"\nurl = "{url}"\n[gateways.witnesses]\nquorum = 2\n'
            + keys.replace("[[witnesses.keys]]", "[[gateways.witnesses.keys]]")
            for i, url in enumerate(two.urls)
        )
    )
    assert [g.witness_policy is not None for g in load_federation(federation)] == [True, True]
    result = runner.invoke(
        cli, [*base, "records", "--patient", two.patient.pseudonym, "--federation", str(federation)]
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("h1 ") == 2
    assert result.output.count("h0 ") == 1
