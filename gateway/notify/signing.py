"""The signature of a webhook delivery (the Standard Webhooks header form, Ed25519).

Each delivery carries three headers:

- `webhook-id`: the event id, the same on every retry (a receiver drops ids it has seen);
- `webhook-timestamp`: Unix seconds when this attempt was signed;
- `webhook-signature`: `v1a,` then the standard base64 of the Ed25519 signature, by the
  gateway's ledger key, over the bytes `{webhook-id}.{webhook-timestamp}.{body}`.

The verification key is the gateway's ledger public key (`GET /v1/notifications/signing-key`,
also `ledger_public_key` of `GET /v1/ledger/head`). docs/notifications.md has the recipe.
"""

from __future__ import annotations

import base64

from envelope import SigningKey

SIGNATURE_VERSION = "v1a"
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


def signed_content(event_id: str, timestamp: int, body: bytes) -> bytes:
    """The bytes a delivery's signature covers."""
    return f"{event_id}.{timestamp}.".encode() + body


def signature_headers(
    key: SigningKey, *, event_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The headers that sign *body* as the delivery of *event_id* at *timestamp*."""
    signature = key.sign_bytes(signed_content(event_id, timestamp, body))
    return {
        ID_HEADER: event_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: f"{SIGNATURE_VERSION},{base64.b64encode(signature).decode()}",
    }
