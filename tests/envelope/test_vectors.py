"""The envelope reproduces every stored vector (see tests/vectors/envelope/generate.py)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from typing import Any

import pytest

from envelope import (
    HybridPrivateKey,
    InvalidUII,
    PatientKey,
    canonical_uii,
    open_body,
    open_capsule,
    open_key_share,
    verify_capsule_signature,
)
from envelope.body import BodyOpener, BodySealer, DataKey, encode_header, segment_key
from envelope.capsule import _encrypt_metadata
from envelope.identity import SigningKey
from envelope.keyshare import key_share_info
from envelope.sealer import _seal_with_parts
from envelope.xwing import decapsulate, expand_seed
from tests.envelope.conftest import load_vector, pattern

PSEUDONYMS = load_vector("pseudonym.json")
RECORD_KEYS = load_vector("record_key.json")
BODIES = load_vector("body.json")["cases"]
RECORD_KEYS_V2 = load_vector("record_key_v2.json")
XWING = load_vector("xwing.json")
# version 1 vectors were made with 96-byte keys and the version 1 record key, and are kept
CAPSULES = {1: load_vector("capsule.json"), 2: load_vector("capsule_v2.json")}
KEY_SHARES = {1: load_vector("key_share.json"), 2: load_vector("key_share_v2.json")}
VERSIONS = pytest.mark.parametrize("version", [1, 2])


def ids(cases: list[dict[str, Any]], field: str) -> list[str]:
    return [str(case[field]) for case in cases]


@pytest.mark.parametrize("case", PSEUDONYMS["valid"], ids=ids(PSEUDONYMS["valid"], "description"))
def test_pseudonym_vector(case: dict[str, Any]) -> None:
    patient_key = PatientKey(bytes.fromhex(case["patient_key"]))
    assert canonical_uii(case["uii"]) == case["canonical_uii"].encode("utf-8")
    assert patient_key.pseudonym(case["uii"]) == case["pseudonym"]


def test_pseudonym_vectors_cover_equivalent_spellings() -> None:
    by_description = {case["description"]: case["pseudonym"] for case in PSEUDONYMS["valid"]}
    base = by_description["ascii and Latin-1 fields"]
    for description in (
        "NFD name (u + combining diaeresis) equals NFC",
        "upper case equals lower case",
        "tabs, newlines, repeated and edge spaces collapse",
        "no-break space and ideographic space are whitespace",
        "keys in another order",
    ):
        assert by_description[description] == base
    assert by_description["keys are not normalised: Name differs from name"] != base
    assert by_description["the same person under another K"] != base
    assert by_description["zero-width space is not whitespace"] != base


@pytest.mark.parametrize(
    "case", PSEUDONYMS["invalid"], ids=ids(PSEUDONYMS["invalid"], "description")
)
def test_unusable_uii_is_refused(case: dict[str, Any]) -> None:
    with pytest.raises(InvalidUII):
        PatientKey(bytes(32)).pseudonym(case["uii"])


@pytest.mark.parametrize("case", RECORD_KEYS, ids=ids(RECORD_KEYS, "patient_key"))
def test_record_key_vector_v1(case: dict[str, str]) -> None:
    patient_key = PatientKey(bytes.fromhex(case["patient_key"]), record_key_version=1)
    okm = patient_key.record_key_material()
    assert okm.hex() == case["okm"]
    assert okm[:64].hex() == case["mlkem768_seed"]
    assert okm[64:].hex() == case["x25519_private"]
    assert patient_key.record_private_key().private_bytes() == okm
    assert patient_key.record_public_key().to_bytes() == base64.b64decode(case["public_key"])


@pytest.mark.parametrize("case", RECORD_KEYS_V2, ids=ids(RECORD_KEYS_V2, "patient_key"))
def test_record_key_vector_v2(case: dict[str, str]) -> None:
    patient_key = PatientKey(bytes.fromhex(case["patient_key"]))
    assert patient_key.record_key_version == 2
    assert patient_key.record_key_seed().hex() == case["seed"]
    private = patient_key.record_private_key()
    assert private.is_seed
    assert private.private_bytes().hex() == case["seed"]
    assert patient_key.record_public_key().to_bytes() == base64.b64decode(case["public_key"])


def test_record_key_versions_differ() -> None:
    """The two derivations give different key pairs: which one a patient uses matters."""
    for v1, v2 in zip(RECORD_KEYS, RECORD_KEYS_V2, strict=True):
        assert v1["patient_key"] == v2["patient_key"]
        assert v1["public_key"] != v2["public_key"]


@pytest.mark.parametrize("case", XWING, ids=ids(XWING, "seed"))
def test_xwing_vector(case: dict[str, str]) -> None:
    seed = bytes.fromhex(case["seed"])
    assert expand_seed(seed).hex() == case["expanded"]
    key = HybridPrivateKey(seed)
    assert key.public_key().to_bytes() == base64.b64decode(case["public_key"])
    # the stored expanded bytes, loaded as a version 1 key, are the same key pair
    assert HybridPrivateKey(bytes.fromhex(case["expanded"])).public_key() == key.public_key()
    ciphertext = bytes.fromhex(case["ciphertext"])
    assert decapsulate(key.key_parts, ciphertext).hex() == case["shared_secret"]


@pytest.mark.parametrize("case", BODIES, ids=ids(BODIES, "plaintext_length"))
def test_body_vector_seals_to_the_stored_bytes(case: dict[str, Any]) -> None:
    dek, salt = DataKey(bytes.fromhex(case["dek"])), bytes.fromhex(case["salt"])
    assert encode_header(salt).hex() == case["header"]
    assert segment_key(dek.to_bytes(), salt).hex() == case["segment_key"]
    sealer = BodySealer._with_salt(dek, salt)
    body = sealer.update(pattern(case["plaintext_length"])) + sealer.finalize()
    assert len(body) == case["body_size"]
    assert hashlib.sha256(body).hexdigest() == case["body_sha256"]
    assert sealer.body_sha256() == case["body_sha256"]
    assert sealer.plaintext_sha256() == case["plaintext_sha256"]
    if "body" in case:
        assert body.hex() == case["body"]


@pytest.mark.parametrize("case", BODIES, ids=ids(BODIES, "plaintext_length"))
def test_body_vector_opens(case: dict[str, Any]) -> None:
    dek = DataKey(bytes.fromhex(case["dek"]))
    sealer = BodySealer._with_salt(dek, bytes.fromhex(case["salt"]))
    body = sealer.update(pattern(case["plaintext_length"])) + sealer.finalize()
    opener = BodyOpener(dek, expected_sha256=case["plaintext_sha256"])
    assert opener.update(body) + opener.finalize() == pattern(case["plaintext_length"])


def vector_patient_key(vector: dict[str, Any], version: int) -> PatientKey:
    return PatientKey(bytes.fromhex(vector["patient_key"]), record_key_version=version)


@VERSIONS
def test_capsule_vector_opens_for_each_recipient(version: int) -> None:
    CAPSULE = CAPSULES[version]
    patient_key = vector_patient_key(CAPSULE, version)
    pseudonym = CAPSULE["fields"]["pseudonym"]
    capsule = CAPSULE["capsule"].encode("utf-8")
    doctor_key = HybridPrivateKey(base64.b64decode(CAPSULE["doctor_private_key"]))
    assert doctor_key.is_seed == (version == 2)
    for key, recipient_id in (
        (patient_key.record_private_key(), pseudonym),
        (doctor_key, "dr-house"),
    ):
        opened = open_capsule(capsule, key, recipient_id)
        assert opened.data_key.to_bytes().hex() == CAPSULE["dek"]
        assert opened.plaintext_sha256 == CAPSULE["plaintext_sha256"]
        assert opened.body_sha256 == CAPSULE["body_sha256"]
        assert opened.signer_id == CAPSULE["signer_id"]
        assert {name: getattr(opened, name) for name in CAPSULE["fields"]} == CAPSULE["fields"]


@VERSIONS
def test_capsule_vector_signature_verifies(version: int) -> None:
    CAPSULE = CAPSULES[version]
    capsule = CAPSULE["capsule"].encode("utf-8")
    opened = open_capsule(
        capsule,
        vector_patient_key(CAPSULE, version).record_private_key(),
        CAPSULE["fields"]["pseudonym"],
    )
    signing_key = SigningKey(bytes.fromhex(CAPSULE["signer_signing_key"]))
    assert signing_key.verify_key.to_bytes().hex() == CAPSULE["signer_verify_key"]
    fields = CAPSULE["fields"]
    verify_capsule_signature(
        opened,
        signing_key.verify_key,
        pseudonym=fields["pseudonym"],
        category=fields["category"],
        created_at=fields["created_at"],
    )


@VERSIONS
def test_capsule_vector_deterministic_parts_are_reproduced(version: int) -> None:
    """With DEK, salt and nonce fixed, body and metadata ciphertext are exactly the stored ones."""
    CAPSULE = CAPSULES[version]
    patient_key = vector_patient_key(CAPSULE, version)
    fields = CAPSULE["fields"]
    signer = SigningKey(bytes.fromhex(CAPSULE["signer_signing_key"]))
    body = io.BytesIO()
    result = _seal_with_parts(
        io.BytesIO(pattern(CAPSULE["plaintext_length"])),
        body,
        dek=DataKey(bytes.fromhex(CAPSULE["dek"])),
        salt=bytes.fromhex(CAPSULE["salt"]),
        meta_nonce=bytes.fromhex(CAPSULE["meta_nonce"]),
        recipients=[(fields["pseudonym"], patient_key.record_public_key())],
        signer=signer,
        signer_id=CAPSULE["signer_id"],
        **fields,
    )
    assert result.body_sha256 == CAPSULE["body_sha256"]
    stored = open_capsule(
        CAPSULE["capsule"].encode(), patient_key.record_private_key(), fields["pseudonym"]
    )
    remade = open_capsule(result.capsule, patient_key.record_private_key(), fields["pseudonym"])
    assert remade == stored
    meta = _encrypt_metadata(
        stored.data_key, stored.metadata(), bytes.fromhex(CAPSULE["meta_nonce"])
    )
    assert base64.b64encode(meta).decode() == json.loads(CAPSULE["capsule"])["meta"]
    opened_plaintext = b"".join(open_body([body.getvalue()], stored))
    assert opened_plaintext == pattern(CAPSULE["plaintext_length"])


@VERSIONS
def test_key_share_vector(version: int) -> None:
    KEY_SHARE = KEY_SHARES[version]
    grantee_key = HybridPrivateKey(base64.b64decode(KEY_SHARE["grantee_private_key"]))
    assert (
        key_share_info(KEY_SHARE["pseudonym"], KEY_SHARE["grantee_id"]).hex() == KEY_SHARE["info"]
    )
    patient_key = open_key_share(
        base64.b64decode(KEY_SHARE["share"]),
        grantee_key,
        pseudonym=KEY_SHARE["pseudonym"],
        grantee_id=KEY_SHARE["grantee_id"],
        record_public_key=vector_patient_key(KEY_SHARE, version).record_public_key(),
    )
    assert patient_key.to_bytes().hex() == KEY_SHARE["patient_key"]
    # the registered record key tells which derivation the recovered K uses
    assert patient_key.record_key_version == version
