"""Identities: the caller's own, public keys of others (and the keys they held before a
rotation), enrollment, suspension, reinstatement and key rotation (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from starlette.concurrency import run_in_threadpool

from gateway.deps import Caller, CallerDep, require_role
from gateway.errors import NotFound, ValidationFailed
from gateway.models import (
    Accepted,
    IdentityId,
    IdentityKeyOut,
    IdentityKeysOut,
    IdentityOut,
    SignedTransaction,
    problem_responses,
)
from gateway.transactions import parse_signed, submit
from gateway.views import identity_out, receipt_out

router = APIRouter(
    prefix="/v1/identities", tags=["identities"], responses=problem_responses(401, 403)
)

AdminDep = Annotated[Caller, Depends(require_role("admin"))]


@router.get("/me", response_model=IdentityOut)
async def me(caller: CallerDep) -> IdentityOut:
    """The authenticated caller's own identity."""
    identity = caller.backends.ledger.identity(caller.principal.id)
    if identity is None:
        raise NotFound(f"identity {caller.principal.id} is not enrolled")
    return identity_out(identity)


@router.post("", response_model=Accepted, status_code=201, responses=problem_responses(409))
async def enroll(transaction: SignedTransaction, admin: AdminDep) -> Accepted:
    """Enroll a clinician, system, auditor or admin (an admin-signed `enroll`)."""
    tx = parse_signed(transaction, expected_type="enroll", principal=admin.principal)
    receipt = await submit(admin.backends, admin.state.metrics, tx)
    return Accepted(receipt=receipt_out(receipt))


@router.get("/{identity_id}", response_model=IdentityOut)
async def get_identity(
    identity_id: Annotated[str, Path(min_length=1, max_length=200)], caller: CallerDep
) -> IdentityOut:
    """An identity's role and public keys (to verify its signatures or seal to it)."""
    identity = caller.backends.ledger.identity(identity_id)
    if identity is None or identity.role == "ledger":
        raise NotFound(f"there is no identity {identity_id}")
    return identity_out(identity)


@router.post(
    "/{identity_id}/suspend",
    response_model=Accepted,
    status_code=201,
    responses=problem_responses(409),
)
async def suspend(
    identity_id: IdentityId,
    transaction: SignedTransaction,
    admin: AdminDep,
) -> Accepted:
    """Suspend an identity at once (an admin-signed `suspend`); its tokens stop working."""
    tx = parse_signed(transaction, expected_type="suspend", principal=admin.principal)
    if tx.body.get("identity_id") != identity_id:
        raise ValidationFailed("the transaction suspends another identity than the path names")
    receipt = await submit(admin.backends, admin.state.metrics, tx)
    return Accepted(receipt=receipt_out(receipt))


@router.post(
    "/{identity_id}/reinstate",
    response_model=Accepted,
    status_code=201,
    responses=problem_responses(409),
)
async def reinstate(
    identity_id: IdentityId,
    transaction: SignedTransaction,
    admin: AdminDep,
) -> Accepted:
    """Lift a suspension (an admin-signed `reinstate` with a reason); it may log in again."""
    tx = parse_signed(transaction, expected_type="reinstate", principal=admin.principal)
    if tx.body.get("identity_id") != identity_id:
        raise ValidationFailed("the transaction reinstates another identity than the path names")
    receipt = await submit(admin.backends, admin.state.metrics, tx)
    return Accepted(receipt=receipt_out(receipt))


@router.post(
    "/{identity_id}/rotate-keys",
    response_model=Accepted,
    status_code=201,
    responses=problem_responses(409),
)
async def rotate_keys(
    identity_id: IdentityId,
    transaction: SignedTransaction,
    admin: AdminDep,
) -> Accepted:
    """Replace an identity's keys (an admin-signed `rotate_keys` with its holder's request)."""
    tx = parse_signed(transaction, expected_type="rotate_keys", principal=admin.principal)
    if tx.body.get("identity_id") != identity_id:
        raise ValidationFailed(
            "the transaction rotates another identity's keys than the path names"
        )
    receipt = await submit(admin.backends, admin.state.metrics, tx)
    return Accepted(receipt=receipt_out(receipt))


@router.get("/{identity_id}/keys", response_model=IdentityKeysOut)
async def identity_keys(
    identity_id: Annotated[str, Path(min_length=1, max_length=200)], caller: CallerDep
) -> IdentityKeysOut:
    """Every key the identity has held, with the ledger entries each was valid for."""
    keys = await run_in_threadpool(caller.backends.ledger.identity_keys, identity_id)
    current = caller.backends.ledger.identity(identity_id)
    if not keys or current is None or current.role == "ledger":
        raise NotFound(f"there is no identity {identity_id}")
    return IdentityKeysOut(
        id=identity_id,
        keys=[
            IdentityKeyOut(
                signing_public_key=key.signing_key,
                encryption_public_key=key.encryption_key or "",
                valid_from=key.valid_from,
                valid_until=key.valid_until,
            )
            for key in keys
        ],
    )
