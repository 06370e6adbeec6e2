"""Sample ledger transactions for the SDK's protocol and contract tests."""

from __future__ import annotations

from typing import Any

from ledger.wire import builders
from ledger.wire.builders import Actor
from ledger.wire.transactions import Transaction

T1 = "2030-01-01T00:00:00.000000Z"


def record_tx(signer: Actor, **changes: Any) -> Transaction:
    """A `record` transaction of made-up hashes and locators, signed by *signer*."""
    fields: dict[str, Any] = {
        "pseudonym": "ab" * 32,
        "category": "lab-results",
        "body_sha256": "cd" * 32,
        "size": 10,
        "locators": ["file://blobs/cd"],
        "capsule_sha256": "ef" * 32,
        "content_type": "application/pdf",
        "created_at": T1,
    }
    return builders.record(signer, **{**fields, **changes})
