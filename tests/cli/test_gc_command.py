"""`ehrgate gc`: orphan blobs go, blobs the ledger references (bodies, capsules) stay."""

from __future__ import annotations

import ast
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ehrgate.cli import cli
from ehrgate.commands import gc as gc_command
from envelope import SigningKey
from ledger import Ledger
from ledger.migrate import upgrade
from storage import open_store
from tests.ledger.conftest import FakeClock, build_world


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


class Setup:
    def __init__(self, tmp_path: Path) -> None:
        self.db = f"sqlite:///{tmp_path / 'ledger.db'}"
        self.store_url = f"file://{tmp_path / 'blobs'}?name=disk"
        upgrade(self.db)
        store = open_store(self.store_url)
        self.body = store.put(io.BytesIO(b"sealed body of a committed record"))
        self.capsule = store.put(io.BytesIO(b"its capsule, kept content addressed"))
        self.orphan = store.put(io.BytesIO(b"a body whose record never committed"))
        store.close()
        clock = FakeClock()
        with Ledger.open(self.db, SigningKey.generate(), clock=clock) as ledger:
            world = build_world(ledger, clock)
            ledger.submit(
                world.record_tx(
                    world.dr,
                    body_sha256=self.body.sha256,
                    size=self.body.size,
                    locators=list(self.body.locators),
                    capsule_sha256=self.capsule.sha256,
                )
            )

    def stored(self) -> set[str]:
        store = open_store(self.store_url)
        try:
            return {info.sha256 for info in store.list()}
        finally:
            store.close()

    def all(self) -> set[str]:
        return {blob.sha256 for blob in (self.body, self.capsule, self.orphan)}


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def test_gc_deletes_the_orphan_and_keeps_the_body_and_capsule_of_a_record(setup: Setup) -> None:
    result = run("gc", "--db", setup.db, "--store", setup.store_url, "--grace", "0")
    assert result.exit_code == 0, result.output
    assert "deleted 1" in result.output
    assert setup.stored() == {setup.body.sha256, setup.capsule.sha256}


def test_gc_keeps_orphans_younger_than_the_grace_period(setup: Setup) -> None:
    result = run("gc", "--db", setup.db, "--store", setup.store_url, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["kept_young"] == 1
    assert report["deleted"] == []
    assert setup.stored() == setup.all()


def test_gc_dry_run_names_the_orphan_and_deletes_nothing(setup: Setup) -> None:
    args = ["gc", "--db", setup.db, "--store", setup.store_url, "--grace", "0s", "--dry-run"]
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["deleted"] == [setup.orphan.locators[0]]
    assert setup.stored() == setup.all()


def test_gc_refuses_a_grace_that_is_not_a_duration(setup: Setup) -> None:
    result = run("gc", "--db", setup.db, "--store", setup.store_url, "--grace", "soon")
    assert result.exit_code == 2
    assert "not a duration" in result.output
    assert setup.stored() == setup.all()


def test_gc_with_an_unreachable_store_exits_3_and_deletes_nothing(setup: Setup) -> None:
    result = run(
        "gc", "--db", setup.db, "--store",
        "s3://b?endpoint_url=http://127.0.0.1:9&region=us-east-1&access_key_id=k"
        "&secret_access_key=s&max_attempts=1&connect_timeout=1",
        "--grace", "0",
    )  # fmt: skip
    assert result.exit_code == 3, result.output
    assert setup.stored() == setup.all()


def test_gc_with_a_database_without_the_ledger_exits_3_and_deletes_nothing(
    setup: Setup, tmp_path: Path
) -> None:
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    result = run("gc", "--db", empty, "--store", setup.store_url, "--grace", "0")
    assert result.exit_code == 3, result.output
    assert f"cannot read the ledger at {empty}" in result.output
    assert setup.stored() == setup.all()


def test_the_command_leaves_the_ledger_database_and_the_stores_to_the_gateway() -> None:
    source = Path(gc_command.__file__).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    assert {"gateway.gc"} <= imported
    assert not [m for m in imported if m.split(".")[0] in ("storage", "ledger", "sqlalchemy")]
