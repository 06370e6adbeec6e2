"""Rotating K in the envelope: the key file's generation and previous K, and the rewrap of
a record's capsule from the old K to the new K's scoped key."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from envelope import (
    IdentityKeys,
    InvalidEnvelope,
    InvalidKeyFile,
    PatientKey,
    PatientKeys,
    load_key_file,
    open_capsule,
    open_with_patient_key,
    seal,
    write_key_file,
)
from envelope.capsule import capsule_outline
from envelope.rotation import (
    Rewrapper,
    RotationInProgress,
    finish_rotation,
    rewrap_to,
    start_rotation,
)
from envelope.scoped import scoped_private_key

UII = {"name": "Rosa Keller", "birth_date": "1950-02-03"}
CREATED = "2026-03-14T10:00:00Z"


def sealed(
    keys: PatientKeys,
    *,
    scoped: bool = True,
    category: str = "lab-results",
    created_at: str = CREATED,
    extra: IdentityKeys | None = None,
) -> tuple[bytes, str]:
    """A capsule of a small document, and its body's SHA-256."""
    record = (
        scoped_private_key(keys.patient_key, category, created_at[:7]).public_key()
        if scoped
        else keys.patient_key.record_public_key()
    )
    recipients = [(keys.pseudonym, record)]
    if extra is not None:
        recipients.append((extra.id, extra.encryption_key.public_key()))
    result = seal(
        io.BytesIO(b"%PDF-1.4 a report"),
        io.BytesIO(),
        recipients=recipients,
        filename="r.pdf",
        content_type="application/pdf",
        pseudonym=keys.pseudonym,
        category=category,
        created_at=created_at,
        uploader_id="his-1",
        signer=IdentityKeys.generate("his-1", "system"),
        scoped=scoped,
    )
    return result.capsule, result.body_sha256


def test_a_rotation_keeps_the_pseudonym_and_identity_and_adds_a_generation() -> None:
    keys = PatientKeys.generate(UII)
    rotating = start_rotation(keys)
    assert rotating.pseudonym == keys.pseudonym
    assert rotating.identity == keys.identity
    assert (rotating.key_generation, rotating.previous_key) == (2, keys.patient_key)
    assert rotating.patient_key != keys.patient_key
    # the pseudonym is no longer H(K'‖UII): it stays the first K's
    assert rotating.patient_key.pseudonym(UII) != keys.pseudonym
    assert keys.patient_key.pseudonym(UII) == keys.pseudonym
    with pytest.raises(RotationInProgress):
        start_rotation(rotating)
    done = finish_rotation(rotating)
    assert (done.key_generation, done.previous_key) == (2, None)
    assert start_rotation(done).key_generation == 3


def same(a: PatientKeys, b: PatientKeys) -> bool:
    return (a.patient_key, a.pseudonym, a.key_generation, a.previous_key) == (
        b.patient_key,
        b.pseudonym,
        b.key_generation,
        b.previous_key,
    ) and a.identity.public().to_json() == b.identity.public().to_json()


@pytest.mark.parametrize("passphrase", [None, "pass phrase"])
def test_the_key_file_keeps_the_generation_and_the_previous_k(
    tmp_path: Path, passphrase: str | None
) -> None:
    old = PatientKeys.generate(UII)
    v1_record_key = PatientKeys(
        PatientKey(old.patient_key.to_bytes(), record_key_version=1), old.pseudonym, old.identity
    )
    rotating = start_rotation(v1_record_key)
    path = tmp_path / "p.key"
    write_key_file(path, rotating, passphrase=passphrase)
    loaded = load_key_file(path, passphrase)
    assert isinstance(loaded, PatientKeys)
    assert same(loaded, rotating)
    assert loaded.previous_key is not None
    assert loaded.previous_key.record_key_version == 1
    write_key_file(path, finish_rotation(rotating), passphrase=passphrase, overwrite=True)
    again = load_key_file(path, passphrase)
    assert isinstance(again, PatientKeys)
    assert same(again, finish_rotation(rotating))
    document = json.loads(path.read_text())
    assert document["key_generation"] == 2
    assert "previous_record_key_version" not in document


