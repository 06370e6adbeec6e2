"""schemathesis against the gateway's OpenAPI: no 5xx and no response outside the schema.

Each operation is fuzzed with a bounded number of generated requests against a real uvicorn
server, once anonymously and once with an admin's bearer token.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from envelope import IdentityKeys
from gateway import Settings, create_app
from gateway.deps import get_directory
from tests.gateway.helpers import MemoryDirectory, login
from tests.gateway.live import serve_in_thread

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 30


def _schema() -> Any:
    return schemathesis.openapi.from_dict(create_app(Settings()).openapi())


def _operations() -> list[Any]:
    return [result.ok() for result in _schema().get_all_operations()]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    app = create_app(Settings(data_dir=data_dir, auth_rate_limit=10_000))
    directory = MemoryDirectory()
    admin = directory.add(IdentityKeys.generate("fuzz-admin", "admin"))
    app.dependency_overrides[get_directory] = lambda: directory
    with serve_in_thread(app) as url:
        import httpx

        with httpx.Client(base_url=url) as client:
            token = login(client, admin)
        yield url, token


@pytest.mark.parametrize("authenticated", [False, True], ids=["anonymous", "admin"])
@pytest.mark.parametrize("operation", _operations(), ids=lambda op: op.label)
def test_operation_conforms_to_its_schema(
    operation: Any, authenticated: bool, live: tuple[str, str]
) -> None:
    url, token = live
    headers = {"Authorization": f"Bearer {token}"} if authenticated else {}

    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        case.call_and_validate(base_url=url, headers=headers, checks=CHECKS)

    check()
