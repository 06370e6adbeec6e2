"""Fixtures for the gateway tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from gateway import Settings, create_app
from gateway.deps import get_directory
from tests.gateway.helpers import ManualClock, MemoryDirectory, TestClient


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def directory() -> MemoryDirectory:
    return MemoryDirectory()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def app(settings: Settings, clock: ManualClock, directory: MemoryDirectory) -> FastAPI:
    app = create_app(settings, clock=clock)
    app.dependency_overrides[get_directory] = lambda: directory
    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