def test_a_never_rotated_file_is_written_as_before(tmp_path: Path) -> None:
    keys = PatientKeys.generate(UII)
    write_key_file(tmp_path / "p.key", keys)
    document = json.loads((tmp_path / "p.key").read_text())
    assert "key_generation" not in document
    assert "previous_patient_key" not in document["secret"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(key_generation=0), "key_generation"),
        (lambda d: d.update(key_generation="2"), "key_generation"),
        (lambda d: d.pop("previous_record_key_version"), "previous_record_key_version"),
        (lambda d: d.update(previous_record_key_version=3), "previous_record_key_version"),
        (lambda d: d.update(key_generation=1), "previous_record_key_version"),
        (lambda d: d["secret"].pop("previous_patient_key"), "without a previous_patient_key"),
        (lambda d: d["secret"].update(previous_patient_key="AAAA"), "previous_patient_key"),
    ],
)
def test_a_malformed_rotation_field_is_refused(
    tmp_path: Path, change: Callable[[dict[str, Any]], object], message: str
) -> None:
    path = tmp_path / "p.key"
    write_key_file(path, start_rotation(PatientKeys.generate(UII)))
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))
    with pytest.raises(InvalidKeyFile, match=message):
        load_key_file(path)


@pytest.mark.parametrize("scoped", [True, False])
def test_a_rewrap_opens_with_the_new_k_only_and_drops_other_recipients(scoped: bool) -> None:
    keys = PatientKeys.generate(UII)
    doctor = IdentityKeys.generate("dr-grey", "clinician")
    capsule, body = sealed(keys, scoped=scoped, extra=doctor)
    new = PatientKey.generate()
    rewrapped = rewrap_to(capsule, old=keys.patient_key, new=new, pseudonym=keys.pseudonym,
                          category="lab-results", created_at=CREATED, body_sha256=body)  # fmt: skip
    outline = capsule_outline(rewrapped)
    assert outline.version == 2
    assert outline.recipients == {keys.pseudonym: "scoped-v2/lab-results/2026-03"}
    assert outline.meta == capsule_outline(capsule).meta
    opened = open_with_patient_key(rewrapped, new, keys.pseudonym)
    assert opened.body_sha256 == body
    with pytest.raises(InvalidEnvelope):
        open_with_patient_key(rewrapped, keys.patient_key, keys.pseudonym)
    with pytest.raises(InvalidEnvelope):
        open_capsule(rewrapped, doctor.encryption_key, doctor.id)


def test_a_rewrap_refuses_a_capsule_of_another_record_or_that_k_does_not_open() -> None:
    keys = PatientKeys.generate(UII)
    capsule, body = sealed(keys)
    new = PatientKey.generate()
    rewrapper = Rewrapper(old=keys.patient_key, new=new, pseudonym=keys.pseudonym)
    for wrong in (
        {"category": "radiation-dose", "created_at": CREATED, "body_sha256": body},
        {"category": "lab-results", "created_at": "2026-03-15T10:00:00Z", "body_sha256": body},
        {"category": "lab-results", "created_at": CREATED, "body_sha256": "00" * 32},
    ):
        with pytest.raises(InvalidEnvelope):
            rewrapper.rewrap(capsule, **wrong)
    stranger = Rewrapper(old=PatientKey.generate(), new=new, pseudonym=keys.pseudonym)
    with pytest.raises(InvalidEnvelope):
        stranger.rewrap(capsule, category="lab-results", created_at=CREATED, body_sha256=body)
    assert rewrapper.rewrap(capsule, category="lab-results", created_at=CREATED,
                            body_sha256=body)  # fmt: skip
