"""The acceptance story on the embedded gateway (SQLite + local blobs), in process."""

from __future__ import annotations

from tests.gateway import scenario
from tests.gateway.helpers import World


def test_register_grant_ingest_read_expire_audit(world: World) -> None:
    scenario.run(world)
