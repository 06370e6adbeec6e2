"""The SDK's HTTP layer against scripted answers: problem types become the documented
exceptions, and requests are repeated only when repeating is safe."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from ehrgate import Client, RetryPolicy, errors
from envelope import IdentityKeys

URL = "http://gateway.test"
Handler = Callable[[httpx.Request], httpx.Response]


def problem(status: int, slug: str, **extra: Any) -> httpx.Response:
    body = {"type": f"urn:ehrgate:problem:{slug}", "title": slug, "status": status}
    body.update({"detail": f"{slug} happened", **extra})
    return httpx.Response(
        status, content=json.dumps(body), headers={"content-type": "application/problem+json"}
    )


class ScriptedGateway:
    """Answers logins itself; every other request gets the next scripted answer."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.logins = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/auth/challenge":
            return httpx.Response(200, json={"challenge": "c", "audience": "a", "expires_at": ""})
        if request.url.path == "/v1/auth/token":
            self.logins += 1
            return httpx.Response(
                200,
                json={
                    "access_token": f"egt_{self.logins}",
                    "token_type": "bearer",
                    "expires_at": "2999-01-01T00:00:00Z",
                    "identity_id": "dr",
                    "role": "clinician",
                },
            )
        self.requests.append(request)
        if isinstance(request.stream, Iterator | httpx.SyncByteStream):
            request.read()
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def client_for(gateway: ScriptedGateway, attempts: int = 3) -> Client:
    return Client(
        URL,
        IdentityKeys.generate("dr", "clinician"),
        transport=httpx.MockTransport(gateway),
        retry=RetryPolicy(attempts=attempts, backoff=0.0),
    )


@pytest.mark.parametrize(
    ("status", "slug", "error", "exit_code"),
    [
        (400, "bad-request", errors.InvalidRequest, errors.EXIT_USAGE),
        (422, "validation-failed", errors.InvalidRequest, errors.EXIT_USAGE),
        (415, "unsupported-media-type", errors.InvalidRequest, errors.EXIT_USAGE),
        (413, "payload-too-large", errors.InvalidRequest, errors.EXIT_USAGE),
        (422, "rule-violation", errors.RuleViolation, errors.EXIT_USAGE),
        (404, "not-found", errors.NotFound, errors.EXIT_USAGE),
        (409, "conflict", errors.Conflict, errors.EXIT_USAGE),
        (401, "invalid-challenge", errors.AuthenticationFailed, errors.EXIT_DENIED),
        (401, "authentication-failed", errors.AuthenticationFailed, errors.EXIT_DENIED),
        (403, "forbidden", errors.Denied, errors.EXIT_DENIED),
        (403, "access-denied", errors.Denied, errors.EXIT_DENIED),
        (403, "identity-suspended", errors.Suspended, errors.EXIT_DENIED),
        (502, "integrity-error", errors.IntegrityFailure, errors.EXIT_DENIED),
        (503, "service-unavailable", errors.Unavailable, errors.EXIT_UNAVAILABLE),
        (500, "internal", errors.Unavailable, errors.EXIT_UNAVAILABLE),
    ],
)
def test_each_problem_type_has_its_exception(
    status: int, slug: str, error: type[errors.EhrgateError], exit_code: int
) -> None:
    gateway = ScriptedGateway(problem(status, slug, request_id="r-1"), *[problem(status, slug)] * 3)
    with client_for(gateway) as client, pytest.raises(error) as raised:
        client.whoami()
    assert type(raised.value) is error
    assert raised.value.exit_code == exit_code
    assert raised.value.status == status
    assert slug in raised.value.message


def test_a_duplicate_record_is_record_exists() -> None:
    gateway = ScriptedGateway(problem(409, "conflict", code="duplicate-record"))
    with client_for(gateway) as client, pytest.raises(errors.RecordExists) as raised:
        client.whoami()
    assert raised.value.code == "duplicate-record"


