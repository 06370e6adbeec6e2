"""SMART Backend Services settings: the token endpoint's URL and the registered clients.

A hospital registers each system (its interface engine, its viewer) by client id with the
system's public JWKS (inline or a file), the key-store identity the bridge acts as for it,
and the scopes it may be granted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joserfc.jwk import KeySet

from bridge.errors import BridgeUsageError
from bridge.smart.jose import load_jwks

MAX_LIFETIME = 300
"""Five minutes: the longest an assertion may live and an access token is valid."""
ASSERTION_ALGORITHMS = ("RS384", "ES384")


@dataclass(frozen=True, slots=True)
class SmartClient:
    """A registered backend system."""

    client_id: str
    jwks: KeySet
    identity: str
    """The key-store identity the bridge acts as for this client."""
    scopes: frozenset[str]
    """The scopes it may be granted, e.g. `system/DocumentReference.crs`."""

    @classmethod
    def register(
        cls,
        client_id: str,
        *,
        jwks: Mapping[str, Any] | str | Path,
        identity: str,
        scopes: Iterable[str],
    ) -> SmartClient:
        """A client from settings: *jwks* inline (a JWKS object) or the path of its file."""
        if not client_id or not identity:
            raise BridgeUsageError("a SMART client needs a client id and a key-store identity")
        allowed = frozenset(scopes)
        if not allowed or any(not s or " " in s for s in allowed):
            raise BridgeUsageError(f"SMART client {client_id}: give its scopes, one per entry")
        return cls(client_id, load_jwks(jwks, f"SMART client {client_id}"), identity, allowed)


@dataclass(frozen=True, slots=True)
class SmartConfig:
    """The token endpoint and its clients."""

    token_url: str
    """The absolute URL of `POST /auth/token` as clients reach it: the `aud` their
    assertions must name, and the issuer of the access tokens."""
    clients: Mapping[str, SmartClient]
    token_lifetime: int = MAX_LIFETIME
    leeway: int = 10
    """Seconds of clock skew tolerated on `exp`, `nbf` and `iat`."""
    extra_scopes: frozenset[str] = field(default=frozenset())
    """Scopes to advertise beyond the clients' (e.g. those clinicians' tokens carry)."""

    def __post_init__(self) -> None:
        if not self.token_url.startswith(("https://", "http://")):
            raise BridgeUsageError("the SMART token_url must be an absolute http(s) URL")
        if not 0 < self.token_lifetime <= MAX_LIFETIME:
            raise BridgeUsageError(f"access tokens live 1 to {MAX_LIFETIME} seconds")
        for client_id, client in self.clients.items():
            if client.client_id != client_id:
                raise BridgeUsageError(
                    f"SMART client registered as {client_id} names itself {client.client_id}"
                )

    def scopes_supported(self) -> list[str]:
        """Every scope a client may be granted, and the extra ones."""
        every = set(self.extra_scopes)
        for client in self.clients.values():
            every |= client.scopes
        return sorted(every)
