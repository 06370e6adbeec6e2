"""Liveness and readiness."""

from __future__ import annotations

import shutil
from pathlib import Path

from gateway import Settings, create_app
from tests.gateway.helpers import TestClient


def test_healthz_answers(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_reports_database_and_stores(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "store0": "ok"}}


def test_readyz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, database_url="postgresql+psycopg://postgres@127.0.0.1:1/nothing"
    )
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
        assert client.get("/healthz").status_code == 200
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("unavailable")


def test_readyz_is_503_when_a_store_is_gone(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with TestClient(create_app(settings)) as client:
        shutil.rmtree(tmp_path / "blobs")
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["store0"].startswith("unavailable")
