"""Test helpers for the gateway: a hand-driven clock, and actors that use the HTTP API."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from envelope import IdentityKeys, PatientKeys, b64encode, seal_scoped_share
from envelope.scoped import months, next_period, scoped_private_key
from gateway.auth import auth_statement
from ledger.categories import DEFAULT_CATEGORIES
from ledger.wire import builders
from ledger.wire.clock import format_time
from ledger.wire.scoped import grant_months
from ledger.wire.transactions import Transaction

with warnings.catch_warnings():
    # Starlette announces a future switch of its test client's HTTP library on import.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

__all__ = ["ManualClock", "TestClient", "World", "login", "metrics_text", "signed_token_request"]

LOOPBACK_CLIENT = ("127.0.0.1", 50000)

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self.now += delta

    @classmethod
    def system(cls) -> SystemClock:
        """The real clock, for a World driving a gateway that runs on real time."""
        return SystemClock()


class SystemClock(ManualClock):
    """Real time (for benchmarks against a separate gateway process)."""

    def __init__(self) -> None:
        super().__init__()

    def __call__(self) -> datetime:
        return datetime.now(UTC)

    def advance(self, delta: timedelta) -> None:
        raise RuntimeError("the real clock cannot be moved")


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


def metrics_text(client: Any) -> str:
    """The `/metrics` page of *client*'s gateway, fetched as a loopback scraper would.

    A live gateway's client already calls from 127.0.0.1; an in-process test client calls
    from "testclient", so the page is fetched by a second one on a loopback address.
    """
    if isinstance(client, TestClient):
        client = TestClient(client.app, client=LOOPBACK_CLIENT)
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    text: str = response.text
    return text


def tx_json(tx: Transaction) -> dict[str, Any]:
    return tx.to_json()


@dataclass
class World:
    """Actors of one gateway, driven through its HTTP API (an httpx-like client)."""

    client: Any
    clock: ManualClock
    admin: IdentityKeys
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, keys: IdentityKeys) -> dict[str, str]:
        if keys.id not in self.tokens:
            self.tokens[keys.id] = login(self.client, keys)
        return {"Authorization": f"Bearer {self.tokens[keys.id]}"}

    def upload_blob(self, who: IdentityKeys, pseudonym: str, category: str, body: bytes) -> Any:
        """POST /v1/blobs: *body* as a sealed body of *pseudonym*'s *category*."""
        return self.client.post(
            "/v1/blobs",
            params={"pseudonym": pseudonym, "category": category},
            content=body,
            headers={**self.headers(who), "Content-Type": "application/octet-stream"},
        )

    def post_record(self, who: IdentityKeys, tx: Transaction, capsule: bytes) -> Any:
        """POST /v1/records: the record transaction *tx* with its *capsule*."""
        return self.client.post(
            "/v1/records",
            json={"transaction": tx_json(tx), "capsule": b64encode(capsule)},
            headers=self.headers(who),
        )

    def enroll(self, identity_id: str, role: str) -> IdentityKeys:
        keys = IdentityKeys.generate(identity_id, role)
        tx = builders.enroll(self.admin, keys.public(), issued_at=self.clock())
        response = self.client.post(
            "/v1/identities", json=tx_json(tx), headers=self.headers(self.admin)
        )
        assert response.status_code == 201, response.text
        return keys

    def register_patient(self, name: str = "Jane Doe", *, publish: bool = True) -> PatientKeys:
        patient = PatientKeys.generate({"name": name, "birth_date": "1970-01-01"})
        tx = builders.register_patient(
            patient.identity,
            patient.pseudonym,
            patient.patient_key.record_public_key().to_bytes(),
            issued_at=self.clock(),
        )
        response = self.client.post("/v1/patients", json=tx_json(tx))
        assert response.status_code == 201, response.text
        if publish:
            self.publish_keys(patient)
        return patient

    def publish_keys(self, patient: PatientKeys, months: int = 2) -> None:
        """Publish the patient's keys of every category for the clock's month, the one
        before and *months* after (as the SDK does at registration)."""
        first = next_period(self.clock().strftime("%Y-%m"), -1)
        keys = [
            (category.name, period, scoped_private_key(patient.patient_key, category.name, period))
            for category in DEFAULT_CATEGORIES
            for period in (next_period(first, n) for n in range(months + 2))
        ]
        tx = builders.publish_keys(
            patient.identity,
            pseudonym=patient.pseudonym,
            keys=[(c, p, key.public_key().to_bytes()) for c, p, key in keys],
            issued_at=self.clock(),
        )
        response = self.client.post(
            f"/v1/patients/{patient.pseudonym}/keys",
            json=tx_json(tx),
            headers=self.headers(patient.identity),
        )
        assert response.status_code == 201, response.text

    def grant(
        self,
        patient: PatientKeys,
        grantee: IdentityKeys,
        rights: Iterable[str],
        categories: Iterable[str] | str,
        *,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> str:
        now = self.clock()
        tx = builders.grant(
            patient.identity,
            pseudonym=patient.pseudonym,
            grantee=grantee.id,
            rights=rights,
            categories=categories,
            not_before=not_before or now - timedelta(minutes=1),
            not_after=not_after or now + timedelta(days=1),
            issued_at=now,
        )
        response = self.client.post(
            "/v1/permissions", json=tx_json(tx), headers=self.headers(patient.identity)
        )
        assert response.status_code == 201, response.text
        return str(tx.body["permission_id"])

    def revoke(self, patient: PatientKeys, permission_id: str) -> None:
        tx = builders.revoke(
            patient.identity,
            pseudonym=patient.pseudonym,
            permission_id=permission_id,
            issued_at=self.clock(),
        )
        response = self.client.post(
            f"/v1/permissions/{permission_id}/revoke",
            json=tx_json(tx),
            headers=self.headers(patient.identity),
        )
        assert response.status_code == 200, response.text

    def share_key(self, patient: PatientKeys, grantee: IdentityKeys) -> None:
        """A scoped share of what the grantee's live read permissions cover."""
        scope = self.grant_scope(patient, grantee)
        sealed = seal_scoped_share(
            patient.patient_key,
            pseudonym=patient.pseudonym,
            grantee_id=grantee.id,
            grantee_key=grantee.public().encryption_key,
            scope=scope,
        )
        tx = builders.key_share(
            patient.identity,
            pseudonym=patient.pseudonym,
            grantee=grantee.id,
            sealed_key=sealed,
            scope=scope,
            issued_at=self.clock(),
        )
        response = self.client.post(
            "/v1/key-shares", json=tx_json(tx), headers=self.headers(patient.identity)
        )
        assert response.status_code == 201, response.text

    def grant_scope(self, patient: PatientKeys, grantee: IdentityKeys) -> list[tuple[str, str]]:
        """(category, month) of every live read permission of *grantee* on *patient*."""
        response = self.client.get(
            f"/v1/patients/{patient.pseudonym}/permissions",
            headers=self.headers(patient.identity),
        )
        assert response.status_code == 200, response.text
        now = format_time(self.clock())
        scope: set[tuple[str, str]] = set()
        for permission in response.json()["permissions"]:
            if (
                permission["grantee"] != grantee.id
                or permission["revoked"]
                or "read" not in permission["rights"]
                or permission["not_after"] <= now
            ):
                continue
            first, last = grant_months(permission["not_before"], permission["not_after"])
            names = permission["categories"]
            if names == "all":
                names = [category.name for category in DEFAULT_CATEGORIES]
            scope.update((c, m) for c in names for m in months(first, last))
        return sorted(scope)

    def suspend(self, keys: IdentityKeys) -> None:
        tx = builders.suspend(self.admin, keys.id, "test", issued_at=self.clock())
        response = self.client.post(
            f"/v1/identities/{keys.id}/suspend", json=tx_json(tx), headers=self.headers(self.admin)
        )
        assert response.status_code == 201, response.text

    def ingest_pdf(
        self, uploader: IdentityKeys, patient: PatientKeys, category: str, pdf: bytes
    ) -> dict[str, Any]:
        response = self.client.post(
            "/v1/documents",
            params={"pseudonym": patient.pseudonym, "category": category, "filename": "r.pdf"},
            content=pdf,
            headers={**self.headers(uploader), "Content-Type": "application/pdf"},
        )
        assert response.status_code == 201, response.text
        record: dict[str, Any] = response.json()["record"]
        return record
