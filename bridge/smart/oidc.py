"""`OidcTokenVerifier`: clinicians' JWTs from the hospital's OpenID Connect provider.

Configured with the provider's issuer, its JWKS (inline or a file: nothing is fetched), the
audience the tokens must name (the bridge's client id at the provider), the algorithms
allowed, and the claim that names the clinician: its value is the key-store identity, or is
looked up in a table when one is given (e.g. `preferred_username` → identity). Scopes come
from the token's `scope` claim (a space-separated string) or `scp` (a list).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joserfc.jwk import KeySet

from bridge.actors import Actor
from bridge.errors import AuthFailed, BridgeUsageError
from bridge.smart.jose import (
    SIGNATURE_ALGORITHMS,
    MalformedToken,
    audience_matches,
    key_for,
    load_jwks,
    peek,
    verified_claims,
)


@dataclass(frozen=True, slots=True)
class OidcSettings:
    """The hospital's OpenID Connect provider as the bridge trusts it."""

    issuer: str
    jwks: KeySet
    audience: str
    algorithms: frozenset[str] = field(default=frozenset({"RS256", "ES256"}))
    identity_claim: str = "ehrgate_identity"
    identities: Mapping[str, str] | None = None
    """When given, the claim's value is looked up here; unknown values are refused."""
    leeway: int = 30

    @classmethod
    def load(
        cls,
        *,
        issuer: str,
        jwks: Mapping[str, Any] | str | Path,
        audience: str,
        algorithms: Collection[str] = ("RS256", "ES256"),
        identity_claim: str = "ehrgate_identity",
        identities: Mapping[str, str] | None = None,
        leeway: int = 30,
    ) -> OidcSettings:
        """Settings with the JWKS given inline or as a file path."""
        chosen = frozenset(algorithms)
        if not chosen or not chosen <= SIGNATURE_ALGORITHMS:
            raise BridgeUsageError(
                f"OpenID Connect algorithms must be among {', '.join(sorted(SIGNATURE_ALGORITHMS))}"
            )
        if not issuer or not audience or not identity_claim:
            raise BridgeUsageError("OpenID Connect needs an issuer, an audience and a claim")
        keys = load_jwks(jwks, f"OpenID Connect provider {issuer}")
        return cls(issuer, keys, audience, chosen, identity_claim, identities, leeway)


class OidcTokenVerifier:
    """Implements `bridge.actors.TokenVerifier` for clinicians."""

    def __init__(self, settings: OidcSettings, *, clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._clock = clock

    def verify(self, token: str) -> Actor:
        claims = self._verified(token)
        self._check_claims(claims)
        identity = self._identity(claims)
        return Actor(
            kind="clinician", identity=identity, subject=claims["sub"], scopes=_scopes(claims)
        )

    def _verified(self, token: str) -> dict[str, Any]:
        try:
            header, unverified = peek(token)
        except MalformedToken as exc:
            raise AuthFailed(f"the ID token is {exc}") from exc
        alg = header.get("alg")
        if alg not in self._settings.algorithms:
            raise AuthFailed(f"the token's alg {alg!r} is not allowed")
        if unverified.get("iss") != self._settings.issuer:
            raise AuthFailed(
                f"the token was issued by {unverified.get('iss')!r}, not {self._settings.issuer}"
            )
        try:
            return verified_claims(token, key_for(self._settings.jwks, header), str(alg))
        except (LookupError, ValueError) as exc:
            raise AuthFailed(f"the token does not verify: {exc}") from exc

    def _check_claims(self, claims: dict[str, Any]) -> None:
        settings, now = self._settings, self._clock()
        if claims.get("iss") != settings.issuer:
            raise AuthFailed("the token's issuer is not the configured provider")
        if not audience_matches(claims.get("aud"), settings.audience):
            raise AuthFailed(f"the token is not for {settings.audience} (aud)")
        exp = claims.get("exp")
        if (
            not isinstance(exp, int | float)
            or isinstance(exp, bool)
            or exp + settings.leeway <= now
        ):
            raise AuthFailed("the token has expired (or has no exp)")
        nbf = claims.get("nbf")
        if nbf is not None and (not _number(nbf) or float(nbf) - settings.leeway > now):
            raise AuthFailed("the token is not valid yet (nbf)")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise AuthFailed("the token has no sub")

    def _identity(self, claims: dict[str, Any]) -> str:
        value = claims.get(self._settings.identity_claim)
        if not isinstance(value, str) or not value:
            raise AuthFailed(f"the token has no {self._settings.identity_claim} claim")
        if self._settings.identities is None:
            return value
        identity = self._settings.identities.get(value)
        if identity is None:
            raise AuthFailed(f"no clinician identity is mapped for {value!r}")
        return identity


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    scope = claims.get("scope")
    if isinstance(scope, str):
        return frozenset(scope.split())
    scp = claims.get("scp")
    if isinstance(scp, list):
        return frozenset(s for s in scp if isinstance(s, str))
    return frozenset()
