"""Every error leaves the gateway as RFC 9457 problem+json with a stable type."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from gateway import errors
from tests.gateway.helpers import TestClient

PROBLEM_TYPE = "application/problem+json"


def _assert_problem(response: object, status: int, slug: str) -> dict[str, object]:
    from httpx import Response

    assert isinstance(response, Response)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_TYPE
    body: dict[str, object] = response.json()
    assert body["type"] == f"urn:ehrgate:problem:{slug}"
    assert body["status"] == status
    assert isinstance(body["title"], str)
    assert isinstance(body["detail"], str)
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def test_unknown_route_is_a_404_problem(client: TestClient) -> None:
    body = _assert_problem(client.get("/v1/nothing-here"), 404, "not-found")
    assert body["instance"] == "/v1/nothing-here"


def test_wrong_method_is_a_405_problem(client: TestClient) -> None:
    _assert_problem(client.delete("/healthz"), 405, "method-not-allowed")


def test_unknown_json_field_is_a_422_problem_naming_the_field(client: TestClient) -> None:
    response = client.post("/v1/auth/challenge", json={"identity_id": "a", "role": "admin"})
    body = _assert_problem(response, 422, "validation-failed")
    assert body["errors"] == [
        {
            "loc": ["body", "role"],
            "msg": "Extra inputs are not permitted",
            "type": "extra_forbidden",
        }
    ]


def test_validation_errors_do_not_echo_the_rejected_input(client: TestClient) -> None:
    secret = "1970-01-01 Jane Doe 123-45-6789"
    response = client.post("/v1/auth/challenge", json={"identity_id": secret})
    _assert_problem(response, 422, "validation-failed")
    assert secret not in response.text


def test_malformed_json_is_a_422_problem(client: TestClient) -> None:
    response = client.post(
        "/v1/auth/challenge", content=b"{not json", headers={"content-type": "application/json"}
    )
    _assert_problem(response, 422, "validation-failed")


def test_non_json_body_on_a_json_route_is_a_415_problem(client: TestClient) -> None:
    response = client.post(
        "/v1/auth/challenge", content=b"identity_id=a", headers={"content-type": "text/plain"}
    )
    _assert_problem(response, 415, "unsupported-media-type")


def test_unexpected_failure_is_a_500_problem_without_internals(app: FastAPI) -> None:
    @app.get("/explode")
    def explode() -> None:
        raise RuntimeError("database password is hunter2")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/explode")
    body = _assert_problem(response, 500, "internal")
    assert "hunter2" not in response.text
    assert "request_id" in str(body["detail"])


@pytest.mark.parametrize(
    ("error", "status", "slug"),
    [
        (errors.ServiceUnavailable, 503, "service-unavailable"),
        (errors.IntegrityFailure, 502, "integrity-error"),
        (errors.AccessDenied, 403, "access-denied"),
        (errors.RuleViolation, 422, "rule-violation"),
        (errors.Conflict, 409, "conflict"),
    ],
)
def test_gateway_errors_map_to_their_status_and_type(
    app: FastAPI, error: type[errors.GatewayError], status: int, slug: str
) -> None:
    @app.get("/fail")
    def fail() -> None:
        raise error("specific reason")

    with TestClient(app) as client:
        body = _assert_problem(client.get("/fail"), status, slug)
    assert body["detail"] == "specific reason"


def test_unavailable_carries_retry_after(app: FastAPI) -> None:
    @app.get("/down")
    def down() -> None:
        raise errors.ServiceUnavailable("the blob store is down")

    with TestClient(app) as client:
        assert client.get("/down").headers["retry-after"] == "5"


def test_problem_types_are_unique_and_stable() -> None:
    classes = [
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.GatewayError)
    ]
    slugs = [cls.slug for cls in classes]
    assert len(slugs) == len(set(slugs))
    assert all(cls.type_uri() == f"urn:ehrgate:problem:{cls.slug}" for cls in classes)
