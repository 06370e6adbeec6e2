"""Verification of the stored capsules: each damaged, missing or foreign row is named."""

from __future__ import annotations

import pytest

from ledger import DatabaseSource, VerifyReport
from ledger.replay import replay_database
from ledger.schema import permissions
from ledger.verify import verify
from tests.ledger.capsule_ledger import (
    OLD,
    CapsuleLedger,
    Tamper,
    build_capsule_ledger,
    change_bytes,
    each_tamper,
    expected,
    expected_damage,
    remove_row,
    run_sql,
    sha,
)


@pytest.fixture
def cl(database_url: str) -> CapsuleLedger:
    return build_capsule_ledger(database_url)


def _run(url: str, *, replay: bool = True) -> VerifyReport:
    with DatabaseSource(url) as source:
        return verify(source, replay=replay)


def test_sound_capsules_verify_and_a_superseded_one_is_a_note(cl: CapsuleLedger) -> None:
    report = _run(cl.url)
    assert report.ok, report.summary()
    assert report.capsules_checked == 3
    assert report.capsule_damage == []
    [note] = report.notes
    assert (note.kind, note.where) == ("capsule-superseded", f"capsule {sha(OLD)}")
    assert cl.rekeyed_id in note.problem
    assert report.summary().startswith("ok:")
    assert "3 capsules" in report.summary()
    assert report.to_json()["capsules"]["notes"][0]["kind"] == "capsule-superseded"


@each_tamper
def test_capsule_damage_is_found_and_named(
    cl: CapsuleLedger, tamper: Tamper, damage: list[tuple[str, str]], phrase: str
) -> None:
    tamper(cl)
    report = _run(cl.url)
    assert not report.ok
    assert report.damage is None  # the log and the state are sound
    found = [(d.kind, d.where) for d in report.capsule_damage]
    assert found == expected_damage(cl, damage), report.summary()
    assert expected(cl, phrase) in " ".join(d.problem for d in report.capsule_damage)
    summary = report.summary()
    for kind, where in damage:
        assert f"DAMAGED {kind} — {expected(cl, where)}" in summary
    as_json = report.to_json()
    assert not as_json["ok"]
    assert [d["kind"] for d in as_json["capsules"]["damage"]] == [k for k, _ in damage]


def test_without_replay_only_the_hashes_are_checked(cl: CapsuleLedger) -> None:
    change_bytes(cl)
    report = _run(cl.url, replay=False)
    assert [d.kind for d in report.capsule_damage] == ["capsule-hash"]
    remove_row(cl)
    assert _run(cl.url, replay=False).ok  # which capsules records need is the replay's


def test_a_damaged_log_is_reported_before_the_capsules_are_read(cl: CapsuleLedger) -> None:
    change_bytes(cl)
    run_sql(cl.url, permissions.delete())
    report = _run(cl.url)
    assert report.damage is not None
    assert report.damage.kind == "state"
    assert report.capsules_checked is None
    assert report.capsule_damage == []


def test_replay_is_not_refused_for_damaged_capsules(cl: CapsuleLedger) -> None:
    remove_row(cl)
    assert replay_database(cl.url).ok
    assert [d.kind for d in _run(cl.url).capsule_damage] == ["capsule-missing"]


@pytest.mark.parametrize("page", [10, 20])
def test_capsules_are_read_in_key_order_a_page_at_a_time(cl: CapsuleLedger, page: int) -> None:
    with DatabaseSource(cl.url, page=page) as source:  # capsule pages of 1 and 2 rows
        keys = [key for key, _ in source.capsules()]
        assert keys == sorted(keys)
        assert len(keys) == 3
        assert verify(source).capsules_checked == 3
