"""Settings from the environment, a TOML file and defaults; nothing built at import."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway import Settings, create_app


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("EHRGATE_") and not name.startswith("EHRGATE_TEST_"):
            monkeypatch.delenv(name)


def test_defaults_are_the_embedded_setup_under_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path / 'ledger.db'}"
    assert settings.store_urls == [(tmp_path / "blobs").as_uri()]
    assert settings.host == "127.0.0.1"
    assert settings.effective_write_quorum == 1
    assert settings.resolved_ledger_key_file == tmp_path / "ledger.key"


def test_default_data_dir_is_dot_ehrgate() -> None:
    assert Settings().data_dir == Path(".ehrgate")


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EHRGATE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("EHRGATE_PORT", "9123")
    monkeypatch.setenv("EHRGATE_TOKEN_LIFETIME", "300")
    monkeypatch.setenv("EHRGATE_MAX_BODY_SIZE", "2GiB")
    monkeypatch.setenv("EHRGATE_STORE_URLS", "s3://a?endpoint_url=http://x, file:///b")
    monkeypatch.setenv("EHRGATE_WRITE_QUORUM", "2")
    monkeypatch.setenv("EHRGATE_LOG_LEVEL", "DEBUG")
    settings = Settings()
    assert settings.data_dir == tmp_path
    assert settings.port == 9123
    assert settings.token_lifetime == timedelta(minutes=5)
    assert settings.max_body_size == 2 * 1024**3
    assert settings.store_urls == ["s3://a?endpoint_url=http://x", "file:///b"]
    assert settings.write_quorum == 2
    assert settings.log_level == "debug"


def test_trusted_proxies_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EHRGATE_TRUSTED_PROXIES", "10.0.0.1, 10.0.0.2")
    assert Settings().trusted_proxies == ["10.0.0.1", "10.0.0.2"]
    assert Settings(data_dir=Path("x")).trusted_proxies == ["10.0.0.1", "10.0.0.2"]


def test_store_urls_accept_a_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EHRGATE_STORE_URLS", '["file:///a", "file:///b"]')
    assert Settings().store_urls == ["file:///a", "file:///b"]


def test_a_toml_file_is_read_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "ehrgate.toml"
    path.write_text('port = 7000\nhost = "127.0.0.2"\nstore_urls = ["file:///x"]\n')
    monkeypatch.setenv("EHRGATE_SETTINGS_FILE", str(path))
    monkeypatch.setenv("EHRGATE_PORT", "7001")
    settings = Settings()
    assert settings.host == "127.0.0.2"
    assert settings.port == 7001
    assert settings.store_urls == ["file:///x"]


def test_explicit_values_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EHRGATE_PORT", "7001")
    assert Settings(port=7002).port == 7002


def test_unknown_keys_in_the_file_are_rejected(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "ehrgate.toml"
    path.write_text("prot = 7000\n")
    monkeypatch.setenv("EHRGATE_SETTINGS_FILE", str(path))
    with pytest.raises(ValidationError, match="prot"):
        Settings()


def test_a_missing_settings_file_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EHRGATE_SETTINGS_FILE", str(tmp_path / "absent.toml"))
    with pytest.raises(ValueError, match=r"absent\.toml"):
        Settings()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("write_quorum", 2, "only 1 store"),
        ("port", 0, "greater than or equal to 1"),
        ("token_lifetime", 0, "positive"),
        ("auth_rate_limit", 0, "greater than or equal to 1"),
        ("log_level", "loud", "log_level"),
        ("max_json_size", "10GiB", "max_json_size"),
    ],
)
def test_bad_values_are_rejected_with_a_clear_message(
    field: str, value: object, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings.model_validate({field: value})


def test_importing_and_creating_the_app_touches_nothing(tmp_path: Path) -> None:
    code = (
        "import gateway, gateway.app, gateway.routes.auth\n"
        "from gateway import Settings, create_app\n"
        "create_app(Settings())\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True)
    assert list(tmp_path.iterdir()) == []


def test_the_lifespan_creates_the_embedded_directories(tmp_path: Path) -> None:
    from tests.gateway.helpers import TestClient

    app = create_app(Settings(data_dir=tmp_path / "d"))
    assert not (tmp_path / "d").exists()
    with TestClient(app):
        assert (tmp_path / "d" / "blobs").is_dir()
