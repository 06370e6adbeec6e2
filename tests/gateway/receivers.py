"""Real receivers for notification tests: an HTTP webhook endpoint and an SMTP server, both
on 127.0.0.1, and the signature check a webhook receiver does (with `cryptography` only)."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tests.ports import free_port


@dataclass(frozen=True)
class Delivery:
    headers: dict[str, str]
    body: bytes

    @property
    def event_id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.body)
        return value


@dataclass
class Receiver:
    """Answers each POST with the next status of `statuses` (the last one repeats)."""

    url: str
    statuses: list[int]
    received: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    delays: list[float] = field(default_factory=list)
    """Seconds to wait before answering each of the first POSTs."""

    def answer(self, delivery: Delivery) -> int:
        with self.lock:
            self.received.append(delivery)
            delay = self.delays.pop(0) if self.delays else 0.0
            status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        time.sleep(delay)
        return status

    def set_statuses(self, *statuses: int) -> None:
        with self.lock:
            self.statuses = list(statuses)

    def deliveries(self) -> list[Delivery]:
        with self.lock:
            return list(self.received)

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Delivery]:
        wait_until(lambda: len(self.deliveries()) >= count, timeout, self.deliveries)
        return self.deliveries()


def wait_until(done: Callable[[], bool], timeout: float, value: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; last value: {value()!r}")
        time.sleep(0.02)
    return value()


@contextmanager
def webhook_receiver(*statuses: int) -> Iterator[Receiver]:
    port = free_port()
    receiver = Receiver(f"http://127.0.0.1:{port}/hook", list(statuses or (200,)))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = receiver.answer(Delivery(headers, body))
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def verify_signature(public_key_b64: str, delivery: Delivery, *, tolerance: float = 300) -> None:
    """What a receiver does: check the timestamp is recent and the Ed25519 signature of
    `id.timestamp.body`; raises InvalidSignature (or AssertionError) if not."""
    event_id = delivery.headers["webhook-id"]
    timestamp = delivery.headers["webhook-timestamp"]
    assert abs(time.time() - int(timestamp)) < tolerance, "stale timestamp"
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64))
    signed = f"{event_id}.{timestamp}.".encode() + delivery.body
    versions = delivery.headers["webhook-signature"].split()
    for item in versions:
        version, _, signature = item.partition(",")
        if version != "v1a":
            continue
        try:
            key.verify(base64.b64decode(signature), signed)
        except InvalidSignature:
            continue
        return
    raise InvalidSignature("no v1a signature verifies")


@dataclass
class Mailbox:
    messages: list[Message] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Message]:
        wait_until(lambda: len(self.messages) >= count, timeout, lambda: self.messages)
        return list(self.messages)


@contextmanager
def smtp_server() -> Iterator[tuple[int, Mailbox]]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1; yields its port and its mailbox."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, mailbox
    finally:
        controller.stop()
