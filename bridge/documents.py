"""What the bridge's two front doors (FHIR and HL7 v2) hand to its publisher.

An `IncomingDocument` is one PDF with the metadata both protocols carry; a `Publisher`
seals, signs and uploads it for the patient the MRN is linked to, idempotently on
`unique_id` (a retry publishes nothing twice).
"""

from __future__ import annotations

import hashlib
from base64 import b64encode
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

REFERENCE_PREFIX = "DocumentReference/"
"""How a FHIR relatesTo target names a replaced document by its resource id."""


@dataclass(frozen=True, slots=True)
class IncomingDocument:
    """One document as received: the PDF and what identifies and classifies it."""

    mrn: str
    """The patient's medical record number at this hospital (HL7 PID-3, FHIR identifier)."""
    category: str
    """An ehrgate category, already mapped from the LOINC type code or TXA-2."""
    unique_id: str
    """The sender's unique document id (TXA-12, DocumentReference.masterIdentifier)."""
    created: datetime
    """When the document was authored (TXA-4/TXA-6, DocumentReference.date)."""
    content: bytes
    """The PDF bytes."""
    content_type: str = "application/pdf"
    title: str | None = None
    replaces: str | None = None
    """The document this one replaces (MDM^T10 TXA-13, FHIR relatesTo replaces): its unique
    id, or ``DocumentReference/<id>`` when a FHIR client names it by resource id."""
    sha1: str | None = None
    """`sha1_b64(content)` when it was computed as the content arrived."""

    def content_sha1(self) -> str:
        """FHIR's `Attachment.hash` of the content (computed once)."""
        return self.sha1 if self.sha1 is not None else sha1_b64(self.content)


def sha1_b64(content: bytes) -> str:
    """FHIR R4 `Attachment.hash`: base64 of the SHA-1 of the data."""
    return attachment_hash(hashlib.sha1(content, usedforsecurity=False).digest())


def attachment_hash(sha1_digest: bytes) -> str:
    """A SHA-1 digest as FHIR R4's `Attachment.hash` writes it (base64)."""
    return b64encode(sha1_digest).decode("ascii")


@dataclass(frozen=True, slots=True)
class SealedFacts:
    """What of a document goes into its sealed body and its record, known before its data
    has all arrived (FHIR metadata that precedes `attachment.data`)."""

    unique_id: str
    mrn: str
    category: str
    date: str | None
    """The document's time as sent, None when it was not given."""
    title: str | None


@dataclass(frozen=True, slots=True)
class Published:
    """The outcome of a publish: the ledger record and whether it was new."""

    record_id: str
    pseudonym: str
    created: bool
    """False when `unique_id` had been published before and nothing was uploaded again."""


class Publisher(Protocol):
    """Seals, signs and uploads an incoming document on behalf of an acting identity."""

    async def publish(self, document: IncomingDocument, *, actor: str) -> Published:
        """Publish *document* as the key-store identity *actor*; raises `bridge.errors`."""
        ...
