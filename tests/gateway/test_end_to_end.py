"""The acceptance story through real uvicorn on 127.0.0.1, against PostgreSQL and SeaweedFS,
and an offline verification of the resulting ledger fetched from the gateway."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from envelope import IdentityKeys
from gateway import Settings, create_app
from ledger.exported import ExportSource
from ledger.verify import verify
from tests.gateway import scenario
from tests.gateway.conftest import first_admin
from tests.gateway.helpers import ManualClock, World
from tests.gateway.live import serve_in_thread
from tests.seaweedfs import SeaweedFS

pytestmark = [pytest.mark.postgres, pytest.mark.seaweedfs]


@pytest.fixture
def live_world(
    tmp_path: Path,
    fresh_postgres_url: str,
    seaweedfs: SeaweedFS,
    seaweedfs_bucket: str,
    clock: ManualClock,
) -> Iterator[World]:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=fresh_postgres_url,
        store_urls=[seaweedfs.store_url(seaweedfs_bucket)],
    )
    with serve_in_thread(create_app(settings, clock=clock)) as url:
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=url, timeout=60) as client:
            yield World(client, clock, first_admin(settings))


def _pages(client: httpx.Client, path: str, key: str, headers: dict[str, str]) -> Iterator[Any]:
    start: int | None = 0
    while start is not None:
        response = client.get(path, params={"start": start, "limit": 50}, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        yield from page[key]
        start = page["next_start"]


def test_story_on_postgres_and_seaweedfs_then_the_ledger_verifies(live_world: World) -> None:
    client = live_world.client
    ready = client.get("/readyz")
    # On PostgreSQL the authentication state is kept in the database, shared by replicas.
    checks = {"database": "ok", "stores": "ok", "auth_state": "ok"}
    assert ready.json() == {"status": "ready", "checks": checks}

    scenario.run(live_world)

    auditor: IdentityKeys = live_world.enroll("auditor-e2e", "auditor")
    headers = live_world.headers(auditor)
    head = client.get("/v1/ledger/head").json()
    source = ExportSource(
        list(_pages(client, "/v1/ledger/entries", "entries", headers)),
        list(_pages(client, "/v1/ledger/blocks", "blocks", headers)),
    )
    report = verify(source)
    assert report.ok, report.summary()
    assert head["tree_head"]["tree_size"] >= 10
