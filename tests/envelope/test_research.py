"""Study pseudonyms (envelope.research) against the vectors made from docs/envelope.md, and
the sealed study secret: who opens it, and what it must derive."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from envelope import (
    EnvelopeError,
    HybridPrivateKey,
    InvalidEnvelope,
    PatientKey,
    StudySecret,
    b64decode,
    open_study_secret,
    seal_study_secret,
)
from tests.envelope.conftest import load_vector

VECTORS = load_vector("study.json")


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: c["study_id"])
def test_study_vector(case: dict[str, Any]) -> None:
    secret = StudySecret.derive(PatientKey(b64decode(case["patient_key"])), case["study_id"])
    assert secret.secret == b64decode(case["study_secret"])
    assert secret.pseudonym == case["study_pseudonym"]
    assert secret.day_offset == case["day_offset"]
    assert secret.day_offset != 0


def test_the_vectors_pseudonyms_are_all_different() -> None:
    pseudonyms = [case["study_pseudonym"] for case in VECTORS["cases"]]
    assert len(set(pseudonyms)) == len(pseudonyms)


def test_a_shift_moves_by_the_offset() -> None:
    case = VECTORS["cases"][0]
    secret = StudySecret(case["study_id"], b64decode(case["study_secret"]))
    moment = datetime(2030, 1, 1, tzinfo=UTC)
    assert (secret.shift(moment) - moment).days == case["day_offset"]


def _sealed() -> dict[str, Any]:
    sealed: dict[str, Any] = VECTORS["sealed"]
    return sealed


def test_the_sealed_vector_opens_for_its_grantee_and_derives_the_pseudonym() -> None:
    v = _sealed()
    opened = open_study_secret(
        b64decode(v["sealed_secret"]), HybridPrivateKey(b64decode(v["grantee_private_key"])),
        pseudonym=v["pseudonym"], grantee_id=v["grantee_id"], study_id=v["study_id"],
        study_pseudonym=v["study_pseudonym"],
    )  # fmt: skip
    assert opened.secret == b64decode(v["study_secret"])


@pytest.mark.parametrize(
    "change",
    [
        {"grantee_id": "dr-other"},
        {"study_id": "cardio-7"},
        {"pseudonym": "ab" * 32},
        {"study_pseudonym": "cd" * 32},
    ],
    ids=["another grantee", "another study", "another patient", "a pseudonym it does not derive"],
)
def test_the_sealed_secret_opens_for_nothing_else(change: dict[str, str]) -> None:
    v = {**_sealed(), **change}
    with pytest.raises(InvalidEnvelope):
        open_study_secret(
            b64decode(v["sealed_secret"]), HybridPrivateKey(b64decode(v["grantee_private_key"])),
            pseudonym=v["pseudonym"], grantee_id=v["grantee_id"], study_id=v["study_id"],
            study_pseudonym=v["study_pseudonym"],
        )  # fmt: skip


def test_a_sealed_secret_round_trips_and_the_wrong_key_fails() -> None:
    secret = StudySecret.derive(PatientKey.generate(), "onco-2031")
    grantee, other = HybridPrivateKey.generate(), HybridPrivateKey.generate()
    pseudonym = "ef" * 32
    sealed = seal_study_secret(
        secret, pseudonym=pseudonym, grantee_id="dr-yang", grantee_key=grantee.public_key()
    )
    arguments = {"pseudonym": pseudonym, "grantee_id": "dr-yang", "study_id": "onco-2031"}
    assert open_study_secret(sealed, grantee, **arguments).pseudonym == secret.pseudonym
    with pytest.raises(InvalidEnvelope):
        open_study_secret(sealed, other, **arguments)
    with pytest.raises(InvalidEnvelope):
        open_study_secret(sealed[:-1], grantee, **arguments)


@pytest.mark.parametrize("study_id", ["", "a\x00b"])
def test_an_unusable_study_id_is_refused(study_id: str) -> None:
    with pytest.raises(EnvelopeError, match="study id"):
        StudySecret.derive(PatientKey.generate(), study_id)


def test_the_secret_is_not_shown() -> None:
    secret = StudySecret.derive(PatientKey.generate(), "onco-2031")
    assert secret.secret.hex() not in repr(secret)
    assert "hidden" in repr(secret)
