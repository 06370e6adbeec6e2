"""Erasure: an `erase` signed by the patient (or an admin with a legal reason), then every
copy of the erased records deleted (`gateway.erasure`) and the patient told."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from gateway.access import read_time
from gateway.deps import Caller, CallerDep
from gateway.erasure import delete_erased, erased_by
from gateway.errors import ServiceUnavailable, ValidationFailed
from gateway.events import GatewayEvent
from gateway.models import (
    ErasureOut,
    PendingDeletion,
    Pseudonym,
    RecordId,
    SignedTransaction,
    problem_responses,
)
from gateway.refusals import audited
from gateway.transactions import parse_signed, submit
from gateway.views import receipt_out
from ledger.errors import LedgerError
from ledger.wire.clock import format_time
from ledger.wire.transactions import Transaction

router = APIRouter(prefix="/v1", tags=["erasure"], responses=problem_responses(401, 403, 409))


@router.post("/records/{record_id}/erase", response_model=ErasureOut)
async def erase_record(
    record_id: RecordId, transaction: SignedTransaction, caller: CallerDep
) -> ErasureOut:
    """Erase one record (an `erase` of scope "record" by its patient, or an admin with a reason)."""
    async with audited(caller, "erase") as scope:
        scope.about(transaction.body.get("pseudonym"))
        tx = parse_signed(transaction, expected_type="erase", principal=caller.principal)
        if tx.body.get("scope") != "record" or tx.body.get("record_id") != record_id:
            raise ValidationFailed("the transaction erases another record than the path names")
        return await _erase(caller, tx)


@router.post("/patients/{pseudonym}/erase", response_model=ErasureOut)
async def erase_patient(
    pseudonym: Pseudonym, transaction: SignedTransaction, caller: CallerDep
) -> ErasureOut:
    """Erase every record of a patient (scope "patient": the right to be forgotten)."""
    async with audited(caller, "erase") as scope:
        scope.about(transaction.body.get("pseudonym"))
        tx = parse_signed(transaction, expected_type="erase", principal=caller.principal)
        if tx.body.get("scope") != "patient" or tx.body.get("pseudonym") != pseudonym:
            raise ValidationFailed(
                'this route takes an erase of scope "patient" of the pseudonym the path names'
            )
        return await _erase(caller, tx)


async def _erase(caller: Caller, tx: Transaction) -> ErasureOut:
    backends, state = caller.backends, caller.state
    receipt = await submit(backends, state.metrics, tx)
    pseudonym = str(tx.body["pseudonym"])
    try:
        record_ids = await run_in_threadpool(erased_by, backends.ledger, tx.body, receipt.index)
    except (LedgerError, sa.exc.SQLAlchemyError) as exc:
        raise ServiceUnavailable(
            f"the erase is on the ledger (entry {receipt.index}), but the database could not "
            "be read to delete the copies; `ehrgate gc` deletes them"
        ) from exc
    done = await run_in_threadpool(delete_erased, backends.ledger, backends.store, record_ids)
    state.events.emit(
        GatewayEvent(
            kind="erasure_done",
            event_id=receipt.tx_hash,
            pseudonym=pseudonym,
            at=format_time(read_time(state.clock, backends.ledger)),
            details={
                "scope": str(tx.body["scope"]),
                "record_ids": record_ids,
                "complete": "yes" if done.complete else "no",
            },
        )
    )
    return ErasureOut(
        scope=str(tx.body["scope"]),
        pseudonym=pseudonym,
        record_ids=record_ids,
        receipt=receipt_out(receipt),
        transaction=SignedTransaction.model_validate(tx.to_json()),
        deleted=done.deleted,
        pending=[PendingDeletion(locator=loc, problem=why) for loc, why in done.pending],
        complete=done.complete,
    )
