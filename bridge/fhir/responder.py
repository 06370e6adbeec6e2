"""MHD Document Responder: ITI-67 (DocumentReference search and read), ITI-66 (List
search), ITI-68 (the document's bytes), and AuditEvent and Consent as read views of the
ledger. Every read is made by the actor's own key-store identity through the SDK, so the
ledger decides (and records) it; what the SDK returns from a fetch was fully verified
(proof against the pinned head, hashes, every segment, the uploader's signature)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse

from bridge.actors import Actor
from bridge.base64data import b64encode_text
from bridge.errors import InvalidDocument, UnlinkedPatient
from bridge.fhir.auth import allowed
from bridge.fhir.common import base_url, bridge_of, in_thread, search_params, searchset
from bridge.fhir.documents import document_reference, lineage_of, mrn_of_token
from bridge.fhir.outcome import fhir_response, operation_outcome
from bridge.fhir.relay import relayed_fetch
from bridge.fhir.search import page_links, parse_search
from bridge.fhir.views import audit_event, capability_statement, consent, submission_set
from bridge.service import Bridge
from ehrgate.models import Record

router = APIRouter()
_ID = r"^[A-Za-z0-9\-.]{1,64}$"


@router.get("/metadata")
async def metadata(request: Request) -> Response:
    """The CapabilityStatement (no token needed)."""
    now = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return fhir_response(capability_statement(base_url(request), now))


def _unlinked(mrn: str, base: str, exc: UnlinkedPatient) -> Response:
    return fhir_response(
        searchset([], base, 0, outcome=operation_outcome("not-found", str(exc), "warning"))
    )


async def _records(
    bridge: Bridge, actor: Actor, pseudonym: str, category: str | None
) -> list[Record]:
    client = bridge.identities.client(actor.identity)
    return await in_thread(lambda: client.records(pseudonym, category))


@router.api_route("/DocumentReference", methods=["GET"])
@router.api_route("/DocumentReference/_search", methods=["POST"])
async def find_documents(
    request: Request, actor: Annotated[Actor, Depends(allowed("DocumentReference", "s"))]
) -> Response:
    """ITI-67 Find Document References."""
    bridge = bridge_of(request)
    params = await search_params(request)
    search = parse_search(
        params, bridge.limits.mrn_system, bridge.limits.categories, bridge.settings.page_size
    )
    base = base_url(request)
    try:
        pseudonym = bridge.links.pseudonym_for(search.mrn)
    except UnlinkedPatient as exc:
        return _unlinked(search.mrn, base, exc)
    only = (
        next(iter(search.categories)) if search.categories and len(search.categories) == 1 else None
    )
    if search.categories is not None and not search.categories:
        records: list[Record] = []
    else:
        records = await _records(bridge, actor, pseudonym, only)
    rows = {r.record_id: bridge.store.published_record(r.record_id) for r in records}
    lineages = {rid: lineage_of(bridge.store, row) for rid, row in rows.items()}
    matched = sorted(
        (r for r in records if search.matches(r, lineages[r.record_id].status)),
        key=lambda r: (r.created_at, r.record_id),
        reverse=True,
    )
    page = matched[search.offset : search.offset + search.count]
    resources = [
        document_reference(
            r, rows[r.record_id], search.mrn, base, bridge.limits, lineages[r.record_id]
        )
        for r in page
    ]
    url = f"{base}/DocumentReference"
    return fhir_response(
        searchset(resources, base, len(matched), page_links(url, params, search, len(matched)))
    )


@router.get("/DocumentReference/{record_id}")
async def read_document(
    request: Request,
    record_id: str,
    actor: Annotated[Actor, Depends(allowed("DocumentReference", "r"))],
) -> Response:
    """One DocumentReference, its record proved on the ledger first."""
    bridge = bridge_of(request)
    _check_id(record_id)
    client = bridge.identities.client(actor.identity)
    proof = await in_thread(lambda: client.record(record_id))
    row = bridge.store.published_record(record_id)
    mrns = [row.mrn] if row else bridge.links.mrns_of(proof.record.pseudonym)
    return fhir_response(
        document_reference(
            proof.record,
            row,
            mrns[0] if mrns else None,
            base_url(request),
            bridge.limits,
            lineage_of(bridge.store, row),
        )
    )


def _check_id(value: str) -> None:
    if not re.fullmatch(_ID, value):
        raise InvalidDocument(f"{value!r} is not a resource id")


@router.get("/Binary/{record_id}")
async def retrieve_document(
    request: Request, record_id: str, actor: Annotated[Actor, Depends(allowed("Binary", "r"))]
) -> Response:
    """ITI-68 Retrieve Document: the verified plaintext, passed on as it is opened
    (`bridge.fhir.relay`), or a Binary with it as data."""
    bridge = bridge_of(request)
    _check_id(record_id)
    client = bridge.identities.client(actor.identity)
    relay, fetch = relayed_fetch(
        asyncio.get_running_loop(),
        lambda relay: in_thread(lambda: client.fetch_into(record_id, relay, opened=relay.opened)),
    )
    try:
        fetched = await relay.start(fetch)
    except BaseException:
        relay.close()
        raise
    accept = request.headers.get("accept", "")
    if "fhir+json" in accept and fetched.content_type not in accept:
        content = b"".join([piece async for piece in relay.pieces(fetch)])
        return fhir_response(
            {
                "resourceType": "Binary",
                "id": record_id,
                "contentType": fetched.content_type,
                "data": b64encode_text(content),
            }
        )
    return StreamingResponse(
        relay.pieces(fetch),
        media_type=fetched.content_type,
        headers={"Content-Length": str(fetched.plaintext_size)},
    )


def _patient_mrn(bridge: Bridge, params: dict[str, list[str]]) -> str:
    patients = params.get("patient", []) + params.get("patient.identifier", [])
    if len(patients) != 1:
        raise InvalidDocument("give exactly one patient: patient=MRN or patient.identifier=SYS|MRN")
    if "patient" in params:
        return patients[0].removeprefix("Patient/")
    return mrn_of_token(patients[0], bridge.limits.mrn_system)


def _linked_patient(
    request: Request, params: dict[str, list[str]]
) -> tuple[str, str, str] | Response:
    """The searched patient's MRN, the base URL and its pseudonym; or the answer for a
    patient with no link to a pseudonym."""
    mrn = _patient_mrn(bridge_of(request), params)
    base = base_url(request)
    try:
        return mrn, base, bridge_of(request).links.pseudonym_for(mrn)
    except UnlinkedPatient as exc:
        return _unlinked(mrn, base, exc)


@router.get("/List")
async def find_lists(
    request: Request, actor: Annotated[Actor, Depends(allowed("List", "s"))]
) -> Response:
    """ITI-66 Find Document Lists: the patient's SubmissionSets, with the documents the
    ledger lets the caller list."""
    bridge = bridge_of(request)
    params = await search_params(request)
    unknown = set(params) - {"patient", "patient.identifier", "code", "status", "_count"}
    if unknown:
        raise InvalidDocument(f"unsupported search parameters: {', '.join(sorted(unknown))}")
    codes = [c.rpartition("|")[2] for c in params.get("code", [])]
    statuses = params.get("status", [])
    patient = _linked_patient(request, params)
    if isinstance(patient, Response):
        return patient
    _, base, pseudonym = patient
    visible = {r.record_id for r in await _records(bridge, actor, pseudonym, None)}
    sets: list[dict[str, Any]] = []
    if (not codes or "submissionset" in codes) and (not statuses or "current" in statuses):
        sets = [
            submission_set(found, bridge.limits.mrn_system, visible)
            for found in bridge.store.submission_sets(pseudonym)
        ]
    return fhir_response(searchset(sets, base, len(sets)))


@router.get("/AuditEvent")
async def find_audit_events(
    request: Request, actor: Annotated[Actor, Depends(allowed("AuditEvent", "s"))]
) -> Response:
    """The ledger's access entries on the patient, as IHE BALP AuditEvents."""
    bridge = bridge_of(request)
    patient = _linked_patient(request, await search_params(request))
    if isinstance(patient, Response):
        return patient
    mrn, base, pseudonym = patient
    entries = await in_thread(lambda: bridge.access_log.events(pseudonym))
    events = [audit_event(entry, mrn, bridge.limits.mrn_system) for entry in entries]
    return fhir_response(searchset(events, base, len(events)))


@router.get("/Consent")
async def find_consents(
    request: Request, actor: Annotated[Actor, Depends(allowed("Consent", "s"))]
) -> Response:
    """The patient's grants to the caller's identity, as Consent resources."""
    bridge = bridge_of(request)
    patient = _linked_patient(request, await search_params(request))
    if isinstance(patient, Response):
        return patient
    mrn, base, pseudonym = patient
    client = bridge.identities.client(actor.identity)
    permissions = await in_thread(lambda: client.permissions(pseudonym))
    table = bridge.limits.categories
    consents = [consent(p, mrn, bridge.limits.mrn_system, table) for p in permissions]
    return fhir_response(searchset(consents, base, len(consents)))
