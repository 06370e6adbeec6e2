"""`ehrgate ledger verify --db` names damaged, missing and foreign capsules (in process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ehrgate.cli import cli
from ledger.migrate import upgrade
from tests.ledger.capsule_ledger import (
    FIRST,
    CapsuleLedger,
    Tamper,
    build_capsule_ledger,
    each_tamper,
    expected,
    expected_damage,
    remove_row,
    sha,
)


@pytest.fixture
def cl(tmp_path: Path) -> CapsuleLedger:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    upgrade(url)
    return build_capsule_ledger(url)


def _verify(cl: CapsuleLedger, *options: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["ledger", "verify", "--db", cl.url, *options])
    return result.exit_code, result.output


def test_a_ledger_with_sound_capsules_verifies(cl: CapsuleLedger) -> None:
    code, output = _verify(cl)
    assert code == 0, output
    assert output.startswith("ok:")
    assert "3 capsules" in output
    assert "note capsule-superseded" in output
    code, output = _verify(cl, "--json")
    assert code == 0, output
    report = json.loads(output)
    assert report["ok"]
    assert report["capsules"]["checked"] == 3
    assert report["capsules"]["damage"] == []


@each_tamper
def test_capsule_damage_is_named_and_exits_1(
    cl: CapsuleLedger, tamper: Tamper, damage: list[tuple[str, str]], phrase: str
) -> None:
    tamper(cl)
    code, output = _verify(cl)
    assert code == 1, output
    for kind, where in damage:
        assert f"DAMAGED {kind} — {expected(cl, where)}: " in output
    assert expected(cl, phrase) in output
    code, output = _verify(cl, "--json")
    assert code == 1, output
    report = json.loads(output)
    assert not report["ok"]
    assert report["damage"] is None
    found = [(d["kind"], d["where"]) for d in report["capsules"]["damage"]]
    assert found == expected_damage(cl, damage)


def test_the_stores_are_asked_for_a_missing_capsule(cl: CapsuleLedger, tmp_path: Path) -> None:
    from storage import open_store

    holding, empty = tmp_path / "holding", tmp_path / "empty"
    for root in (holding, empty):
        root.mkdir()
    store = open_store(f"file://{holding}?name=holding")
    store.put([FIRST])
    store.close()
    remove_row(cl)
    code, output = _verify(
        cl, "--store", f"file://{holding}?name=holding", "--store", f"file://{empty}?name=empty"
    )
    assert code == 1, output
    assert f"DAMAGED capsule-missing — record {cl.record_id}: " in output
    assert f"store holding holds a copy at file://holding/blobs/{sha(FIRST)[:2]}/" in output
    assert "store empty has no copy" in output


def test_stores_go_with_a_database() -> None:
    result = CliRunner().invoke(
        cli, ["ledger", "verify", "--gateway", "http://127.0.0.1:9", "--store", "file:///tmp"]
    )
    assert result.exit_code == 2
    assert "--store goes with --db" in result.output
