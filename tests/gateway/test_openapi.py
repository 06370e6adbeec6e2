"""The OpenAPI document is complete: every operation described, typed, errors documented."""

from __future__ import annotations

from typing import Any

import pytest

from gateway import Settings, create_app
from tests.gateway.test_authorization_matrix import MATRIX


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    document: dict[str, Any] = create_app(Settings()).openapi()
    return document


def _operations(openapi: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, operations in openapi["paths"].items()
        for method, operation in operations.items()
    ]


def test_every_operation_has_a_one_line_description(openapi: dict[str, Any]) -> None:
    for method, path, operation in _operations(openapi):
        description = operation.get("description", "")
        assert description, f"{method} {path} has no description"
        assert "\n" not in description.strip(), f"{method} {path}: one line, please"


def test_every_success_response_has_a_schema(openapi: dict[str, Any]) -> None:
    for method, path, operation in _operations(openapi):
        success = [code for code in operation["responses"] if code.startswith("2")]
        assert success, f"{method} {path} documents no success response"
        for code in success:
            content = operation["responses"][code].get("content", {})
            assert content, f"{method} {path} {code} has no content"
            assert all("schema" in media for media in content.values()), (method, path, code)


def test_errors_are_documented_as_problems(openapi: dict[str, Any]) -> None:
    for method, path, operation in _operations(openapi):
        for code in ("422", "500", "503"):
            if (path, code) == ("/readyz", "503"):
                continue  # readiness says which service is down, in its own model
            content = operation["responses"][code]["content"]
            assert content == {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            }, (method, path, code)


def test_routes_that_need_a_token_document_401_and_the_scheme(openapi: dict[str, Any]) -> None:
    for method, path, operation in _operations(openapi):
        _, expect = MATRIX[(method, path)]
        if expect("anonymous", "valid") == 401 and path != "/v1/auth/token":
            assert "401" in operation["responses"], f"{method} {path} lacks 401"
            assert operation.get("security") == [{"HTTPBearer": []}], f"{method} {path}"
