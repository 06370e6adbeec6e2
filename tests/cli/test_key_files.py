"""Passphrase-protected key files in every command: the command's own --passphrase-env,
else the global one, else EHRGATE_PASSPHRASE; and a clear error when the variable is unset
or the passphrase wrong."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ehrgate.cli import cli
from ehrgate.commands._keyfiles import public_document
from envelope import IdentityKeys, PatientKeys, load_key_file, write_key_file

SECRET = "correct horse battery"


def run(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    """`ehrgate ARGS` in process, with no EHRGATE_PASSPHRASE but the one in *env*."""
    environment: dict[str, str | None] = {"EHRGATE_PASSPHRASE": None, **(env or {})}
    return CliRunner().invoke(cli, [str(arg) for arg in args], env=environment)


def new_identity(
    out: Path, *after: str, before: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> Result:
    """`ehrgate [BEFORE] keys identity --id <out's stem> ... --out OUT [AFTER]`."""
    arguments: tuple[str | Path, ...] = (
        "--id",
        out.stem,
        "--role",
        "clinician",
        "--out",
        out,
        *after,
    )
    return run(*before, "keys", "identity", *arguments, env=env)


@dataclass
class Files:
    locked: Path  # dr-lock's key file, protected by SECRET
    patient_pub: Path
    system_key: Path
    sealed: Path  # sealed by the system to the patient and dr-lock


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    directory = tmp_path_factory.mktemp("key-files")
    doctor = IdentityKeys.generate("dr-lock", "clinician")
    patient = PatientKeys.generate({"mrn": "A-7"})
    system = IdentityKeys.generate("aria-export", "system")
    locked = directory / "dr-lock.key"
    write_key_file(locked, doctor, passphrase=SECRET)
    write_key_file(directory / "system.key", system)
    for name, keys in (("patient", patient), ("dr-lock", doctor)):
        (directory / f"{name}.pub").write_text(json.dumps(public_document(keys)))
    plain = directory / "report.txt"
    plain.write_text("potassium 4.1 mmol/L")
    sealed = directory / "report.sealed"
    done = run(
        "seal",
        "--to",
        directory / "patient.pub",
        "--to",
        directory / "dr-lock.pub",
        "--as",
        directory / "system.key",
        plain,
        sealed,
    )
    assert done.exit_code == 0, done.output
    return Files(locked, directory / "patient.pub", directory / "system.key", sealed)


def test_the_global_option_opens_the_key_file_of_open(files: Files, tmp_path: Path) -> None:
    out = tmp_path / "report.txt"
    env = {"DR_SECRET": SECRET}
    result = run(
        "--passphrase-env", "DR_SECRET", "open", "--key", files.locked, files.sealed, out, env=env
    )
    assert result.exit_code == 0, result.output
    assert out.read_text() == "potassium 4.1 mmol/L"
    result = run("--passphrase-env", "DR_SECRET", "keys", "public", files.locked, env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["id"] == "dr-lock"


def test_ehrgate_passphrase_opens_the_key_file_of_offline_commands(files: Files) -> None:
    result = run("keys", "public", files.locked, env={"EHRGATE_PASSPHRASE": SECRET})
    assert result.exit_code == 0, result.output


def test_seal_signs_with_a_protected_key_named_by_the_global_option(
    files: Files, tmp_path: Path
) -> None:
    plain = tmp_path / "note.txt"
    plain.write_text("signed by a locked key")
    result = run(
        "--passphrase-env",
        "DR_SECRET",
        "seal",
        "--to",
        files.patient_pub,
        "--as",
        files.locked,
        "--json",
        plain,
        tmp_path / "note.sealed",
        env={"DR_SECRET": SECRET},
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["signer_id"] == "dr-lock"


def test_the_commands_own_option_wins_over_the_global_one(files: Files) -> None:
    env = {"RIGHT": SECRET, "WRONG": "guess"}
    own = ("keys", "public", files.locked, "--passphrase-env")
    assert run("--passphrase-env", "WRONG", *own, "RIGHT", env=env).exit_code == 0
    refused = run("--passphrase-env", "RIGHT", *own, "WRONG", env=env)
    assert refused.exit_code == 1
    assert "passphrase does not open" in refused.stderr
    assert "$WRONG" in refused.stderr


def test_a_named_variable_must_be_set(files: Files, tmp_path: Path) -> None:
    for arguments in (
        ("--passphrase-env", "NOPE_NOT_SET", "keys", "public", files.locked),
        ("keys", "public", files.locked, "--passphrase-env", "NOPE_NOT_SET"),
        ("--passphrase-env", "NOPE_NOT_SET", "open", "--key", files.locked, files.sealed, "o"),
    ):
        result = run(*arguments)
        assert result.exit_code == 2, arguments
        assert "environment variable NOPE_NOT_SET is not set or empty" in result.stderr
    made = new_identity(tmp_path / "x.key", before=("--passphrase-env", "NOPE_NOT_SET"))
    assert made.exit_code == 2
    assert not (tmp_path / "x.key").exists()


def test_a_protected_file_without_a_passphrase_says_where_to_put_it(files: Files) -> None:
    result = run("open", "--key", files.locked, files.sealed, files.sealed.parent / "out")
    assert result.exit_code == 2
    assert "protected by a passphrase" in result.stderr
    assert "$EHRGATE_PASSPHRASE" in result.stderr
    assert "--passphrase-env VAR" in result.stderr


def test_a_wrong_passphrase_under_json(files: Files) -> None:
    result = run("keys", "public", files.locked, "--json", env={"EHRGATE_PASSPHRASE": "guess"})
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"] == "VerificationFailed"
    assert result.stderr.startswith("ehrgate: the passphrase does not open")


@pytest.mark.parametrize("where", ["global", "own"])
def test_keys_identity_protects_with_a_named_variable(tmp_path: Path, where: str) -> None:
    out = tmp_path / "dr.key"
    named = ("--passphrase-env", "DR_PASS")
    made = new_identity(
        out,
        *(named if where == "own" else ()),
        "--json",
        before=named if where == "global" else (),
        env={"DR_PASS": SECRET},
    )
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["passphrase_protected"] is True
    assert isinstance(load_key_file(out, SECRET), IdentityKeys)


def test_ehrgate_passphrase_alone_does_not_protect_new_key_files(tmp_path: Path) -> None:
    out = tmp_path / "dr.key"
    made = new_identity(out, "--json", env={"EHRGATE_PASSPHRASE": SECRET})
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["passphrase_protected"] is False
    assert isinstance(load_key_file(out), IdentityKeys)


def test_passphrase_protected_keys(tmp_path: Path) -> None:
    out = tmp_path / "dr.key"
    env = {"DR_PASS": "s3cret passphrase"}
    made = new_identity(out, "--passphrase-env", "DR_PASS", env=env)
    assert made.exit_code == 0, made.output
    assert run("keys", "public", out, "--passphrase-env", "DR_PASS", env=env).exit_code == 0
    needed = run("keys", "public", out)
    assert needed.exit_code == 2
    assert "--passphrase-env" in needed.stderr
    wrong = run("keys", "public", out, "--passphrase-env", "DR_PASS", env={"DR_PASS": "guess"})
    assert wrong.exit_code == 1
    assert "passphrase does not open" in wrong.stderr
    unset = run("keys", "public", out, "--passphrase-env", "NOPE_NOT_SET")
    assert unset.exit_code == 2
    assert "NOPE_NOT_SET" in unset.stderr
