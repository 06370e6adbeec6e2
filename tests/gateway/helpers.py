"""Test helpers for the gateway: a hand-driven clock, an identity directory, a test client."""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from envelope import IdentityKeys, PublicIdentity, b64encode
from gateway.auth import auth_statement

with warnings.catch_warnings():
    # Starlette announces a future switch of its test client's HTTP library on import.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

__all__ = ["ManualClock", "MemoryDirectory", "TestClient", "login", "signed_token_request"]


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self.now += delta


@dataclass
class MemoryDirectory:
    """Identities held in a dict: the `IdentityDirectory` contract without a ledger."""

    identities: dict[str, PublicIdentity] = field(default_factory=dict)
    suspended: set[str] = field(default_factory=set)

    def add(self, keys: IdentityKeys) -> IdentityKeys:
        self.identities[keys.id] = keys.public()
        return keys

    def identity(self, identity_id: str) -> PublicIdentity | None:
        return self.identities.get(identity_id)

    def is_suspended(self, identity_id: str) -> bool:
        return identity_id in self.suspended


def signed_token_request(keys: IdentityKeys, challenge: dict[str, Any]) -> dict[str, str]:
    statement = auth_statement(
        challenge=challenge["challenge"], identity_id=keys.id, audience=challenge["audience"]
    )
    return {
        "identity_id": keys.id,
        "challenge": challenge["challenge"],
        "signature": b64encode(keys.sign(statement)),
    }


def login(client: Any, keys: IdentityKeys) -> str:
    """Authenticate *keys* through the HTTP API; return the bearer token."""
    response = client.post("/v1/auth/challenge", json={"identity_id": keys.id})
    assert response.status_code == 200, response.text
    response = client.post("/v1/auth/token", json=signed_token_request(keys, response.json()))
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token
