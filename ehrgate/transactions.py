"""The ledger transactions a client signs, built here with the envelope alone.

The wire form is the ledger's (docs/ledger.md): `{type, body, signer, signature}`, the
signature being Ed25519 over the RFC 8785 canonical JSON of `{type, body, signer}`, every
body carrying a random 128-bit `tx_id` and its `issued_at`. A transaction's name on the log
is its RFC 9162 leaf hash, SHA-256(0x00 ‖ canonical JSON of the whole transaction).

The SDK builds and checks transactions without importing the ledger package: a client, an
auditor's especially, should not need the server's code (or its database layer) to check
what the server says. `tests/client/test_transactions.py` pins this form to the ledger's.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from envelope import (
    EnvelopeError,
    IdentityKeys,
    PublicIdentity,
    b64decode,
    b64encode,
    canonical_json,
)

LEDGER_ID = "ledger"
"""The identity id of the ledger's own key (it signs tree heads and on-behalf records)."""


def format_time(moment: datetime) -> str:
    """The ledger's time form: RFC 3339 UTC with microseconds, e.g. 2030-01-31T12:00:00.000000Z."""
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_id() -> str:
    """128 random bits as 32 lowercase hex characters (transaction, permission, record ids)."""
    return secrets.token_hex(16)


def leaf_hash(encoded: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + encoded).digest()


@dataclass(frozen=True, slots=True)
class Transaction:
    """A signed ledger transaction."""

    type: str
    body: dict[str, Any]
    signer: str
    signature: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "body": self.body,
            "signer": self.signer,
            "signature": b64encode(self.signature),
        }

    @property
    def tx_hash(self) -> str:
        """The leaf hash of this transaction on the log, as hex."""
        return leaf_hash(canonical_json(self.to_json())).hex()

    @classmethod
    def from_json(cls, data: Any) -> Transaction:
        """Read the wire form; ValueError when it is not one."""
        if not isinstance(data, dict) or set(data) != {"type", "body", "signer", "signature"}:
            raise ValueError("a transaction is {type, body, signer, signature}")
        tx_type, body, signer, signature = (
            data["type"],
            data["body"],
            data["signer"],
            data["signature"],
        )
        if not isinstance(tx_type, str) or not isinstance(body, dict):
            raise ValueError("a transaction's type is text and its body an object")
        if not isinstance(signer, str) or not isinstance(signature, str):
            raise ValueError("a transaction's signer and signature are text")
        try:
            raw = b64decode(signature, length=64, what="the signature")
        except EnvelopeError as exc:
            raise ValueError(str(exc)) from exc
        return cls(tx_type, body, signer, raw)


def sign(actor: IdentityKeys, tx_type: str, fields: dict[str, Any]) -> Transaction:
    """Sign a *tx_type* transaction with body *fields* plus a fresh tx_id and issued_at."""
    body = {**fields, "tx_id": new_id(), "issued_at": format_time(datetime.now(UTC))}
    payload = {"type": tx_type, "body": body, "signer": actor.id}
    return Transaction(tx_type, body, actor.id, actor.signing_key.sign(payload))


def _categories(categories: Iterable[str] | str) -> list[str] | str:
    return "all" if categories == "all" else sorted(categories)


def enroll(admin: IdentityKeys, identity: PublicIdentity) -> Transaction:
    return sign(admin, "enroll", {"identity": identity.to_json()})


def suspend(admin: IdentityKeys, identity_id: str, reason: str) -> Transaction:
    return sign(admin, "suspend", {"identity_id": identity_id, "reason": reason})


def register_patient(
    patient: IdentityKeys, pseudonym: str, record_public_key: bytes
) -> Transaction:
    return sign(
        patient,
        "register_patient",
        {
            "pseudonym": pseudonym,
            "identity": patient.public().to_json(),
            "record_public_key": b64encode(record_public_key),
        },
    )


def grant(
    patient: IdentityKeys,
    *,
    pseudonym: str,
    grantee: str,
    rights: Iterable[str],
    categories: Iterable[str] | str,
    not_before: str,
    not_after: str,
    study_id: str | None = None,
    anonymise: bool | None = None,
    permission_id: str | None = None,
) -> Transaction:
    fields: dict[str, Any] = {
        "permission_id": permission_id or new_id(),
        "pseudonym": pseudonym,
        "grantee": grantee,
        "rights": sorted(rights),
        "categories": _categories(categories),
        "not_before": not_before,
        "not_after": not_after,
    }
    if study_id is not None:
        fields["study_id"] = study_id
    if anonymise is not None:
        fields["anonymise"] = anonymise
    return sign(patient, "grant", fields)


def revoke(patient: IdentityKeys, *, pseudonym: str, permission_id: str) -> Transaction:
    return sign(patient, "revoke", {"pseudonym": pseudonym, "permission_id": permission_id})


def key_share(
    patient: IdentityKeys, *, pseudonym: str, grantee: str, sealed_key: bytes
) -> Transaction:
    return sign(
        patient,
        "key_share",
        {"pseudonym": pseudonym, "grantee": grantee, "sealed_key": b64encode(sealed_key)},
    )


def record(
    uploader: IdentityKeys,
    *,
    pseudonym: str,
    category: str,
    body_sha256: str,
    size: int,
    locators: Sequence[str],
    capsule_sha256: str,
    content_type: str,
    created_at: str,
    record_id: str | None = None,
) -> Transaction:
    return sign(
        uploader,
        "record",
        {
            "record_id": record_id or new_id(),
            "pseudonym": pseudonym,
            "category": category,
            "body_sha256": body_sha256,
            "size": size,
            "locators": list(locators),
            "capsule_sha256": capsule_sha256,
            "content_type": content_type,
            "created_at": created_at,
        },
    )


def access_request(
    requester: IdentityKeys,
    *,
    pseudonym: str,
    rights: Iterable[str],
    categories: Iterable[str] | str,
    reason: str,
) -> Transaction:
    return sign(
        requester,
        "access_request",
        {
            "pseudonym": pseudonym,
            "rights": sorted(rights),
            "categories": _categories(categories),
            "reason": reason,
        },
    )
