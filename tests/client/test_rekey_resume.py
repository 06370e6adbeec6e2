"""An interrupted rotation: the process is killed (SIGKILL) half-way, and a rerun (the
`ehrgate rekey` command) finishes the rest. At the kill, nothing is half-done: each record's
capsule is sealed to exactly the generation its ledger state names, the key file holds both
keys, no replaced capsule is left anywhere; after the rerun everything is as after an
uninterrupted rotation. Read straight from the database and the blob directory."""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ehrgate.cli import cli
from envelope import (
    InvalidEnvelope,
    InvalidKeyFile,
    PatientKey,
    PatientKeys,
    load_key_file,
    open_body,
    open_with_patient_key,
    write_key_file,
)
from envelope.capsule import capsule_outline
from envelope.scoped import next_period
from ledger.sources import DatabaseSource
from ledger.verify import verify
from tests.client.live import Cast, live_cast

THIS = datetime.now(UTC).strftime("%Y-%m")
RECORDS = 10
BATCH = 3
ROOT = Path(__file__).parents[2]


@pytest.fixture
def cast(tmp_path: Path) -> Iterator[Cast]:
    with live_cast(tmp_path) as found:
        with found.client(found.patient) as patient:
            patient.publish_keys(3, start=next_period(THIS, -2))
        with found.client(found.system) as system:
            for n in range(RECORDS):
                category = ("lab-results", "radiation-dose")[n % 2]
                system.upload(
                    io.BytesIO(f"%PDF-1.4 record {n}".encode()),
                    pseudonym=found.pseudonym,
                    category=category,
                    created_at=f"{next_period(THIS, -(n % 3))}-0{n % 9 + 1}T08:00:00Z",
                    filename=f"r{n}.pdf",
                )
        yield found


