"""Permissions, key shares and access requests: transactions signed by their actors.

A refusal of any of them (the caller may not) is audited on the ledger (`gateway.refusals`)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from gateway.deps import Caller, CallerDep
from gateway.errors import ValidationFailed
from gateway.events import GatewayEvent
from gateway.models import (
    Accepted,
    AccessRequestOut,
    PermissionGranted,
    ReceiptOut,
    RecordId,
    SignedTransaction,
    StrictModel,
    problem_responses,
)
from gateway.refusals import audited
from gateway.transactions import parse_signed, submit
from gateway.views import access_request_out, permission_out, receipt_out
from ledger.results import AccessRequest
from ledger.wire.blocks import Receipt

router = APIRouter(prefix="/v1", tags=["permissions"], responses=problem_responses(401, 403, 409))


class AccessRequested(StrictModel):
    access_request: AccessRequestOut
    receipt: ReceiptOut


@router.post("/permissions", response_model=PermissionGranted, status_code=201)
async def grant(transaction: SignedTransaction, caller: CallerDep) -> PermissionGranted:
    """Grant a time-bounded permission (a `grant` signed by the patient)."""
    async with audited(caller, "grant") as scope:
        scope.about(transaction.body.get("pseudonym"))
        tx = parse_signed(transaction, expected_type="grant", principal=caller.principal)
        receipt = await submit(caller.backends, caller.state.metrics, tx)
    permission = caller.backends.ledger.permission(str(tx.body["permission_id"]))
    assert permission is not None
    return PermissionGranted(permission=permission_out(permission), receipt=receipt_out(receipt))


@router.post("/permissions/{permission_id}/revoke", response_model=PermissionGranted)
async def revoke(
    permission_id: RecordId,
    transaction: SignedTransaction,
    caller: CallerDep,
) -> PermissionGranted:
    """Revoke a permission at once (a `revoke` signed by the patient)."""
    async with audited(caller, "revoke") as scope:
        scope.about(transaction.body.get("pseudonym"))
        tx = parse_signed(transaction, expected_type="revoke", principal=caller.principal)
        if tx.body.get("permission_id") != permission_id:
            raise ValidationFailed("the transaction revokes another permission than the path names")
        receipt = await submit(caller.backends, caller.state.metrics, tx)
    permission = caller.backends.ledger.permission(permission_id)
    assert permission is not None
    return PermissionGranted(permission=permission_out(permission), receipt=receipt_out(receipt))


@router.post("/key-shares", response_model=Accepted, status_code=201)
async def deposit_key_share(transaction: SignedTransaction, caller: CallerDep) -> Accepted:
    """Deposit a scoped key share (a `key_share` signed by the patient, with its scope)."""
    async with audited(caller, "deposit_key_share") as scope:
        scope.about(transaction.body.get("pseudonym"))
        tx = parse_signed(transaction, expected_type="key_share", principal=caller.principal)
        if "scope" not in tx.body:
            raise ValidationFailed(
                "a key share must be scoped (body.scope: the category/month keys it carries):"
                " the patient key K itself is no longer shared; update the client"
            )
        receipt = await submit(caller.backends, caller.state.metrics, tx)
    return Accepted(receipt=receipt_out(receipt))


@router.post("/access-requests", response_model=AccessRequested, status_code=201)
async def request_access(transaction: SignedTransaction, caller: CallerDep) -> AccessRequested:
    """Ask a patient for rights (an `access_request` signed by a clinician or system)."""
    async with audited(caller, "request_access") as scope:
        scope.about(transaction.body.get("pseudonym"))
        tx = parse_signed(transaction, expected_type="access_request", principal=caller.principal)
        receipt = await submit(caller.backends, caller.state.metrics, tx)
    requests = await run_in_threadpool(
        caller.backends.ledger.access_requests, str(tx.body["pseudonym"])
    )
    request = next(r for r in requests if r.request_id == tx.tx_id)
    _tell_requested(caller, request, receipt)
    return AccessRequested(access_request=access_request_out(request), receipt=receipt_out(receipt))


def _tell_requested(caller: Caller, request: AccessRequest, receipt: Receipt) -> None:
    """Tell the patient of a new request: ids, rights and categories (never the reason)."""
    details: dict[str, str | list[str]] = {
        "request_id": request.request_id,
        "requester": request.requester,
        "rights": list(request.rights),
        "categories": _names(request.categories),
    }
    if request.not_before is not None and request.not_after is not None:
        details["not_before"], details["not_after"] = request.not_before, request.not_after
    caller.state.events.emit(
        GatewayEvent(
            kind="access_request",
            event_id=receipt.tx_hash,
            pseudonym=request.pseudonym,
            at=receipt.tree_head.timestamp,
            details=details,
        )
    )


def _names(categories: str | tuple[str, ...]) -> str | list[str]:
    return categories if isinstance(categories, str) else list(categories)


@router.post(
    "/access-requests/{request_id}/answer",
    response_model=AccessRequested,
    responses=problem_responses(404),
)
async def answer_request(
    request_id: RecordId, transaction: SignedTransaction, caller: CallerDep
) -> AccessRequested:
    """Approve or decline a request (an `answer_request` signed by the patient)."""
    async with audited(caller, "answer_request") as scope:
        scope.about(transaction.body.get("pseudonym"))
        tx = parse_signed(transaction, expected_type="answer_request", principal=caller.principal)
        if tx.body.get("request_id") != request_id:
            raise ValidationFailed("the transaction answers another request than the path names")
        receipt = await submit(caller.backends, caller.state.metrics, tx)
    request = await run_in_threadpool(caller.backends.ledger.access_request, request_id)
    assert request is not None
    return AccessRequested(access_request=access_request_out(request), receipt=receipt_out(receipt))
