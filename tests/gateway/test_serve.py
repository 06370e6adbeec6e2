"""`ehrgate serve`: first start writes the keys; the server answers on the chosen port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from gateway import Settings
from gateway.bootstrap import ensure_first_start, read_key_file


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_first_start_writes_owner_only_key_files(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = ensure_first_start(settings)
    assert first.created
    assert first.admin_key_file == tmp_path / "admin.key"
    for path in (tmp_path / "admin.key", tmp_path / "ledger.key"):
        assert path.stat().st_mode & 0o777 == 0o600
    admin = read_key_file(tmp_path / "admin.key")
    assert admin.role == "admin"
    assert read_key_file(tmp_path / "ledger.key").public() == first.ledger_keys.public()


def test_a_second_start_keeps_the_keys(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = ensure_first_start(settings)
    admin_before = (tmp_path / "admin.key").read_bytes()
    second = ensure_first_start(settings)
    assert not second.created
    assert second.admin_key_file is None
    assert second.ledger_keys.public() == first.ledger_keys.public()
    assert (tmp_path / "admin.key").read_bytes() == admin_before


def test_serve_rejects_bad_settings_with_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ehrgate.cli import cli

    monkeypatch.setenv("EHRGATE_WRITE_QUORUM", "3")
    result = CliRunner().invoke(cli, ["serve", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "write_quorum" in result.output


def test_serve_runs_on_loopback_and_prints_the_admin_key_path(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EHRGATE_")}
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
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert f"first admin key file (keep it safe): {Path('data') / 'admin.key'}" in output
    assert (tmp_path / "data" / "admin.key").stat().st_mode & 0o777 == 0o600
    assert f"http://127.0.0.1:{port}" in output
