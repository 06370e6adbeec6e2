"""Verifying a SMART Backend Services client assertion (`private_key_jwt`, RFC 7523 §3).

Every failure is an OAuth `invalid_client` (HTTP 401), as RFC 7523 §3.2 requires for a
client assertion that is not valid; the description says what was wrong.
"""

from __future__ import annotations

from typing import Any

from bridge.errors import TokenRequestRefused
from bridge.smart.config import ASSERTION_ALGORITHMS, MAX_LIFETIME, SmartClient, SmartConfig
from bridge.smart.jose import MalformedToken, audience_matches, key_for, peek, verified_claims
from bridge.smart.replay import ReplayCache, ReplayCacheFull


def refuse(description: str) -> TokenRequestRefused:
    return TokenRequestRefused("invalid_client", description, 401)


def verify_assertion(
    assertion: str, config: SmartConfig, replay: ReplayCache, now: float
) -> SmartClient:
    """The registered client *assertion* authenticates; raises `TokenRequestRefused`."""
    try:
        header, unverified = peek(assertion)
    except MalformedToken as exc:
        raise refuse(f"client_assertion is {exc}") from exc
    alg = header.get("alg")
    if alg not in ASSERTION_ALGORITHMS:
        raise refuse(f"client_assertion alg {alg!r} is not accepted; sign with RS384 or ES384")
    client = config.clients.get(str(unverified.get("iss")))
    if client is None:
        raise refuse(f"unknown client {unverified.get('iss')!r}: register its JWKS first")
    if not header.get("kid"):
        raise refuse("client_assertion header has no kid")
    try:
        key = key_for(client.jwks, header)
        claims = verified_claims(assertion, key, str(alg))
    except (LookupError, ValueError) as exc:
        raise refuse(f"client_assertion of {client.client_id}: {exc}") from exc
    _check_claims(claims, client, config, now)
    try:
        fresh = replay.use(
            client.client_id, claims["jti"], float(claims["exp"]) + config.leeway, now
        )
    except ReplayCacheFull as exc:
        raise refuse(str(exc)) from exc
    if not fresh:
        raise refuse("client_assertion jti was already used; make a new assertion per request")
    return client


def _check_claims(
    claims: dict[str, Any], client: SmartClient, config: SmartConfig, now: float
) -> None:
    if claims.get("iss") != client.client_id or claims.get("sub") != client.client_id:
        raise refuse("client_assertion iss and sub must both be the client id")
    if not audience_matches(claims.get("aud"), config.token_url):
        raise refuse(f"client_assertion aud must be the token endpoint {config.token_url}")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise refuse("client_assertion has no numeric exp")
    if exp <= now - config.leeway:
        raise refuse("client_assertion has expired")
    if exp > now + MAX_LIFETIME + config.leeway:
        raise refuse(f"client_assertion exp is more than {MAX_LIFETIME} seconds ahead")
    nbf = claims.get("nbf")
    if isinstance(nbf, int | float) and nbf > now + config.leeway:
        raise refuse("client_assertion is not valid yet (nbf)")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise refuse("client_assertion has no jti")
