"""`ehrgate witness keygen | vkey | serve`: keys, configuration errors, a real served witness."""

from __future__ import annotations

import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
from click.testing import CliRunner, Result

from ehrgate.cli import cli
from ledger.wire.cosignatures import CosignatureVerifier
from ledger.wire.notes import Verifiers, open_note
from tests.ports import free_port
from tests.witness.helpers import TestLog


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def test_keygen_writes_a_private_key_and_prints_its_vkey(tmp_path: Path) -> None:
    key_file = tmp_path / "witness.key"
    made = run("witness", "keygen", "witness.hospital-b.example", "--key-file", key_file)
    assert made.exit_code == 0, made.output
    vkey = made.output.strip()
    assert CosignatureVerifier.from_vkey(vkey).name == "witness.hospital-b.example"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    shown = run("witness", "vkey", "--key-file", key_file)
    assert shown.output.strip() == vkey


def test_keygen_never_replaces_a_key(tmp_path: Path) -> None:
    key_file = tmp_path / "witness.key"
    run("witness", "keygen", "w.example", "--key-file", key_file)
    before = key_file.read_bytes()
    again = run("witness", "keygen", "w.example", "--key-file", key_file)
    assert again.exit_code == 2
    assert "never replaced" in again.output
    assert key_file.read_bytes() == before


def test_keygen_refuses_a_name_with_spaces(tmp_path: Path) -> None:
    refused = run("witness", "keygen", "my witness", "--key-file", tmp_path / "k")
    assert refused.exit_code == 2
    assert not (tmp_path / "k").exists()


def test_serve_names_what_is_wrong_with_the_configuration(tmp_path: Path) -> None:
    config = tmp_path / "witness.toml"
    missing = run("witness", "serve", "--config", config)
    assert missing.exit_code == 2
    assert "no witness configuration" in missing.output
    config.write_text('key_file = "witness.key"\n')
    assert "ehrgate witness keygen" in run("witness", "serve", "--config", config).output
    run("witness", "keygen", "w.example", "--key-file", tmp_path / "witness.key")
    config.write_text('key_file = "witness.key"\n[[logs]]\norigin = "a/b"\nvkey = "nope"\n')
    bad_vkey = run("witness", "serve", "--config", config)
    assert bad_vkey.exit_code == 2
    assert "log a/b" in bad_vkey.output
    config.write_text('key_file = "witness.key"\nport = 1\n')
    assert "unknown settings" in run("witness", "serve", "--config", config).output


def test_serve_runs_a_witness_on_loopback(tmp_path: Path) -> None:
    log = TestLog().grow(9)
    vkey = run("witness", "keygen", "w.example", "--key-file", tmp_path / "witness.key").output
    (tmp_path / "witness.toml").write_text(
        'key_file = "witness.key"\n'
        f'[[logs]]\norigin = "{log.signer.name}"\nvkey = "{log.signer.verifier.vkey()}"\n'
    )
    port = free_port()
    output = tmp_path / "serve.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "ehrgate", "witness", "serve", "--config",
             str(tmp_path / "witness.toml"), "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, output.read_text()
            assert time.monotonic() < deadline, "the witness did not start within 30 s"
            time.sleep(0.1)
        answer = httpx.post(f"{url}/add-checkpoint", content=log.request(0, 9))
        assert answer.status_code == 200
        note = log.note(9) + answer.content
        assert open_note(note, Verifiers([CosignatureVerifier.from_vkey(vkey.strip())])).verified
        assert (tmp_path / "witness.db").exists()
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_witness_loads_no_gateway_storage_or_database_stack() -> None:
    probe = (
        "import sys, witness, witness.app\n"
        "heavy = ('sqlalchemy', 'alembic', 'boto3', 'storage', 'gateway', 'ledger.ledger')\n"
        "print(' '.join(sorted(m for m in heavy if m in sys.modules)))\n"
    )
    root = Path(__file__).resolve().parents[2]
    found = subprocess.run(
        [sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, timeout=120,
        check=True,
    )  # fmt: skip
    assert found.stdout.strip() == ""
