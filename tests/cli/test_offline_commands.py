"""The offline commands (keys, seal, open, demo): success, --json, bad input leaves nothing."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ehrgate.cli import cli

PSEUDONYM = re.compile(r"^[0-9a-f]{64}$")


def run(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, [str(arg) for arg in args], env=env)


@dataclass
class Keys:
    directory: Path
    patient_key: Path
    patient_pub: Path
    doctor_key: Path
    doctor_pub: Path
    system_key: Path
    system_pub: Path
    pseudonym: str


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    directory = tmp_path_factory.mktemp("keys")
    uii = directory / "uii.json"
    uii.write_text(json.dumps({"national_id": "756.1234.5678.97", "name": "Ana Müller"}))
    made = run("keys", "patient", "--uii", uii, "--out", directory / "patient.key")
    assert made.exit_code == 0, made.output
    pseudonym = made.stdout.strip()
    for ident, role in (("dr-house", "clinician"), ("aria-export", "system")):
        result = run(
            "keys", "identity", "--id", ident, "--role", role, "--out", directory / f"{ident}.key"
        )
        assert result.exit_code == 0, result.output
    for name in ("patient", "dr-house", "aria-export"):
        result = run("keys", "public", directory / f"{name}.key")
        assert result.exit_code == 0, result.output
        (directory / f"{name}.pub").write_text(result.stdout)
    return Keys(
        directory,
        directory / "patient.key",
        directory / "patient.pub",
        directory / "dr-house.key",
        directory / "dr-house.pub",
        directory / "aria-export.key",
        directory / "aria-export.pub",
        pseudonym,
    )


@pytest.fixture
def sealed(keys: Keys, tmp_path: Path) -> tuple[Path, Path]:
    """(plain, sealed) in a fresh directory, sealed to the patient and dr-house."""
    plain = tmp_path / "report.pdf"
    plain.write_bytes(b"%PDF-1.7\n" + os.urandom(200_000))
    target = tmp_path / "report.sealed"
    result = run(
        "seal",
        "--to",
        keys.patient_pub,
        "--to",
        keys.doctor_pub,
        "--as",
        keys.system_key,
        "--category",
        "oncology",
        plain,
        target,
    )
    assert result.exit_code == 0, result.output
    return plain, target


def listing(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


# --- keys --------------------------------------------------------------------------------


def test_keys_patient_prints_the_pseudonym_and_writes_a_private_file(keys: Keys) -> None:
    assert PSEUDONYM.match(keys.pseudonym)
    assert stat.S_IMODE(keys.patient_key.stat().st_mode) == 0o600
    # The key file keeps K, not the UII it was made from (neither value can occur in base64).
    text = keys.patient_key.read_text()
    assert "Ana Müller" not in text
    assert "756.1234.5678.97" not in text


def test_keys_patient_json(tmp_path: Path) -> None:
    uii = tmp_path / "uii.json"
    uii.write_text('{"mrn": "A-1"}')
    result = run("keys", "patient", "--uii", uii, "--out", tmp_path / "p.key", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert PSEUDONYM.match(document["pseudonym"])
    assert document["passphrase_protected"] is False


@pytest.mark.parametrize(
    ("uii", "message"),
    [
        (None, "no UII file"),
        ("not json", "not a JSON file"),
        ('["a"]', "JSON object"),
        ('{"mrn": 5}', "must be text"),
        ("{}", "no fields"),
        ('{"mrn": "A-1", "mrn": "A-2"}', "names the field 'mrn' twice"),
    ],
)
def test_keys_patient_bad_uii(tmp_path: Path, uii: str | None, message: str) -> None:
    path = tmp_path / "uii.json"
    if uii is not None:
        path.write_text(uii)
    result = run("keys", "patient", "--uii", path, "--out", tmp_path / "p.key")
    assert result.exit_code == 2
    assert message in result.stderr
    assert not (tmp_path / "p.key").exists()


def test_keys_refuse_to_replace_a_key_file(tmp_path: Path, keys: Keys) -> None:
    out = tmp_path / "dr.key"
    out.write_text("precious")
    result = run("keys", "identity", "--id", "dr-x", "--role", "clinician", "--out", out)
    assert result.exit_code == 2
    assert "already exists" in result.stderr
    assert out.read_text() == "precious"
    forced = run("keys", "identity", "--id", "dr-x", "--role", "clinician", "--out", out, "--force")
    assert forced.exit_code == 0
    assert json.loads(run("keys", "public", out).stdout)["id"] == "dr-x"


def test_keys_identity_json_and_bad_role(tmp_path: Path) -> None:
    result = run(
        "keys",
        "identity",
        "--id",
        "his-1",
        "--role",
        "system",
        "--out",
        tmp_path / "s.key",
        "--json",
    )
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "id": "his-1",
        "role": "system",
        "key_file": str(tmp_path / "s.key"),
        "passphrase_protected": False,
    }
    bad = run("keys", "identity", "--id", "x", "--role", "pirate", "--out", tmp_path / "x.key")
    assert bad.exit_code == 2
    assert not (tmp_path / "x.key").exists()


def test_keys_public_of_a_patient_has_the_record_key(keys: Keys) -> None:
    document = json.loads(keys.patient_pub.read_text())
    assert document["kind"] == "ehrgate-patient-public"
    assert document["pseudonym"] == keys.pseudonym
    assert document["identity"]["role"] == "patient"
    assert len(document["record_public_key"]) > 1000
    assert "secret" not in keys.patient_pub.read_text()
    assert json.loads(run("keys", "public", keys.patient_key, "--json").stdout) == document


def test_keys_public_of_a_non_key_file(tmp_path: Path, keys: Keys) -> None:
    result = run("keys", "public", keys.doctor_pub)
    assert result.exit_code == 2
    assert "not an ehrgate key file" in result.stderr
    assert run("keys", "public", tmp_path / "missing.key").exit_code == 2


# --- seal --------------------------------------------------------------------------------


def test_seal_writes_body_and_capsule(keys: Keys, sealed: tuple[Path, Path]) -> None:
    plain, target = sealed
    assert listing(target.parent) == ["report.pdf", "report.sealed", "report.sealed.capsule"]
    assert target.stat().st_size > plain.stat().st_size
    assert plain.read_bytes()[:100] not in target.read_bytes()


def test_seal_json(keys: Keys, tmp_path: Path) -> None:
    plain = tmp_path / "a.txt"
    plain.write_text("hello")
    result = run(
        "seal",
        "--to",
        keys.patient_pub,
        "--as",
        keys.doctor_key,
        "--json",
        plain,
        tmp_path / "a.sealed",
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["pseudonym"] == keys.pseudonym
    assert document["recipients"] == [keys.pseudonym]
    assert document["signer_id"] == "dr-house"
    assert document["plaintext_size"] == 5
    assert document["body_size"] == (tmp_path / "a.sealed").stat().st_size


@pytest.mark.parametrize(
    "problem", ["no patient", "two patients", "bad public file", "missing public file"]
)
def test_seal_needs_exactly_one_patient(keys: Keys, tmp_path: Path, problem: str) -> None:
    plain = tmp_path / "a.txt"
    plain.write_text("hello")
    bogus = tmp_path / "bogus.json"
    bogus.write_text('{"kind": "something"}')
    recipients = {
        "no patient": [keys.doctor_pub],
        "two patients": [keys.patient_pub, keys.patient_pub],
        "bad public file": [keys.patient_pub, bogus],
        "missing public file": [keys.patient_pub, tmp_path / "nope.json"],
    }[problem]
    arguments: list[str | Path] = ["seal", "--as", keys.system_key]
    for recipient in recipients:
        arguments += ["--to", recipient]
    result = run(*arguments, plain, tmp_path / "a.sealed")
    assert result.exit_code == 2
    assert result.stderr.startswith("ehrgate: ")
    assert listing(tmp_path) == ["a.txt", "bogus.json"]


def test_seal_refuses_existing_outputs(keys: Keys, sealed: tuple[Path, Path]) -> None:
    plain, target = sealed
    before = target.read_bytes()
    result = run("seal", "--to", keys.patient_pub, "--as", keys.system_key, plain, target)
    assert result.exit_code == 2
    assert "already exists" in result.stderr
    assert target.read_bytes() == before


def test_seal_with_a_public_file_as_signer_is_a_usage_error(keys: Keys, tmp_path: Path) -> None:
    plain = tmp_path / "a.txt"
    plain.write_text("x")
    result = run(
        "seal", "--to", keys.patient_pub, "--as", keys.doctor_pub, plain, tmp_path / "a.sealed"
    )
    assert result.exit_code == 2
    assert listing(tmp_path) == ["a.txt"]


# --- open --------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["patient", "doctor"])
def test_open_restores_the_plaintext(keys: Keys, sealed: tuple[Path, Path], who: str) -> None:
    plain, target = sealed
    out = target.parent / "opened.pdf"
    key = keys.patient_key if who == "patient" else keys.doctor_key
    result = run("open", "--key", key, "--signer", keys.system_pub, target, out)
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == plain.read_bytes()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "signature verified" in result.stdout


def test_open_json(keys: Keys, sealed: tuple[Path, Path]) -> None:
    plain, target = sealed
    result = run("open", "--key", keys.doctor_key, "--json", target, target.parent / "o.pdf")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["filename"] == "report.pdf"
    assert document["content_type"] == "application/pdf"
    assert document["category"] == "oncology"
    assert document["signer_id"] == "aria-export"
    assert document["plaintext_size"] == plain.stat().st_size
    assert document["signature_verified"] is False


def tamper(path: Path, position: int) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage",
    [
        "body header",
        "body middle",
        "body tag",
        "truncated body",
        "extended body",
        "capsule",
        "wrong signer",
    ],
)
def test_tampered_input_fails_and_leaves_no_output(
    keys: Keys, sealed: tuple[Path, Path], damage: str
) -> None:
    _, target = sealed
    capsule = target.with_name(target.name + ".capsule")
    size = target.stat().st_size
    arguments: list[str | Path] = ["open", "--key", keys.doctor_key]
    if damage == "body header":
        tamper(target, 10)
    elif damage == "body middle":
        tamper(target, size // 2)
    elif damage == "body tag":
        tamper(target, size - 1)
    elif damage == "truncated body":
        target.write_bytes(target.read_bytes()[: 29 + 65552])
    elif damage == "extended body":
        target.write_bytes(target.read_bytes() + b"\x00" * 100)
    elif damage == "capsule":
        tamper(capsule, capsule.stat().st_size // 2)
    else:
        arguments += ["--signer", keys.doctor_pub]
    before = listing(target.parent)
    result = run(*arguments, target, target.parent / "out.pdf")
    assert result.exit_code == 1
    assert result.stderr.startswith("ehrgate: ")
    assert result.stderr.count("\n") == 1
    assert listing(target.parent) == before


def test_open_by_someone_not_a_recipient(
    keys: Keys, sealed: tuple[Path, Path], tmp_path: Path
) -> None:
    _, target = sealed
    other = tmp_path / "other.key"
    assert (
        run("keys", "identity", "--id", "dr-other", "--role", "clinician", "--out", other).exit_code
        == 0
    )
    result = run("open", "--key", other, target, target.parent / "out.pdf")
    assert result.exit_code == 1
    assert "not sealed to dr-other" in result.stderr
    assert not (target.parent / "out.pdf").exists()


def test_open_usage_errors(keys: Keys, sealed: tuple[Path, Path]) -> None:
    plain, target = sealed
    assert run("open", "--key", keys.doctor_key, target, plain).exit_code == 2  # exists
    missing = run("open", "--key", keys.doctor_key, target.parent / "nope", target.parent / "o")
    assert missing.exit_code == 2
    target.with_name(target.name + ".capsule").unlink()
    no_capsule = run("open", "--key", keys.doctor_key, target, target.parent / "o")
    assert no_capsule.exit_code == 2
    assert "--capsule" in no_capsule.stderr
    bad_key = run("open", "--key", keys.doctor_pub, target, target.parent / "o")
    assert bad_key.exit_code == 2
    assert not (target.parent / "o").exists()


# --- demo --------------------------------------------------------------------------------


def test_offline_demo_tells_the_story_and_exits_zero() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ehrgate", "demo", "--offline"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(".")[0] for line in lines] == ["1", "2", "3", "4", "5", "6", "7"]
    assert "identical to the original" in lines[4]
    assert "refused" in lines[5]
    assert "restored it: same pseudonym" in lines[6]


@pytest.mark.parametrize("ident", ["ledger", "ab" * 32])
def test_keys_identity_refuses_ids_staff_cannot_have(tmp_path: Path, ident: str) -> None:
    out = tmp_path / "x.key"
    result = run("keys", "identity", "--id", ident, "--role", "clinician", "--out", out)
    assert result.exit_code == 2
    assert "choose" in result.output
    assert not out.exists()
