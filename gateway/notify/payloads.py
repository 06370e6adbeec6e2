"""What an event is delivered as, and to whom.

The payload is the same for every channel: `{"type", "id", "timestamp", "gateway", "data"}`,
where `data` holds the pseudonym and the event's ids and categories. Free text (a request's
reason, a denial's reason), file names and anything about a record's content are never in
it: the gateway does not copy them from the event, whatever an emitter put there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.events import EVENT_KINDS, GatewayEvent

MAX_PAYLOAD_BYTES = 16 * 1024
"""An event whose payload would be larger is not delivered (and is logged)."""

RECIPIENT_KEYS = ("requester", "grantee")
"""Details that name an identity concerned by the event besides the patient."""

_ALLOWED_DETAIL = re.compile(r"[a-z_]{1,40}")
_FORBIDDEN_DETAILS = frozenset({"reason", "filename", "file_name", "content", "text", "note"})
_MAX_VALUE = 400


class PayloadRefused(ValueError):
    """An event that cannot be delivered as it is (unknown kind, too large)."""


def _detail_value(value: str | Sequence[str]) -> str | list[str]:
    if isinstance(value, str):
        return value[:_MAX_VALUE]
    return [str(item)[:_MAX_VALUE] for item in value]


def event_payload(event: GatewayEvent, *, gateway_id: str) -> bytes:
    """The JSON bytes delivered for *event* (canonical: sorted keys, no spaces)."""
    if event.kind not in EVENT_KINDS:
        raise PayloadRefused(f"unknown event kind {event.kind!r}")
    data: dict[str, Any] = {"pseudonym": event.pseudonym}
    for name, value in event.details.items():
        if _ALLOWED_DETAIL.fullmatch(name) and name not in _FORBIDDEN_DETAILS:
            data[name] = _detail_value(value)
    payload = {
        "type": event.kind,
        "id": event.event_id,
        "timestamp": event.at,
        "gateway": gateway_id,
        "data": data,
    }
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    if len(body) > MAX_PAYLOAD_BYTES:
        raise PayloadRefused(
            f"the payload of {event.kind} {event.event_id} is {len(body)} bytes,"
            f" more than {MAX_PAYLOAD_BYTES}"
        )
    return body


def concerned(event: GatewayEvent, patient: str | None) -> list[str]:
    """The identities that hear of *event*: the patient, then those its details name."""
    found: list[str] = [patient] if patient else []
    for key in RECIPIENT_KEYS:
        value = event.details.get(key)
        if isinstance(value, str) and value and value not in found:
            found.append(value)
    return found


def summary_lines(payload: Mapping[str, Any]) -> list[str]:
    """The payload as `name: value` lines, for an e-mail's text."""
    lines = [
        f"Event: {payload['type']}",
        f"Event id: {payload['id']}",
        f"Time: {payload['timestamp']}",
    ]
    for name, value in sorted(payload["data"].items()):
        shown = ", ".join(value) if isinstance(value, list) else value
        lines.append(f"{name.replace('_', ' ').capitalize()}: {shown}")
    return lines
