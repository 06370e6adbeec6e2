"""Records: commit a signed `record` for a stored body; read metadata, proof, capsule, body."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from gateway.access import Access, BodyAccess, CapsuleAccess, RecordAccess, audit, read_time
from gateway.backends import Backends
from gateway.deps import Caller, CallerDep
from gateway.errors import (
    GatewayError,
    IntegrityFailure,
    NotFound,
    ValidationFailed,
    from_backend_error,
)
from gateway.metrics import GatewayMetrics
from gateway.models import (
    ReceiptOut,
    RecordCommit,
    RecordWithProof,
    RekeyProof,
    SignedTransaction,
    problem_responses,
)
from gateway.refusals import audited
from gateway.rekeying import check_sealed_to_current_keys
from gateway.streams import VerifiedBody
from gateway.transactions import parse_signed, precheck, signed_capsule, submit
from gateway.views import receipt_out, record_out
from ledger.errors import LedgerError, RuleViolation
from ledger.results import Record
from ledger.wire.blocks import Receipt
from ledger.wire.transactions import Transaction
from storage import StoredBlob
from storage.errors import BlobNotFound, IntegrityError as StoredBytesMismatch, StorageError

log = logging.getLogger("gateway.records")

router = APIRouter(prefix="/v1/records", tags=["records"], responses=problem_responses(401, 403))
_BINARY = {"content": {"application/octet-stream": {"schema": {"type": "string"}}}}


def _forget_capsule(backends: Backends, stored: StoredBlob) -> None:
    """Delete the stored copy of a refused record's capsule, unless the ledger names it
    (the same capsule committed by another record); a failure leaves it to `ehrgate gc`."""
    try:
        if backends.ledger.capsule_referenced(stored.sha256):
            return
        for locator in stored.locators:
            backends.store.delete(locator)
    except (LedgerError, StorageError) as exc:
        log.warning("the refused capsule %s stays for the gc: %s", stored.sha256, exc)


async def submit_with_capsule(
    backends: Backends, metrics: GatewayMetrics, tx: Transaction, capsule: bytes
) -> Receipt:
    """Store a second copy of *capsule*, content addressed, next to the bodies (the first
    is in the ledger database: without its capsule a body is noise), then submit *tx*.

    The copy is stored before the commit, so that every committed entry has it even if the
    gateway stops in between; if the ledger refuses *tx* after all (the state changed since
    the check), the copy is taken back."""
    try:
        stored = await run_in_threadpool(backends.store.put, [capsule])
    except StorageError as exc:
        raise from_backend_error(exc) from exc
    try:
        return await submit(backends, metrics, tx, capsule=capsule)
    except GatewayError as exc:
        if isinstance(exc.__cause__, RuleViolation):
            await run_in_threadpool(_forget_capsule, backends, stored)
        raise


def check_body_stored(backends: Backends, body: dict[str, object]) -> None:
    """The record's body must be in the stores, with the SHA-256 and size it claims."""
    locators = body.get("locators")
    sha256, size = body.get("body_sha256"), body.get("size")
    if not isinstance(locators, list) or not locators:
        return  # the ledger's rules name the problem precisely
    for locator in locators:
        if not isinstance(locator, str):
            return
        try:
            info = backends.store.head(locator)
        except BlobNotFound as exc:
            raise ValidationFailed(
                f"no stored body at {locator}; upload it with POST /v1/blobs first"
            ) from exc
        except StorageError as exc:
            raise from_backend_error(exc) from exc
        if info.sha256 != sha256 or info.size != size:
            raise ValidationFailed(
                f"the body at {locator} does not have the SHA-256 and size the record claims"
            )


@router.post(
    "",
    response_model=RecordWithProof,
    status_code=201,
    responses=problem_responses(409, 502),
)
async def commit_record(commit: RecordCommit, caller: CallerDep) -> RecordWithProof:
    """Commit a signed `record` for an uploaded body and its capsule; returns its proof."""
    async with audited(caller, "commit_record") as scope:
        body = commit.transaction.body
        scope.about(body.get("pseudonym"), body.get("category"))
        tx = parse_signed(commit.transaction, expected_type="record", principal=caller.principal)
        return await _commit(caller, tx, commit.capsule, commit.key_generation)


