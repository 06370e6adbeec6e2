"""`ehrgate keys upgrade FILE`: a version 1 key file becomes version 2, same keys, old kept."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner, Result

from ehrgate.cli import cli
from ehrgate.commands._keyfiles import public_document
from envelope import load_key_file
from tests.envelope.conftest import VECTORS

KEYFILES = VECTORS / "keyfiles"
PASSPHRASE = json.loads((KEYFILES / "expected.json").read_text())["passphrase"]


def run(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    environment: dict[str, str | None] = {"EHRGATE_PASSPHRASE": None, **(env or {})}
    return CliRunner().invoke(cli, [str(arg) for arg in args], env=environment)


def copy(name: str, directory: Path) -> Path:
    shutil.copyfile(KEYFILES / name, directory / name)
    return directory / name


def test_upgrade_a_v1_patient_file(tmp_path: Path) -> None:
    path = copy("v1-patient.key", tmp_path)
    before = public_document(load_key_file(path))
    result = run("keys", "upgrade", path)
    assert result.exit_code == 0, result.output
    assert "from key file version 1 to 2" in result.output
    assert f"{path}.v1.bak" in result.output
    assert "Still in version 1 form: the encryption key" in result.output
    assert "the record key" in result.output
    assert "re-keying replaces them" in result.output
    assert json.loads(path.read_text())["version"] == 2
    assert public_document(load_key_file(path)) == before
    again = run("keys", "upgrade", path, "--json")
    assert again.exit_code == 0, again.output
    answer = json.loads(again.output)
    assert answer["changed"] is False
    assert answer["kept_v1"] == ["encryption_key", "record_key"]


def test_upgrade_a_protected_file_as_json(tmp_path: Path) -> None:
    path = copy("v1-identity-protected.key", tmp_path)
    result = run(
        "keys", "upgrade", path, "--passphrase-env", "PW", "--json", env={"PW": PASSPHRASE}
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["changed"] is True
    assert answer["from_version"] == 1
    assert answer["version"] == 2
    assert answer["backup"] == f"{path}.v1.bak"
    assert answer["kept_v1"] == ["encryption_key"]
    assert "encrypted" in json.loads(path.read_text())


def test_upgrade_errors_change_nothing(tmp_path: Path) -> None:
    path = copy("v1-identity-protected.key", tmp_path)
    original = path.read_bytes()
    wrong = run("keys", "upgrade", path, "--passphrase-env", "PW", env={"PW": "wrong"})
    assert wrong.exit_code == 1
    assert "passphrase does not open" in wrong.output
    missing = run("keys", "upgrade", path)
    assert missing.exit_code == 2
    assert "protected by a passphrase" in missing.output
    (tmp_path / "v1-identity-protected.key.v1.bak").write_text("keep me")
    exists = run("keys", "upgrade", path, "--passphrase-env", "PW", env={"PW": PASSPHRASE})
    assert exists.exit_code == 2
    assert "already exists" in exists.output
    assert path.read_bytes() == original
    assert run("keys", "upgrade", tmp_path / "nothing.key").exit_code == 2
