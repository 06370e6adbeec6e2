"""A body of several chunks is streamed with the next chunk read ahead while the current
one is sent; the read ahead must not let the last bytes out before the access entry is
durable, nor mix up the order of the chunks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from gateway import Settings, create_app
from tests.gateway import scenario
from tests.gateway.conftest import first_admin
from tests.gateway.helpers import ManualClock, World
from tests.gateway.live import live_world, serve_in_thread

# 5 MiB and a little: five full chunks of the store and a short sixth one.
BIG_PDF = b"%PDF-1.7\n" + bytes(range(256)) * (20 * 1024 + 7)


def _story(world: World) -> tuple[scenario.Cast, dict[str, object]]:
    cast = scenario.set_up(world)
    world.grant(cast.patient, cast.doctor, ["read"], ["lab-results"])
    world.grant(cast.patient, cast.system, ["write"], ["lab-results"])
    return cast, world.ingest_pdf(cast.system, cast.patient, "lab-results", BIG_PDF)


def _read(client: httpx.Client, path: str, headers: dict[str, str], into: bytearray) -> None:
    with client.stream("GET", path, headers=headers) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            into += chunk


def test_a_body_of_several_chunks_arrives_whole_and_in_order(
    tmp_path: Path, clock: ManualClock
) -> None:
    with live_world(Settings(data_dir=tmp_path / "data"), clock) as (_, world):
        cast, record = _story(world)
        received = bytearray()
        _read(
            world.client,
            f"/v1/records/{record['record_id']}/body",
            world.headers(cast.doctor),
            received,
        )
        assert len(received) == record["size"]
        assert hashlib.sha256(received).hexdigest() == record["body_sha256"]


def test_a_long_body_whose_access_entry_fails_never_sends_its_last_bytes(
    tmp_path: Path, clock: ManualClock
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    app = create_app(settings, clock=clock)
    with (
        serve_in_thread(app) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        world = World(client, clock, first_admin(settings))
        cast, record = _story(world)
        headers = world.headers(cast.doctor)
        backends = app.state.gateway.backends
        assert backends is not None
        backends.ledger.close()  # the read's `access` entry can no longer become durable
        received = bytearray()
        with pytest.raises(httpx.HTTPError):
            _read(world.client, f"/v1/records/{record['record_id']}/body", headers, received)
        size = record["size"]
        assert isinstance(size, int)
        assert len(received) < size
