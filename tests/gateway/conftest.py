"""Fixtures for the gateway tests: an embedded gateway (SQLite + local blobs) per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from envelope import IdentityKeys, load_key_file
from gateway import Settings, create_app
from tests.gateway.helpers import ManualClock, TestClient, World


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def app(settings: Settings, clock: ManualClock) -> FastAPI:
    return create_app(settings, clock=clock)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def first_admin(settings: Settings) -> IdentityKeys:
    keys = load_key_file(settings.data_dir / "admin.key")
    assert isinstance(keys, IdentityKeys)
    return keys


@pytest.fixture
def world(client: TestClient, clock: ManualClock, settings: Settings) -> World:
    return World(client, clock, first_admin(settings))
