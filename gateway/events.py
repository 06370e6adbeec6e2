"""What the gateway tells a patient happened: the events behind notifications.

A route that does something a patient should hear about (an access request, a break-glass
act, a denied read, an erasure, a study export, a grant about to expire) emits a
`GatewayEvent` on the application's `EventHub`. Sinks subscribed to the hub (the webhook and
e-mail deliveries) take it from there. An event carries ids and categories only, never a
record's content, file name or a patient's identifying data.

`emit` never raises into the route: a sink that fails is logged and counted, and the act
the event reports has already happened (and is on the ledger) whatever a sink does.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

EventKind = Literal[
    "access_request",
    "break_glass",
    "denied_read",
    "grant_expiring",
    "erasure_done",
    "export_done",
]
EVENT_KINDS: tuple[EventKind, ...] = (
    "access_request",
    "break_glass",
    "denied_read",
    "grant_expiring",
    "erasure_done",
    "export_done",
)

_log = logging.getLogger("gateway.events")


@dataclass(frozen=True, slots=True)
class GatewayEvent:
    """One thing that happened to a patient's records.

    `event_id` is unique per event and stable across retries (the ledger entry's hash where
    the event has one), so that a receiver can drop duplicates. `details` holds ids and
    categories only.
    """

    kind: EventKind
    event_id: str
    pseudonym: str
    at: str
    details: Mapping[str, str | Sequence[str]] = field(default_factory=dict)


class EventSink(Protocol):
    """Takes events from the hub; `publish` must return quickly (queue, do not deliver)."""

    def publish(self, event: GatewayEvent) -> None: ...


class EventHub:
    """Fans events out to the subscribed sinks; with none subscribed, emitting is free."""

    def __init__(self) -> None:
        self._sinks: list[EventSink] = []

    def subscribe(self, sink: EventSink) -> None:
        self._sinks.append(sink)

    def unsubscribe(self, sink: EventSink) -> None:
        if sink in self._sinks:
            self._sinks.remove(sink)

    def emit(self, event: GatewayEvent) -> None:
        for sink in tuple(self._sinks):
            try:
                sink.publish(event)
            except Exception:  # a sink's failure never undoes or fails the act
                _log.exception("event sink %r failed on %s %s", sink, event.kind, event.event_id)
