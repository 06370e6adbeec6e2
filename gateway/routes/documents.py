"""Plaintext ingest: a system that can only POST a PDF; the gateway seals it on the way in.

The PDF is sealed while it streams (to the patient's record public key, nothing else), so
no plaintext is ever written anywhere; the gateway signs the capsule and the `record` with
its own key on the caller's behalf (`on_behalf_of`), and the ledger checks the caller's
write right. The ledger therefore shows both: who sent the document and who sealed it.
An ingest refused for want of that right (or of the role) is audited (`gateway.refusals`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from envelope import Sealer
from envelope.errors import EnvelopeError
from gateway.deps import Caller, get_portal
from gateway.errors import (
    UnsupportedMediaType,
    ValidationFailed,
    from_backend_error,
)
from gateway.models import (
    Category,
    Pseudonym,
    RecordWithProof,
    SignedTransaction,
    problem_responses,
)
from gateway.refusals import audited, require_uploader
from gateway.routes.blobs import require_content_type, require_write_right
from gateway.scoped_keys import recipient_for
from gateway.streams import RequestBody
from gateway.transactions import submit
from gateway.views import receipt_out, record_out
from ledger.wire import builders
from ledger.wire.clock import format_time
from storage.errors import StorageError

router = APIRouter(
    prefix="/v1/documents", tags=["documents"], responses=problem_responses(401, 403, 409)
)

UploaderDep = Annotated[Caller, Depends(require_uploader("ingest_document"))]
PDF_MAGIC = b"%PDF-"
_FILENAME = re.compile(r"^[^/\\\x00-\x1f\x7f]{1,255}$")
_OPENAPI_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
    }
}


class NotAPdf(UnsupportedMediaType):
    """Raised inside the sealing stream when the body does not start like a PDF."""


def _sealed(plaintext: Iterator[bytes], sealer: Sealer) -> Iterator[bytes]:
    first = True
    try:
        for chunk in plaintext:
            if first:
                if not chunk.startswith(PDF_MAGIC):
                    raise NotAPdf("the body is not a PDF: it does not start with %PDF-")
                first = False
            for piece in sealer.update_segments(chunk):
                yield bytes(piece)
        if first:
            raise NotAPdf("the body is empty, so not a PDF")
        for piece in sealer.finalize_segments():
            yield bytes(piece)
    except BaseException:
        sealer.close()
        raise


@router.post(
    "",
    response_model=RecordWithProof,
    status_code=201,
    openapi_extra=_OPENAPI_BODY,
)
async def ingest_document(
    request: Request,
    uploader: UploaderDep,
    pseudonym: Annotated[Pseudonym, Query()],
    category: Annotated[Category, Query()],
    filename: Annotated[str, Query(min_length=1, max_length=255, pattern=_FILENAME.pattern)],
) -> RecordWithProof:
    """Upload a plaintext PDF; the gateway seals it to the patient and records it."""
    require_content_type(request, ("application/pdf",))
    async with audited(uploader, "ingest_document") as scope:
        scope.about(pseudonym, category)
        return await _ingest(request, uploader, pseudonym, category, filename)


async def _ingest(
    request: Request, uploader: Caller, pseudonym: str, category: str, filename: str
) -> RecordWithProof:
    backends, state, caller_id = uploader.backends, uploader.state, uploader.principal.id
    # Checked before a byte is stored (the ledger checks again at commit).
    _, now = require_write_right(uploader, pseudonym, category)
    created_at = format_time(now)
    recipient = await run_in_threadpool(
        recipient_for, backends.ledger, pseudonym, category, created_at
    )
    try:
        sealer = Sealer(
            recipients=[(pseudonym, recipient)],
            scoped=True,
            filename=filename,
            content_type="application/pdf",
            pseudonym=pseudonym,
            category=category,
            created_at=created_at,
            uploader_id=caller_id,
            signer=backends.signer.signing_key,
            signer_id=backends.signer.id,
        )
    except EnvelopeError as exc:
        raise ValidationFailed(str(exc)) from exc
    body = RequestBody(request, get_portal(state))
    await body.prefetch()
    try:
        blob = await run_in_threadpool(backends.store.put, _sealed(body.chunks(), sealer))
    except StorageError as exc:
        raise from_backend_error(exc) from exc
    capsule = sealer.result.capsule
    try:
        await run_in_threadpool(backends.store.put, [capsule])
    except StorageError as exc:
        raise from_backend_error(exc) from exc
    tx = builders.record(
        backends.signer,
        pseudonym=pseudonym,
        category=category,
        body_sha256=blob.sha256,
        size=blob.size,
        locators=list(blob.locators),
        capsule_sha256=sealer.result.capsule_sha256,
        content_type="application/pdf",
        created_at=created_at,
        on_behalf_of=caller_id,
        issued_at=now,
    )
    receipt = await submit(backends, state.metrics, tx, capsule=capsule)
    state.metrics.bytes_uploaded.inc(blob.size)
    record = backends.ledger.cached_record(str(tx.body["record_id"]))
    assert record is not None
    return RecordWithProof(
        record=record_out(record),
        receipt=receipt_out(receipt),
        transaction=SignedTransaction.model_validate(tx.to_json()),
    )
