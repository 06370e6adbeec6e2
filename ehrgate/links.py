"""Patient link statements: a patient's signed word that an MRN at a hospital is theirs.

A hospital bridge links a medical record number to a pseudonym only from such a statement,
so that no hospital can link a pseudonym by itself. The statement is JSON::

    {"kind": "ehrgate-patient-link", "version": 1, "pseudonym", "hospital", "mrn",
     "signed_at": ISO 8601 UTC, "signature": B64}

The signature is the patient identity's Ed25519 signature of the canonical JSON of every
other member; it verifies with the signing key the patient registered on the ledger (the
patient's identity id is the pseudonym).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ehrgate.errors import UsageError, VerificationFailed
from envelope import EnvelopeError, InvalidSignature, PatientKeys, VerifyKey, b64decode, b64encode

LINK_KIND = "ehrgate-patient-link"
LINK_VERSION = 1
_MAX_FIELD = 200


@dataclass(frozen=True, slots=True)
class LinkStatement:
    """What a patient signed: this MRN at this hospital is the patient of this pseudonym."""

    pseudonym: str
    hospital: str
    mrn: str
    signed_at: datetime
    signature: bytes

    def signed_content(self) -> dict[str, Any]:
        return _content(self.pseudonym, self.hospital, self.mrn, self.signed_at)

    def to_json(self) -> dict[str, Any]:
        return {**self.signed_content(), "signature": b64encode(self.signature)}

    @classmethod
    def from_json(cls, data: Any) -> LinkStatement:
        """Read a statement; UsageError naming what is wrong."""
        if not isinstance(data, dict) or data.get("kind") != LINK_KIND:
            raise UsageError(f"not a patient link statement (its kind must be {LINK_KIND!r})")
        if data.get("version") != LINK_VERSION:
            raise UsageError(f"unsupported link statement version {data.get('version')!r}")
        extra = (
            set(data)
            - {"kind", "version", "pseudonym", "hospital", "mrn"}
            - {
                "signed_at",
                "signature",
            }
        )
        if extra:
            raise UsageError(f"the link statement has unknown members: {', '.join(sorted(extra))}")
        fields = {name: _text(data, name) for name in ("pseudonym", "hospital", "mrn")}
        try:
            signed_at = datetime.fromisoformat(_text(data, "signed_at"))
            signature = b64decode(_text(data, "signature"), length=64)
        except (ValueError, EnvelopeError) as exc:
            raise UsageError(f"the link statement's time or signature is malformed: {exc}") from exc
        if signed_at.tzinfo is None:
            raise UsageError("the link statement's signed_at must carry a time zone")
        return cls(signed_at=signed_at.astimezone(UTC), signature=signature, **fields)

    def verify(self, signing_key: VerifyKey) -> None:
        """Raise VerificationFailed unless the patient's *signing_key* signed this."""
        try:
            signing_key.verify(self.signed_content(), self.signature)
        except InvalidSignature as exc:
            raise VerificationFailed(
                "the link statement's signature does not verify with the patient's registered "
                "identity key"
            ) from exc


def _text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_FIELD:
        raise UsageError(f"the link statement needs a non-empty {name!r} (at most {_MAX_FIELD})")
    return value


def _content(pseudonym: str, hospital: str, mrn: str, signed_at: datetime) -> dict[str, Any]:
    return {
        "kind": LINK_KIND,
        "version": LINK_VERSION,
        "pseudonym": pseudonym,
        "hospital": hospital,
        "mrn": mrn,
        "signed_at": signed_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }


def make_link_statement(
    patient: PatientKeys, *, hospital: str, mrn: str, at: datetime | None = None
) -> LinkStatement:
    """The patient's signed statement that *mrn* at *hospital* is theirs."""
    for name, value in (("hospital", hospital), ("mrn", mrn)):
        if not value.strip() or len(value) > _MAX_FIELD:
            raise UsageError(f"the {name} must be non-empty text of at most {_MAX_FIELD}")
    signed_at = (at or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    content = _content(patient.pseudonym, hospital, mrn, signed_at)
    signature = patient.identity.sign(content)
    return LinkStatement(patient.pseudonym, hospital, mrn, signed_at, signature)
