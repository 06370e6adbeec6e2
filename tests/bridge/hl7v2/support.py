"""Test support: MDM messages, a recording publisher, a live listener and an MLLP client."""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from bridge.documents import IncomingDocument, Published
from bridge.errors import BridgeError, InvalidDocument
from bridge.hl7v2 import ListenerSettings, MdmReceiver, MdmRules, MllpListener

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
CATEGORIES = {"DS": "discharge-summary", "RAD": "imaging-report"}


def category_for_txa2(value: str) -> str:
    try:
        return CATEGORIES[value]
    except KeyError:
        raise InvalidDocument(f"no category is configured for {value!r}") from None


@dataclass
class RecordingPublisher:
    """A `Publisher` that records what it is given and is idempotent on unique_id."""

    fail_with: BridgeError | None = None
    published: list[tuple[IncomingDocument, str]] = field(default_factory=list)
    _ids: dict[str, str] = field(default_factory=dict)

    async def publish(self, document: IncomingDocument, *, actor: str) -> Published:
        if self.fail_with is not None:
            raise self.fail_with
        if document.unique_id in self._ids:
            return Published(self._ids[document.unique_id], "pseudo", created=False)
        record = f"rec-{len(self._ids) + 1}"
        self._ids[document.unique_id] = record
        self.published.append((document, actor))
        return Published(record, "pseudo", created=True)


def mdm(
    *,
    event: str = "T02",
    control_id: str = "MSG0001",
    version: str = "2.5",
    pid3: str = "12345^^^HOSP&1.2.3&ISO^MR",
    txa2: str = "DS",
    unique_id: str = "DOC-1",
    parent: str = "",
    obx5: str | None = None,
    obx: bool = True,
    msh9: str | None = None,
    processing: str = "P",
    authored: str = "20260301113000+0100",
) -> str:
    """An MDM message as HL7 text (segments ended by CR); *authored* is TXA-4."""
    data = base64.b64encode(PDF).decode() if obx5 is None else obx5
    segments = [
        f"MSH|^~\\&|ARIA|ONCO|EHRGATE|HOSP|20260301120000+0100||"
        f"{msh9 or f'MDM^{event}^MDM_T02'}|{control_id}|{processing}|{version}",
        f"EVN|{event}|20260301120000",
        f"PID|1||{pid3}||Doe^Jane||19700101|F",
        "PV1|1|O",
        f"TXA|1|{txa2}|AP|{authored}||20260301114500||||||{unique_id}|{parent}||||AU",
    ]
    if obx:
        segments.append(f"OBX|1|ED|PDF^Discharge letter^L||^Application^PDF^Base64^{data}||||||F")
    return "\r".join(segments) + "\r"


@contextmanager
def live_listener(
    publisher: RecordingPublisher,
    *,
    host: str = "127.0.0.1",
    assigning_authorities: tuple[str, ...] = ("HOSP",),
    max_message_bytes: int = 1024 * 1024,
    frame_timeout: float = 5.0,
    idle_timeout: float = 5.0,
    max_connections: int = 8,
) -> Iterator[MllpListener]:
    """A listener on a free port of *host*, served by its own event loop in a thread."""
    rules = MdmRules(
        category_for_type=category_for_txa2, assigning_authorities=assigning_authorities
    )
    listener = MllpListener(
        MdmReceiver(publisher, rules, actor="hospital-system"),
        ListenerSettings(
            host=host,
            port=0,
            max_message_bytes=max_message_bytes,
            frame_timeout=frame_timeout,
            idle_timeout=idle_timeout,
            max_connections=max_connections,
        ),
    )
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(listener.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield listener
    finally:
        asyncio.run_coroutine_threadsafe(listener.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


class MllpClient:
    """A blocking MLLP client: sends framed messages and reads framed answers."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self._buf = b""

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, message: str | bytes) -> str:
        data = message.encode() if isinstance(message, str) else message
        self.sock.sendall(b"\x0b" + data + b"\x1c\x0d")
        return self.receive()

    def receive(self) -> str:
        while b"\x1c\x0d" not in self._buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed by the listener (pending {self._buf!r})")
            self._buf += chunk
        end = self._buf.index(b"\x1c\x0d")
        assert self._buf[:1] == b"\x0b"
        answer, self._buf = self._buf[1:end], self._buf[end + 2 :]
        return answer.decode()

    def closed_by_peer(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, TimeoutError):
            return False

    def close(self) -> None:
        self.sock.close()
