"""Per-study pseudonyms: what a patient derives for one research study, and gives its exporter.

For each study the patient derives from K a 32-byte *study secret*; the study's pseudonym
and the date offset of anonymised exports come from it:

    study secret S  = HKDF-SHA256(ikm=K, salt=None, L=32,
                                  info="ehrgate/study/v1" ‖ 0x00 ‖ study id (UTF-8))
    study pseudonym = lowercase hex HMAC-SHA256(S, "ehrgate/study-pseudonym/v1")
    day offset      = d = uint64_be(HMAC-SHA256(S, "ehrgate/study-date-shift/v1")[0:8]) mod 730;
                      d - 365 if d < 365 else d - 364           (-365..-1 or 1..365, never 0)

HKDF and HMAC are one way: two studies' pseudonyms of one patient cannot be linked without
K, nor either linked to the patient's own pseudonym, and the gateway (which never holds K)
can neither compute nor predict them. The exporter (a clinician with a share right) needs
S to shift dates; the patient seals S to it in the grant:

    info   = "ehrgate/study-secret/v1" ‖ 0x00 ‖ pseudonym ‖ 0x00 ‖ grantee id ‖ 0x00 ‖ study id
    sealed = HPKE(X-Wing, HKDF-SHA256, AES-256-GCM).seal(grantee's encryption key, S, info)

The exporter opens S, recomputes the pseudonym, and checks it against the one the grant
publishes (`StudySecret.pseudonym`).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from envelope.errors import EnvelopeError, InvalidEnvelope
from envelope.kem import HybridPrivateKey, HybridPublicKey
from envelope.patient import PatientKey, is_pseudonym

STUDY_INFO = b"ehrgate/study/v1"
PSEUDONYM_LABEL = b"ehrgate/study-pseudonym/v1"
DATE_SHIFT_LABEL = b"ehrgate/study-date-shift/v1"
SECRET_INFO = b"ehrgate/study-secret/v1"
SECRET_LEN = 32
MAX_SHIFT_DAYS = 365


def _study_id_bytes(study_id: str) -> bytes:
    if not isinstance(study_id, str) or not study_id or "\x00" in study_id:
        raise EnvelopeError("a study id is a non-empty text without NUL characters")
    return study_id.encode("utf-8")


@dataclass(frozen=True, slots=True)
class StudySecret:
    """A patient's secret for one study: its pseudonym there and its date offset."""

    study_id: str
    secret: bytes

    def __post_init__(self) -> None:
        _study_id_bytes(self.study_id)
        if len(self.secret) != SECRET_LEN:
            raise EnvelopeError(f"a study secret is {SECRET_LEN} bytes")

    @classmethod
    def derive(cls, patient_key: PatientKey, study_id: str) -> StudySecret:
        info = STUDY_INFO + b"\x00" + _study_id_bytes(study_id)
        raw = HKDF(algorithm=hashes.SHA256(), length=SECRET_LEN, salt=None, info=info).derive(
            patient_key.to_bytes()
        )
        return cls(study_id, raw)

    @property
    def pseudonym(self) -> str:
        """The patient's pseudonym in this study (64 lowercase hex)."""
        return hmac.new(self.secret, PSEUDONYM_LABEL, hashlib.sha256).hexdigest()

    @property
    def day_offset(self) -> int:
        """Days every date of an anonymised export is moved by (never 0)."""
        digest = hmac.new(self.secret, DATE_SHIFT_LABEL, hashlib.sha256).digest()
        d = int.from_bytes(digest[:8], "big") % (2 * MAX_SHIFT_DAYS)
        return d - MAX_SHIFT_DAYS if d < MAX_SHIFT_DAYS else d - MAX_SHIFT_DAYS + 1

    def shift(self, moment: datetime) -> datetime:
        return moment + timedelta(days=self.day_offset)

    def __repr__(self) -> str:
        return f"StudySecret(study_id={self.study_id!r}, secret=<hidden>)"


def study_secret_info(pseudonym: str, grantee_id: str, study_id: str) -> bytes:
    if not is_pseudonym(pseudonym):
        raise EnvelopeError("a pseudonym is 64 lowercase hexadecimal characters")
    if not isinstance(grantee_id, str) or not grantee_id or "\x00" in grantee_id:
        raise EnvelopeError("a study secret needs a grantee id")
    return (
        SECRET_INFO
        + b"\x00"
        + pseudonym.encode("ascii")
        + b"\x00"
        + grantee_id.encode("utf-8")
        + b"\x00"
        + _study_id_bytes(study_id)
    )


def seal_study_secret(
    secret: StudySecret, *, pseudonym: str, grantee_id: str, grantee_key: HybridPublicKey
) -> bytes:
    """S sealed to the exporter named in the share grant."""
    info = study_secret_info(pseudonym, grantee_id, secret.study_id)
    return grantee_key.seal(secret.secret, info=info)


def open_study_secret(
    sealed: bytes,
    key: HybridPrivateKey,
    *,
    pseudonym: str,
    grantee_id: str,
    study_id: str,
    study_pseudonym: str | None = None,
) -> StudySecret:
    """The exporter's side; with *study_pseudonym* (the grant's) S must derive it.

    Every failure is InvalidEnvelope."""
    try:
        info = study_secret_info(pseudonym, grantee_id, study_id)
        raw = key.open(bytes(sealed), info=info)
        secret = StudySecret(study_id, raw)
    except (EnvelopeError, ValueError, TypeError) as exc:
        raise InvalidEnvelope() from exc
    if study_pseudonym is not None and not hmac.compare_digest(secret.pseudonym, study_pseudonym):
        raise InvalidEnvelope()
    return secret
