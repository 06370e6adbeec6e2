"""Identities: the caller's own, enrollment and suspension by an admin, public keys."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.deps import PrincipalDep
from gateway.models import IdentityOut, problem_responses

router = APIRouter(
    prefix="/v1/identities", tags=["identities"], responses=problem_responses(401, 403)
)


@router.get("/me", response_model=IdentityOut)
def me(principal: PrincipalDep) -> IdentityOut:
    """The authenticated caller's own identity."""
    return IdentityOut.model_validate(principal.identity.to_json())