def test_rate_limiting_says_when_to_retry() -> None:
    limited = problem(429, "rate-limited")
    limited.headers["Retry-After"] = "7"
    with (
        client_for(ScriptedGateway(limited)) as client,
        pytest.raises(errors.RateLimited) as raised,
    ):
        client.whoami()
    assert raised.value.retry_after == 7
    assert raised.value.exit_code == errors.EXIT_UNAVAILABLE


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (httpx.Response(502, text="<html>bad gateway</html>"), errors.IntegrityFailure),
        (httpx.Response(504, text="timeout"), errors.Unavailable),
        (httpx.Response(418, text="teapot"), errors.InvalidRequest),
    ],
)
def test_answers_that_are_not_problems_map_by_status(
    answer: httpx.Response, error: type[errors.EhrgateError]
) -> None:
    with client_for(ScriptedGateway(answer), attempts=1) as client, pytest.raises(error):
        client.whoami()


def test_a_get_is_repeated_after_a_refused_connection_and_a_503() -> None:
    me = {"id": "dr", "role": "clinician", "signing_public_key": "", "encryption_public_key": ""}
    gateway = ScriptedGateway(
        httpx.ConnectError("refused"),
        problem(503, "service-unavailable"),
        httpx.Response(200, json=me),
    )
    with client_for(gateway) as client:
        assert client.whoami().id == "dr"
    assert len(gateway.requests) == 3


def test_a_get_gives_up_after_its_attempts() -> None:
    gateway = ScriptedGateway(*[httpx.ConnectError("refused")] * 3)
    with client_for(gateway) as client, pytest.raises(errors.Unavailable, match="cannot connect"):
        client.whoami()
    assert len(gateway.requests) == 3


def test_a_post_is_repeated_only_when_nothing_was_sent() -> None:
    accepted = httpx.Response(201, json={"ok": True})
    gateway = ScriptedGateway(httpx.ConnectError("refused"), accepted)
    with client_for(gateway) as client:
        client._connection.request("POST", "/v1/access-requests", json={})
    assert len(gateway.requests) == 2

    gateway = ScriptedGateway(httpx.ReadTimeout("slow"), accepted)
    with client_for(gateway) as client, pytest.raises(errors.Unavailable, match="in time"):
        client._connection.request("POST", "/v1/access-requests", json={})
    assert len(gateway.requests) == 1

    gateway = ScriptedGateway(problem(503, "service-unavailable"), accepted)
    with client_for(gateway) as client, pytest.raises(errors.Unavailable):
        client._connection.request("POST", "/v1/access-requests", json={})
    assert len(gateway.requests) == 1


def test_a_streamed_body_that_started_is_not_repeated() -> None:
    gateway = ScriptedGateway(httpx.ConnectError("refused"), httpx.Response(201, json={}))
    chunks = iter([b"one", b"two"])
    with client_for(gateway) as client, pytest.raises(errors.Unavailable):
        client._connection.request("POST", "/v1/blobs", content=chunks)
    assert len(gateway.requests) == 1


def test_an_invalid_token_is_renewed_once() -> None:
    me = {"id": "dr", "role": "clinician", "signing_public_key": "", "encryption_public_key": ""}
    gateway = ScriptedGateway(problem(401, "invalid-token"), httpx.Response(200, json=me))
    with client_for(gateway) as client:
        assert client.whoami().id == "dr"
    assert gateway.logins == 2
    assert [r.headers["Authorization"] for r in gateway.requests] == [
        "Bearer egt_1",
        "Bearer egt_2",
    ]

    gateway = ScriptedGateway(problem(401, "invalid-token"), problem(401, "invalid-token"))
    with client_for(gateway) as client, pytest.raises(errors.AuthenticationFailed):
        client.whoami()
    assert gateway.logins == 2


def test_a_malformed_answer_is_unavailable() -> None:
    gateway = ScriptedGateway(httpx.Response(200, json={"id": 5}))
    with client_for(gateway) as client, pytest.raises(errors.Unavailable, match="malformed"):
        client.whoami()


def test_a_url_without_scheme_is_a_usage_error() -> None:
    with pytest.raises(errors.EhrgateError, match="http://"):
        Client("gateway.test:8000")
