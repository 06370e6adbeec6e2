"""`ehrgate bridge serve` refuses bad SMART, OpenID Connect and MLLP settings with a message
naming the setting and exit status 2, before it binds anything; the access-token key is
made once (0600) and kept."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner
from joserfc.jwk import ECKey

from bridge.errors import BridgeUsageError
from bridge.wiring import load_or_make_token_key
from ehrgate.cli import cli
from tests.ports import free_port

_KEY = ECKey.generate_key("P-384", parameters={"kid": "k1"}, private=True)


@pytest.fixture
def base_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("EHRGATE_BRIDGE_"):
            monkeypatch.delenv(name)
    values = {
        "GATEWAY_URL": "http://127.0.0.1:9",
        "HOSPITAL_ID": "st-elsewhere",
        "SYSTEM_IDENTITY": "aria-export",
        "PASSPHRASE": "pw",
        "DATA_DIR": str(tmp_path),
    }
    for name, value in values.items():
        monkeypatch.setenv(f"EHRGATE_BRIDGE_{name}", value)
    return monkeypatch


def _client(jwks: object) -> str:
    return json.dumps(
        {"engine": {"jwks": jwks, "identity": "aria-export", "scopes": ["system/Binary.r"]}}
    )


def serve_fails(expected: str) -> None:
    answer = CliRunner().invoke(cli, ["bridge", "serve"])
    assert answer.exit_code == 2, answer.output
    assert expected in answer.output


def test_smart_clients_that_are_not_json(base_env: pytest.MonkeyPatch) -> None:
    base_env.setenv("EHRGATE_BRIDGE_SMART_CLIENTS", "{engine: nope")
    serve_fails("smart_clients")


def test_smart_client_without_identity(base_env: pytest.MonkeyPatch) -> None:
    base_env.setenv(
        "EHRGATE_BRIDGE_SMART_CLIENTS", json.dumps({"engine": {"jwks": {}, "scopes": ["x"]}})
    )
    serve_fails("EHRGATE_BRIDGE_SMART_CLIENTS (engine.identity)")


def test_smart_clients_need_a_token_url(base_env: pytest.MonkeyPatch) -> None:
    base_env.setenv(
        "EHRGATE_BRIDGE_SMART_CLIENTS", _client({"keys": [_KEY.as_dict(private=False)]})
    )
    serve_fails("EHRGATE_BRIDGE_TOKEN_URL")


def test_a_jwks_with_private_keys_is_refused(base_env: pytest.MonkeyPatch) -> None:
    base_env.setenv("EHRGATE_BRIDGE_PUBLIC_URL", "http://127.0.0.1:8080")
    base_env.setenv("EHRGATE_BRIDGE_SMART_CLIENTS", _client({"keys": [_KEY.as_dict(private=True)]}))
    serve_fails("private")


def test_a_missing_jwks_file_is_named(base_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    base_env.setenv("EHRGATE_BRIDGE_PUBLIC_URL", "http://127.0.0.1:8080")
    base_env.setenv("EHRGATE_BRIDGE_SMART_CLIENTS", _client(str(tmp_path / "absent.json")))
    serve_fails("absent.json")


def test_oidc_issuer_needs_jwks_and_audience(base_env: pytest.MonkeyPatch) -> None:
    base_env.setenv("EHRGATE_BRIDGE_OIDC_ISSUER", "https://login.test")
    serve_fails("EHRGATE_BRIDGE_OIDC_JWKS")


def test_mllp_port_out_of_range(base_env: pytest.MonkeyPatch) -> None:
    base_env.setenv("EHRGATE_BRIDGE_MLLP_PORT", "70000")
    serve_fails("EHRGATE_BRIDGE_MLLP_PORT")


def test_token_key_is_made_once_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "token-key.jwk"
    made = load_or_make_token_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_make_token_key(path).as_dict(private=True) == made.as_dict(private=True)
    path.chmod(0o644)
    with pytest.raises(BridgeUsageError, match="chmod 600"):
        load_or_make_token_key(path)
    path.chmod(0o600)
    path.write_text(json.dumps(_KEY.as_dict(private=True)))
    with pytest.raises(BridgeUsageError, match="P-256"):
        load_or_make_token_key(path)


def test_an_unusable_replay_cache_is_named(base_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "blocked").write_text("a file, not a directory")
    base_env.setenv("EHRGATE_BRIDGE_PUBLIC_URL", "http://127.0.0.1:8080")
    base_env.setenv("EHRGATE_BRIDGE_REPLAY_CACHE", str(tmp_path / "blocked" / "replay.sqlite3"))
    base_env.setenv(
        "EHRGATE_BRIDGE_SMART_CLIENTS", _client({"keys": [_KEY.as_dict(private=False)]})
    )
    serve_fails("cannot open the replay cache")


@pytest.mark.parametrize("which", ["mllp", "http"])
def test_a_port_in_use_is_named_before_serving(base_env: pytest.MonkeyPatch, which: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        taken = holder.getsockname()[1]
        if which == "mllp":
            base_env.setenv("EHRGATE_BRIDGE_MLLP_PORT", str(taken))
            base_env.setenv("EHRGATE_BRIDGE_PORT", str(free_port()))
            serve_fails(f"HL7 v2 listener cannot listen on 127.0.0.1:{taken}")
        else:
            base_env.setenv("EHRGATE_BRIDGE_PORT", str(taken))
            serve_fails("EHRGATE_BRIDGE_PORT")
