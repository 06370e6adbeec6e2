"""schemathesis against the gateway's OpenAPI: no 5xx and no response outside the schema.

Each operation is fuzzed with a bounded number of generated requests against a real uvicorn
server: anonymously, with an admin's bearer token and with a clinician's.
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

from gateway import Settings, create_app
from tests.gateway.conftest import first_admin
from tests.gateway.helpers import ManualClock, World, login
from tests.gateway.live import serve_in_thread

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 10

# PDFs are opaque bytes to the fuzzer, like any other binary body.
schemathesis.serializer.alias("application/pdf", "application/octet-stream")


def _schema() -> Any:
    return schemathesis.openapi.from_dict(create_app(Settings()).openapi())


def _operations() -> list[Any]:
    return [result.ok() for result in _schema().get_all_operations()]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    settings = Settings(data_dir=data_dir, auth_rate_limit=10_000)
    with serve_in_thread(create_app(settings)) as url:
        import httpx

        with httpx.Client(base_url=url) as client:
            world = World(client, ManualClock.system(), first_admin(settings))
            clinician = world.enroll("fuzz-clinician", "clinician")
            tokens = {
                "admin": login(client, world.admin),
                "clinician": login(client, clinician),
            }
        yield url, tokens


@pytest.mark.parametrize("role", ["anonymous", "admin", "clinician"])
@pytest.mark.parametrize("operation", _operations(), ids=lambda op: op.label)
def test_operation_conforms_to_its_schema(
    operation: Any, role: str, live: tuple[str, dict[str, str]]
) -> None:
    url, tokens = live
    headers = {"Authorization": f"Bearer {tokens[role]}"} if role in tokens else {}

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
