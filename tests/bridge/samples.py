"""Documents and FHIR resources for the bridge tests."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from typing import Any

from bridge.categories import DEFAULT_TABLE, LOINC
from bridge.fhir.views import submission_set_code

MRN_SYSTEM = "urn:oid:1.2.3.4.5"


def pdf(size: int = 20_000) -> bytes:
    return b"%PDF-1.7\n" + os.urandom(size) + b"\n%%EOF\n"


def sha1(content: bytes) -> str:
    return base64.b64encode(hashlib.sha1(content, usedforsecurity=False).digest()).decode()


def document_reference(
    content: bytes | None,
    *,
    category: str = "lab-results",
    mrn: str = "MRN-1001",
    unique_id: str | None = None,
    url: str | None = None,
) -> dict[str, Any]:
    codes = DEFAULT_TABLE.codes_for(category)
    attachment: dict[str, Any] = {"contentType": "application/pdf", "title": f"{category}.pdf"}
    if content is not None:
        attachment.update(data=base64.b64encode(content).decode(), hash=sha1(content),
                          size=len(content))  # fmt: skip
    if url is not None:
        attachment["url"] = url
    return {
        "resourceType": "DocumentReference",
        "masterIdentifier": {
            "system": "urn:ietf:rfc:3986",
            "value": unique_id or f"urn:uuid:{uuid.uuid4()}",
        },
        "status": "current",
        "type": {"coding": [{"system": LOINC, "code": codes.loinc, "display": codes.display}]},
        "category": [{"coding": [{"system": LOINC, "code": codes.class_code}]}],
        "subject": {"identifier": {"system": MRN_SYSTEM, "value": mrn}},
        "date": "2026-11-20T10:30:00Z",
        "content": [{"attachment": attachment}],
    }


def transaction(documents: list[tuple[str, bytes]], mrn: str = "MRN-1001") -> dict[str, Any]:
    """An ITI-65 Bundle: a SubmissionSet List, then a DocumentReference and a Binary each."""
    entries: list[dict[str, Any]] = []
    references = []
    for category, content in documents:
        binary_url = f"urn:uuid:{uuid.uuid4()}"
        doc_url = f"urn:uuid:{uuid.uuid4()}"
        reference = document_reference(None, category=category, mrn=mrn, url=binary_url)
        reference["content"][0]["attachment"].update(hash=sha1(content), size=len(content))
        entries.append({"fullUrl": doc_url, "resource": reference,
                        "request": {"method": "POST", "url": "DocumentReference"}})  # fmt: skip
        entries.append(
            {
                "fullUrl": binary_url,
                "resource": {
                    "resourceType": "Binary",
                    "contentType": "application/pdf",
                    "data": base64.b64encode(content).decode(),
                },
                "request": {"method": "POST", "url": "Binary"},
            }
        )
        references.append({"item": {"reference": doc_url}})
    submission = {
        "resourceType": "List",
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"}],
        "status": "current",
        "mode": "working",
        "code": submission_set_code(),
        "subject": {"identifier": {"system": MRN_SYSTEM, "value": mrn}},
        "entry": references,
    }
    list_entry = {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": submission,
                  "request": {"method": "POST", "url": "List"}}  # fmt: skip
    return {"resourceType": "Bundle", "type": "transaction", "entry": [list_entry, *entries]}
