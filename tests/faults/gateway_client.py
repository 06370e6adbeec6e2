"""A small client of the gateway's HTTP API for the fault tests (httpx, one token per actor).

It does what the SDK does — seal locally, stream the body, commit a signed record — and
what a reader does — fetch capsule and body and open them — and nothing more, so that the
fault tests depend only on the HTTP API.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from envelope import IdentityKeys, PatientKeys, b64encode, open_body, open_capsule, seal
from ledger import Transaction
from ledger.wire import builders as b
from ledger.wire.clock import format_time


class Unavailable(Exception):
    """The gateway did not answer (killed, restarting) or answered 503."""


class Refused(Exception):
    """The gateway answered with an unexpected status; `status` and `problem` say which."""

    def __init__(self, status: int, problem: str) -> None:
        super().__init__(f"HTTP {status}: {problem}")
        self.status = status
        self.problem = problem


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Actor:
    """One identity talking to one gateway; logs in again when its token is refused."""

    client: httpx.Client
    keys: IdentityKeys
    token: str | None = None

    def _login(self) -> None:
        challenge = self._call("POST", "/v1/auth/challenge", auth=False,
                               json={"identity_id": self.keys.id})  # fmt: skip
        statement = {
            "purpose": "ehrgate/auth/v1",
            "challenge": challenge["challenge"],
            "identity_id": self.keys.id,
            "audience": challenge["audience"],
        }
        answer = self._call("POST", "/v1/auth/token", auth=False, json={
            "identity_id": self.keys.id,
            "challenge": challenge["challenge"],
            "signature": b64encode(self.keys.sign(statement)),
        })  # fmt: skip
        self.token = str(answer["access_token"])

    def _call(self, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> Any:
        return self.request(method, path, auth=auth, **kwargs).json()

    def request(
        self, method: str, path: str, *, auth: bool = True, **kwargs: Any
    ) -> httpx.Response:
        """Send a request; log in (again) on 401; raise Unavailable or Refused."""
        for _ in range(2):
            headers = dict(kwargs.pop("headers", {}) or {})
            if auth:
                if self.token is None:
                    self._login()
                headers["Authorization"] = f"Bearer {self.token}"
            try:
                response = self.client.request(method, path, headers=headers, **kwargs)
            except httpx.TransportError as exc:
                self.token = None  # a restarted gateway knows no token
                raise Unavailable(str(exc)) from exc
            if response.status_code == 401 and auth:
                self.token = None
                continue
            from_gateway = "problem+json" in response.headers.get("content-type", "")
            if response.status_code == 503 or (
                response.status_code in (502, 504) and not from_gateway
            ):
                # 503 from the gateway; 502 and 504 from a load balancer whose replica died
                # (the gateway's own 502, a failed integrity check, is a refusal).
                raise Unavailable(response.text)
            if response.status_code >= 300:
                raise Refused(response.status_code, response.text)
            return response
        raise Refused(401, "the gateway refused a fresh token")

    def post_tx(self, path: str, tx: Transaction) -> Any:
        return self._call("POST", path, json=tx.to_json())


def enroll(admin: Actor, identity_id: str, role: str) -> IdentityKeys:
    keys = IdentityKeys.generate(identity_id, role)
    admin.post_tx("/v1/identities", b.enroll(admin.keys, keys.public(), issued_at=now()))
    return keys


def register_patient(anonymous: Actor, name: str) -> PatientKeys:
    patient = PatientKeys.generate({"name": name, "birth_date": "1970-01-01"})
    tx = b.register_patient(
        patient.identity,
        patient.pseudonym,
        patient.patient_key.record_public_key().to_bytes(),
        issued_at=now(),
    )
    anonymous.request("POST", "/v1/patients", auth=False, json=tx.to_json())
    return patient


def grant(patient: Actor, pseudonym: str, grantee: str, rights: list[str]) -> str:
    tx = b.grant(
        patient.keys, pseudonym=pseudonym, grantee=grantee, rights=rights, categories="all",
        not_before=now() - timedelta(minutes=1), not_after=now() + timedelta(days=1),
        issued_at=now(),
    )  # fmt: skip
    patient.post_tx("/v1/permissions", tx)
    return str(tx.body["permission_id"])


def upload(uploader: Actor, patient: PatientKeys, category: str, plaintext: bytes) -> str:
    """Seal, stream the body, commit the signed record; returns the record id once the
    gateway acknowledged the commit (HTTP 201)."""
    created_at = format_time(now())
    body = io.BytesIO()
    sealed = seal(
        io.BytesIO(plaintext),
        body,
        recipients=[(patient.pseudonym, patient.patient_key.record_public_key())],
        filename="report.pdf",
        content_type="application/pdf",
        pseudonym=patient.pseudonym,
        category=category,
        created_at=created_at,
        uploader_id=uploader.keys.id,
        signer=uploader.keys,
    )
    blob = uploader._call(
        "POST", "/v1/blobs", content=body.getvalue(),
        params={"pseudonym": patient.pseudonym, "category": category, "sha256": sealed.body_sha256},
        headers={"Content-Type": "application/octet-stream"},
    )  # fmt: skip
    tx = b.record(
        uploader.keys, pseudonym=patient.pseudonym, category=category,
        body_sha256=blob["sha256"], size=blob["size"], locators=blob["locators"],
        capsule_sha256=sealed.capsule_sha256, content_type="application/pdf",
        created_at=created_at, issued_at=now(),
    )  # fmt: skip
    committed = uploader._call(
        "POST", "/v1/records",
        json={"transaction": tx.to_json(), "capsule": b64encode(sealed.capsule)},
    )  # fmt: skip
    return str(committed["record"]["record_id"])


def fetch_and_open(reader: Actor, patient: PatientKeys, record_id: str) -> bytes:
    """The plaintext of a record, as its patient (who holds K) reads it through the gateway."""
    capsule = reader.request("GET", f"/v1/records/{record_id}/capsule").content
    body = reader.request("GET", f"/v1/records/{record_id}/body").content
    opened = open_capsule(capsule, patient.patient_key.record_private_key(), patient.pseudonym)
    return b"".join(open_body([body], opened))


def listed_record_ids(reader: Actor, pseudonym: str) -> set[str]:
    answer = reader._call("GET", f"/v1/patients/{pseudonym}/records")
    return {str(r["record_id"]) for r in answer["records"]}
