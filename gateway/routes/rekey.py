"""Re-keying: a patient that rotated its K reads what is left to rewrap (with the capsules,
a page at a time) and sends its `rekey` entries in batches, committed together.

Only the patient itself may call these routes. The progress is the ledger's: a record whose
`key_generation` is older than the patient's current generation is still to be rewrapped,
so an interrupted rotation is resumed by asking again.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from envelope import b64encode
from gateway.deps import Caller, CallerDep
from gateway.errors import (
    Forbidden,
    GatewayError,
    NotFound,
    ValidationFailed,
    from_backend_error,
)
from gateway.models import (
    Base64,
    Pseudonym,
    ReceiptOut,
    SignedTransaction,
    StrictModel,
    problem_responses,
)
from gateway.refusals import audited
from gateway.rekeying import (
    RekeyItem,
    check_item,
    finish_deletions,
    queue_deletions,
    store_new,
    sweep,
)
from gateway.transactions import parse_signed, precheck, submit
from gateway.views import receipt_out
from ledger.results import Record
from ledger.wire.scoped import MAX_REKEY_BATCH
from storage.errors import StorageError

router = APIRouter(prefix="/v1/patients", tags=["keys"], responses=problem_responses(401, 403, 404))


class RekeyRecord(StrictModel):
    """A record still sealed to an older generation's keys, with its current capsule."""

    record_id: str
    category: str
    created_at: str
    body_sha256: str
    capsule_sha256: str
    key_generation: int
    entry_index: int
    capsule: str = Field(description="The record's current capsule, base64.")


class CategoryMonth(StrictModel):
    category: str
    period: str


class ShareEntry(StrictModel):
    grantee: str
    entry_index: int = Field(description="The key_share entry that deposited it.")


class RekeyStatus(StrictModel):
    pseudonym: str
    generation: int = Field(description="The generation of the patient's current K.")
    started_at: int | None = Field(
        description="The publish_keys entry that started this generation (None: never rotated)."
    )
    records: int = Field(description="The patient's records.")
    remaining: int = Field(description="Records still sealed to an older generation's keys.")
    periods: list[CategoryMonth] = Field(
        description="Every (category, YYYY-MM) the patient has records of."
    )
    shared_with: list[ShareEntry] = Field(description="Each key share on the patient.")
    pending: list[RekeyRecord] = Field(description="The first records still to rewrap.")


class RekeyIn(StrictModel):
    transaction: SignedTransaction
    capsule: Base64 = Field(description="The rewrapped capsule, base64.")


class RekeyBatch(StrictModel):
    items: list[RekeyIn] = Field(min_length=1, max_length=MAX_REKEY_BATCH)


class RekeyResult(StrictModel):
    record_id: str
    receipt: ReceiptOut | None = None
    refused: str | None = Field(None, description="Why the ledger refused it, if it did.")


class RekeyDone(StrictModel):
    results: list[RekeyResult]
    remaining: int


def _own(caller: Caller, pseudonym: str) -> None:
    patient = caller.backends.ledger.patient(pseudonym)
    if patient is None:
        raise NotFound(f"pseudonym {pseudonym} is not registered")
    if patient.identity_id != caller.principal.id:
        raise Forbidden("only the patient itself re-keys its records")


def _pending(
    caller: Caller, pseudonym: str, generation: int, limit: int, after: int
) -> list[RekeyRecord]:
    ledger = caller.backends.ledger
    out = []
    for record in ledger.records_to_rekey(pseudonym, generation, limit, after):
        capsule = ledger.capsule(record.capsule_sha256)
        if capsule is None:
            continue  # erased: nothing left to rewrap (and nothing the old K opens)
        out.append(_record_out(record, capsule))
    return out


def _record_out(record: Record, capsule: bytes) -> RekeyRecord:
    return RekeyRecord(
        record_id=record.record_id,
        category=record.category,
        created_at=record.created_at,
        body_sha256=record.body_sha256,
        capsule_sha256=record.capsule_sha256,
        key_generation=record.key_generation,
        entry_index=record.entry_index,
        capsule=b64encode(capsule),
    )


