"""The deployment files agree with the code: compose variables are real settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from gateway.settings import Settings, environment_variables
from storage import open_store

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


def _ehrgate_variables(compose: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for service in compose["services"].values():
        environment = service.get("environment", {})
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) for item in environment)
        for name, value in environment.items():
            if name.startswith("EHRGATE_"):
                found[name] = str(value)
    return found


def test_every_ehrgate_variable_in_compose_is_a_setting(compose: dict[str, Any]) -> None:
    variables = _ehrgate_variables(compose)
    assert variables, "the compose file configures the gateway through EHRGATE_* variables"
    unknown = set(variables) - environment_variables()
    assert not unknown, f"not settings: {sorted(unknown)}"


def test_every_ehrgate_variable_in_the_dockerfile_is_a_setting() -> None:
    names = set(re.findall(r"\b(EHRGATE_[A-Z_]+)=", (ROOT / "Dockerfile").read_text()))
    assert names
    assert names <= environment_variables()


def test_compose_settings_validate(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in _ehrgate_variables(compose).items():
        # ${VAR:?message} interpolation is done by compose; any password will do here.
        monkeypatch.setenv(name, re.sub(r"\$\{[^}]+\}", "secret", value))
    settings = Settings()
    assert settings.database_url is not None
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert [url.split(":", 1)[0] for url in settings.store_urls] == ["s3", "ipfs+http"]
    # The storage package accepts every URL and parameter (nothing is contacted).
    store = open_store(settings.store_urls, write_quorum=settings.write_quorum, check=False)
    store.close()


def test_only_the_gateway_is_published_and_only_on_loopback(compose: dict[str, Any]) -> None:
    published = {name: svc["ports"] for name, svc in compose["services"].items() if "ports" in svc}
    assert list(published) == ["gateway"]
    assert all(str(port).startswith("127.0.0.1:") for port in published["gateway"])


def test_kubo_runs_a_private_swarm(compose: dict[str, Any]) -> None:
    kubo = compose["services"]["kubo"]
    assert "ports" not in kubo
    assert kubo["environment"]["LIBP2P_FORCE_PNET"] == "1"
    script_mount = next(v for v in kubo["volumes"] if "container-init.d" in v)
    script = (ROOT / script_mount.split(":", 1)[0]).read_text()
    assert "ipfs bootstrap rm --all" in script
    assert "swarm.key" in script
    assert "Swarm.AddrFilters" in script
    assert '"/ip4/64.0.0.0/ipcidr/2"' in script  # public space is filtered
    assert "/ip4/10." not in script  # private space is not
