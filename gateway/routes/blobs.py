"""Sealed bodies: streamed in, content addressed, by clinicians and systems only, each for
a patient and category the uploader may write now.

A body is stored before the `record` that names it is committed; one that is never named
(the commit was refused, or never came) is an orphan that `ehrgate gc` collects after its
grace period. The write right is checked before a byte is read, so that an identity
without one cannot use the stores at all; such a refusal is audited on the ledger
(`gateway.refusals`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from gateway.clock import checked_now
from gateway.deps import Caller, get_portal
from gateway.errors import (
    AccessDenied,
    NotFound,
    RuleViolation,
    UnsupportedMediaType,
    ValidationFailed,
    from_backend_error,
)
from gateway.models import Category, Pseudonym, StoredBlobOut, problem_responses
from gateway.refusals import audited, require_uploader
from gateway.streams import RequestBody
from ledger.results import Patient
from storage.errors import IntegrityError, StorageError

router = APIRouter(prefix="/v1/blobs", tags=["blobs"], responses=problem_responses(401, 403))

UploaderDep = Annotated[Caller, Depends(require_uploader("upload_body"))]
BODY_TYPES = ("application/octet-stream",)

_OPENAPI_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def require_content_type(request: Request, allowed: tuple[str, ...]) -> None:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in allowed:
        raise UnsupportedMediaType(
            f"send the body as {' or '.join(allowed)}, not {media or 'no content type'}"
        )


def require_write_right(caller: Caller, pseudonym: str, category: str) -> tuple[Patient, datetime]:
    """The registered patient a body is for, and now, once *caller* may write *category*
    records of it now (the ledger checks again when the record is committed)."""
    ledger = caller.backends.ledger
    patient = ledger.patient(pseudonym)
    if patient is None:
        raise NotFound(f"pseudonym {pseudonym} is not registered")
    # Refused as the ledger would refuse the record, with the rule's code.
    if category not in ledger.categories:
        known = ", ".join(ledger.categories.names())
        raise RuleViolation(
            f"unknown category {category!r}; known: {known}",
            extensions={"code": "unknown-category"},
        )
    now = checked_now(caller.state.clock)
    decision = ledger.check(caller.principal.id, "write", pseudonym, category, now)
    if not decision.allowed:
        raise AccessDenied(
            f"{caller.principal.id} may not write {category} records of {pseudonym}: "
            f"{decision.reason}; the patient must grant a write right valid now",
            extensions={"code": "not-granted"},
        )
    return patient, now


@router.post(
    "",
    response_model=StoredBlobOut,
    status_code=201,
    openapi_extra=_OPENAPI_BODY,
    responses=problem_responses(404),
)
async def upload_blob(
    request: Request,
    uploader: UploaderDep,
    pseudonym: Annotated[Pseudonym, Query(description="The patient the body is sealed to.")],
    category: Annotated[Category, Query(description="The category of its record.")],
    sha256: Annotated[
        str | None,
        Query(pattern=r"^[0-9a-f]{64}$", description="The body's SHA-256, checked if given."),
    ] = None,
) -> StoredBlobOut:
    """Stream a sealed body for a patient and category the caller may write now."""
    require_content_type(request, BODY_TYPES)
    async with audited(uploader, "upload_body") as scope:
        scope.about(pseudonym, category)
        require_write_right(uploader, pseudonym, category)
    backends, state = uploader.backends, uploader.state
    body = RequestBody(request, get_portal(state))
    await body.prefetch()
    try:
        blob = await run_in_threadpool(backends.store.put, body.chunks(), sha256=sha256)
    except IntegrityError as exc:
        raise ValidationFailed(
            "the body's SHA-256 differs from the one announced; nothing was stored"
        ) from exc
    except StorageError as exc:
        raise from_backend_error(exc) from exc
    state.metrics.bytes_uploaded.inc(blob.size)
    return StoredBlobOut(sha256=blob.sha256, size=blob.size, locators=list(blob.locators))
