"""Sealed bodies: streamed in, content addressed, by clinicians and systems only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from gateway.deps import Caller, get_portal, require_role
from gateway.errors import UnsupportedMediaType, ValidationFailed, from_backend_error
from gateway.models import StoredBlobOut, problem_responses
from gateway.streams import RequestBody
from storage.errors import IntegrityError, StorageError

router = APIRouter(prefix="/v1/blobs", tags=["blobs"], responses=problem_responses(401, 403))

UploaderDep = Annotated[Caller, Depends(require_role("clinician", "system"))]
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


@router.post("", response_model=StoredBlobOut, status_code=201, openapi_extra=_OPENAPI_BODY)
async def upload_blob(
    request: Request,
    uploader: UploaderDep,
    sha256: Annotated[
        str | None,
        Query(pattern=r"^[0-9a-f]{64}$", description="The body's SHA-256, checked if given."),
    ] = None,
) -> StoredBlobOut:
    """Stream a sealed body into the stores; returns its SHA-256, size and locators."""
    require_content_type(request, BODY_TYPES)
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
