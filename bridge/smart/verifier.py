"""`SmartTokenVerifier`: a bearer access token of this bridge → the system `Actor` it names.

The client must still be registered, and its granted scopes are cut to what it is allowed
now, so a client removed or narrowed in the settings loses access at once.
"""

from __future__ import annotations

from bridge.actors import Actor
from bridge.errors import AuthFailed
from bridge.smart.config import SmartConfig
from bridge.smart.tokens import AccessTokens


class SmartTokenVerifier:
    """Implements `bridge.actors.TokenVerifier` for SMART Backend Services clients."""

    def __init__(self, config: SmartConfig, tokens: AccessTokens) -> None:
        self._config = config
        self._tokens = tokens

    def verify(self, token: str) -> Actor:
        claims = self._tokens.verify(token)
        client = self._config.clients.get(claims["sub"])
        if client is None:
            raise AuthFailed(f"client {claims['sub']} is no longer registered")
        scopes = frozenset(claims["scope"].split()) & client.scopes
        return Actor(
            kind="system", identity=client.identity, subject=client.client_id, scopes=scopes
        )
