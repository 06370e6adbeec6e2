"""`ehrgate gc` finishes an erasure that was cut short: the erased record's capsule row
and its copies in the stores go, whatever their age; `ledger verify` names what is left
until then, and passes after."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

from click.testing import CliRunner, Result

from ehrgate.cli import cli
from envelope import SigningKey
from ledger import Ledger
from ledger.migrate import upgrade
from ledger.wire import builders as b
from storage import open_store
from tests.ledger.conftest import FakeClock, build_world


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_gc_finishes_an_erasure_and_then_the_ledger_verifies(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    store_url = f"file://{tmp_path / 'blobs'}?name=disk"
    upgrade(db)
    store = open_store(store_url)
    body = store.put(io.BytesIO(b"sealed body of the record to erase"))
    capsule_bytes = b"its capsule"
    capsule = store.put(io.BytesIO(capsule_bytes))
    kept = store.put(io.BytesIO(b"sealed body of a record that stays"))
    store.close()
    clock = FakeClock()
    with Ledger.open(db, SigningKey.generate(), clock=clock) as ledger:
        world = build_world(ledger, clock)
        record = world.record_tx(
            world.dr, body_sha256=body.sha256, size=body.size, locators=list(body.locators),
            capsule_sha256=capsule.sha256,
        )  # fmt: skip
        ledger.submit(record, capsule=capsule_bytes)
        other = b"the capsule of the record that stays"
        ledger.submit(
            world.record_tx(
                world.dr, body_sha256=kept.sha256, size=kept.size, locators=list(kept.locators),
                capsule_sha256=hashlib.sha256(other).hexdigest(),
            ),
            capsule=other,
        )  # fmt: skip
        # The erase is committed, and the gateway stopped before deleting anything.
        erase = b.erase(world.patient, pseudonym=world.pseudonym,
                        record_id=str(record.body["record_id"]), issued_at=clock())  # fmt: skip
        ledger.submit(erase)

    before = run("ledger", "verify", "--db", db, "--json")
    assert before.exit_code == 1, before.output
    assert [d["kind"] for d in json.loads(before.output)["capsules"]["damage"]] == [
        "capsule-not-erased"
    ]

    # The default grace (a day) keeps young orphans, not an erased record's blobs.
    result = run("gc", "--db", db, "--store", store_url, "--json")
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(result.output)["deleted"]) == sorted(
        [*body.locators, *capsule.locators]
    )
    store = open_store(store_url)
    assert {i.sha256 for i in store.list()} == {kept.sha256}
    store.close()

    after = run("ledger", "verify", "--db", db, "--json")
    assert after.exit_code == 0, after.output
    report = json.loads(after.output)
    assert report["ok"]
    assert [e["record_id"] for e in report["erased"]] == [record.body["record_id"]]
