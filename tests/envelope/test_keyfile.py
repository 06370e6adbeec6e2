"""Key files: round trips, mode 0600, no clobbering, passphrases, and clear errors."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from envelope import (
    EnvelopeError,
    IdentityKeys,
    InvalidKeyFile,
    PatientKeys,
    PatientPublic,
    WrongPassphrase,
    load_key_file,
    write_key_file,
)
from envelope.keyfile import encode_key_file
from tests.envelope.conftest import UII

FAST_SCRYPT = 2**10


def test_identity_key_file_round_trip(tmp_path: Path, doctor: IdentityKeys) -> None:
    path = tmp_path / "dr.key"
    write_key_file(path, doctor)
    loaded = load_key_file(path)
    assert isinstance(loaded, IdentityKeys)
    assert loaded.public() == doctor.public()
    assert loaded.encryption_key.private_bytes() == doctor.encryption_key.private_bytes()


def test_patient_key_file_round_trip_without_uii(tmp_path: Path, patient: PatientKeys) -> None:
    path = tmp_path / "patient.key"
    write_key_file(path, patient)
    loaded = load_key_file(path)
    assert isinstance(loaded, PatientKeys)
    assert loaded.patient_key == patient.patient_key
    assert loaded.pseudonym == patient.pseudonym
    assert loaded.identity.public() == patient.identity.public()
    text = path.read_text()
    document = json.loads(text)
    assert document["kind"] == "ehrgate-patient-key"
    assert "patient_key" in document["secret"]
    for value in UII.values():
        assert value not in text
        assert value.casefold() not in text


def test_key_files_are_private(tmp_path: Path, doctor: IdentityKeys) -> None:
    path = tmp_path / "dr.key"
    write_key_file(path, doctor)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["dr.key"]


def test_existing_key_file_is_never_replaced_silently(tmp_path: Path, doctor: IdentityKeys) -> None:
    path = tmp_path / "dr.key"
    path.write_text("precious")
    with pytest.raises(FileExistsError):
        write_key_file(path, doctor)
    assert path.read_text() == "precious"
    write_key_file(path, doctor, overwrite=True)
    assert isinstance(load_key_file(path), IdentityKeys)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_passphrase_protected_file(tmp_path: Path, patient: PatientKeys) -> None:
    path = tmp_path / "patient.key"
    write_key_file(path, patient, passphrase="correct horse")
    document = json.loads(path.read_text())
    assert "secret" not in document
    assert document["encrypted"]["kdf"] == "scrypt"
    assert document["encrypted"]["n"] == 2**17
    loaded = load_key_file(path, "correct horse")
    assert isinstance(loaded, PatientKeys)
    assert loaded.patient_key == patient.patient_key
    with pytest.raises(WrongPassphrase):
        load_key_file(path, "wrong horse")
    with pytest.raises(InvalidKeyFile, match="passphrase"):
        load_key_file(path)


def test_public_fields_of_a_protected_file_are_bound(tmp_path: Path, doctor: IdentityKeys) -> None:
    path = tmp_path / "dr.key"
    document = json.loads(encode_key_file(doctor, passphrase="pw", _scrypt_n=FAST_SCRYPT))
    document["id"] = "dr-mallory"
    path.write_text(json.dumps(document))
    with pytest.raises(WrongPassphrase):
        load_key_file(path, "pw")


def test_empty_passphrase_is_refused(doctor: IdentityKeys) -> None:
    with pytest.raises(Exception, match="empty passphrase"):
        encode_key_file(doctor, passphrase="")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no key file"),
        (b"\x89PNG", "not JSON"),
        (b"[1, 2]", "not an ehrgate key file"),
        (b'{"kind": "ehrgate-identity-public", "version": 1}', "not an ehrgate key file"),
        (b'{"kind": "ehrgate-identity-key", "version": 9}', "version"),
        (
            b'{"kind": "ehrgate-identity-key", "version": 1, "id": "x", "role": "clinician"}',
            "encrypted",
        ),
        (
            b'{"kind": "ehrgate-identity-key", "version": 1, "id": "x", "role": "pirate",'
            b' "secret": {}}',
            "id or role",
        ),
        (
            b'{"kind": "ehrgate-identity-key", "version": 1, "id": "x", "role": "clinician",'
            b' "secret": {"signing_key": "AAAA", "encryption_key": "AAAA"}}',
            "signing_key must be 32 bytes",
        ),
    ],
)
def test_bad_key_files_say_what_is_wrong(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "x.key"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InvalidKeyFile, match=message):
        load_key_file(path)


def test_wrong_kind_of_patient_file(tmp_path: Path, patient: PatientKeys) -> None:
    document = json.loads(encode_key_file(patient))
    document["pseudonym"] = "not-a-pseudonym"
    path = tmp_path / "p.key"
    path.write_text(json.dumps(document))
    with pytest.raises(InvalidKeyFile, match="pseudonym"):
        load_key_file(path)


@pytest.mark.parametrize(
    ("n", "r", "p"), [(2**21, 8, 1), (2**10, 8, 17), (0, 8, 1), (2**10, "8", 1)]
)
def test_scrypt_parameters_out_of_range_are_refused(
    tmp_path: Path, doctor: IdentityKeys, n: int, r: object, p: int
) -> None:
    document = json.loads(encode_key_file(doctor, passphrase="pw", _scrypt_n=FAST_SCRYPT))
    document["encrypted"].update({"n": n, "r": r, "p": p})
    path = tmp_path / "dr.key"
    path.write_text(json.dumps(document))
    with pytest.raises(InvalidKeyFile, match="out of range"):
        load_key_file(path, "pw")


def test_patient_public_round_trip(patient: PatientKeys) -> None:
    document = patient.public().to_json()
    assert "patient_key" not in json.dumps(document)
    assert PatientPublic.from_json(json.loads(json.dumps(document))) == patient.public()


@pytest.mark.parametrize("field", ["kind", "pseudonym", "record_public_key", "identity"])
def test_patient_public_rejects_damage(patient: PatientKeys, field: str) -> None:
    document = patient.public().to_json()
    document[field] = {"kind": "x", "pseudonym": "A" * 64, "record_public_key": 5, "identity": {}}[
        field
    ]
    with pytest.raises(EnvelopeError):
        PatientPublic.from_json(document)


def test_patient_public_identity_must_be_the_patients(
    patient: PatientKeys, doctor: IdentityKeys
) -> None:
    document = patient.public().to_json()
    document["identity"] = doctor.public().to_json()
    with pytest.raises(EnvelopeError, match="named by its pseudonym"):
        PatientPublic.from_json(document)
