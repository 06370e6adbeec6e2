"""Authentication: a challenge, then a bearer token for its Ed25519 signature."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from envelope import b64decode
from envelope.errors import EnvelopeError
from gateway.deps import BackendsDep, StateDep, client_address, directory_of
from gateway.models import Base64, IdentityId, StrictModel, problem_responses
from gateway.refusals import LOGIN_REFUSALS, login_refused

router = APIRouter(prefix="/v1/auth", tags=["auth"])


class ChallengeRequest(StrictModel):
    identity_id: IdentityId


class ChallengeResponse(StrictModel):
    challenge: str = Field(description="Random, single use; sign it before expires_at.")
    expires_at: datetime
    audience: str = Field(description="This gateway's id, part of the signed statement.")


class TokenRequest(StrictModel):
    identity_id: IdentityId
    challenge: str = Field(min_length=1, max_length=128)
    signature: Base64 = Field(
        description="Ed25519 signature over the canonical JSON of {purpose: "
        "'ehrgate/auth/v1', challenge, identity_id, audience}."
    )


class TokenResponse(StrictModel):
    access_token: str
    token_type: str = Field(description="Always 'bearer'.")
    expires_at: datetime
    identity_id: str
    role: str


@router.post("/challenge", response_model=ChallengeResponse, responses=problem_responses(429))
async def challenge(body: ChallengeRequest, request: Request, state: StateDep) -> ChallengeResponse:
    """Get a single-use challenge to sign with an identity key."""
    authenticator, client = state.authenticator, client_address(request)
    if authenticator.blocking:
        issued = await run_in_threadpool(authenticator.challenge, body.identity_id, client=client)
    else:
        issued = authenticator.challenge(body.identity_id, client=client)
    return ChallengeResponse(
        challenge=issued.challenge, expires_at=issued.expires_at, audience=issued.audience
    )


@router.post("/token", response_model=TokenResponse, responses=problem_responses(401, 403, 429))
async def token(
    body: TokenRequest, request: Request, state: StateDep, backends: BackendsDep
) -> TokenResponse:
    """Exchange a signed challenge for a short-lived bearer token."""
    try:
        signature = b64decode(body.signature, length=64, what="signature")
    except EnvelopeError:
        # Still goes through the authenticator: the attempt counts and spends the challenge.
        signature = b""
    try:
        issued = await run_in_threadpool(
            state.authenticator.token,
            body.identity_id,
            body.challenge,
            signature,
            directory=directory_of(backends),
            client=client_address(request),
        )
    except LOGIN_REFUSALS as exc:
        # A refused login as an enrolled identity is on the ledger (gateway.refusals).
        await login_refused(state, backends, body.identity_id, exc)
        raise
    return TokenResponse(
        access_token=issued.token,
        token_type="bearer",
        expires_at=issued.expires_at,
        identity_id=issued.identity.id,
        role=issued.identity.role,
    )
