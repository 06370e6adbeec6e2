"""`ehrgate demo --offline`: the envelope's story, in memory, without a gateway.

The cryptography end to end: a patient's key and pseudonym, a hospital system sealing a
report to the patient, the patient sharing K with a doctor, the doctor opening and
verifying the report, a tampered copy being refused, and the patient's key file backed up
as SLIP-39 shares and restored from two of them.
"""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime

import click

from ehrgate.errors import VerificationFailed
from envelope import (
    IdentityKeys,
    InvalidEnvelope,
    PatientKeys,
    open_body,
    open_capsule,
    open_key_share,
    open_with_patient_key,
    read_chunks,
    seal,
    seal_key_share,
    verify_capsule_signature,
)
from envelope.backup import combine_shares, split_keys

SAMPLE_UII = {"national_id": "756.1234.5678.97", "birth_date": "1961-04-12", "name": "Ana Müller"}


def sample_report(pages: int = 40) -> bytes:
    """A small PDF-shaped radiotherapy report, large enough to span several segments."""
    lines = [b"%PDF-1.7", b"% ehrgate demo report"]
    for page in range(1, pages + 1):
        text = f"Treatment summary, fraction {page}: 2 Gy to PTV, no acute toxicity. ".encode()
        lines.append(f"{page} 0 obj << /Length {len(text) * 60} >> stream".encode())
        lines.append(text * 60)
        lines.append(b"endstream endobj")
    lines.append(b"%%EOF")
    return b"\n".join(lines) + b"\n"


def step(number: int, text: str) -> None:
    click.echo(click.style(f"{number}. ", bold=True) + text)


def run_offline() -> None:
    """Show sealing, sharing and opening a health record end to end (offline)."""
    patient = PatientKeys.generate(SAMPLE_UII)
    step(1, f"patient key K made; pseudonym H(K‖UII) = {patient.pseudonym[:16]}…")
    doctor = IdentityKeys.generate("dr-house", "clinician")
    system = IdentityKeys.generate("aria-export", "system")
    step(2, f"identities: clinician {doctor.id}, hospital system {system.id}")

    report = sample_report()
    created_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = io.BytesIO()
    result = seal(
        io.BytesIO(report),
        body,
        recipients=[(patient.pseudonym, patient.patient_key.record_public_key())],
        filename="treatment-summary.pdf",
        content_type="application/pdf",
        pseudonym=patient.pseudonym,
        category="radiotherapy",
        created_at=created_at,
        uploader_id=system.id,
        signer=system,
    )
    step(
        3,
        f"{system.id} sealed a {len(report):,}-byte report to the patient's record key: "
        f"body {result.body_size:,} bytes (sha256 {result.body_sha256[:16]}…), "
        f"capsule {len(result.capsule):,} bytes",
    )

    share = seal_key_share(
        patient.patient_key,
        pseudonym=patient.pseudonym,
        grantee_id=doctor.id,
        grantee_key=doctor.encryption_key.public_key(),
    )
    step(4, f"patient shared K with {doctor.id}: a {len(share):,}-byte key share")

    doctors_k = open_key_share(
        share,
        doctor.encryption_key,
        pseudonym=patient.pseudonym,
        grantee_id=doctor.id,
        record_public_key=patient.patient_key.record_public_key(),
    )
    opened = open_capsule(result.capsule, doctors_k.record_private_key(), patient.pseudonym)
    verify_capsule_signature(
        opened,
        system.public().verify_key,
        pseudonym=patient.pseudonym,
        category="radiotherapy",
        created_at=created_at,
    )
    plaintext = b"".join(open_body(read_chunks(io.BytesIO(body.getvalue()), 64 * 1024), opened))
    if hashlib.sha256(plaintext).digest() != hashlib.sha256(report).digest():
        raise VerificationFailed("the opened report differs from the original")
    step(
        5,
        f"{doctor.id} opened the key share, the capsule and the body: {opened.filename}, "
        f"signed by {opened.signer_id}, {len(plaintext):,} bytes, identical to the original",
    )

    tampered = bytearray(body.getvalue())
    tampered[len(tampered) // 2] ^= 0x01
    try:
        b"".join(open_body(read_chunks(io.BytesIO(bytes(tampered))), opened))
    except InvalidEnvelope:
        step(6, "one flipped bit in the stored body: opening refused (InvalidEnvelope)")
    else:
        raise VerificationFailed("a tampered body was accepted")

    shares = split_keys(patient, threshold=2, shares=3)
    restored = combine_shares([shares.mnemonics[2], shares.mnemonics[0]])
    again = open_with_patient_key(result.capsule, restored.patient_key, restored.pseudonym)
    if restored.pseudonym != patient.pseudonym or again.body_sha256 != opened.body_sha256:
        raise VerificationFailed("the restored key file is not the patient's")
    step(
        7,
        f"patient key file backed up as 3 SLIP-39 shares of {len(shares.mnemonics[0].split())} "
        "words; shares 3 and 1 restored it: same pseudonym, and it opens the report",
    )
