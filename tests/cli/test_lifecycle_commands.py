"""Recovery shares, reinstatement and key rotation end to end: `ehrgate` as a subprocess
and the SDK, against a live gateway of their own (rotations change its cast's keys)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ehrgate.errors import AuthenticationFailed, Conflict, Denied, RuleViolation
from envelope import IdentityKeys, PatientKeys, b64encode, load_key_file, write_key_file
from envelope.backup import split_keys
from ledger.wire.rotation import RotationRequest, request_rotation
from tests.cli.live_cli import PDF, Run, fails
from tests.client.live import Cast, live_cast, new_patient


@pytest.fixture(scope="module")
def own_cast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cast]:
    with live_cast(tmp_path_factory.mktemp("lifecycle")) as found:
        yield found


@pytest.fixture
def run(own_cast: Cast, tmp_path: Path) -> Run:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    return Run(own_cast, tmp_path / "known_ledgers.json", cwd)


def _patient_with_a_record(cast: Cast, name: str) -> tuple[PatientKeys, str]:
    """A registered patient, and a record the hospital system sealed to it."""
    patient = new_patient(name)
    until = datetime.now(UTC) + timedelta(days=1)
    with cast.client(patient) as client:
        client.register_patient()
        client.grant(cast.system.id, rights=["write"], categories="all", not_after=until)
    with cast.client(cast.system) as system:
        uploaded = system.upload(
            io.BytesIO(PDF), pseudonym=patient.pseudonym, category="lab-results",
            filename="report.pdf", content_type="application/pdf",
        )  # fmt: skip
    return patient, uploaded.record.record_id


# --- recovery shares ------------------------------------------------------------------------


def test_a_restored_key_file_opens_a_record_sealed_before_the_backup(
    run: Run, own_cast: Cast, tmp_path: Path
) -> None:
    patient, record_id = _patient_with_a_record(own_cast, "Rosa Backup")
    key_file = tmp_path / "rosa.key"
    write_key_file(key_file, patient)
    made = run.json(
        "keys", "backup", key_file, "--threshold", "2", "--shares", "3",
        "--out-dir", tmp_path / "shares",
    )  # fmt: skip
    assert made["threshold"] == 2
    assert made["mnemonics"] == []
    files = [Path(f) for f in made["files"]]
    assert [f.name for f in files] == ["share-1.txt", "share-2.txt", "share-3.txt"]
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in files)
    key_file.unlink()  # the key file is lost

    restored = tmp_path / "restored.key"
    result = run("keys", "restore", files[2], files[0], "--out", restored)
    assert result.returncode == 0, result.stderr
    assert patient.pseudonym in result.stdout
    again = load_key_file(restored)
    assert isinstance(again, PatientKeys)
    assert again.pseudonym == patient.pseudonym
    assert again.patient_key == patient.patient_key

    me = run.json("--as", restored, "whoami")
    assert me["id"] == patient.pseudonym
    out = tmp_path / "out.pdf"
    fetched = run.json("--as", restored, "fetch", record_id, "-o", out)
    assert out.read_bytes() == PDF
    assert fetched["signer_id"] == own_cast.system.id


def test_restore_reads_shares_from_standard_input(run: Run, tmp_path: Path) -> None:
    patient = new_patient("Stdin Restore")
    key_file = tmp_path / "p.key"
    write_key_file(key_file, patient)
    printed = run("keys", "backup", key_file, "-k", "3", "-n", "4")
    assert printed.returncode == 0, printed.stderr
    shares = [line for line in printed.stdout.splitlines() if not line.startswith("#")]
    assert len(shares) == 4
    restored = tmp_path / "r.key"
    proc = subprocess.run(
        [sys.executable, "-m", "ehrgate", "keys", "restore", "--out", str(restored)],
        input="\n".join([shares[3], shares[0], shares[1]]) + "\n",
        capture_output=True, text=True, timeout=120, check=False, cwd=run.cwd,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    again = load_key_file(restored)
    assert isinstance(again, PatientKeys)
    assert again.pseudonym == patient.pseudonym


def test_bad_share_sets_write_nothing(run: Run, tmp_path: Path) -> None:
    patient = new_patient("Bad Shares")
    key_file = tmp_path / "p.key"
    write_key_file(key_file, patient)
    env = {"SLIP_PASS": "open sesame"}
    shares = split_keys(patient, threshold=2, shares=3, passphrase="open sesame").mnemonics
    other = split_keys(patient, threshold=2, shares=3, passphrase="open sesame").mnemonics
    paths = []
    for name, text in (("a", shares[0]), ("b", shares[1]), ("x", other[1])):
        path = tmp_path / f"{name}.txt"
        path.write_text(text + "\n")
        paths.append(path)
    words = shares[1].split()
    words[10] = "academic" if words[10] != "academic" else "acid"
    typo = tmp_path / "typo.txt"
    typo.write_text(" ".join(words) + "\n")
    out = tmp_path / "never.key"
    restore = ("keys", "restore", "--backup-passphrase-env", "SLIP_PASS", "--out", out)
    fails(run(*restore, paths[0], env=env), 2, "needs 2 different shares; 1 was given")
    fails(run(*restore, paths[0], paths[2], env=env), 2, "belongs to another backup")
    fails(run(*restore, paths[0], typo, env=env), 2, f"{typo} is not a valid share")
    fails(
        run(*restore, paths[0], paths[1], env={"SLIP_PASS": "open sesame!"}),
        2,
        "passphrase is probably wrong",
    )
    fails(run("keys", "restore", "--out", out, paths[0], paths[1]), 2, "passphrase")
    fails(run(*restore, tmp_path / "missing.txt", env=env), 2, "no share file")
    assert not out.exists()
    ok = run(*restore, paths[1], paths[0], env=env)
    assert ok.returncode == 0, ok.stderr
    fails(run(*restore, paths[1], paths[0], env=env), 2, "already exists")


def test_backup_refuses_bad_parameters_and_identity_files(
    run: Run, own_cast: Cast, tmp_path: Path
) -> None:
    key_file = tmp_path / "p.key"
    write_key_file(key_file, new_patient("Params"))
    fails(run("keys", "backup", key_file, "-k", "1", "-n", "3"), 2, "threshold")
    fails(run("keys", "backup", key_file, "-k", "4", "-n", "3"), 2, "threshold")
    fails(run("keys", "backup", own_cast.key_file("doctor"), "-k", "2", "-n", "3"), 2,
          "only a patient's key file")  # fmt: skip


# --- reinstate ------------------------------------------------------------------------------


def _enrolled(run: Run, tmp_path: Path, ident: str) -> Path:
    key_file = tmp_path / f"{ident}.key"
    made = run("keys", "identity", "--id", ident, "--role", "clinician", "--out", key_file)
    assert made.returncode == 0, made.stderr
    public = tmp_path / f"{ident}.pub"
    public.write_text(run("keys", "public", key_file).stdout)
    assert run("enroll", public, who="admin").returncode == 0
    return key_file


def test_a_reinstated_identity_logs_in_again(run: Run, tmp_path: Path) -> None:
    key_file = _enrolled(run, tmp_path, "nurse-back")
    assert run("suspend", "nurse-back", "--reason", "leave", who="admin").returncode == 0
    fails(run("--as", key_file, "whoami"), 1, "suspended")
    fails(run("reinstate", "nurse-back", "--reason", "x", who="doctor"), 1, "")
    fails(run("reinstate", "nurse-back", "--reason", " ", who="admin"), 2, "--reason")
    done = run.json("reinstate", "nurse-back", "--reason", "back from leave", who="admin")
    assert done["receipt"]["index"] > 0
    me = run.json("--as", key_file, "whoami")
    assert me["id"] == "nurse-back"
    assert me["suspended"] is False
    fails(run("reinstate", "nurse-back", "--reason", "again", who="admin"), 2, "not suspended")


# --- key rotation ---------------------------------------------------------------------------


def test_a_rotated_identity_uses_its_new_key_only(run: Run, own_cast: Cast, tmp_path: Path) -> None:
    old = _enrolled(run, tmp_path, "nurse-rotate")
    new = tmp_path / "nurse-rotate.new.key"
    request = tmp_path / "rotation.json"
    made = run("keys", "rotate", old, "--out", new, "--request", request)
    assert made.returncode == 0, made.stderr
    assert old.exists()
    assert json.loads(request.read_text())["kind"] == "ehrgate-rotation-request"
    fails(run("--as", new, "whoami"), 1, "")  # not on the ledger yet
    fails(run("rotate-keys", request, who="doctor"), 1, "")
    done = run.json("rotate-keys", request, who="admin")
    assert done["id"] == "nurse-rotate"
    fails(run("--as", old, "whoami"), 1, "")  # the old key no longer logs in
    assert run.json("--as", new, "whoami")["id"] == "nurse-rotate"
    fails(run("rotate-keys", request, who="admin"), 2, "not 'nurse-rotate'")
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "something else"}')
    fails(run("rotate-keys", bad, who="admin"), 2, "not an ehrgate key rotation request")

    with own_cast.client(own_cast.auditor) as auditor:
        keys = auditor.identity_keys("nurse-rotate")
    assert len(keys) == 2
    assert keys[0].valid_until == keys[1].valid_from == done["receipt"]["index"]
    new_keys = load_key_file(new)
    assert keys[1].signing_public_key == b64encode(
        new_keys.identity.signing_key.verify_key.to_bytes()
        if isinstance(new_keys, PatientKeys)
        else new_keys.signing_key.verify_key.to_bytes()
    )

    # the ledger, with the rotation on it, verifies from the gateway and from the database
    remote = run.json("ledger", "verify", "--gateway", own_cast.url, who="auditor")
    assert remote["ok"] is True
    local = run.json("ledger", "verify", "--db", f"sqlite:///{own_cast.data_dir / 'ledger.db'}")
    assert local["ok"] is True
    assert local["state_digest"] == remote["state_digest"]


def test_a_rotation_without_the_old_key_is_refused(own_cast: Cast) -> None:
    victim = IdentityKeys.generate("nurse-victim", "clinician")
    with own_cast.client(own_cast.admin) as admin:
        admin.enroll(victim.public())
        impostor = IdentityKeys.generate("nurse-victim", "clinician")
        forged = request_rotation(impostor, IdentityKeys.generate("nurse-victim", "clinician"))
        with pytest.raises(Conflict, match="not 'nurse-victim''s current one"):
            admin.rotate_keys(forged)
        # naming the victim's key, but signed by the impostor's
        named = RotationRequest.from_json(
            {
                **forged.to_json(),
                "previous_signing_public_key": b64encode(victim.signing_key.verify_key.to_bytes()),
            }
        )
        with pytest.raises(RuleViolation, match="signature by the old key does not verify"):
            admin.rotate_keys(named)
        # the victim's own request, but submitted by the victim itself: no admin countersigns
    with own_cast.client(victim) as client:
        with pytest.raises(Denied):
            client.rotate_keys(
                request_rotation(victim, IdentityKeys.generate(victim.id, "clinician"))
            )
        assert client.whoami().id == "nurse-victim"


def test_records_signed_before_an_uploader_rotated_still_verify(own_cast: Cast) -> None:
    uploader = IdentityKeys.generate("lab-system", "system")
    patient = new_patient("Uploader Rotation")
    until = datetime.now(UTC) + timedelta(days=1)
    with own_cast.client(own_cast.admin) as admin:
        admin.enroll(uploader.public())
    with own_cast.client(patient) as client:
        client.register_patient()
        client.grant(uploader.id, rights=["write"], categories="all", not_after=until)
    with own_cast.client(uploader) as lab:
        before = lab.upload(io.BytesIO(PDF), pseudonym=patient.pseudonym,
                            category="lab-results", filename="before.pdf")  # fmt: skip
    rotated = IdentityKeys.generate(uploader.id, uploader.role)
    with own_cast.client(own_cast.admin) as admin:
        admin.rotate_keys(request_rotation(uploader, rotated))
    with own_cast.client(uploader) as stale, pytest.raises(AuthenticationFailed):
        stale.whoami()
    with own_cast.client(rotated) as lab:
        after = lab.upload(io.BytesIO(PDF + b"%2\n"), pseudonym=patient.pseudonym,
                           category="lab-results", filename="after.pdf")  # fmt: skip
    with own_cast.client(patient) as client:
        fetched, data = client.fetch_bytes(before.record.record_id)
        assert data == PDF
        assert fetched.signer_id == uploader.id
        _, data = client.fetch_bytes(after.record.record_id)
        assert data == PDF + b"%2\n"


def test_a_patient_who_rotated_keeps_its_published_keys_and_records(own_cast: Cast) -> None:
    """Record keys published (signed) before the patient's rotation still check, so uploads
    go on; the patient's new identity logs in and opens its old records with the same K."""
    patient, before = _patient_with_a_record(own_cast, "Patient Rotation")
    rotated = PatientKeys(
        patient.patient_key,
        patient.pseudonym,
        IdentityKeys.generate(patient.identity.id, "patient"),
    )
    with own_cast.client(own_cast.admin) as admin:
        admin.rotate_keys(request_rotation(patient.identity, rotated.identity))
    with own_cast.client(own_cast.system) as system:
        after = system.upload(
            io.BytesIO(PDF + b"%after\n"), pseudonym=patient.pseudonym,
            category="lab-results", filename="after.pdf",
        )  # fmt: skip
    with own_cast.client(rotated) as client:
        assert client.fetch_bytes(before)[1] == PDF
        assert client.fetch_bytes(after.record.record_id)[1] == PDF + b"%after\n"
        # and the old identity keys sign nothing any more
    with own_cast.client(patient) as stale, pytest.raises(AuthenticationFailed):
        stale.whoami()


def test_a_grantee_that_rotated_is_shared_to_under_its_new_key(own_cast: Cast) -> None:
    """The gateway serves the new encryption key from the rotation on; the patient shares
    again (the same client, which had looked the grantee up before) and the grantee's new
    key file opens the record."""
    patient, record_id = _patient_with_a_record(own_cast, "Share After Rotation")
    reader = IdentityKeys.generate("dr-rotating-reader", "clinician")
    with own_cast.client(own_cast.admin) as admin:
        admin.enroll(reader.public())
    until = datetime.now(UTC) + timedelta(days=1)
    with own_cast.client(patient) as owner:
        owner.grant(reader.id, rights=["read"], categories=["lab-results"], not_after=until)
        owner.share_key(reader.id)
        with own_cast.client(reader) as before:
            assert before.fetch_bytes(record_id)[1] == PDF
        rotated = IdentityKeys.generate(reader.id, reader.role)
        with own_cast.client(own_cast.admin) as admin:
            admin.rotate_keys(request_rotation(reader, rotated))
        owner.share_key(reader.id)
    with own_cast.client(rotated) as after:
        assert after.fetch_bytes(record_id)[1] == PDF