def _status(caller: Caller, pseudonym: str, limit: int, after: int) -> RekeyStatus:
    ledger = caller.backends.ledger
    generation, started = ledger.key_generation(pseudonym)
    total, remaining = ledger.rekey_counts(pseudonym, generation)
    return RekeyStatus(
        pseudonym=pseudonym,
        generation=generation,
        started_at=started,
        records=total,
        remaining=remaining,
        periods=[CategoryMonth(category=c, period=p) for c, p in ledger.record_periods(pseudonym)],
        shared_with=[
            ShareEntry(grantee=g, entry_index=i) for g, i in ledger.key_share_entries(pseudonym)
        ],
        pending=_pending(caller, pseudonym, generation, limit, after) if limit else [],
    )


@router.get("/{pseudonym}/rekey", response_model=RekeyStatus)
async def rekey_status(
    pseudonym: Pseudonym,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=0, le=MAX_REKEY_BATCH)] = 0,
    after: Annotated[int, Query(ge=-1)] = -1,
) -> RekeyStatus:
    """The patient's key generation and what is left to rewrap (with `limit`: the next ones)."""
    # With `limit`, the records still of an older generation committed after entry `after`,
    # with their capsules. Store copies of replaced capsules that an interrupted rekey left
    # are deleted first.
    _own(caller, pseudonym)
    try:
        await run_in_threadpool(sweep, caller.backends)
    except StorageError as exc:
        raise from_backend_error(exc) from exc
    return await run_in_threadpool(_status, caller, pseudonym, limit, after)


@router.post(
    "/{pseudonym}/rekey",
    response_model=RekeyDone,
    responses=problem_responses(400, 409, 422, 502),
)
async def rekey(pseudonym: Pseudonym, batch: RekeyBatch, caller: CallerDep) -> RekeyDone:
    """Commit patient-signed `rekey` entries with their rewrapped capsules, in one batch."""
    # Every copy of each replaced capsule is deleted (database and stores).
    async with audited(caller, "rekey") as scope:
        scope.about(pseudonym)
        _own(caller, pseudonym)
        items = await _checked(caller, pseudonym, batch)
        backends = caller.backends
        try:
            await run_in_threadpool(sweep, backends)
            await run_in_threadpool(store_new, backends, items)
            await run_in_threadpool(queue_deletions, backends, items)
        except StorageError as exc:
            raise from_backend_error(exc) from exc
        outcomes = await asyncio.gather(
            *(_commit(caller, item) for item in items), return_exceptions=True
        )
    done = [i for i, o in zip(items, outcomes, strict=True) if not isinstance(o, BaseException)]
    refused = [i for i, o in zip(items, outcomes, strict=True) if isinstance(o, BaseException)]
    await run_in_threadpool(finish_deletions, backends, done, refused)
    for outcome in outcomes:
        if isinstance(outcome, BaseException) and not isinstance(outcome, GatewayError):
            raise outcome
    generation, _ = backends.ledger.key_generation(pseudonym)
    _, remaining = await run_in_threadpool(backends.ledger.rekey_counts, pseudonym, generation)
    return RekeyDone(
        results=[
            RekeyResult(
                record_id=item.record.record_id,
                receipt=None if isinstance(outcome, BaseException) else outcome,
                refused=str(outcome) if isinstance(outcome, BaseException) else None,
            )
            for item, outcome in zip(items, outcomes, strict=True)
        ],
        remaining=remaining,
    )


async def _checked(caller: Caller, pseudonym: str, batch: RekeyBatch) -> list[RekeyItem]:
    """Every item checked before anything is stored: one bad item refuses the batch."""
    items = []
    seen: set[str] = set()
    for entry in batch.items:
        tx = parse_signed(entry.transaction, expected_type="rekey", principal=caller.principal)
        record_id = str(tx.body.get("record_id"))
        if record_id in seen:
            raise ValidationFailed(f"record {record_id} is rekeyed twice in one batch")
        seen.add(record_id)
        item = await run_in_threadpool(check_item, caller.backends, pseudonym, tx, entry.capsule)
        await precheck(caller.backends, caller.state.metrics, tx)
        items.append(item)
    return items


async def _commit(caller: Caller, item: RekeyItem) -> ReceiptOut:
    """Submit one rekey; all of a batch are queued at once, so they share blocks."""
    receipt = await submit(caller.backends, caller.state.metrics, item.tx, capsule=item.capsule)
    return receipt_out(receipt)
