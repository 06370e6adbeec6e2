"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres import scratch_database


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of an empty PostgreSQL database that lives for the whole test session."""
    with scratch_database() as url:
        yield url


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """URL of an empty PostgreSQL database for one test."""
    with scratch_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each supported kind: SQLite in a temporary file, and PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        with scratch_database() as url:
            yield url


# Real servers, one per session, for any test package: a js-ipfs node (tests/jsipfs.py)
# and a SeaweedFS S3 server (tests/seaweedfs.py).
from tests.jsipfs import jsipfs  # noqa: E402, F401
from tests.seaweedfs import seaweedfs, seaweedfs_bucket  # noqa: E402, F401
