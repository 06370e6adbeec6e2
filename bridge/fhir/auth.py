"""The one dependency every `/fhir` route has: a verified bearer token and a scope check.

The token is offered to each configured `TokenVerifier` (`app.state.token_verifiers`) in
turn; the first that accepts it gives the `Actor`. Its SMART scope must then cover the
route's resource and interaction. A scope never widens the ledger: the actor's key-store
identity still needs the patient's grant for every read and write.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from bridge.actors import Actor, TokenVerifier
from bridge.errors import AuthFailed, Forbidden


def authenticate(request: Request) -> Actor:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthFailed("send a bearer token (Authorization: Bearer TOKEN)")
    verifiers: list[TokenVerifier] = list(getattr(request.app.state, "token_verifiers", []))
    if not verifiers:
        raise AuthFailed("this bridge has no token verifiers configured")
    reasons = []
    for verifier in verifiers:
        try:
            return verifier.verify(token.strip())
        except AuthFailed as exc:
            reasons.append(str(exc))
    raise AuthFailed("the bearer token is not accepted: " + "; ".join(reasons))


def allowed(resource: str, interaction: str) -> Callable[[Request], Awaitable[Actor]]:
    """The dependency: an authenticated actor whose scope covers *interaction* on *resource*."""

    async def check(request: Request) -> Actor:
        actor = authenticate(request)
        if not actor.may(resource, interaction):
            raise Forbidden(
                f"the token's scopes do not allow {interaction!r} on {resource} "
                f"(ask for e.g. system/{resource}.{interaction})"
            )
        return actor

    return check
