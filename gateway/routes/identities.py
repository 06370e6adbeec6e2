"""Identities: the caller's own, public keys of others (and the keys they held before a
rotation), enrollment, suspension, reinstatement and key rotation (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from gateway.deps import Caller, CallerDep
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
from gateway.refusals import audited, require_admin
from gateway.transactions import parse_signed, submit
from gateway.views import identity_json, receipt_out

router = APIRouter(
    prefix="/v1/identities", tags=["identities"], responses=problem_responses(401, 403)
)

# An admin's act refused to its caller (not an admin, a transaction of another signer, a
# rule saying this caller may not) is a denied `access` entry, as for any other write.
EnrollDep = Annotated[Caller, Depends(require_admin("enroll"))]
SuspendDep = Annotated[Caller, Depends(require_admin("suspend"))]
ReinstateDep = Annotated[Caller, Depends(require_admin("reinstate"))]
RotateDep = Annotated[Caller, Depends(require_admin("rotate_keys"))]


@router.get("/me", response_model=IdentityOut)
async def me(caller: CallerDep) -> Response:
    """The authenticated caller's own identity."""
    identity = caller.backends.ledger.identity(caller.principal.id)
    if identity is None:
        raise NotFound(f"identity {caller.principal.id} is not enrolled")
    return identity_json(identity)


@router.post("", response_model=Accepted, status_code=201, responses=problem_responses(409))
async def enroll(transaction: SignedTransaction, admin: EnrollDep) -> Accepted:
    """Enroll a clinician, system, auditor or admin (an admin-signed `enroll`)."""
    async with audited(admin, "enroll"):
        tx = parse_signed(transaction, expected_type="enroll", principal=admin.principal)
        receipt = await submit(admin.backends, admin.state.metrics, tx)
    return Accepted(receipt=receipt_out(receipt))


@router.get("/{identity_id}", response_model=IdentityOut)
async def get_identity(
    identity_id: Annotated[str, Path(min_length=1, max_length=200)], caller: CallerDep
) -> Response:
    """An identity's role and public keys (to verify its signatures or seal to it)."""
    identity = caller.backends.ledger.identity(identity_id)
    if identity is None or identity.role == "ledger":
        raise NotFound(f"there is no identity {identity_id}")
    # Made straight from the ledger's row (the fields of IdentityOut, the documented model).
    return identity_json(identity)


@router.post(
    "/{identity_id}/suspend",
    response_model=Accepted,
    status_code=201,
    responses=problem_responses(409),
)
async def suspend(
    identity_id: IdentityId,
    transaction: SignedTransaction,
    admin: SuspendDep,
) -> Accepted:
    """Suspend an identity at once (an admin-signed `suspend`); its tokens stop working."""
    async with audited(admin, "suspend"):
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
    admin: ReinstateDep,
) -> Accepted:
    """Lift a suspension (an admin-signed `reinstate` with a reason); it may log in again."""
    async with audited(admin, "reinstate"):
        tx = parse_signed(transaction, expected_type="reinstate", principal=admin.principal)
        if tx.body.get("identity_id") != identity_id:
            raise ValidationFailed(
                "the transaction reinstates another identity than the path names"
            )
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
    admin: RotateDep,
) -> Accepted:
    """Replace an identity's keys (an admin-signed `rotate_keys` with its holder's request)."""
    async with audited(admin, "rotate_keys"):
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
