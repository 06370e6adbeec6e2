"""A TCP proxy on 127.0.0.1 that injects network faults in front of a real server.

    with FaultProxy(("127.0.0.1", 8333)) as proxy:
        url = proxy.url                 # point the client here
        proxy.fault = Blackhole()       # from now on: accept, read, never answer
        proxy.fault = CutUpload(7 << 20)  # break uploads once 7 MiB went upstream
        proxy.fault = Corrupt(marker)   # flip the bytes of `marker` on their way back
        proxy.fault = None              # pass everything through

The fault is looked at for every chunk, so it applies to pooled connections opened before
it was set too. Also here: `closed_port()` (a port nobody listens on: connections are
refused) and `SilentServer` (accepts connections and never answers: timeouts).
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
from contextlib import suppress
from dataclasses import dataclass, field

from tests.ports import free_port

# How long a held-back tail of the answer may wait for more bytes before it is sent as is.
_FLUSH_AFTER = 0.02


@dataclass
class Blackhole:
    """Accept requests and never answer them (the client's read timeout must fire)."""


@dataclass
class CutUpload:
    """A link that breaks under an upload and stays broken until the fault is cleared.

    Once `after_bytes` went upstream under the fault, the connection carrying them is reset,
    and so is every later connection as soon as it sends more than `small_request` bytes:
    retries of the upload fail too, while small requests (abort, list) still get through.
    """

    after_bytes: int
    small_request: int = 64 * 1024
    sent: int = 0
    cuts: int = 0

    @property
    def done(self) -> bool:
        return self.cuts > 0


@dataclass
class Corrupt:
    """Replace every occurrence of `marker` in answers by its bitwise complement."""

    marker: bytes
    hits: int = 0
    replacement: bytes = field(init=False)

    def __post_init__(self) -> None:
        if len(self.marker) < 8:
            raise ValueError("use a marker of at least 8 bytes so it matches only the body")
        self.replacement = bytes(b ^ 0xFF for b in self.marker)


Fault = Blackhole | CutUpload | Corrupt | None


def closed_port() -> int:
    """A loopback port with no listener: connecting to it is refused at once."""
    return free_port()


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset, as a crashed peer or a broken link would."""
    with suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with suppress(OSError):
        sock.close()


class _Listener:
    def __init__(self) -> None:
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self.port: int = self._server.getsockname()[1]
        self._closed = threading.Event()
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                self._connections.append(client)
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._closed.set()
        with suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        with self._lock:
            for sock in self._connections:
                _reset(sock)
        self._thread.join(timeout=5)


class SilentServer(_Listener):
    """Accepts every connection and reads what is sent, but never answers."""

    def _handle(self, client: socket.socket) -> None:
        with suppress(OSError):
            while not self._closed.is_set() and client.recv(65536):
                pass

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FaultProxy(_Listener):
    """Forwards 127.0.0.1:<port> to `target`, applying the current `fault`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.fault: Fault = None
        super().__init__()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _handle(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError:
            _reset(client)
            return
        upstream.settimeout(None)
        with self._lock:
            self._connections.append(upstream)
        relay = _Relay(self, client, upstream)
        try:
            relay.run(self._closed)
        except OSError:
            _reset(client)
            _reset(upstream)
        finally:
            relay.close()


class _Relay:
    """One proxied connection: bytes both ways, each chunk under the proxy's current fault."""

    def __init__(self, proxy: FaultProxy, client: socket.socket, upstream: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream = upstream
        self.selector = selectors.DefaultSelector()
        self.selector.register(client, selectors.EVENT_READ, "up")
        self.selector.register(upstream, selectors.EVENT_READ, "down")
        self.held = b""  # tail of an answer that may be the start of a corruption marker
        self.sent_here = 0  # bytes this connection sent upstream under a CutUpload fault
        self.open_sides = 2

    def run(self, closed: threading.Event) -> None:
        while self.open_sides and not closed.is_set():
            events = self.selector.select(timeout=_FLUSH_AFTER)
            if not events:
                self._flush()
            for key, _ in events:
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                data = sock.recv(65536)
                if key.data == "down":
                    self._downward(data, self.proxy.fault)
                elif not self._upward(data, self.proxy.fault):
                    return

    def _upward(self, data: bytes, fault: Fault) -> bool:
        """Client to server; False once the fault has cut the connection."""
        if not data:
            self._half_close(self.client, self.upstream)
        elif isinstance(fault, CutUpload) and self._cut(fault, len(data)):
            _reset(self.client)
            _reset(self.upstream)
            return False
        elif not isinstance(fault, Blackhole):
            self.upstream.sendall(data)
        return True

    def _cut(self, fault: CutUpload, size: int) -> bool:
        fault.sent += size
        self.sent_here += size
        if fault.sent > fault.after_bytes and (
            not fault.done or self.sent_here > fault.small_request
        ):
            fault.cuts += 1
            return True
        return False

    def _downward(self, data: bytes, fault: Fault) -> None:
        """Server to client."""
        if not data:
            self._flush()
            self._half_close(self.upstream, self.client)
            return
        if isinstance(fault, Blackhole):
            return
        if isinstance(fault, Corrupt):
            data, self.held = _corrupt(self.held + data, fault)
        elif self.held:
            data, self.held = self.held + data, b""
        self.client.sendall(data)

    def _flush(self) -> None:
        if self.held:
            self.client.sendall(self.held)
            self.held = b""

    def _half_close(self, ended: socket.socket, other: socket.socket) -> None:
        """``ended`` sends no more: stop reading it and pass the end on to ``other``."""
        self.selector.unregister(ended)
        with suppress(OSError):
            other.shutdown(socket.SHUT_WR)
        self.open_sides -= 1

    def close(self) -> None:
        self.selector.close()
        with suppress(OSError):
            self.client.close()
        with suppress(OSError):
            self.upstream.close()


def _corrupt(data: bytes, fault: Corrupt) -> tuple[bytes, bytes]:
    """Replace the marker in *data*; hold back a tail that could be the marker's start."""
    marker = fault.marker
    count = data.count(marker)
    if count:
        fault.hits += count
        data = data.replace(marker, fault.replacement)
    for keep in range(min(len(marker) - 1, len(data)), 0, -1):
        if marker.startswith(data[-keep:]):
            return data[:-keep], data[-keep:]
    return data, b""
