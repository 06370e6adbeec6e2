"""Who signs and whom a transaction names: the signer's identity, its role, the owner of a
pseudonym, an enrolled identity, and an enclosed public identity."""

from __future__ import annotations

import functools
from typing import Any

from envelope import EnvelopeError, PublicIdentity, b64decode
from ledger.errors import MalformedTransaction
from ledger.rules.validators import IDENTIFIER, deny
from ledger.state import Row, StateView
from ledger.wire.transactions import Transaction


@functools.lru_cache(maxsize=4096)
def signing_key_bytes(text: str) -> bytes:
    """The raw key of an identity row's base64 signing_key (cached: a key signs many)."""
    return b64decode(text)


def signer_row(state: StateView, tx: Transaction) -> Row:
    """The signer's identity row, after checking it exists, is active and signed tx."""
    row = state.get("identities", tx.signer)
    if row is None:
        raise deny("unknown-signer", f"signer {tx.signer!r} is not enrolled on this ledger")
    if row["suspended_at"] is not None:
        raise deny(
            "suspended", f"identity {tx.signer!r} is suspended and can do nothing on the ledger"
        )
    tx.verify_signature(signing_key_bytes(row["signing_key"]))
    return row


def require_role(row: Row, *roles: str) -> None:
    if row["role"] not in roles:
        raise deny(
            "wrong-role",
            f"a {row['role']} may not sign this transaction; it needs the role "
            f"{' or '.join(roles)}",
        )


def owned_patient(state: StateView, tx: Transaction, pseudonym: str) -> Row:
    """The patient row of *pseudonym*, which the signer of *tx* must have registered."""
    patient = state.get("patients", pseudonym)
    if patient is None:
        raise deny("unknown-pseudonym", f"pseudonym {pseudonym} is not registered")
    if patient["identity_id"] != tx.signer:
        raise deny(
            "not-owner",
            f"only the patient who registered pseudonym {pseudonym} may do this; "
            f"{tx.signer!r} is not that patient",
        )
    return patient


def known_identity(state: StateView, identity_id: str, what: str) -> Row:
    row = state.get("identities", identity_id)
    if row is None:
        raise deny("unknown-identity", f"{what} {identity_id!r} is not enrolled on this ledger")
    return row


def public_identity(value: Any, what: str) -> PublicIdentity:
    """An identity a transaction encloses (enroll, register_patient, the genesis admin)."""
    try:
        identity = PublicIdentity.from_json(value)
    except EnvelopeError as exc:
        raise MalformedTransaction(f"{what}: {exc}") from exc
    if not IDENTIFIER.fullmatch(identity.id):
        raise MalformedTransaction(
            f"{what}: id must be letters, digits and ._:@- (≤ 200 characters)"
        )
    return identity


def identity_row(identity: PublicIdentity, index: int) -> Row:
    data = identity.to_json()
    return {
        "id": identity.id,
        "role": identity.role,
        "signing_key": data["signing_public_key"],
        "encryption_key": data["encryption_public_key"],
        "enrolled_at": index,
        "suspended_at": None,
        "suspended_reason": None,
        "keys_since": None,
    }
