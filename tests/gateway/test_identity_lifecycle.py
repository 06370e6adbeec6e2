"""The gateway's reinstate, rotate-keys and key history routes: problems for bad input,
logins by key, and the history each identity's signatures are checked against."""

from __future__ import annotations

from envelope import IdentityKeys, b64encode
from ledger.wire import builders
from ledger.wire.rotation import request_rotation
from tests.gateway.helpers import World, login, signed_token_request, tx_json


def _login_status(world: World, keys: IdentityKeys) -> int:
    """The status of a login with *keys* (a challenge signed with its signing key)."""
    challenge = world.client.post("/v1/auth/challenge", json={"identity_id": keys.id})
    assert challenge.status_code == 200, challenge.text
    answer = world.client.post("/v1/auth/token", json=signed_token_request(keys, challenge.json()))
    status: int = answer.status_code
    return status


def test_the_path_must_name_the_identity_the_transaction_names(world: World) -> None:
    a, b = world.enroll("dr-a", "clinician"), world.enroll("dr-b", "clinician")
    world.suspend(a)
    tx = builders.reinstate(world.admin, a.id, "back", issued_at=world.clock())
    response = world.client.post(
        f"/v1/identities/{b.id}/reinstate", json=tx_json(tx), headers=world.headers(world.admin)
    )
    assert response.status_code == 422, response.text
    assert "another identity" in response.json()["detail"]
    rotate = builders.rotate_keys(
        world.admin,
        request_rotation(a, IdentityKeys.generate(a.id, a.role)),
        issued_at=world.clock(),
    )
    response = world.client.post(
        f"/v1/identities/{b.id}/rotate-keys",
        json=tx_json(rotate),
        headers=world.headers(world.admin),
    )
    assert response.status_code == 422, response.text
    # the wrong kind of transaction for the route
    response = world.client.post(
        f"/v1/identities/{a.id}/rotate-keys", json=tx_json(tx), headers=world.headers(world.admin)
    )
    assert response.status_code == 422, response.text


def test_reinstate_answers_problems(world: World) -> None:
    a = world.enroll("dr-c", "clinician")
    tx = builders.reinstate(world.admin, a.id, "nothing to lift", issued_at=world.clock())
    response = world.client.post(
        f"/v1/identities/{a.id}/reinstate", json=tx_json(tx), headers=world.headers(world.admin)
    )
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "not-suspended"


def test_logins_follow_the_rotation_and_the_history_names_both_keys(world: World) -> None:
    old = world.enroll("dr-d", "clinician")
    new = IdentityKeys.generate(old.id, old.role)
    assert _login_status(world, new) == 401  # not this identity's key yet
    tx = builders.rotate_keys(world.admin, request_rotation(old, new), issued_at=world.clock())
    response = world.client.post(
        f"/v1/identities/{old.id}/rotate-keys", json=tx_json(tx), headers=world.headers(world.admin)
    )
    assert response.status_code == 201, response.text
    at = response.json()["receipt"]["index"]
    assert _login_status(world, old) == 401
    token = login(world.client, new)
    me = world.client.get("/v1/identities/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["signing_public_key"] == b64encode(new.signing_key.verify_key.to_bytes())
    history = world.client.get(f"/v1/identities/{old.id}/keys", headers=world.headers(world.admin))
    assert history.status_code == 200, history.text
    keys = history.json()["keys"]
    assert [(k["valid_until"]) for k in keys] == [at, None]
    assert keys[1]["valid_from"] == at
    assert keys[0]["signing_public_key"] == b64encode(old.signing_key.verify_key.to_bytes())
    # a second submission of the same request is stale
    again = builders.rotate_keys(world.admin, request_rotation(old, new), issued_at=world.clock())
    response = world.client.post(
        f"/v1/identities/{old.id}/rotate-keys",
        json=tx_json(again),
        headers=world.headers(world.admin),
    )
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "stale-rotation"


def test_the_key_history_of_no_identity_is_not_found(world: World) -> None:
    for who in ("nobody", "ledger"):
        response = world.client.get(
            f"/v1/identities/{who}/keys", headers=world.headers(world.admin)
        )
        assert response.status_code == 404, response.text
    response = world.client.get(f"/v1/identities/{world.admin.id}/keys")
    assert response.status_code == 401
