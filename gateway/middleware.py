"""ASGI middleware: request ids and Prometheus metrics, body size and content-type limits.

These are plain ASGI callables rather than Starlette's `BaseHTTPMiddleware`, so that a
streamed upload passes through them chunk by chunk and is never buffered.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import (
    PROBLEM_CONTENT_TYPE,
    BadRequest,
    GatewayError,
    PayloadTooLarge,
    UnsupportedMediaType,
    problem_body,
)
from gateway.metrics import GatewayMetrics

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_REQUEST_ID_KEY = REQUEST_ID_HEADER.encode()
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def request_id_of(scope: Scope) -> str | None:
    state = scope.get("state")
    if isinstance(state, dict):
        value = state.get("request_id")
        return value if isinstance(value, str) else None
    return None


async def send_problem(
    scope: Scope,
    send: Send,
    error_type: type[GatewayError],
    detail: str,
    headers: dict[str, str] | None = None,
) -> None:
    """Answer with a problem+json response from inside middleware (no Request object)."""
    body = problem_body(
        error_type, detail, instance=scope.get("path"), request_id=request_id_of(scope)
    )
    payload = json.dumps(body, separators=(",", ":")).encode()
    raw_headers = [
        (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
        (b"content-length", str(len(payload)).encode()),
        (b"connection", b"close"),
    ]
    for name, value in (headers or {}).items():
        raw_headers.append((name.lower().encode(), value.encode()))
    await send({"type": "http.response.start", "status": error_type.status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


class RequestMiddleware:
    """Give every request an id, echo it, and count and time the request (one layer).

    The id is the client's `X-Request-ID` if well formed, else a random per-process prefix
    and a counter: unique, and far cheaper than reading the system's random source on every
    request. Answers under `/v1/` also say `Cache-Control: no-store`: key shares, capsules
    and records must not linger in caches. Requests are counted and timed in Prometheus,
    labelled by route template (not raw path).

    Both jobs share one wrapper of `send`: every response message (each piece of a streamed
    body too) passes through each middleware layer, so a layer less is time saved on every
    request.
    """

    def __init__(self, app: ASGIApp, *, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self._prefix = secrets.token_hex(6)
        self._counter = itertools.count()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        offered = _header(scope, _REQUEST_ID_KEY)
        request_id = (
            offered
            if offered and _REQUEST_ID.match(offered)
            else f"{self._prefix}{next(self._counter):012x}"
        )
        scope.setdefault("state", {})["request_id"] = request_id
        extra = [(_REQUEST_ID_KEY, request_id.encode())]
        if scope["path"].startswith("/v1/"):
            extra.append((b"cache-control", b"no-store"))
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.metrics.observe_request(
                method=scope["method"],
                route=_route_template(scope),
                status=status,
                seconds=time.perf_counter() - started,
            )


def _header(scope: Scope, name: bytes) -> str:
    """The first value of header *name* (lower case), or "" (no Headers object built)."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


class _BodyTooLarge(Exception):
    """Raised inside `receive` once a streamed body passes its limit."""


def is_json_media_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class BodyLimitMiddleware:
    """Enforce body size limits while the body streams in, and JSON-only bodies elsewhere.

    Streaming routes (chosen by `is_streaming_path`) may carry up to `max_body_size` bytes of
    any content type (the route checks the type itself); every other route takes at most
    `max_json_size` bytes of JSON. A declared `Content-Length` over the limit is refused
    before a byte is read; a chunked body is counted as it arrives and the request is
    refused the moment it passes the limit, so that a handler never sees the whole of it.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_size: int,
        max_json_size: int,
        is_streaming_path: Callable[[str], bool],
    ) -> None:
        self.app = app
        self.max_body_size = max_body_size
        self.max_json_size = max_json_size
        self.is_streaming_path = is_streaming_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if "content-length" not in headers and "transfer-encoding" not in headers:
            # No body can follow (HTTP/1.1: a body has a length or is chunked): nothing
            # to count, so no wrapper around every message of the response either.
            await self.app(scope, receive, send)
            return
        streaming = self.is_streaming_path(scope["path"])
        limit = self.max_body_size if streaming else self.max_json_size
        refusal = _refusal(scope, headers, streaming, limit)
        if refusal is not None:
            await send_problem(scope, send, *refusal)
            return
        await _LimitedRequest(scope, receive, send, limit).run(self.app)


def _refusal(
    scope: Scope, headers: Headers, streaming: bool, limit: int
) -> tuple[type[GatewayError], str] | None:
    """What the headers alone show to be wrong with a request, before a byte is read."""
    declared = headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            return BadRequest, "Content-Length is not a number"
        if int(declared) > limit:
            return PayloadTooLarge, _too_large(limit)
    has_body = (declared is not None and int(declared) > 0) or ("transfer-encoding" in headers)
    if streaming or not has_body or scope["method"] not in _BODY_METHODS:
        return None
    content_type = headers.get("content-type", "")
    if is_json_media_type(content_type):
        return None
    return (
        UnsupportedMediaType,
        f"this route takes application/json, not {content_type or 'no content type'}",
    )


class _LimitedRequest:
    """One request passed on to the application with its body counted against *limit*."""

    __slots__ = ("_receive", "_send", "exceeded", "limit", "received", "response_started", "scope")

    def __init__(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        self.scope = scope
        self._receive = receive
        self._send = send
        self.limit = limit
        self.received = 0
        self.exceeded = False
        self.response_started = False

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.exceeded = True
                raise _BodyTooLarge
        return message

    async def send(self, message: Message) -> None:
        if self.exceeded:
            # Whatever the application made of the broken body (FastAPI turns a failed
            # read into a 400), the client is told the real reason, once.
            if message["type"] == "http.response.start" and not self.response_started:
                self.response_started = True
                await self._too_large()
            return
        if message["type"] == "http.response.start":
            self.response_started = True
        await self._send(message)

    async def run(self, app: ASGIApp) -> None:
        try:
            await app(self.scope, self.receive, self.send)
        except Exception:
            # The handler may have wrapped the limit's exception in one of its own.
            if not self.exceeded or self.response_started:
                raise
            self.response_started = True
            await self._too_large()

    async def _too_large(self) -> None:
        await send_problem(self.scope, self._send, PayloadTooLarge, _too_large(self.limit))


def _too_large(limit: int) -> str:
    return f"the request body exceeds the limit of {limit} bytes for this route"


def _route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
