"""Fixtures for the envelope tests: vectors, a patient, a doctor, a sealed sample."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from envelope import IdentityKeys, PatientKeys, SealResult, seal

VECTORS = Path(__file__).parent.parent / "vectors" / "envelope"
CREATED_AT = "2026-01-31T12:00:00Z"
UII = {"national_id": "756.1234.5678.97", "birth_date": "1961-04-12", "name": "Ana Müller"}


def load_vector(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def pattern(size: int) -> bytes:
    return bytes(i % 251 for i in range(size))


@dataclass
class Sealed:
    plaintext: bytes
    body: bytes
    result: SealResult
    patient: PatientKeys
    doctor: IdentityKeys
    uploader: IdentityKeys


def seal_sample(
    plaintext: bytes, patient: PatientKeys, doctor: IdentityKeys, uploader: IdentityKeys
) -> Sealed:
    body = io.BytesIO()
    result = seal(
        io.BytesIO(plaintext),
        body,
        recipients=[
            (patient.pseudonym, patient.patient_key.record_public_key()),
            (doctor.id, doctor.encryption_key.public_key()),
        ],
        filename="report.pdf",
        content_type="application/pdf",
        pseudonym=patient.pseudonym,
        category="oncology",
        created_at=CREATED_AT,
        uploader_id=uploader.id,
        signer=uploader,
    )
    return Sealed(plaintext, body.getvalue(), result, patient, doctor, uploader)


@pytest.fixture(scope="session")
def patient() -> PatientKeys:
    return PatientKeys.generate(UII)


@pytest.fixture(scope="session")
def doctor() -> IdentityKeys:
    return IdentityKeys.generate("dr-house", "clinician")


@pytest.fixture(scope="session")
def uploader() -> IdentityKeys:
    return IdentityKeys.generate("aria-export", "system")


@pytest.fixture(scope="session")
def sealed(patient: PatientKeys, doctor: IdentityKeys, uploader: IdentityKeys) -> Sealed:
    """Three segments: two full ones and a short last one."""
    return seal_sample(pattern(2 * 65536 + 1000), patient, doctor, uploader)
