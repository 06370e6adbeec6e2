"""Reinstating a suspended identity and rotating an identity's keys, on the ledger itself:
who may, what the rules refuse, and that old signatures keep verifying by their index."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from envelope import IdentityKeys, SigningKey, b64encode
from ledger import DatabaseSource, ExportSource, Ledger, RuleViolation, Transaction
from ledger.replay import replay_database
from ledger.schema import entries, nodes
from ledger.verify import verify
from ledger.wire import builders as b
from ledger.wire.encoding import canonical
from ledger.wire.rotation import RotationRequest, request_rotation
from tests.ledger.conftest import FakeClock, World, build_world


def _request_access(w: World, who: IdentityKeys) -> Transaction:
    return b.access_request(
        who, pseudonym=w.pseudonym, rights=["read"], categories="all", reason="consult",
        issued_at=w.clock(),
    )  # fmt: skip


def _refused(ledger: Ledger, tx: Transaction) -> str:
    with pytest.raises(RuleViolation) as caught:
        ledger.submit(tx)
    return caught.value.code


# --- reinstate ----------------------------------------------------------------------------


def test_a_reinstated_identity_may_sign_again(world: World) -> None:
    w = world
    assert _refused(w.ledger, _request_access(w, w.dr_suspended)) == "suspended"
    w.ledger.submit(b.reinstate(w.admin, w.dr_suspended.id, "back from leave", issued_at=w.clock()))
    identity = w.ledger.identity(w.dr_suspended.id)
    assert identity is not None
    assert not identity.suspended
    assert identity.suspended_reason is None
    w.ledger.submit(_request_access(w, w.dr_suspended))
    assert not w.ledger.is_suspended(w.dr_suspended.id)


def test_only_an_admin_reinstates(world: World) -> None:
    w = world
    for who in (w.dr, w.auditor, w.patient):
        tx = b.reinstate(who, w.dr_suspended.id, "my friend", issued_at=w.clock())
        assert _refused(w.ledger, tx) == "wrong-role"
    assert w.ledger.is_suspended(w.dr_suspended.id)


def test_reinstating_an_identity_that_is_not_suspended_is_refused(world: World) -> None:
    w = world
    tx = b.reinstate(w.admin, w.dr.id, "nothing", issued_at=w.clock())
    assert _refused(w.ledger, tx) == "not-suspended"
    tx = b.reinstate(w.admin, "nobody", "nothing", issued_at=w.clock())
    assert _refused(w.ledger, tx) == "unknown-identity"


def test_a_reinstatement_needs_a_reason(world: World) -> None:
    w = world
    tx = b.sign(w.admin, "reinstate", {"identity_id": w.dr_suspended.id}, issued_at=w.clock())
    assert _refused(w.ledger, tx) == "malformed"


# --- rotate_keys --------------------------------------------------------------------------


def _new_keys(old: IdentityKeys) -> IdentityKeys:
    return IdentityKeys.generate(old.id, old.role)


def test_after_a_rotation_only_the_new_key_signs(world: World) -> None:
    w = world
    new = _new_keys(w.dr)
    receipt = w.ledger.submit(
        b.rotate_keys(w.admin, request_rotation(w.dr, new), issued_at=w.clock())
    )
    identity = w.ledger.identity(w.dr.id)
    assert identity is not None
    assert identity.signing_key == b64encode(new.signing_key.verify_key.to_bytes())
    assert identity.encryption_key == b64encode(new.encryption_key.public_key().to_bytes())
    assert identity.keys_since == receipt.index
    assert _refused(w.ledger, _request_access(w, w.dr)) == "bad-signature"
    w.ledger.submit(_request_access(w, new))
    history = w.ledger.identity_keys(w.dr.id)
    assert [(k.valid_from, k.valid_until) for k in history] == [
        (identity.enrolled_at, receipt.index),
        (receipt.index, None),
    ]
    assert history[0].signing_key == b64encode(w.dr.signing_key.verify_key.to_bytes())
    assert history[0].covers(receipt.index - 1)
    assert not history[0].covers(receipt.index)


def test_a_second_rotation_keeps_every_earlier_key(world: World) -> None:
    w = world
    second, third = _new_keys(w.dr), _new_keys(w.dr)
    first_at = w.ledger.submit(
        b.rotate_keys(w.admin, request_rotation(w.dr, second), issued_at=w.clock())
    ).index
    second_at = w.ledger.submit(
        b.rotate_keys(w.admin2, request_rotation(second, third), issued_at=w.clock())
    ).index
    history = w.ledger.identity_keys(w.dr.id)
    assert [(k.valid_from, k.valid_until) for k in history][1:] == [
        (first_at, second_at),
        (second_at, None),
    ]
    assert w.ledger.identity_keys("nobody") == []


def test_a_patient_rotates_its_identity_keys(world: World) -> None:
    w = world
    new = _new_keys(w.patient)
    w.ledger.submit(b.rotate_keys(w.admin, request_rotation(w.patient, new), issued_at=w.clock()))
    revoke = b.revoke(
        w.patient, pseudonym=w.pseudonym, permission_id=w.grant_id, issued_at=w.clock()
    )
    assert _refused(w.ledger, revoke) == "bad-signature"
    w.ledger.submit(
        b.revoke(new, pseudonym=w.pseudonym, permission_id=w.grant_id, issued_at=w.clock())
    )


def _forged(request: RotationRequest, **changes: str) -> RotationRequest:
    data = {**request.to_json(), **changes}
    return RotationRequest.from_json(data)


def test_a_rotation_needs_the_old_key_the_new_key_and_an_admin(world: World) -> None:
    w = world
    new = _new_keys(w.dr)
    request = request_rotation(w.dr, new)
    statement = request.statement()
    stranger = SigningKey.generate()
    without_old = _forged(request, identity_signature=b64encode(stranger.sign(statement)))
    assert (
        _refused(w.ledger, b.rotate_keys(w.admin, without_old, issued_at=w.clock()))
        == "bad-signature"
    )
    without_new = _forged(request, new_key_signature=b64encode(stranger.sign(statement)))
    assert (
        _refused(w.ledger, b.rotate_keys(w.admin, without_new, issued_at=w.clock()))
        == "bad-signature"
    )
    # Signed by the identity itself (old key) but no admin: the rotating identity is no admin.
    assert _refused(w.ledger, b.rotate_keys(w.dr, request, issued_at=w.clock())) == "wrong-role"
    assert (
        _refused(w.ledger, b.rotate_keys(w.dr_other, request, issued_at=w.clock())) == "wrong-role"
    )
    # A request whose keys were swapped after signing.
    other = _new_keys(w.dr).public().to_json()
    swapped = _forged(request, signing_public_key=other["signing_public_key"])
    assert (
        _refused(w.ledger, b.rotate_keys(w.admin, swapped, issued_at=w.clock())) == "bad-signature"
    )
    identity = w.ledger.identity(w.dr.id)
    assert identity is not None
    assert identity.keys_since is None
    w.ledger.submit(b.rotate_keys(w.admin, request, issued_at=w.clock()))


def test_an_admin_does_not_countersign_its_own_rotation(world: World) -> None:
    w = world
    request = request_rotation(w.admin, _new_keys(w.admin))
    assert (
        _refused(w.ledger, b.rotate_keys(w.admin, request, issued_at=w.clock()))
        == "self-countersign"
    )
    w.ledger.submit(b.rotate_keys(w.admin2, request, issued_at=w.clock()))


def test_a_request_is_used_once(world: World) -> None:
    w = world
    request = request_rotation(w.dr, _new_keys(w.dr))
    w.ledger.submit(b.rotate_keys(w.admin, request, issued_at=w.clock()))
    assert (
        _refused(w.ledger, b.rotate_keys(w.admin, request, issued_at=w.clock())) == "stale-rotation"
    )


def test_the_ledger_key_is_not_rotated_by_a_transaction(world: World) -> None:
    w = world
    fake_old = IdentityKeys(
        w.gateway.id, "ledger", w.gateway.signing_key, _new_keys(w.dr).encryption_key
    )
    request = request_rotation(fake_old, IdentityKeys.generate(w.gateway.id, "ledger"))
    assert _refused(w.ledger, b.rotate_keys(w.admin, request, issued_at=w.clock())) == "wrong-role"


def test_a_rotation_in_the_same_batch_as_an_old_signature_refuses_it(world: World) -> None:
    w = world
    new = _new_keys(w.dr)
    rotation = b.rotate_keys(w.admin, request_rotation(w.dr, new), issued_at=w.clock())
    late = _request_access(w, w.dr)
    results = w.ledger.submit_many([rotation, late])  # one batch: the late one sees the rotation
    assert not isinstance(results[0], Exception)
    assert isinstance(results[1], RuleViolation)
    assert results[1].code == "bad-signature"


# --- verification and replay over rotations ----------------------------------------------


@dataclass
class Rotated:
    url: str
    key: SigningKey
    world: World
    dr_new: IdentityKeys
    patient_new: IdentityKeys
    rotation_index: int
    after_index: int  # an entry signed by dr's new key
    before_index: int  # an entry signed by dr's old key


@pytest.fixture
def rotated(database_url: str, clock: FakeClock) -> Rotated:
    key = SigningKey.generate()
    with Ledger.open(database_url, key, clock=clock) as ledger:
        w = build_world(ledger, clock)
        before = ledger.submit(_request_access(w, w.dr)).index
        dr_new, patient_new = _new_keys(w.dr), _new_keys(w.patient)
        at = ledger.submit(
            b.rotate_keys(w.admin, request_rotation(w.dr, dr_new), issued_at=w.clock())
        ).index
        ledger.submit(
            b.rotate_keys(w.admin2, request_rotation(w.patient, patient_new), issued_at=w.clock())
        )
        after = ledger.submit(_request_access(w, dr_new)).index
        ledger.submit(
            b.revoke(
                patient_new, pseudonym=w.pseudonym, permission_id=w.grant_id, issued_at=clock()
            )
        )
        ledger.submit(b.suspend(w.admin, w.dr_other.id, "audit", issued_at=clock()))
        ledger.submit(b.reinstate(w.admin2, w.dr_other.id, "cleared", issued_at=clock()))
    return Rotated(database_url, key, w, dr_new, patient_new, at, after, before)


def test_a_ledger_with_rotations_verifies_and_replays_to_the_same_state(rotated: Rotated) -> None:
    with DatabaseSource(rotated.url) as source:
        report = verify(source, ledger_key=rotated.key.verify_key)
    assert report.ok, report.summary()
    repaired = replay_database(rotated.url)
    assert repaired.ok, repaired.summary()
    assert repaired.state_digest == report.state_digest
    with Ledger.open(rotated.url, rotated.key, clock=rotated.world.clock) as ledger:
        exported = [e.to_json() for e in ledger.entries(0, 10_000)]
        blocks = [blk.to_json() for blk in ledger.blocks(0, 10_000)]
        assert len(ledger.identity_keys(rotated.world.dr.id)) == 2
    remote = verify(ExportSource(exported, blocks))
    assert remote.ok, remote.summary()
    assert remote.state_digest == report.state_digest


def _resign(url: str, index: int, key: SigningKey) -> None:
    """Re-sign entry *index* with *key*, fixing up its stored leaf hash and tree node."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        data: dict[str, Any] = json.loads(
            conn.execute(sa.select(entries.c.tx).where(entries.c.idx == index)).scalar_one()
        )
        payload = {k: data[k] for k in ("type", "body", "signer")}
        data["signature"] = b64encode(key.sign_bytes(canonical(payload)))
        forged = canonical(data)
        leaf = Transaction.from_bytes(forged).leaf_hash
        conn.execute(
            entries.update().where(entries.c.idx == index).values(tx=forged, leaf_hash=leaf)
        )
        conn.execute(
            nodes.update().where(nodes.c.level == 0, nodes.c.idx == index).values(hash=leaf)
        )
    engine.dispose()