async def _commit(
    caller: Caller, tx: Transaction, capsule_text: str, key_generation: int | None = None
) -> RecordWithProof:
    backends, state = caller.backends, caller.state
    capsule = signed_capsule(tx, capsule_text)
    check_sealed_to_current_keys(backends, tx.body, capsule, key_generation)
    # The rules first: a record the ledger would refuse stores nothing.
    await precheck(backends, state.metrics, tx)
    await run_in_threadpool(check_body_stored, backends, tx.body)
    receipt = await submit_with_capsule(backends, state.metrics, tx, capsule)
    record = backends.ledger.cached_record(str(tx.body["record_id"]))
    assert record is not None
    return RecordWithProof(
        record=record_out(record),
        receipt=receipt_out(receipt),
        transaction=SignedTransaction.model_validate(tx.to_json()),
    )


async def _receipt(access: Access) -> ReceiptOut:
    assert access.record is not None
    ledger = access.backends.ledger
    receipt = await run_in_threadpool(ledger.receipt, access.record.entry_index)
    return receipt_out(receipt)


@router.get("/{record_id}", response_model=RecordWithProof)
async def get_record(access: RecordAccess) -> RecordWithProof:
    """A record's metadata with its inclusion proof and the signed tree head."""
    assert access.record is not None
    entry = await run_in_threadpool(access.backends.ledger.entry, access.record.entry_index)
    return RecordWithProof(
        record=record_out(access.record),
        receipt=await _receipt(access),
        transaction=SignedTransaction.model_validate(entry.tx.to_json()),
        rekey=await _rekey_proof(access),
    )


async def _rekey_proof(access: Access) -> RekeyProof | None:
    """The rekey entry that set a re-keyed record's current capsule, with its receipt."""
    assert access.record is not None
    index = access.record.rekeyed_at
    if index is None:
        return None
    ledger = access.backends.ledger
    entry = await run_in_threadpool(ledger.entry, index)
    receipt = await run_in_threadpool(ledger.receipt, index)
    return RekeyProof(
        transaction=SignedTransaction.model_validate(entry.tx.to_json()),
        receipt=receipt_out(receipt),
    )


@router.get("/{record_id}/proof", response_model=ReceiptOut)
async def get_proof(access: RecordAccess) -> ReceiptOut:
    """The inclusion proof of a record's entry under the current signed tree head."""
    return await _receipt(access)


async def _integrity_failure(access: Access, exc: Exception) -> IntegrityFailure:
    assert access.record is not None
    backends, state = access.backends, access.state
    state.metrics.integrity_failures.inc()
    log.error("integrity failure on record %s: %s", access.record.record_id, exc)
    await audit(
        backends,
        state.metrics,
        actor=access.principal.id,
        action=access.action,
        pseudonym=access.pseudonym,
        allowed=False,
        reason=f"integrity: {exc}",
        at=access.at,
        record_id=access.record.record_id,
        category=access.category,
    )
    return IntegrityFailure(
        "the stored data does not match the ledger; the read was stopped and audited"
    )


@router.get(
    "/{record_id}/capsule",
    response_class=Response,
    responses={200: _BINARY, **problem_responses(502)},
)
async def get_capsule(access: CapsuleAccess) -> Response:
    """A record's capsule (its wrapped data keys), checked against the ledger's hash."""
    assert access.record is not None
    expected = access.record.capsule_sha256
    capsule = await run_in_threadpool(access.backends.ledger.capsule, expected)
    if capsule is None:
        raise NotFound("the record's capsule has been erased")
    if hashlib.sha256(capsule).hexdigest() != expected:
        raise await _integrity_failure(
            access, ValueError("capsule SHA-256 differs from the ledger")
        )
    return Response(
        capsule,
        media_type="application/octet-stream",
        headers={"X-Capsule-SHA256": expected},
    )


