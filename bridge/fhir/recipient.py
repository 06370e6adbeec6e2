"""MHD Document Recipient: ITI-105 (`POST /fhir/DocumentReference`) and ITI-65 (`POST
/fhir`, a transaction Bundle of a SubmissionSet List, DocumentReferences and Binaries).

Every resource is checked, and every MRN's link found, before anything is published; then
each document is published in order (idempotent on its masterIdentifier, so a retried
Bundle publishes only what is missing) and the answer is a transaction-response Bundle
with 201 and a location per entry, in the Bundle's order.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from bridge.actors import Actor
from bridge.base64data import strict_b64decode
from bridge.documents import IncomingDocument, Published
from bridge.errors import InvalidDocument
from bridge.fhir.auth import allowed
from bridge.fhir.common import base_url, bridge_of, read_resource
from bridge.fhir.documents import (
    expect_type,
    incoming_document,
    mrn_of_subject,
)
from bridge.fhir.outcome import fhir_response
from bridge.fhir.streamed import publish_arriving
from bridge.store import SubmissionSet

router = APIRouter()
_SUBMISSION_SET = "submissionset"


def body_limit(max_bytes: int) -> int:
    """How large a JSON body may be: base64 of the largest document, and room around it."""
    return max_bytes * 2 + 1024 * 1024


def _created_view(resource: dict[str, Any], published: Published, base: str) -> dict[str, Any]:
    view = copy.deepcopy(resource)
    view["id"] = published.record_id
    attachment = view["content"][0]["attachment"]
    attachment.pop("data", None)
    attachment["url"] = f"{base}/Binary/{published.record_id}"
    return view


@router.post("/DocumentReference")
async def provide_document(
    request: Request, actor: Annotated[Actor, Depends(allowed("DocumentReference", "c"))]
) -> Response:
    """ITI-105 Simplified Publish: one DocumentReference with the PDF inline."""
    bridge = bridge_of(request)
    resource, _, published = await publish_arriving(
        request,
        bridge.publisher,
        bridge.limits,
        body_limit(bridge.limits.max_bytes),
        actor.identity,
    )
    base = base_url(request)
    location = f"{base}/DocumentReference/{published.record_id}"
    return fhir_response(
        _created_view(resource, published, base),
        201 if published.created else 200,
        Location=location,
    )


@dataclass
class _Entry:
    index: int
    resource_type: str
    resource: dict[str, Any]
    full_url: str | None


def _entries(bundle: dict[str, Any]) -> list[_Entry]:
    if bundle.get("type") != "transaction":
        raise InvalidDocument(f"Bundle.type must be 'transaction', got {bundle.get('type')!r}")
    raw = bundle.get("entry")
    if not isinstance(raw, list) or not raw:
        raise InvalidDocument("the transaction Bundle has no entries")
    found = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
            raise InvalidDocument(f"Bundle.entry[{index}] has no resource")
        request = entry.get("request")
        if not isinstance(request, dict) or request.get("method") != "POST":
            raise InvalidDocument(f"Bundle.entry[{index}].request.method must be POST")
        resource = entry["resource"]
        kind = resource.get("resourceType")
        if kind not in ("List", "DocumentReference", "Binary"):
            raise InvalidDocument(
                f"Bundle.entry[{index}] is a {kind!r}; an MHD transaction carries a List, "
                "DocumentReferences and Binaries"
            )
        full_url = entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else None
        found.append(_Entry(index, kind, resource, full_url))
    return found


def _binaries(entries: list[_Entry]) -> dict[str, tuple[str, bytes]]:
    found: dict[str, tuple[str, bytes]] = {}
    for entry in entries:
        if entry.resource_type != "Binary":
            continue
        if entry.full_url is None:
            raise InvalidDocument(f"Bundle.entry[{entry.index}] (Binary) needs a fullUrl")
        data = entry.resource.get("data")
        try:
            content = strict_b64decode(data if isinstance(data, str) else "")
        except ValueError as exc:
            raise InvalidDocument(f"Bundle.entry[{entry.index}] Binary.data is not base64") from exc
        if not content:
            raise InvalidDocument(f"Bundle.entry[{entry.index}] Binary has no data")
        found[entry.full_url] = (str(entry.resource.get("contentType")), content)
    return found


def _submission_set(entries: list[_Entry], mrn_system: str) -> tuple[_Entry, str, str]:
    lists = [entry for entry in entries if entry.resource_type == "List"]
    if len(lists) != 1:
        raise InvalidDocument("the transaction needs exactly one SubmissionSet List")
    entry = lists[0]
    codings = (entry.resource.get("code") or {}).get("coding") or []
    if not any(isinstance(c, dict) and c.get("code") == _SUBMISSION_SET for c in codings):
        raise InvalidDocument("the List must have code 'submissionset' (an MHD SubmissionSet)")
    identifiers = entry.resource.get("identifier") or []
    unique = [i.get("value") for i in identifiers if isinstance(i, dict) and i.get("value")]
    if not unique or not isinstance(unique[0], str):
        raise InvalidDocument("the SubmissionSet List needs an identifier (its unique id)")
    return entry, unique[0], mrn_of_subject(entry.resource.get("subject"), mrn_system)


@router.post("")
async def provide_bundle(
    request: Request, actor: Annotated[Actor, Depends(allowed("DocumentReference", "c"))]
) -> Response:
    """ITI-65 Provide Document Bundle, processed as one: all checked, then published."""
    bridge = bridge_of(request)
    bundle = expect_type(
        await read_resource(request, body_limit(bridge.limits.max_bytes) * 4), "Bundle"
    )
    entries = _entries(bundle)
    binaries = _binaries(entries)
    list_entry, set_id, mrn = _submission_set(entries, bridge.limits.mrn_system)

    def binary_for(url: str) -> tuple[str, bytes]:
        if url not in binaries:
            raise InvalidDocument(f"attachment.url {url} names no Binary of this Bundle")
        return binaries[url]

    documents: dict[int, IncomingDocument] = {}
    for entry in entries:
        if entry.resource_type == "DocumentReference":
            document = incoming_document(entry.resource, bridge.limits, binary_for)
            if document.mrn != mrn:
                raise InvalidDocument(f"Bundle.entry[{entry.index}] names another patient")
            documents[entry.index] = document
    if not documents:
        raise InvalidDocument("the transaction carries no DocumentReference")
    referenced = {
        entry.resource["content"][0]["attachment"].get("url")
        for entry in entries
        if entry.index in documents
    }
    if set(binaries) - referenced:
        raise InvalidDocument("the Bundle has a Binary that no DocumentReference refers to")
    pseudonym = bridge.links.pseudonym_for(mrn)
    published = {
        index: await bridge.publisher.publish(document, actor=actor.identity)
        for index, document in documents.items()
    }
    stored = bridge.store.put_submission_set(
        SubmissionSet(
            id=hashlib.sha256(f"{bridge.links.hospital}\n{set_id}".encode()).hexdigest()[:32],
            unique_id=set_id,
            pseudonym=pseudonym,
            mrn=mrn,
            record_ids=tuple(p.record_id for p in published.values()),
            submitted_at=datetime.now(UTC).isoformat(),
        )
    )
    locations = _locations(entries, published, stored.id, list_entry.index)
    return fhir_response(
        {
            "resourceType": "Bundle",
            "type": "transaction-response",
            "entry": [
                {"response": {"status": "201 Created", "location": location}}
                for location in locations
            ],
        }
    )


def _locations(
    entries: list[_Entry], published: dict[int, Published], set_id: str, list_index: int
) -> list[str]:
    by_binary: dict[str, str] = {}
    for entry in entries:
        if entry.index in published:
            url = entry.resource["content"][0]["attachment"].get("url")
            if isinstance(url, str):
                by_binary[url] = published[entry.index].record_id
    locations = []
    for entry in entries:
        if entry.index == list_index:
            locations.append(f"List/{set_id}")
        elif entry.index in published:
            locations.append(f"DocumentReference/{published[entry.index].record_id}")
        else:
            locations.append(f"Binary/{by_binary[entry.full_url or '']}")
    return locations
