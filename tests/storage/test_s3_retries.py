"""``max_attempts`` in an S3 store URL is the number of requests made, the first included."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from storage import StoreUnavailable, open_store


class _Busy(BaseHTTPRequestHandler):
    """Answers every request with S3's 503 SlowDown and counts the requests."""

    count = 0

    def _answer(self) -> None:
        type(self).count += 1
        body = b"<Error><Code>SlowDown</Code><Message>busy</Message></Error>"
        self.send_response(503)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_PUT = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def _busy_server() -> Iterator[tuple[str, type[_Busy]]]:
    handler = type("Busy", (_Busy,), {"count": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("attempts", [1, 2, 4])
def test_max_attempts_counts_every_request(attempts: int) -> None:
    with _busy_server() as (endpoint, handler):
        # Opening checks the bucket with one HeadBucket operation, which the server refuses.
        with pytest.raises(StoreUnavailable, match="HTTP 503"):
            open_store(
                f"s3://bucket?endpoint_url={endpoint}&access_key_id=a&secret_access_key=b"
                f"&max_attempts={attempts}&connect_timeout=1&read_timeout=2"
            )
        assert handler.count == attempts