def rows(cast: Cast, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(cast.data_dir / "ledger.db") as conn:
        return list(conn.execute(sql, args))


def blobs(cast: Cast) -> dict[str, bytes]:
    return {
        hashlib.sha256(p.read_bytes()).hexdigest(): p.read_bytes()
        for p in (cast.data_dir / "blobs").rglob("*")
        if p.is_file()
    }


def killed_at(cast: Cast, phase: str, done: int) -> None:
    """Run the rotation in a child process that kills itself at (phase, done)."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.client.rekey_child", cast.url,
         str(cast.key_file("patient")), phase, str(done), str(BATCH)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == -9, result.stderr  # killed, not finished or failed


def records(cast: Cast) -> list[tuple[str, str, int, bytes, bytes]]:
    """(record id, capsule sha, key generation, capsule, body) of every record."""
    stored = blobs(cast)
    out = []
    for record_id, sha, generation, body_sha in rows(
        cast,
        "SELECT r.record_id, r.capsule_sha256, r.key_generation, r.body_sha256 "
        "FROM state_records r",
    ):
        [(capsule,)] = rows(cast, "SELECT data FROM ledger_capsules WHERE sha256 = ?", sha)
        out.append((record_id, sha, generation, bytes(capsule), stored[body_sha]))
    return out


def opens(capsule: bytes, key: PatientKey, pseudonym: str) -> bool:
    try:
        open_with_patient_key(capsule, key, pseudonym)
    except InvalidEnvelope:
        return False
    return True


def check_consistent(cast: Cast, old: PatientKey, new: PatientKey) -> None:
    """Each record's capsule opens with exactly the key of the generation the ledger says;
    the database and the store hold the current capsules and no replaced one."""
    found = records(cast)
    for record_id, _, generation, capsule, _ in found:
        assert opens(capsule, old, cast.pseudonym) == (generation == 1), record_id
        assert opens(capsule, new, cast.pseudonym) == (generation == 2), record_id
    current = {sha for _, sha, *_ in found}
    assert {sha for (sha,) in rows(cast, "SELECT sha256 FROM ledger_capsules")} == current
    for data in blobs(cast).values():
        try:
            capsule_outline(data)
        except InvalidEnvelope:
            continue
        assert hashlib.sha256(data).hexdigest() in current  # no stray capsule in the store


def finish_with_the_cli(cast: Cast) -> dict[str, Any]:
    result = CliRunner().invoke(
        cli,
        ["--gateway", cast.url, "--as", str(cast.key_file("patient")), "rekey", "--json",
         "--batch", str(BATCH)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    done: dict[str, Any] = json.loads(result.stdout)
    return done


def check_finished(cast: Cast, old: PatientKey) -> None:
    keys = load_key_file(cast.key_file("patient"))
    assert isinstance(keys, PatientKeys)
    check_finished_with(cast, old, keys)


def check_finished_with(cast: Cast, old: PatientKey, keys: PatientKeys) -> None:
    assert (keys.key_generation, keys.previous_key) == (2, None)
    check_consistent(cast, old, keys.patient_key)
    found = records(cast)
    assert {generation for _, _, generation, _, _ in found} == {2}
    for _, _, _, capsule, body in found:
        opened = open_with_patient_key(capsule, keys.patient_key, cast.pseudonym)
        assert b"".join(open_body([body], opened)).startswith(b"%PDF-1.4 record ")
    with DatabaseSource(f"sqlite:///{cast.data_dir / 'ledger.db'}") as source:
        report = verify(source)
    assert report.ok, report.summary()
    assert report.capsules_checked == RECORDS
    result = CliRunner().invoke(
        cli, ["ledger", "verify", "--db", f"sqlite:///{cast.data_dir / 'ledger.db'}"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok:")
    assert "note capsule-superseded" not in result.output
    assert rows(cast, "SELECT count(*) FROM gateway_rekey_deletions") == [(0,)]
    # the grantee's share was re-made once, under the new generation
    [(index,)] = rows(cast, "SELECT entry_index FROM state_key_shares WHERE grantee = 'dr-grey'")
    [(started,)] = rows(cast, "SELECT entry_index FROM state_key_generations")
    assert index > started


def test_killed_after_some_batches_a_rerun_finishes_the_rest(cast: Cast) -> None:
    old = cast.patient.patient_key
    killed_at(cast, "rewrap", BATCH)  # after the first batch was committed
    keys = load_key_file(cast.key_file("patient"))
    assert isinstance(keys, PatientKeys)
    assert keys.key_generation == 2
    assert keys.previous_key == old  # the old K is kept until the end
    generations = [g for _, _, g, _, _ in records(cast)]
    assert generations.count(2) == BATCH  # half-way: some rewrapped, the others not
    assert generations.count(1) == RECORDS - BATCH
    check_consistent(cast, old, keys.patient_key)
    done = finish_with_the_cli(cast)
    assert done["resumed"] is True
    assert done["rewrapped"] == RECORDS - BATCH
    assert done["published"] == 0  # published before the kill
    check_finished(cast, old)


def test_killed_before_anything_reached_the_ledger_a_rerun_does_it_all(cast: Cast) -> None:
    old = cast.patient.patient_key
    killed_at(cast, "publish", 0)  # the key file is rewritten, nothing else happened
    keys = load_key_file(cast.key_file("patient"))
    assert isinstance(keys, PatientKeys)
    assert (keys.key_generation, keys.previous_key) == (2, old)
    assert rows(cast, "SELECT count(*) FROM state_key_generations") == [(0,)]
    done = finish_with_the_cli(cast)
    assert (done["resumed"], done["rewrapped"]) == (True, RECORDS)
    check_finished(cast, old)


def test_killed_while_re_sharing_a_rerun_re_shares(cast: Cast) -> None:
    old = cast.patient.patient_key
    killed_at(cast, "reshare", 0)  # every capsule rewrapped, no share re-made yet
    assert {g for _, _, g, _, _ in records(cast)} == {2}
    done = finish_with_the_cli(cast)
    assert (done["rewrapped"], done["reshared"]) == (0, ["dr-grey"])
    check_finished(cast, old)


def test_the_status_command_shows_what_is_left(cast: Cast) -> None:
    killed_at(cast, "rewrap", BATCH)
    result = CliRunner().invoke(
        cli, ["--gateway", cast.url, "--as", str(cast.key_file("patient")), "rekey", "--status"]
    )
    assert result.exit_code == 0, result.output
    assert f"key generation 2, {RECORDS - BATCH} of {RECORDS} records still to rewrap" in (
        result.output
    )


def test_a_replaced_capsule_left_in_the_store_by_a_stopped_gateway_is_deleted_on_rerun(
    cast: Cast,
) -> None:
    """The gateway stopped after a rekey committed (the database row went with it) and
    before it deleted the store's copy: its deletion row names that copy, and the next
    rekey call deletes it."""
    [(record_id, old_sha, locators)] = rows(
        cast, "SELECT record_id, capsule_sha256, locators FROM state_records LIMIT 1"
    )
    old_capsule = blobs(cast)[old_sha]
    body_locator = json.loads(locators)[0]
    locator = body_locator.rsplit("/", 2)[0] + f"/{old_sha[:2]}/{old_sha}"
    path = next(p for p in (cast.data_dir / "blobs").rglob(old_sha))
    finish_with_the_cli(cast)
    assert not path.exists()
    # as if the gateway had stopped between the commit and the store's deletion
    path.write_bytes(old_capsule)
    with sqlite3.connect(cast.data_dir / "ledger.db") as conn:
        conn.execute(
            "INSERT INTO gateway_rekey_deletions VALUES (?, ?, ?, ?)",
            (old_sha, record_id, json.dumps([locator]), datetime.now(UTC).isoformat()),
        )
    result = CliRunner().invoke(
        cli, ["--gateway", cast.url, "--as", str(cast.key_file("patient")), "rekey", "--status"]
    )
    assert result.exit_code == 0, result.output
    assert not path.exists()
    assert rows(cast, "SELECT count(*) FROM gateway_rekey_deletions") == [(0,)]


def test_a_protected_key_file_stays_protected_with_its_passphrase(
    cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = cast.key_file("patient")
    write_key_file(path, cast.patient, passphrase="correct horse", overwrite=True)
    monkeypatch.setenv("PATIENT_PASSPHRASE", "correct horse")
    result = CliRunner().invoke(
        cli,
        ["--gateway", cast.url, "--as", str(path), "--passphrase-env", "PATIENT_PASSPHRASE",
         "rekey"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "generation 2" in result.output
    with pytest.raises(InvalidKeyFile, match="passphrase"):
        load_key_file(path)
    keys = load_key_file(path, "correct horse")
    assert isinstance(keys, PatientKeys)
    assert keys.key_generation == 2
    check_finished_with(cast, cast.patient.patient_key, keys)