def test_an_entry_signed_with_the_old_key_after_the_rotation_is_found(rotated: Rotated) -> None:
    _resign(rotated.url, rotated.after_index, rotated.world.dr.signing_key)
    with DatabaseSource(rotated.url) as source:
        report = verify(source)
    assert report.damage is not None
    assert report.damage.where == f"entry {rotated.after_index}"
    assert "signature does not verify" in report.damage.problem


def test_an_entry_signed_with_the_new_key_before_the_rotation_is_found(rotated: Rotated) -> None:
    _resign(rotated.url, rotated.before_index, rotated.dr_new.signing_key)
    with DatabaseSource(rotated.url) as source:
        report = verify(source)
    assert report.damage is not None
    assert report.damage.where == f"entry {rotated.before_index}"
    assert "signature does not verify" in report.damage.problem


def test_a_deleted_retired_key_row_is_found(rotated: Rotated) -> None:
    from ledger.schema import retired_keys

    engine = sa.create_engine(rotated.url)
    with engine.begin() as conn:
        conn.execute(retired_keys.delete())
    engine.dispose()
    with DatabaseSource(rotated.url) as source:
        report = verify(source)
    assert report.damage is not None
    assert report.damage.kind == "state"


# --- migration 0006 -------------------------------------------------------------------------


def test_migration_0006_round_trips_a_ledger_without_rotations(
    tmp_path: Path, clock: FakeClock
) -> None:
    from alembic import command

    from ledger.migrate import alembic_config, upgrade

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    upgrade(url)
    key = SigningKey.generate()
    with Ledger.open(url, key, clock=clock) as ledger:
        w = build_world(ledger, clock)
    command.downgrade(alembic_config(url), "0005")
    engine = sa.create_engine(url)
    try:
        columns = {c["name"] for c in sa.inspect(engine).get_columns("state_identities")}
        assert "keys_since" not in columns
        assert "state_retired_keys" not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
    upgrade(url)  # an existing ledger: every identity keeps the keys it was enrolled with
    with DatabaseSource(url) as source:
        report = verify(source, ledger_key=key.verify_key)
    assert report.ok, report.summary()
    with Ledger.open(url, key, clock=clock) as ledger:
        ledger.submit(
            b.rotate_keys(w.admin, request_rotation(w.dr, _new_keys(w.dr)), issued_at=clock())
        )
    with pytest.raises(RuntimeError, match="identity keys were rotated"):
        command.downgrade(alembic_config(url), "0005")
