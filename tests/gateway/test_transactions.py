"""Forwarded transactions: the route's type, the caller as signer, the path's target."""

from __future__ import annotations

from datetime import timedelta

from envelope import VerifyKey, b64decode
from ledger.wire import builders
from ledger.wire.blocks import Block, Receipt
from ledger.wire.transactions import Transaction
from tests.gateway import scenario
from tests.gateway.helpers import World, tx_json


def test_a_transaction_of_another_type_is_refused(world: World) -> None:
    cast = scenario.set_up(world)
    tx = builders.revoke(
        cast.patient.identity,
        pseudonym=cast.patient.pseudonym,
        permission_id="p1",
        issued_at=world.clock(),
    )
    response = world.client.post(
        "/v1/permissions", json=tx_json(tx), headers=world.headers(cast.patient.identity)
    )
    assert response.status_code == 422
    assert "takes a grant transaction" in response.json()["detail"]


def test_a_suspension_must_name_the_identity_in_the_path(world: World) -> None:
    cast = scenario.set_up(world)
    tx = builders.suspend(world.admin, cast.doctor.id, "left", issued_at=world.clock())
    response = world.client.post(
        f"/v1/identities/{cast.system.id}/suspend",
        json=tx_json(tx),
        headers=world.headers(world.admin),
    )
    assert response.status_code == 422
    me = world.client.get("/v1/identities/me", headers=world.headers(cast.doctor))
    assert me.status_code == 200


def test_a_revocation_must_name_the_permission_in_the_path(world: World) -> None:
    cast = scenario.set_up(world)
    first = world.grant(cast.patient, cast.doctor, ["read"], ["lab-results"])
    second = world.grant(cast.patient, cast.system, ["write"], ["lab-results"])
    tx = builders.revoke(
        cast.patient.identity,
        pseudonym=cast.patient.pseudonym,
        permission_id=first,
        issued_at=world.clock(),
    )
    response = world.client.post(
        f"/v1/permissions/{second}/revoke",
        json=tx_json(tx),
        headers=world.headers(cast.patient.identity),
    )
    assert response.status_code == 422


def test_unknown_fields_in_a_transaction_envelope_are_refused(world: World) -> None:
    cast = scenario.set_up(world)
    now = world.clock()
    tx = scenario.read_grant(cast, now, lasting=timedelta(hours=1), categories=["lab-results"])
    response = world.client.post(
        "/v1/permissions",
        json={**tx_json(tx), "countersigned_by": "gateway"},
        headers=world.headers(cast.patient.identity),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "countersigned_by"]


def test_a_grant_returns_the_permission_and_a_verifiable_receipt(world: World) -> None:
    cast = scenario.set_up(world)
    now = world.clock()
    tx = scenario.read_grant(cast, now, lasting=timedelta(hours=1), categories=["lab-results"])
    response = world.client.post(
        "/v1/permissions", json=tx_json(tx), headers=world.headers(cast.patient.identity)
    )
    assert response.status_code == 201
    body = response.json()
    assert body["permission"]["grantee"] == cast.doctor.id
    assert body["permission"]["revoked"] is False
    head = world.client.get("/v1/ledger/head").json()
    ledger_key = VerifyKey(b64decode(head["ledger_public_key"]))
    receipt = body["receipt"]
    Receipt(
        receipt["index"],
        receipt["tx_hash"],
        Block.from_json(receipt["tree_head"]),
        tuple(bytes.fromhex(p) for p in receipt["inclusion_proof"]),
    ).verify(ledger_key, Transaction.from_json(tx_json(tx)))
