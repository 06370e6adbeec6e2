"""Key file versions: version 2 holds X-Wing seeds, version 1 files still load, and the
upgrade rewrites a version 1 file without losing or changing a key."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import envelope.keyupgrade
from envelope import (
    HybridPrivateKey,
    IdentityKeys,
    InvalidKeyFile,
    PatientKey,
    PatientKeys,
    WrongPassphrase,
    load_key_file,
    open_capsule,
    upgrade_key_file,
    write_key_file,
)
from envelope.keyfile import encode_key_file
from tests.envelope.conftest import VECTORS, load_vector

KEYFILES = VECTORS / "keyfiles"
EXPECTED = load_vector("keyfiles/expected.json")
PASSPHRASE = EXPECTED["passphrase"]


def b64(key: Any) -> str:
    return base64.b64encode(key.to_bytes()).decode()


def copy(name: str, directory: Path) -> Path:
    target = directory / name
    shutil.copyfile(KEYFILES / name, target)
    return target


@pytest.mark.parametrize("name", ["v1-identity.key", "v1-identity-protected.key"])
def test_v1_identity_file_loads_with_its_96_byte_key(name: str) -> None:
    keys = load_key_file(KEYFILES / name, PASSPHRASE if "protected" in name else None)
    assert isinstance(keys, IdentityKeys)
    assert not keys.encryption_key.is_seed
    assert len(keys.encryption_key.private_bytes()) == 96
    assert b64(keys.encryption_key.public_key()) == EXPECTED["doctor_public_key_v1"]


@pytest.mark.parametrize("name", ["v1-patient.key", "v1-patient-protected.key"])
def test_v1_patient_file_keeps_the_v1_record_key(name: str) -> None:
    keys = load_key_file(KEYFILES / name, PASSPHRASE if "protected" in name else None)
    assert isinstance(keys, PatientKeys)
    assert keys.pseudonym == EXPECTED["pseudonym"]
    assert keys.patient_key.record_key_version == 1
    assert b64(keys.patient_key.record_public_key()) == EXPECTED["record_public_key_v1"]
    assert (
        b64(keys.identity.encryption_key.public_key())
        == (EXPECTED["patient_identity_public_key_v1"])
    )


def test_v1_identity_file_opens_the_v1_capsule_vector() -> None:
    keys = load_key_file(KEYFILES / "v1-identity.key")
    assert isinstance(keys, IdentityKeys)
    capsule = load_vector("capsule.json")
    opened = open_capsule(capsule["capsule"].encode(), keys.encryption_key, "dr-house")
    assert opened.data_key.to_bytes().hex() == capsule["dek"]


def test_v2_vector_files_hold_seeds() -> None:
    doctor = load_key_file(KEYFILES / "v2-identity.key")
    patient = load_key_file(KEYFILES / "v2-patient.key")
    assert isinstance(doctor, IdentityKeys)
    assert isinstance(patient, PatientKeys)
    assert doctor.encryption_key.is_seed
    assert b64(doctor.encryption_key.public_key()) == EXPECTED["doctor_public_key_v2"]
    assert patient.identity.encryption_key.is_seed
    assert patient.patient_key.record_key_version == 2
    assert b64(patient.patient_key.record_public_key()) == EXPECTED["record_public_key_v2"]
    assert (
        b64(patient.identity.encryption_key.public_key())
        == (EXPECTED["patient_identity_public_key_v2"])
    )


def test_v2_files_are_written_byte_for_byte_as_the_vectors() -> None:
    for name in ("v2-identity.key", "v2-patient.key"):
        keys = load_key_file(KEYFILES / name)
        assert encode_key_file(keys) == (KEYFILES / name).read_bytes()


def test_new_keys_are_written_as_version_2_seeds(tmp_path: Path) -> None:
    patient = PatientKeys.generate({"mrn": "A-1"})
    write_key_file(tmp_path / "p.key", patient)
    document = json.loads((tmp_path / "p.key").read_text())
    assert document["version"] == 2
    assert document["record_key_version"] == 2
    assert len(base64.b64decode(document["secret"]["encryption_key"])) == 32
    assert "encryption_key_v1" not in document["secret"]
    assert fingerprint(load_key_file(tmp_path / "p.key")) == fingerprint(patient)


def test_a_v1_key_is_written_as_encryption_key_v1(tmp_path: Path) -> None:
    v1 = load_key_file(KEYFILES / "v1-identity.key")
    write_key_file(tmp_path / "d.key", v1)
    secret = json.loads((tmp_path / "d.key").read_text())["secret"]
    assert "encryption_key" not in secret
    assert len(base64.b64decode(secret["encryption_key_v1"])) == 96
    assert fingerprint(load_key_file(tmp_path / "d.key")) == fingerprint(v1)


def test_record_key_version_is_bound_to_a_protected_file(tmp_path: Path) -> None:
    patient = PatientKeys.generate({"mrn": "A-2"})
    path = tmp_path / "p.key"
    path.write_bytes(encode_key_file(patient, passphrase="pw", _scrypt_n=2**10))
    document = json.loads(path.read_text())
    document["record_key_version"] = 1
    path.write_text(json.dumps(document))
    with pytest.raises(WrongPassphrase):
        load_key_file(path, "pw")


def edited(path: Path, change: dict[str, Any], secret: dict[str, Any] | None = None) -> Path:
    document = json.loads(path.read_text())
    document.update(change)
    document["secret"].update(secret or {})
    document["secret"] = {k: v for k, v in document["secret"].items() if v is not None}
    out = path.with_name("edited.key")
    out.write_text(json.dumps(document))
    return out


@pytest.mark.parametrize(
    ("change", "secret", "message"),
    [
        ({"version": 3}, None, "unsupported key file version"),
        ({"version": "2"}, None, "unsupported key file version"),
        ({"record_key_version": 3}, None, "record_key_version must be 1 or 2"),
        ({"record_key_version": True}, None, "record_key_version must be 1 or 2"),
        ({"record_key_version": None}, None, "record_key_version must be 1 or 2"),
        ({}, {"encryption_key_v1": base64.b64encode(bytes(96)).decode()}, "exactly one"),
        ({}, {"encryption_key": None}, "exactly one"),
        ({}, {"encryption_key": base64.b64encode(bytes(96)).decode()}, "encryption_key"),
        ({"version": 1}, None, "encryption_key"),  # a 32-byte key is no version 1 key
    ],
)
def test_malformed_v2_files_are_refused(
    tmp_path: Path, change: dict[str, Any], secret: dict[str, Any] | None, message: str
) -> None:
    path = edited(copy("v2-patient.key", tmp_path), change, secret)
    with pytest.raises(InvalidKeyFile, match=message):
        load_key_file(path)


# ---- upgrade ----------------------------------------------------------------------------


def fingerprint(keys: Any) -> tuple[Any, ...]:
    return envelope.keyupgrade._fingerprint(keys)


@pytest.mark.parametrize(
    ("name", "kept"),
    [
        ("v1-identity.key", ("encryption_key",)),
        ("v1-patient.key", ("encryption_key", "record_key")),
        ("v1-patient-protected.key", ("encryption_key", "record_key")),
        ("v1-identity-protected.key", ("encryption_key",)),
    ],
)
def test_upgrade_keeps_every_key_and_the_old_file(
    tmp_path: Path, name: str, kept: tuple[str, ...]
) -> None:
    path = copy(name, tmp_path)
    original = path.read_bytes()
    secret = PASSPHRASE if "protected" in name else None
    before = load_key_file(path, secret)
    done = upgrade_key_file(path, secret)
    assert done.changed
    assert (done.from_version, done.to_version) == (1, 2)
    assert done.kept_v1 == kept
    assert done.backup == str(path) + ".v1.bak"
    assert Path(done.backup).read_bytes() == original
    document = json.loads(path.read_text())
    assert document["version"] == 2
    assert ("encrypted" in document) == (secret is not None)
    after = load_key_file(path, secret)
    assert fingerprint(after) == fingerprint(before)
    assert after.public() == before.public()
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, name + ".v1.bak"])


def test_upgrading_a_v2_file_changes_nothing(tmp_path: Path) -> None:
    path = copy("v2-identity.key", tmp_path)
    original = path.read_bytes()
    done = upgrade_key_file(path)
    assert not done.changed
    assert done.backup is None
    assert done.kept_v1 == ()
    assert path.read_bytes() == original
    assert list(tmp_path.iterdir()) == [path]


def test_upgrade_with_a_wrong_passphrase_changes_nothing(tmp_path: Path) -> None:
    path = copy("v1-patient-protected.key", tmp_path)
    original = path.read_bytes()
    with pytest.raises(WrongPassphrase):
        upgrade_key_file(path, "not it")
    with pytest.raises(InvalidKeyFile, match="passphrase"):
        upgrade_key_file(path)
    assert path.read_bytes() == original
    assert list(tmp_path.iterdir()) == [path]


def test_upgrade_never_overwrites_a_backup(tmp_path: Path) -> None:
    path = copy("v1-identity.key", tmp_path)
    original = path.read_bytes()
    backup = tmp_path / "v1-identity.key.v1.bak"
    backup.write_bytes(b"an older backup")
    with pytest.raises(FileExistsError):
        upgrade_key_file(path)
    assert path.read_bytes() == original
    assert backup.read_bytes() == b"an older backup"
    assert len(list(tmp_path.iterdir())) == 2


def test_upgrade_refuses_a_rewrite_that_changes_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = copy("v1-patient.key", tmp_path)
    original = path.read_bytes()
    real_encode = encode_key_file

    def lossy(keys: Any, **kwargs: Any) -> bytes:
        other = PatientKeys(
            PatientKey(keys.patient_key.to_bytes()),  # the record key version lost
            keys.pseudonym,
            keys.identity,
        )
        return real_encode(other, **kwargs)

    monkeypatch.setattr(envelope.keyupgrade, "encode_key_file", lossy)
    with pytest.raises(InvalidKeyFile, match="would not hold the same keys"):
        upgrade_key_file(path)
    assert path.read_bytes() == original
    assert list(tmp_path.iterdir()) == [path]


def test_upgrade_refuses_a_file_changed_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = copy("v1-identity.key", tmp_path)
    other = IdentityKeys("dr-house", "clinician", *_fresh_keys())
    real_write = envelope.keyupgrade._write_temporary

    def racing(target: Path, data: bytes) -> Path:
        written = real_write(target, data)
        write_key_file(target, other, overwrite=True)  # someone else rewrote the file
        return written

    monkeypatch.setattr(envelope.keyupgrade, "_write_temporary", racing)
    with pytest.raises(InvalidKeyFile, match="changed while"):
        upgrade_key_file(path)
    assert fingerprint(load_key_file(path)) == fingerprint(other)
    assert list(tmp_path.iterdir()) == [path]


def _fresh_keys() -> tuple[Any, HybridPrivateKey]:
    generated = IdentityKeys.generate("x", "clinician")
    return generated.signing_key, generated.encryption_key
