"""`/metrics` is for a scraper on loopback or one that holds the metrics token, nobody else."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from gateway import Settings, create_app
from gateway.routes.health import is_loopback
from tests.gateway.helpers import TestClient

STRANGER = ("203.0.113.9", 4000)
TOKEN = "metrics-secret-0123456789"


def test_without_a_token_only_loopback_clients_are_served(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path / "data"))
    with TestClient(app, client=STRANGER) as stranger:
        refused = stranger.get("/metrics")
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert "ehrgate_" not in refused.text
    for address in ("127.0.0.1", "::1"):
        with TestClient(app, client=(address, 4000)) as local:
            served = local.get("/metrics")
        assert served.status_code == 200
        assert "ehrgate_http_requests_total" in served.text


def test_with_a_token_the_token_is_required_from_anywhere(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path / "data", metrics_token=SecretStr(TOKEN)))
    for client in (STRANGER, ("127.0.0.1", 4000)):
        with TestClient(app, client=client) as scraper:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
                refused = scraper.get("/metrics", headers=headers)
                assert refused.status_code == 401
                assert refused.headers["content-type"] == "application/problem+json"
                assert "ehrgate_" not in refused.text
            served = scraper.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            assert served.status_code == 200
            assert "ehrgate_http_requests_total" in served.text


def test_the_token_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EHRGATE_METRICS_TOKEN", TOKEN)
    token = Settings().metrics_token
    assert token is not None
    assert token.get_secret_value() == TOKEN
    assert TOKEN not in repr(Settings())


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("testclient", False),
        ("localhost", False),
        (None, False),
    ],
)
def test_loopback_means_a_loopback_ip_address(host: str | None, loopback: bool) -> None:
    assert is_loopback(host) is loopback
