"""Research sharing: a clinician's exports to a study, and the study's fetches.

- `POST /v1/study-exports/bodies?permission_id=P`: the new sealed body of an anonymised
  export, streamed like `POST /v1/blobs`, by the grantee of the share right P while it
  holds and only if it asks for anonymisation (a rewrapped export keeps the record's body).
- `POST /v1/study-exports`: a `study_export` signed by that grantee, with the capsule sealed
  for the study. The ledger's rules check the right (its period, categories, study, the
  anonymise flag, the study pseudonym it publishes); the capsule is kept with the entry and
  content addressed beside the bodies; the patient is told (an `export_done` event).
- `GET /v1/studies/{study_id}/exports`: what was exported to the study, by study pseudonym
  only (no patient pseudonym, source record, permission or exporter), to the study itself.
- `GET /v1/study-exports/{export_id}/capsule` and `/body`: to the study only; each fetch,
  allowed or refused, is an `access` entry naming the study pseudonym.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from gateway.access import audit, read_time
from gateway.deps import Caller, CallerDep, get_portal
from gateway.errors import (
    AccessDenied,
    NotFound,
    ValidationFailed,
    from_backend_error,
)
from gateway.events import GatewayEvent
from gateway.models import (
    Base64,
    ReceiptOut,
    RecordId,
    SignedTransaction,
    StoredBlobOut,
    StrictModel,
    problem_responses,
)
from gateway.refusals import audited
from gateway.routes.blobs import BODY_TYPES, require_content_type
from gateway.routes.records import check_body_stored, submit_with_capsule
from gateway.streams import RequestBody, VerifiedBody
from gateway.transactions import parse_signed, precheck, signed_capsule
from gateway.views import receipt_out
from ledger.wire.clock import format_time
from storage.errors import IntegrityError, StorageError

router = APIRouter(prefix="/v1", tags=["research"], responses=problem_responses(401, 403))
_BINARY = {"content": {"application/octet-stream": {"schema": {"type": "string"}}}}
_OPENAPI_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}
ExportId = Annotated[RecordId, Path(description="The export's id.")]


class ExportCommit(StrictModel):
    """A signed `study_export` and the capsule sealed for the study."""

    transaction: SignedTransaction
    capsule: Base64 = Field(description="The capsule bytes, base64.")


class ExportOut(StrictModel):
    """One exported record as the study sees it: under its study pseudonym only."""

    export_id: str
    study_id: str
    study_pseudonym: str
    anonymised: bool
    category: str
    created_at: str = Field(description="Shifted by the patient's offset when anonymised.")
    content_type: str
    body_sha256: str
    size: int
    capsule_sha256: str
    entry_index: int


class ExportDone(StrictModel):
    export: ExportOut
    receipt: ReceiptOut


class ExportList(StrictModel):
    exports: list[ExportOut]


def export_out(row: dict[str, Any]) -> ExportOut:
    return ExportOut(
        export_id=row["export_id"],
        study_id=row["study_id"],
        study_pseudonym=row["study_pseudonym"],
        anonymised=bool(row["anonymise"]),
        category=row["category"],
        created_at=row["created_at"],
        content_type=row["content_type"],
        body_sha256=row["body_sha256"],
        size=int(row["size"]),
        capsule_sha256=row["capsule_sha256"],
        entry_index=int(row["entry_index"]),
    )


def _anonymising_right(caller: Caller, permission_id: str) -> None:
    """The caller holds share right *permission_id*, valid now, that asks for anonymisation."""
    ledger = caller.backends.ledger
    permission = ledger.permission(permission_id)
    if permission is None:
        raise NotFound(f"there is no permission {permission_id}")
    now = format_time(read_time(caller.state.clock, ledger))
    if (
        permission.grantee != caller.principal.id
        or "share" not in permission.rights
        or permission.revoked
        or not permission.not_before <= now < permission.not_after
    ):
        raise AccessDenied(
            f"{caller.principal.id} holds no share right {permission_id} valid now",
            extensions={"code": "not-granted"},
        )
    if not permission.anonymise:
        raise ValidationFailed(
            f"permission {permission_id} exports without anonymisation: the study gets the "
            "record's own body with a rewrapped capsule, so there is no body to upload"
        )


@router.post(
    "/study-exports/bodies",
    response_model=StoredBlobOut,
    status_code=201,
    openapi_extra=_OPENAPI_BODY,
    responses=problem_responses(404),
)
async def upload_export_body(
    request: Request,
    caller: CallerDep,
    permission_id: Annotated[RecordId, Query(description="The share right exported under.")],
) -> StoredBlobOut:
    """Stream the sealed body of an anonymised export (before its `study_export`)."""
    require_content_type(request, BODY_TYPES)
    async with audited(caller, "upload_export_body") as scope:
        permission = caller.backends.ledger.permission(permission_id)
        if permission is not None:
            scope.about(permission.pseudonym)
        _anonymising_right(caller, permission_id)
    backends, state = caller.backends, caller.state
    body = RequestBody(request, get_portal(state))
    await body.prefetch()
    try:
        blob = await run_in_threadpool(backends.store.put, body.chunks())
    except IntegrityError as exc:
        raise ValidationFailed("the body could not be stored intact; nothing was kept") from exc
    except StorageError as exc:
        raise from_backend_error(exc) from exc
    state.metrics.bytes_uploaded.inc(blob.size)
    return StoredBlobOut(sha256=blob.sha256, size=blob.size, locators=list(blob.locators))


def _tell_patient(caller: Caller, pseudonym: str, row: dict[str, Any], tx_hash: str) -> None:
    caller.state.events.emit(
        GatewayEvent(
            kind="export_done",
            event_id=tx_hash,
            pseudonym=pseudonym,
            at=format_time(read_time(caller.state.clock, caller.backends.ledger)),
            details={
                "export_id": row["export_id"],
                "study_id": row["study_id"],
                "category": row["category"],
                "record_id": row["source_record_id"],
                "anonymised": "yes" if row["anonymise"] else "no",
            },
        )
    )


@router.post(
    "/study-exports",
    response_model=ExportDone,
    status_code=201,
    responses=problem_responses(404, 409),
)
async def export(commit: ExportCommit, caller: CallerDep) -> ExportDone:
    """Export one record to a study under a share right (a `study_export` by its grantee)."""
    backends, state = caller.backends, caller.state
    async with audited(caller, "study_export") as scope:
        permission_id = commit.transaction.body.get("permission_id")
        permission = (
            backends.ledger.permission(permission_id) if isinstance(permission_id, str) else None
        )
        if permission is not None:
            scope.about(permission.pseudonym, commit.transaction.body.get("category"))
        tx = parse_signed(
            commit.transaction, expected_type="study_export", principal=caller.principal
        )
        capsule = signed_capsule(tx, commit.capsule)
        await precheck(backends, state.metrics, tx)
        if tx.body.get("anonymise") is True:
            await run_in_threadpool(check_body_stored, backends, tx.body)
        receipt = await submit_with_capsule(backends, state.metrics, tx, capsule)
    row = backends.ledger.consent_row("study_exports", str(tx.body["export_id"]))
    assert row is not None
    assert permission is not None
    _tell_patient(caller, permission.pseudonym, row, tx.tx_hash)
    return ExportDone(export=export_out(row), receipt=receipt_out(receipt))


StudyId = Annotated[RecordId, Path(description="The study's identity id.")]


@router.get("/studies/{study_id}/exports", response_model=ExportList)
async def list_exports(study_id: StudyId, caller: CallerDep) -> ExportList:
    """Every export to the study, under study pseudonyms only (the study itself)."""
    if caller.principal.id != study_id or caller.principal.role != "study":
        raise AccessDenied("only the study itself lists what was exported to it")
    rows = caller.backends.ledger.consent_rows("study_exports", study_id=study_id)
    return ExportList(exports=[export_out(row) for row in rows])


async def _study_read(caller: Caller, export_id: str, action: str) -> dict[str, Any]:
    """The export row, once the caller is its study; the read is audited either way."""
    ledger = caller.backends.ledger
    row = ledger.consent_row("study_exports", export_id)
    if row is None:
        raise NotFound(f"there is no study export {export_id}")
    allowed = caller.principal.id == row["study_id"] and caller.principal.role == "study"
    reason = (
        f"study export {export_id} to {row['study_id']}"
        if allowed
        else f"only study {row['study_id']} may read its exports"
    )
    await audit(
        caller.backends,
        caller.state.metrics,
        actor=caller.principal.id,
        action=action,
        pseudonym=row["study_pseudonym"],
        allowed=allowed,
        reason=reason,
        at=read_time(caller.state.clock, ledger),
        record_id=export_id,
        category=row["category"],
    )
    if not allowed:
        raise AccessDenied(reason)
    return row


@router.get(
    "/study-exports/{export_id}/capsule",
    response_class=Response,
    responses={200: _BINARY, **problem_responses(404)},
)
async def export_capsule(export_id: ExportId, caller: CallerDep) -> Response:
    """The capsule sealed for the study (the study only)."""
    row = await _study_read(caller, export_id, "capsule")
    expected = row["capsule_sha256"]
    capsule = await run_in_threadpool(caller.backends.ledger.capsule, expected)
    if capsule is None:
        raise NotFound("the export's capsule has been erased")
    return Response(
        capsule, media_type="application/octet-stream", headers={"X-Capsule-SHA256": expected}
    )


def _read_body(caller: Caller, row: dict[str, Any]) -> VerifiedBody:
    locators = tuple(json.loads(row["locators"]))
    size = int(row["size"])
    chunks = caller.backends.store.get(locators, sha256=row["body_sha256"], size=size)
    return VerifiedBody(chunks, size=size)


@router.get(
    "/study-exports/{export_id}/body",
    response_class=StreamingResponse,
    responses={200: _BINARY, **problem_responses(404, 502)},
)
async def export_body(export_id: ExportId, caller: CallerDep) -> Response:
    """The sealed body of an export (the study only), checked against its SHA-256."""
    row = await _study_read(caller, export_id, "body")
    try:
        body = await run_in_threadpool(_read_body, caller, row)
    except StorageError as exc:
        raise from_backend_error(exc) from exc
    try:
        first = await run_in_threadpool(body.next_chunk)
    except BaseException as exc:
        await run_in_threadpool(body.close)
        if isinstance(exc, StorageError):  # a missing or changed body included
            raise from_backend_error(exc) from exc
        raise

    async def stream() -> AsyncIterator[bytes]:
        try:
            chunk = first
            while chunk is not None:
                yield chunk
                chunk = await run_in_threadpool(body.next_chunk)
        finally:
            await run_in_threadpool(body.close)

    headers = {"X-Body-SHA256": row["body_sha256"], "Content-Length": str(row["size"])}
    return StreamingResponse(stream(), media_type="application/octet-stream", headers=headers)
