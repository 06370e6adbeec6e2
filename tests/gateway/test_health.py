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
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "stores": "ok"}}


def test_readyz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with TestClient(create_app(settings)) as client:
        backends = client.app.state.gateway.backends  # type: ignore[attr-defined]
        backends.ledger.engine.dispose()
        (tmp_path / "ledger.db").unlink()
        (tmp_path / "ledger.db").mkdir()  # the file is gone and cannot be recreated
        response = client.get("/readyz")
        assert client.get("/healthz").status_code == 200
        (tmp_path / "ledger.db").rmdir()
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("unavailable")


def test_readyz_is_503_when_a_store_is_gone(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with TestClient(create_app(settings)) as client:
        shutil.rmtree(tmp_path / "blobs")
        (tmp_path / "blobs").write_bytes(b"")  # where the store's directory should be
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["stores"].startswith("unavailable")
