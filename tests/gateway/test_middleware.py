"""Body size limits while streaming, request ids, and per-application metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI, Request

from gateway import Settings, create_app
from tests.gateway.helpers import TestClient, metrics_text


@pytest.fixture
def small_limits(tmp_path: Path) -> Settings:
    return Settings.model_validate(
        {"data_dir": tmp_path, "max_body_size": "64KiB", "max_json_size": "1KiB"}
    )


class _Sink:
    """What a streaming handler managed to read before it was stopped."""

    def __init__(self) -> None:
        self.received = 0
        self.completed = False
        self.error: BaseException | None = None


@pytest.fixture
def streaming_app(small_limits: Settings) -> tuple[FastAPI, _Sink]:
    app = create_app(small_limits)
    sink = _Sink()

    # Mounted under a streaming prefix so that it gets max_body_size, like the blob route.
    @app.put("/v1/blobs/test-sink")
    async def consume(request: Request) -> dict[str, int]:
        try:
            async for chunk in request.stream():
                sink.received += len(chunk)
        except BaseException as exc:
            sink.error = exc
            raise
        sink.completed = True
        return {"received": sink.received}

    return app, sink


def _chunks(total: int, size: int = 8192) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        step = min(size, total - sent)
        sent += step
        yield b"x" * step


def test_streamed_body_within_limit_passes(streaming_app: tuple[FastAPI, _Sink]) -> None:
    app, sink = streaming_app
    with TestClient(app) as client:
        response = client.put("/v1/blobs/test-sink", content=_chunks(64 * 1024))
    assert response.status_code == 200
    assert sink.completed


def test_chunked_body_over_limit_is_stopped_while_streaming(
    streaming_app: tuple[FastAPI, _Sink],
) -> None:
    app, sink = streaming_app
    with TestClient(app) as client:
        response = client.put("/v1/blobs/test-sink", content=_chunks(1024 * 1024))
    assert response.status_code == 413
    assert response.json()["type"] == "urn:ehrgate:problem:payload-too-large"
    assert not sink.completed
    assert sink.error is not None
    assert sink.received <= 64 * 1024


def test_declared_length_over_limit_is_refused_before_reading(
    streaming_app: tuple[FastAPI, _Sink],
) -> None:
    app, sink = streaming_app
    with TestClient(app) as client:
        response = client.put("/v1/blobs/test-sink", content=b"x" * (64 * 1024 + 1))
    assert response.status_code == 413
    assert sink.received == 0


def test_json_routes_have_the_smaller_limit(small_limits: Settings) -> None:
    with TestClient(create_app(small_limits)) as client:
        big = {"identity_id": "a" * 2000}
        response = client.post("/v1/auth/challenge", json=big)
    assert response.status_code == 413


def test_chunked_json_over_limit_is_a_413_not_a_400(small_limits: Settings) -> None:
    with TestClient(create_app(small_limits)) as client:
        response = client.post(
            "/v1/auth/challenge",
            content=_chunks(4096, size=512),
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 413


def test_non_numeric_content_length_is_a_400(small_limits: Settings) -> None:
    from starlette.types import Message, Receive, Scope, Send

    from gateway.middleware import BodyLimitMiddleware

    seen: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(1)

    middleware = BodyLimitMiddleware(
        app, max_body_size=10, max_json_size=10, is_streaming_path=lambda path: False
    )
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    import anyio

    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/x",
        "headers": [(b"content-length", b"12abc")],
    }
    anyio.run(middleware, scope, receive, send)
    assert messages[0]["status"] == 400
    assert seen == []


def test_request_id_is_echoed_when_well_formed(client: TestClient) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "abc-123.def_4"})
    assert response.headers["x-request-id"] == "abc-123.def_4"


def test_malformed_request_id_is_replaced(client: TestClient) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "evil\tvalue " + "x" * 100})
    assert response.headers["x-request-id"] != "evil"
    assert len(response.headers["x-request-id"]) == 24


def test_metrics_count_requests_by_route_template(client: TestClient) -> None:
    client.get("/healthz")
    client.get("/no/such/route")
    text = metrics_text(client)
    assert 'ehrgate_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
    assert 'route="unmatched",status="404"' in text
    assert "/no/such/route" not in text


def test_each_application_has_its_own_registry(tmp_path: Path) -> None:
    first = create_app(Settings(data_dir=tmp_path / "one"))
    second = create_app(Settings(data_dir=tmp_path / "two"))
    with TestClient(first) as one, TestClient(second) as two:
        one.get("/healthz")
        one.get("/healthz")
        two.get("/healthz")
        assert 'route="/healthz",status="200"} 2.0' in metrics_text(one)
        assert 'route="/healthz",status="200"} 1.0' in metrics_text(two)


def test_api_answers_are_not_cacheable(client: TestClient) -> None:
    assert client.get("/v1/identities/me").headers["cache-control"] == "no-store"
    assert "cache-control" not in client.get("/healthz").headers
