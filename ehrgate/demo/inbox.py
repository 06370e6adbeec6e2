"""The patient's webhook inbox in the demo: a small HTTP receiver on loopback.

It stands for the endpoint a patient's phone app or portal would run: it takes the
gateway's signed deliveries, checks each signature with `ehrgate.webhooks.verify_webhook`
against the gateway's published key, and keeps the verified events.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ehrgate.webhooks import WebhookRejected, verify_webhook


class WebhookInbox:
    """Receives deliveries at `url` until closed; `wait_for(kind)` returns a verified event."""

    def __init__(self, public_key: str) -> None:
        self._key = public_key
        self._events: list[dict[str, Any]] = []
        self._rejected: list[str] = []
        self._arrived = threading.Condition()
        inbox = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                try:
                    event = verify_webhook(inbox._key, dict(self.headers.items()), body)
                except WebhookRejected as exc:
                    inbox._note(None, str(exc))
                    self.send_response(400)
                else:
                    inbox._note(event, None)
                    self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/ehrgate"

    def _note(self, event: dict[str, Any] | None, rejected: str | None) -> None:
        with self._arrived:
            if event is not None:
                self._events.append(event)
            if rejected is not None:
                self._rejected.append(rejected)
            self._arrived.notify_all()

    def wait_for(self, kind: str, timeout: float = 30) -> dict[str, Any] | None:
        """The first verified event of *kind*, or None if none arrived in *timeout* seconds."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                for event in self._events:
                    if event.get("type") == kind:
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._arrived.wait(left)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
