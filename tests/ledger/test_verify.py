"""Offline verification: a sound ledger verifies; every kind of tampering is found and named."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from envelope import SigningKey, VerifyKey, b64encode
from ledger import DatabaseSource, ExportSource, Ledger, Transaction, VerifyReport, schema
from ledger.replay import replay_database
from ledger.schema import blocks, entries, head, nodes, permissions, records
from ledger.verify import verify
from ledger.wire import builders as b
from ledger.wire.encoding import canonical
from tests.ledger.conftest import FakeClock, World, build_world


@dataclass
class Built:
    url: str
    key: SigningKey
    world: World
    size: int


@pytest.fixture
def built(database_url: str, clock: FakeClock) -> Iterator[Built]:
    """A closed ledger of several blocks, ready to be tampered with."""
    key = SigningKey.generate()
    with Ledger.open(database_url, key, clock=clock) as ledger:
        world = build_world(ledger, clock)
        for n in range(6):
            ledger.submit(
                b.access(
                    world.gateway, actor=world.dr.id, action="body", pseudonym=world.pseudonym,
                    decision="allowed", reason=f"read {n}", record_id=world.record_id,
                    at=clock(), issued_at=clock(),
                )
            )  # fmt: skip
        size = ledger.tree_size()
    engine = sa.create_engine(database_url)
    yield Built(database_url, key, world, size)
    engine.dispose()


def _run(url: str, ledger_key: VerifyKey | None = None) -> VerifyReport:
    with DatabaseSource(url) as source:
        return verify(source, ledger_key=ledger_key)


def _sql(url: str, *statements: sa.Executable) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(statement)
    engine.dispose()


def _tx(url: str, index: int) -> bytes:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        value = conn.execute(sa.select(entries.c.tx).where(entries.c.idx == index)).scalar_one()
    engine.dispose()
    return bytes(value)


def test_a_sound_ledger_verifies(built: Built) -> None:
    report = _run(built.url, ledger_key=built.key.verify_key)
    assert report.ok, report.summary()
    assert report.entries == built.size
    assert report.state_compared
    assert report.ledger_key == b64encode(built.key.verify_key.to_bytes())


def test_verification_trusting_another_key_fails_at_genesis(built: Built) -> None:
    report = _run(built.url, ledger_key=SigningKey.generate().verify_key)
    assert report.damage is not None
    assert report.damage.where == "entry 0"
    assert "trusted" in report.damage.problem


def _edit_json(url: str, index: int, edit: Callable[[dict[str, Any]], None]) -> bytes:
    data = json.loads(_tx(url, index))
    edit(data)
    return canonical(data)


Tamper = Callable[[Built], None]


def _bigger(data: dict[str, Any]) -> None:
    data["body"]["size"] = 999


def _change_entry(bt: Built) -> None:
    changed = _edit_json(bt.url, 9, _bigger)
    _sql(bt.url, entries.update().where(entries.c.idx == 9).values(tx=changed))


def _change_entry_and_its_hashes(bt: Built) -> None:
    changed = _edit_json(bt.url, 9, _bigger)
    leaf = Transaction.from_bytes(changed).leaf_hash
    _sql(
        bt.url,
        entries.update().where(entries.c.idx == 9).values(tx=changed, leaf_hash=leaf),
        nodes.update().where(nodes.c.level == 0, nodes.c.idx == 9).values(hash=leaf),
    )


def _delete_entry(bt: Built) -> None:
    _sql(bt.url, entries.delete().where(entries.c.idx == 5))


def _delete_last_entry(bt: Built) -> None:
    _sql(bt.url, entries.delete().where(entries.c.idx == bt.size - 1))


def _reorder_entries(bt: Built) -> None:
    a, c = _tx(bt.url, bt.size - 3), _tx(bt.url, bt.size - 2)
    _sql(
        bt.url,
        entries.update().where(entries.c.idx == bt.size - 3).values(tx=c),
        entries.update().where(entries.c.idx == bt.size - 2).values(tx=a),
    )


def _insert_entry(bt: Built) -> None:
    w = bt.world
    tx = b.access(
        w.gateway, actor=w.dr.id, action="list", pseudonym=w.pseudonym, decision="allowed",
        reason="inserted", at=w.clock(), issued_at=w.clock(),
    )  # fmt: skip
    _sql(
        bt.url,
        entries.insert().values(
            idx=bt.size, block_height=0, tx_id=tx.tx_id, tx_type=tx.type, signer=tx.signer,
            tx=tx.encoded, leaf_hash=tx.leaf_hash,
        ),
    )  # fmt: skip


def _edit_block_header(bt: Built) -> None:
    _sql(
        bt.url,
        blocks.update().where(blocks.c.height == 3).values(timestamp="2030-01-01T00:00:00.000000Z"),
    )


def _edit_block_root(bt: Built) -> None:
    _sql(bt.url, blocks.update().where(blocks.c.height == 4).values(root=bytes(32)))


def _forge_signature(bt: Built) -> None:
    """Re-sign entry 10 with a key the log never enrolled, fixing up every stored hash."""
    data = json.loads(_tx(bt.url, 10))
    payload = {k: data[k] for k in ("type", "body", "signer")}
    data["signature"] = b64encode(SigningKey.generate().sign_bytes(canonical(payload)))
    forged = canonical(data)
    leaf = Transaction.from_bytes(forged).leaf_hash
    _sql(
        bt.url,
        entries.update().where(entries.c.idx == 10).values(tx=forged, leaf_hash=leaf),
        nodes.update().where(nodes.c.level == 0, nodes.c.idx == 10).values(hash=leaf),
    )


def _edit_state_row(bt: Built) -> None:
    _sql(
        bt.url,
        permissions.update()
        .where(permissions.c.permission_id == bt.world.grant_id)
        .values(not_after="2099-01-01T00:00:00.000000Z"),
    )


def _delete_state_row(bt: Built) -> None:
    _sql(bt.url, records.delete().where(records.c.record_id == bt.world.record_id))


def _move_head(bt: Built) -> None:
    _sql(bt.url, head.update().values(tree_size=bt.size - 1))


TAMPERS: list[tuple[str, Tamper, str, str]] = [
    # name, tamper, damage kind, the place it must name
    ("changed entry", _change_entry, "entry", "entry 9"),
    ("changed entry with rehashed leaf", _change_entry_and_its_hashes, "entry", "entry 9"),
    ("deleted entry", _delete_entry, "entry", "entry 5"),
    ("deleted last entry", _delete_last_entry, "block", "block"),
    ("reordered entries", _reorder_entries, "entry", "entry {size_minus_3}"),
    ("inserted entry", _insert_entry, "entry", "entry {size}"),
    ("edited block header", _edit_block_header, "block", "block 3"),
    ("edited block root", _edit_block_root, "block", "block 4"),
    ("forged signature", _forge_signature, "entry", "entry 10"),
    ("edited state row", _edit_state_row, "state", "state_permissions row"),
    ("deleted state row", _delete_state_row, "state", "state_records row"),
    ("moved head", _move_head, "head", "ledger head"),
]


@pytest.mark.parametrize(
    ("tamper", "kind", "where"), [pytest.param(t, k, w, id=n) for n, t, k, w in TAMPERS]
)
def test_tampering_is_found_and_named(built: Built, tamper: Tamper, kind: str, where: str) -> None:
    assert _run(built.url).ok
    tamper(built)
    report = _run(built.url)
    assert report.damage is not None, f"{where} tampering went unnoticed"
    assert report.damage.kind == kind, report.damage
    assert report.damage.where.startswith(
        where.format(size=built.size, size_minus_3=built.size - 3)
    ), report.damage


def test_forged_signature_is_reported_as_such(built: Built) -> None:
    _forge_signature(built)
    report = _run(built.url)
    assert report.damage is not None
    assert "signature does not verify" in report.damage.problem


def test_edited_state_row_names_the_column(built: Built) -> None:
    _edit_state_row(built)
    report = _run(built.url)
    assert report.damage is not None
    assert "column not_after" in report.damage.problem
    assert "2099" in report.damage.problem


def test_replay_repairs_an_edited_state_row(built: Built) -> None:
    before = _run(built.url)
    _edit_state_row(built)
    assert not _run(built.url).ok
    repaired = replay_database(built.url)
    assert repaired.ok
    after = _run(built.url)
    assert after.ok
    assert after.state_digest == before.state_digest


def test_replay_refuses_a_damaged_log(built: Built) -> None:
    _change_entry(built)
    assert not replay_database(built.url).ok


def test_exported_entries_verify_without_a_database(built: Built) -> None:
    with Ledger.open(built.url, built.key, clock=built.world.clock) as ledger:
        exported_entries = [e.to_json() for e in ledger.entries(0, 10_000)]
        exported_blocks = [blk.to_json() for blk in ledger.blocks(0, 10_000)]
    report = verify(ExportSource(exported_entries, exported_blocks))
    assert report.ok, report.summary()
    assert report.state_digest == _run(built.url).state_digest
    exported_entries[4]["tx"]["body"]["reason"] = "edited"
    damaged = verify(ExportSource(exported_entries, exported_blocks))
    assert damaged.damage is not None
    assert damaged.damage.where == "entry 4"


def test_a_malformed_export_is_reported_not_raised(built: Built) -> None:
    with Ledger.open(built.url, built.key, clock=built.world.clock) as ledger:
        exported_entries = [e.to_json() for e in ledger.entries(0, 10_000)]
        exported_blocks = [blk.to_json() for blk in ledger.blocks(0, 10_000)]
    del exported_entries[3]["tx"]
    report = verify(ExportSource(exported_entries, exported_blocks))
    assert report.damage is not None
    assert report.damage.kind == "source"
    assert "entry #3" in report.damage.problem
    exported_blocks[0] = {"height": "zero"}
    report = verify(ExportSource(exported_entries, exported_blocks))
    assert report.damage is not None
    assert "block #0" in report.damage.problem


def test_cli_verify_and_replay(built: Built) -> None:
    from ehrgate.cli import cli

    runner = CliRunner()
    ok = runner.invoke(cli, ["ledger", "verify", "--db", built.url])
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("ok:")
    _edit_state_row(built)
    bad = runner.invoke(cli, ["ledger", "verify", "--db", built.url, "--json"])
    assert bad.exit_code == 1
    report = json.loads(bad.output)
    assert report["damage"]["kind"] == "state"
    replayed = runner.invoke(cli, ["ledger", "replay", "--db", built.url])
    assert replayed.exit_code == 0, replayed.output
    assert runner.invoke(cli, ["ledger", "verify", "--db", built.url]).exit_code == 0


def test_cli_verify_without_a_database_url_is_a_usage_error() -> None:
    from ehrgate.cli import cli

    result = CliRunner().invoke(cli, ["ledger", "verify"])
    assert result.exit_code == 2
    assert "--db" in result.output


def test_refusals_naming_no_patient_verify_and_replay_to_the_same_state(
    database_url: str, clock: FakeClock
) -> None:
    key = SigningKey.generate()
    with Ledger.open(database_url, key, clock=clock) as ledger:
        world = build_world(ledger, clock)
        for action, pseudonym in (("login", None), ("grant", world.pseudonym), ("login", None)):
            ledger.submit(
                b.access(
                    world.gateway, actor=world.dr.id, action=action, pseudonym=pseudonym,
                    decision="denied", reason=f"{action} refused", at=clock(), issued_at=clock(),
                )
            )  # fmt: skip
        history = [e.action for e in ledger.access_history(world.pseudonym)]
    assert history.count("grant") == 1
    assert "login" not in history
    before = _run(database_url, ledger_key=key.verify_key)
    assert before.ok, before.summary()
    assert before.state_compared
    assert replay_database(database_url).ok
    after = _run(database_url)
    assert after.state_digest == before.state_digest


def test_answered_access_requests_verify_and_an_edited_answer_is_found(
    database_url: str, clock: FakeClock
) -> None:
    key = SigningKey.generate()
    with Ledger.open(database_url, key, clock=clock) as ledger:
        world = build_world(ledger, clock)
        answered = []
        for decision in ("declined", "approved"):
            ask = b.access_request(
                world.dr_other, pseudonym=world.pseudonym, rights=["read"],
                categories=["lab-results"], reason="referral", issued_at=clock(),
                not_before=clock(), not_after=clock() + timedelta(days=3),
            )  # fmt: skip
            ledger.submit(ask)
            permission_id = None
            if decision == "approved":
                grant = b.grant(
                    world.patient, pseudonym=world.pseudonym, grantee=world.dr_other.id,
                    rights=["read"], categories=["lab-results"], not_before=clock(),
                    not_after=clock() + timedelta(days=3), issued_at=clock(),
                )  # fmt: skip
                ledger.submit(grant)
                permission_id = str(grant.body["permission_id"])
            ledger.submit(
                b.answer_request(
                    world.patient, pseudonym=world.pseudonym, request_id=ask.tx_id,
                    decision=decision, permission_id=permission_id, issued_at=clock(),
                )
            )  # fmt: skip
            answered.append(ask.tx_id)
    report = _run(database_url, ledger_key=key.verify_key)
    assert report.ok, report.summary()
    assert report.state_compared
    # a declined request turned into an approval in the state table is found
    t = schema.access_requests
    _sql(database_url, t.update().where(t.c.request_id == answered[0]).values(decision="approved"))
    damaged = _run(database_url)
    assert damaged.damage is not None
    assert "decision" in damaged.damage.problem
