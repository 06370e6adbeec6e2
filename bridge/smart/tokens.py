"""The bridge's own access tokens: short JWTs it signs (ES256, a P-256 key of its own).

Claims: `iss` and `aud` the token endpoint URL, `sub` and `client_id` the client, `scope`
the granted scopes, `iat`, `exp` (≤ 5 minutes), `jti`; header `typ` is `at+jwt` (RFC 9068),
so neither a client assertion nor any other JWT passes for one. Without a configured key the
bridge makes one at start: tokens then end with the process, which at ≤ 5 minutes is fine.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey

from bridge.errors import AuthFailed, BridgeUsageError
from bridge.smart.jose import MalformedToken, peek, verified_claims

ACCESS_TOKEN_TYPE = "at+jwt"
_ALG = "ES256"


class AccessTokens:
    """Issues and verifies the bridge's access tokens."""

    def __init__(
        self,
        issuer: str,
        *,
        lifetime: int = 300,
        key: ECKey | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if key is not None and (key.as_dict().get("crv") != "P-256" or not key.is_private):
            raise BridgeUsageError("the access token key must be a private EC P-256 key")
        self._key = key or ECKey.generate_key("P-256", parameters={"kid": "bridge"}, private=True)
        self._issuer = issuer
        self._lifetime = lifetime
        self._clock = clock

    @property
    def lifetime(self) -> int:
        return self._lifetime

    def issue(self, client_id: str, scopes: frozenset[str]) -> str:
        """A token for *client_id* with *scopes*, valid for `lifetime` seconds."""
        now = int(self._clock())
        claims = {
            "iss": self._issuer,
            "aud": self._issuer,
            "sub": client_id,
            "client_id": client_id,
            "scope": " ".join(sorted(scopes)),
            "iat": now,
            "exp": now + self._lifetime,
            "jti": secrets.token_urlsafe(16),
        }
        header = {"alg": _ALG, "typ": ACCESS_TOKEN_TYPE, "kid": self._key.kid}
        return jwt.encode(header, claims, self._key, algorithms=[_ALG], default_type=None)

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a token this bridge issued and that has not expired."""
        try:
            header, _ = peek(token)
        except MalformedToken as exc:
            raise AuthFailed(f"the bearer token is {exc}") from exc
        if header.get("alg") != _ALG or header.get("typ") != ACCESS_TOKEN_TYPE:
            raise AuthFailed("the bearer token is not an access token of this bridge")
        try:
            claims = verified_claims(token, self._key, _ALG)
        except ValueError as exc:
            raise AuthFailed(f"the bearer token is not valid: {exc}") from exc
        if claims.get("iss") != self._issuer or claims.get("aud") != self._issuer:
            raise AuthFailed("the bearer token was issued for another endpoint")
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp <= self._clock():
            raise AuthFailed("the bearer token has expired; request a new one")
        if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("scope"), str):
            raise AuthFailed("the bearer token lacks sub or scope")
        return claims
