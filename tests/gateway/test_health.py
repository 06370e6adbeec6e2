"""Liveness and readiness."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from gateway import Settings, create_app
from tests.faults.proxy import closed_port
from tests.gateway.conftest import first_admin
from tests.gateway.helpers import TestClient, login


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


@pytest.mark.postgres
def test_readyz_is_503_and_requests_are_503_when_the_shared_auth_state_is_unreachable(
    tmp_path: Path, fresh_postgres_url: str
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=fresh_postgres_url)
    assert settings.shared_auth_state
    with TestClient(create_app(settings)) as client:
        admin = first_admin(settings)
        token = login(client, admin)
        ready = client.get("/readyz")
        assert ready.json()["checks"] == {"database": "ok", "stores": "ok", "auth_state": "ok"}
        backends = client.app.state.gateway.backends  # type: ignore[attr-defined]
        reachable = backends.auth_state.engine
        backends.auth_state.engine = create_engine(
            f"postgresql+psycopg://nobody@127.0.0.1:{closed_port()}/none"
        )
        try:
            response = client.get("/readyz")
            me = client.get("/v1/identities/me", headers={"Authorization": f"Bearer {token}"})
            challenge = client.post("/v1/auth/challenge", json={"identity_id": admin.id})
        finally:
            backends.auth_state.engine.dispose()
            backends.auth_state.engine = reachable
        again = client.get("/v1/identities/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 503
    assert response.json()["checks"]["auth_state"].startswith("unavailable")
    for refused in (me, challenge):
        assert refused.status_code == 503, refused.text
        assert refused.json()["type"].endswith("service-unavailable")
    assert again.status_code == 200
