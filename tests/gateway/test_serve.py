"""`ehrgate serve`: first start writes the keys; the server answers on the chosen port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from envelope import IdentityKeys, load_key_file
from gateway import Settings
from gateway.bootstrap import ensure_first_start
from ledger.ledger import Ledger
from tests.ports import free_port


def _identity(path: Path) -> IdentityKeys:
    keys = load_key_file(path)
    assert isinstance(keys, IdentityKeys)
    return keys


def test_first_start_writes_owner_only_key_files_and_the_genesis(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = ensure_first_start(settings)
    assert first.genesis_written
    assert first.admin_key_file == tmp_path / "admin.key"
    for path in (tmp_path / "admin.key", tmp_path / "ledger.key"):
        assert path.stat().st_mode & 0o777 == 0o600
    admin = _identity(tmp_path / "admin.key")
    assert admin.role == "admin"
    ledger_keys = _identity(tmp_path / "ledger.key")
    assert ledger_keys.public() == first.ledger_keys.public()
    with Ledger.open(settings.resolved_database_url, ledger_keys.signing_key) as ledger:
        assert ledger.tree_size() == 1
        identity = ledger.identity(admin.id)
        assert identity is not None
        assert identity.role == "admin"


def test_a_second_start_keeps_the_keys_and_the_ledger(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = ensure_first_start(settings)
    admin_before = (tmp_path / "admin.key").read_bytes()
    second = ensure_first_start(settings)
    assert not second.genesis_written
    assert second.admin_key_file is None
    assert second.ledger_keys.public() == first.ledger_keys.public()
    assert (tmp_path / "admin.key").read_bytes() == admin_before


def test_a_ledger_key_file_of_the_wrong_kind_is_refused(tmp_path: Path) -> None:
    from envelope import InvalidKeyFile, write_key_file

    write_key_file(tmp_path / "ledger.key", IdentityKeys.generate("intruder", "admin"))
    with pytest.raises(InvalidKeyFile, match="ledger"):
        ensure_first_start(Settings(data_dir=tmp_path))


def test_serve_rejects_bad_settings_with_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ehrgate.cli import cli

    monkeypatch.setenv("EHRGATE_WRITE_QUORUM", "3")
    result = CliRunner().invoke(cli, ["serve", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "write_quorum" in result.output


def test_serve_runs_on_loopback_and_prints_the_admin_key_path(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EHRGATE_")}
    env["EHRGATE_AUTH_RATE_LIMIT"] = "5"  # a refill every 12 s: the burst below outruns it
    process = subprocess.Popen(
        [sys.executable, "-m", "ehrgate", "serve", "--port", str(port), "--data-dir", "data"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.communicate()[0]
                assert time.monotonic() < deadline, "ehrgate serve did not start"
                time.sleep(0.1)
        assert response.status_code == 200
        # No proxy is trusted: a forged X-Forwarded-For does not escape the per-address limit.
        statuses = {
            httpx.post(
                f"http://127.0.0.1:{port}/v1/auth/challenge",
                json={"identity_id": f"someone-{index}"},
                headers={"X-Forwarded-For": f"198.51.100.{index}"},
            ).status_code
            for index in range(12)
        }
        assert 429 in statuses
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert f"first admin key file (keep it safe): {Path('data') / 'admin.key'}" in output
    assert (tmp_path / "data" / "admin.key").stat().st_mode & 0o777 == 0o600
    assert f"http://127.0.0.1:{port}" in output
