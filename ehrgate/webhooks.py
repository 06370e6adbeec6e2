"""Checking a webhook delivery from an ehrgate gateway, as its receiver does.

A delivery is a POST with a JSON body and three headers: `webhook-id` (the event id, the
same on every retry), `webhook-timestamp` (Unix seconds) and `webhook-signature`
(`v1a,<base64 Ed25519 signature>`, possibly several separated by spaces). The signature is
by the gateway's ledger key over `{webhook-id}.{webhook-timestamp}.{body}`.

    event = verify_webhook(gateway_key, request.headers, request.body)
    if event["id"] in already_seen: ...  # a retry: answer 2xx, do nothing
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from envelope import EnvelopeError, VerifyKey, b64decode

DEFAULT_TOLERANCE = 300.0
"""Seconds a delivery's timestamp may be from the receiver's clock (replay window)."""


class WebhookRejected(ValueError):
    """The delivery is not a genuine, recent one from the gateway: answer 400, drop it."""


def verify_webhook(
    public_key: str | bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> dict[str, Any]:
    """The delivered event (its JSON payload) if *headers* sign *body*; WebhookRejected if
    not. *public_key* is the gateway's key, base64 or raw (32 bytes)."""
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        event_id = lower["webhook-id"]
        timestamp = lower["webhook-timestamp"]
        signatures = lower["webhook-signature"]
    except KeyError as exc:
        raise WebhookRejected(f"missing header {exc.args[0]}") from None
    try:
        sent = int(timestamp)
    except ValueError:
        raise WebhookRejected("webhook-timestamp is not Unix seconds") from None
    if abs((now if now is not None else time.time()) - sent) > tolerance:
        raise WebhookRejected("webhook-timestamp is too far from now (a replay, or a clock off)")
    try:
        raw = b64decode(public_key) if isinstance(public_key, str) else public_key
        key = VerifyKey(raw)
    except (EnvelopeError, ValueError) as exc:
        raise WebhookRejected(f"not a gateway key: {exc}") from None
    signed = f"{event_id}.{timestamp}.".encode() + body
    for item in signatures.split():
        version, _, signature = item.partition(",")
        if version != "v1a":
            continue
        try:
            key.verify_bytes(signed, b64decode(signature))
        except (EnvelopeError, ValueError):
            continue
        payload = json.loads(body)
        if not isinstance(payload, dict) or payload.get("id") != event_id:
            raise WebhookRejected("the payload's id is not the webhook-id")
        return payload
    raise WebhookRejected("no v1a signature verifies with the gateway's key")