# One sealed segment of a body: 64 KiB of plaintext and its 16-byte AES-GCM tag.
SEGMENT_BYTES = 64 * 1024 + 16


async def _right_ended(access: Access) -> None:
    """Audit that a streaming read was cut short because the caller's right ended."""
    record_id = access.record.record_id if access.record is not None else None
    await audit(
        access.backends,
        access.state.metrics,
        actor=access.principal.id,
        action="body",
        pseudonym=access.pseudonym,
        allowed=False,
        reason="the read right ended while the body was streaming; the stream was cut",
        at=read_time(access.state.clock, access.backends.ledger),
        record_id=record_id,
        category=access.category,
    )


def _open_body(backends: Backends, record: Record) -> tuple[VerifiedBody, bytes | None]:
    """Open the stored body and read its first verified chunk (one worker-thread hop)."""
    sha256, size = record.body_sha256, record.size
    body = VerifiedBody(backends.store.get(record.locators, sha256=sha256, size=size), size=size)
    try:
        return body, body.next_chunk()
    except BaseException:
        body.close()
        raise


@router.get(
    "/{record_id}/body",
    response_class=StreamingResponse,
    responses={200: _BINARY, **problem_responses(502)},
)
async def get_body(access: BodyAccess) -> Response:
    """A record's sealed body, streamed and checked against the ledger's SHA-256."""
    backends, state, record = access.backends, access.state, access.record
    assert record is not None
    headers = {"X-Body-SHA256": record.body_sha256}
    # The store is read while the access entry commits; the first chunk is read before the
    # response starts, so that a body that is wrong from the start (or a store that is down)
    # is answered with a problem, not a cut stream.
    try:
        body, first = await run_in_threadpool(_open_body, backends, record)
    except (StoredBytesMismatch, IntegrityFailure, BlobNotFound) as exc:
        # A committed record whose body no store has is damage, not a missing resource.
        await access.confirmed()
        raise await _integrity_failure(access, exc) from exc
    except StorageError as exc:
        await access.confirmed()
        raise from_backend_error(exc) from exc
    if body.done:
        await access.confirmed()
        data = first or b""
        state.metrics.bytes_served.inc(len(data))
        return Response(data, media_type="application/octet-stream", headers=headers)

    async def stream() -> AsyncIterator[bytes]:
        # The next chunk is read from the store (in a worker thread) while the current one
        # is sent: reading and sending overlap instead of taking turns.
        ahead: asyncio.Task[bytes | None] | None = None
        following: bytes | None = None
        sent = 0
        try:
            chunk = first
            while chunk is not None:
                ahead = asyncio.ensure_future(run_in_threadpool(body.next_chunk))
                last_start = ((len(chunk) - 1) // SEGMENT_BYTES) * SEGMENT_BYTES
                # The right is re-checked before each sealed segment's worth of bytes, so a
                # read never outlives its right by more than one segment.
                for start in range(0, len(chunk), SEGMENT_BYTES):
                    if start == last_start:
                        # Whether this chunk is the body's last is known once the read
                        # ahead is back: no complete body leaves the gateway before its
                        # access entry is durable.
                        reading, ahead = ahead, None
                        assert reading is not None
                        following = await reading
                        if following is None:
                            await access.confirmed()
                    if not access.still_allowed():
                        await _right_ended(access)
                        return
                    piece = chunk[start : start + SEGMENT_BYTES]
                    sent += len(piece)
                    yield piece
                chunk = following
        except (StoredBytesMismatch, IntegrityFailure) as exc:
            # Headers are gone: the only honest thing left is to cut the stream short.
            await _integrity_failure(access, exc)
            raise
        finally:
            state.metrics.bytes_served.inc(sent)
            if ahead is not None:
                # A read still running in its worker thread finishes before the body is
                # closed under it (its outcome no longer matters).
                running = ahead
                with contextlib.suppress(Exception):
                    await asyncio.shield(running)
            await run_in_threadpool(body.close)

    headers["Content-Length"] = str(record.size)
    return StreamingResponse(stream(), media_type="application/octet-stream", headers=headers)
