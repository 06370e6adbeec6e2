"""One kept-alive HTTP/1.1 connection per witness, for the gateway's checkpoint rounds.

A round makes one small POST to each witness, many times a second under load, from the
same process that serves the appends: the client's own CPU is paid on the append path's
cores. The standard library's `http.client` makes such a request for about 0.3 ms of CPU
on the development VM where an `httpx.Client` (same keep-alive) took 0.7 ms
(docs/federation.md, "What it costs"), so rounds use one `http.client` connection per
witness, kept open between rounds.

A witness (uvicorn) closes a connection idle for a few seconds. A request on a *reused*
connection that fails before any answer (reset, closed, broken pipe) is therefore sent
once more on a new connection: `add-checkpoint` may be repeated safely (a witness that
had already stored the checkpoint answers 409 with its size, and the 409 path asks again
from it). A timeout is not repeated, nor is a failure on a fresh connection.
"""

from __future__ import annotations

import http.client
import ssl
import threading
from urllib.parse import urlsplit

# Failures that mean "the witness closed this kept-alive connection", not "it is down".
_STALE = (
    http.client.RemoteDisconnected,
    http.client.BadStatusLine,
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
)


class WitnessUnreachable(Exception):
    """No answer from the witness (connection refused or lost, timeout, not HTTP)."""


class WitnessConnection:
    """POSTs to one witness (`http://` or `https://` base URL) over a kept-alive
    connection; thread-safe (one request at a time)."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"a witness URL is http:// or https://, not {url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._timeout = timeout
        self._context = ssl.create_default_context() if self._https else None
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()
        self.opened = 0  # connections opened so far (for tests and benchmarks)

    def _open(self) -> http.client.HTTPConnection:
        self.opened += 1
        if self._https:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=self._timeout, context=self._context
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)

    def post(self, path: str, body: bytes) -> tuple[int, str, bytes]:
        """Status, Content-Type and body of the answer to `POST <base><path>`."""
        with self._lock:
            for attempt in (1, 2):
                reused = self._conn is not None
                conn = self._conn if self._conn is not None else self._open()
                self._conn = None
                try:
                    conn.request("POST", self._prefix + path, body=body)
                    answer = conn.getresponse()
                    content = answer.read()
                except _STALE as exc:
                    conn.close()
                    if reused and attempt == 1:
                        continue  # the witness closed the idle connection: a new one
                    raise WitnessUnreachable(f"connection lost: {exc!r}") from exc
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    raise WitnessUnreachable(f"{exc!r}") from exc
                if answer.will_close:
                    conn.close()
                else:
                    self._conn = conn
                return answer.status, answer.getheader("content-type", ""), content
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def add_checkpoint(self, body: bytes) -> tuple[int, str, bytes]:
        """The answer to `POST <base>/add-checkpoint` (C2SP tlog-witness)."""
        return self.post("/add-checkpoint", body)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
