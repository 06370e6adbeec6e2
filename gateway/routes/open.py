"""Opening a record in one round trip: one audited request for everything a reader needs.

`GET /v1/records/{id}/open` decides the read once (the same decision as the body route,
`require("body")`), writes ONE `access` entry, and answers with the record, its inclusion
proof under the signed tree head (and its rekey proof), the log's checkpoint with its
witnesses' cosignatures (when it has witnesses), the capsule, the caller's key share, and a
ticket for the body. The answer leaves only once the entry is durable, so before any byte
of the body.

`GET /v1/records/{id}/open/body?ticket=…` streams the body under that entry: no second
entry is written. The ticket (gateway/tickets.py) must verify, be unexpired, and name this
record and this caller; the right is checked again before the first byte and before each
sealed segment, exactly as on `GET /v1/records/{id}/body` (the same streaming code serves
both). A refused ticket, a right that ended, or an erased record is audited as denied.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response, StreamingResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from envelope import b64encode
from gateway import tickets
from gateway.access import Access, BodyAccess, audit, read_time
from gateway.backends import Backends
from gateway.deps import Caller, CallerDep
from gateway.errors import AccessDenied, IntegrityFailure, NotFound, RecordErased
from gateway.models import (
    ConsistencyProof,
    KeyShareOut,
    ReceiptOut,
    RecordId,
    RecordOut,
    RekeyProof,
    SignedTransaction,
    StrictModel,
    problem_responses,
)
from gateway.routes.records import get_body
from gateway.views import receipt_out, record_out
from ledger.errors import LedgerError
from ledger.results import Record
from ledger.wire.clock import format_time

log = logging.getLogger("gateway.open")

router = APIRouter(prefix="/v1/records", tags=["records"], responses=problem_responses(401, 403))
_BINARY = {"content": {"application/octet-stream": {"schema": {"type": "string"}}}}


class AccessEntryOut(StrictModel):
    """The `access` entry that audits an open (and the body read under its ticket)."""

    index: int
    tx_hash: str


class RecordOpened(StrictModel):
    """Everything a reader needs to open a record, under one `access` entry."""

    record: RecordOut
    receipt: ReceiptOut
    transaction: SignedTransaction = Field(
        description="The record's signed ledger transaction: its leaf hash is the receipt's "
        "tx_hash."
    )
    rekey: RekeyProof | None = Field(
        default=None, description="For a re-keyed record: the rekey naming its current capsule."
    )
    consistency: ConsistencyProof | None = Field(
        default=None,
        description="Given known_size: the proof that the receipt's tree and the tree of "
        "known_size entries are one log (old_size the smaller), as GET /v1/ledger/"
        "consistency answers it; null when the sizes are equal or it cannot be made here.",
    )
    checkpoint: str | None = Field(
        default=None,
        description="With witnesses: the log's C2SP checkpoint with its cosignatures, as "
        "GET /v1/ledger/checkpoint?cosignatures=N answers it; null without witnesses.",
    )
    capsule: str = Field(description="The record's capsule, base64 (its SHA-256 is the ledger's).")
    key_share: KeyShareOut | None = Field(
        default=None,
        description="The caller's key share of the patient, as GET /v1/patients/{pseudonym}/"
        "key-share answers it; null for the patient itself, when none was deposited, or "
        "under a break-glass session.",
    )
    access_entry: AccessEntryOut
    ticket: str = Field(description="Binds the body read to the access entry; short-lived.")
    ticket_expires_at: str
    body_path: str = Field(description="Where to GET the body with the ticket.")


@dataclass(frozen=True, slots=True)
class _Gathered:
    transaction: SignedTransaction
    receipt: ReceiptOut
    rekey: RekeyProof | None
    capsule: bytes | None
    key_share: KeyShareOut | None
    consistency: ConsistencyProof | None


def _consistency(backends: Backends, size: int, known: int | None) -> ConsistencyProof | None:
    """The proof between the trees of *size* and *known* entries, if it can be made here
    (a replica behind the reader's tree cannot: the reader then asks for it)."""
    if known is None or known == size:
        return None
    old_size, new_size = sorted((size, known))
    # The receipt's tree exists here; a larger tree the reader knows may not, on a replica
    # behind it (or one whose cached size has not caught up with the head just read).
    if known > size and known > backends.ledger.tree_size():
        return None
    try:
        proof = backends.ledger.consistency_proof(old_size, new_size)
    except LedgerError:
        return None
    return ConsistencyProof(old_size=old_size, new_size=new_size, proof=[p.hex() for p in proof])


def _gather(
    backends: Backends, record: Record, share_for: str | None, known_size: int | None
) -> _Gathered:
    """The ledger reads of an open, in one worker-thread hop."""
    ledger = backends.ledger
    entry = ledger.entry(record.entry_index)
    receipt = ledger.receipt(record.entry_index)
    rekey = None
    if record.rekeyed_at is not None:
        rekey_entry = ledger.entry(record.rekeyed_at)
        rekey = RekeyProof(
            transaction=SignedTransaction.model_validate(rekey_entry.tx.to_json()),
            receipt=receipt_out(ledger.receipt(record.rekeyed_at)),
        )
    key_share = None
    if share_for is not None:
        share = ledger.key_share(record.pseudonym, share_for)
        patient = ledger.patient(record.pseudonym)
        if share is not None and patient is not None:
            scope = ledger.entry(share.entry_index).tx.body.get("scope")
            key_share = KeyShareOut(
                pseudonym=record.pseudonym,
                grantee=share_for,
                sealed_key=share.sealed_key,
                record_public_key=patient.record_public_key,
                scope=list(scope) if isinstance(scope, list) else None,
            )
    return _Gathered(
        transaction=SignedTransaction.model_validate(entry.tx.to_json()),
        receipt=receipt_out(receipt),
        rekey=rekey,
        capsule=ledger.capsule(record.capsule_sha256),
        key_share=key_share,
        consistency=_consistency(backends, receipt.tree_head.tree_size, known_size),
    )


async def _deny(caller: Caller, record: Record, reason: str, at: datetime) -> None:
    """Audit a refused body read (durable before the refusal is answered)."""
    await audit(
        caller.backends,
        caller.state.metrics,
        actor=caller.principal.id,
        action="body",
        pseudonym=record.pseudonym,
        allowed=False,
        reason=reason,
        at=at,
        record_id=record.record_id,
        category=record.category,
    )


def _ticket_key(backends: Backends) -> bytes:
    return tickets.ticket_key(backends.signer.signing_key.private_bytes())


@router.get(
    "/{record_id}/open",
    response_model=RecordOpened,
    responses=problem_responses(404, 410, 502),
)
async def open_record(
    access: BodyAccess,
    cosignatures: Annotated[
        int,
        Query(
            ge=1,
            le=100,
            description="With witnesses: prefer the largest checkpoint cosigned by at least "
            "this many (a reader's quorum), as on GET /v1/ledger/checkpoint.",
        ),
    ] = 1,
    known_size: Annotated[
        int | None,
        Query(
            ge=1,
            le=2**53,
            description="The largest tree the reader has verified: the answer then carries "
            "the consistency proof between it and the receipt's tree.",
        ),
    ] = None,
) -> RecordOpened:
    """Open a record in one audited request: record, proof, capsule, key share, body ticket."""
    backends, record = access.backends, access.record
    assert record is not None
    # Owners hold K; a break-glass reader's session does not cover key shares.
    share_for = None if access.owner or access.break_glass else access.principal.id
    # The ledger is read while the access entry commits; nothing is answered before it is
    # durable.
    gathered = await run_in_threadpool(_gather, backends, record, share_for, known_size)
    witnessing = backends.witnessing
    note = witnessing.cosigned_note(cosignatures) if witnessing is not None else None
    if gathered.capsule is None:
        await access.confirmed()
        raise NotFound("the record's capsule has been erased")
    if hashlib.sha256(gathered.capsule).hexdigest() != record.capsule_sha256:
        await access.confirmed()
        raise await _capsule_damaged(access)
    await access.confirmed()
    entry = access.audit_entry.result()
    issued = tickets.Ticket(
        entry_index=entry.index,
        entry_hash=entry.tx_hash,
        record_id=record.record_id,
        caller=access.principal.id,
        expires=int((access.at + tickets.TICKET_LIFETIME).timestamp()),
        break_glass=access.break_glass,
    )
    ticket = tickets.issue(_ticket_key(backends), issued)
    return RecordOpened(
        record=record_out(record),
        receipt=gathered.receipt,
        transaction=gathered.transaction,
        rekey=gathered.rekey,
        consistency=gathered.consistency,
        checkpoint=note.decode("utf-8") if note is not None else None,
        capsule=b64encode(gathered.capsule),
        key_share=gathered.key_share,
        access_entry=AccessEntryOut(index=entry.index, tx_hash=entry.tx_hash),
        ticket=ticket,
        ticket_expires_at=format_time(issued.expires_at),
        body_path=f"/v1/records/{record.record_id}/open/body",
    )


async def _capsule_damaged(access: Access) -> IntegrityFailure:
    assert access.record is not None
    access.state.metrics.integrity_failures.inc()
    log.error("integrity failure on record %s: capsule SHA-256", access.record.record_id)
    await _deny(
        access.caller,
        access.record,
        "integrity: capsule SHA-256 differs from the ledger",
        access.at,
    )
    return IntegrityFailure(
        "the stored data does not match the ledger; the read was stopped and audited"
    )


def _done(value: Any) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_result(value)
    return future


@router.get(
    "/{record_id}/open/body",
    response_class=StreamingResponse,
    responses={200: _BINARY, **problem_responses(404, 410, 502)},
)
async def get_opened_body(
    record_id: Annotated[RecordId, Path()],
    caller: CallerDep,
    ticket: Annotated[
        str,
        Query(
            min_length=1,
            max_length=2048,
            description="The ticket of GET /v1/records/{record_id}/open.",
        ),
    ],
) -> Response:
    """A record's sealed body under the access entry of its open (the ticket names it)."""
    backends, state = caller.backends, caller.state
    ledger = backends.ledger
    record = ledger.cached_record(record_id)
    if record is None:
        raise NotFound(f"there is no record {record_id}")
    at = read_time(state.clock, ledger)
    try:
        opened = tickets.verify(
            _ticket_key(backends), ticket, record_id=record_id, caller=caller.principal.id, now=at
        )
    except tickets.TicketRefused as exc:
        await _deny(caller, record, f"body ticket refused: {exc}", at)
        raise AccessDenied(str(exc)) from exc
    erasure = ledger.erasure(record_id)
    if erasure is not None:
        gone = f"record {record_id} was erased by ledger entry {erasure.entry_index}"
        await _deny(caller, record, f"{gone}; nothing of it is served", at)
        raise RecordErased(f"{gone}: its capsule and body were deleted")
    patient = ledger.patient(record.pseudonym)
    access = Access(
        caller=caller,
        action="body",
        pseudonym=record.pseudonym,
        at=at,
        reason=f"under access entry {opened.entry_index} (ticket)",
        owner=patient is not None and patient.identity_id == caller.principal.id,
        audit_entry=_done(None),
        record=record,
        category=record.category,
        readable_categories=(record.category,),
        break_glass=opened.break_glass,
    )
    if not access.still_allowed():
        reason = "the read right ended between the open and the body read"
        await _deny(caller, record, reason, at)
        raise AccessDenied(f"{reason}; the body was not served")
    return await get_body(access)
