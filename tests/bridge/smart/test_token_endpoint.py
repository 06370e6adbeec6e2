"""POST /auth/token: valid assertions get a token; every kind of bad one the right refusal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bridge.actors import Actor
from bridge.errors import BridgeUsageError
from bridge.smart import SmartClient, SmartTokenVerifier
from tests.bridge.smart.support import (
    NOW,
    TOKEN_URL,
    TestClient,
    World,
    assertion,
    ec_key,
    forger_key,
    form,
    hs256_with_public_key,
    public_jwks,
    reheader,
    rsa_key,
    rsa_public_pem,
    unsigned,
)


def post(world: World, data: dict[str, str]) -> tuple[int, dict[str, Any]]:
    with TestClient(world.app()) as client:
        response = client.post("/auth/token", data=data)
    assert response.headers["cache-control"] == "no-store"
    return response.status_code, response.json()


@pytest.mark.parametrize(
    ("key", "alg"), [(rsa_key(), "RS384"), (ec_key(), "ES384")], ids=["RS384", "ES384"]
)
def test_a_valid_assertion_gets_a_token_the_verifier_accepts(key: Any, alg: str) -> None:
    world = World()
    status, body = post(world, form(assertion(key, alg)))
    assert status == 200
    assert body["token_type"] == "bearer"
    assert 0 < body["expires_in"] <= 300
    assert body["scope"] == "system/DocumentReference.crs"
    actor = SmartTokenVerifier(world.config, world.tokens).verify(body["access_token"])
    assert actor == Actor(
        kind="system",
        identity="hospital-system",
        subject="aria-engine",
        scopes=frozenset({"system/DocumentReference.crs"}),
    )
    assert actor.may("DocumentReference", "c")
    assert not actor.may("Binary", "r")


REFUSED: list[tuple[str, Callable[[], str], str]] = [
    ("forged (another key, same kid)", lambda: assertion(forger_key()), "does not verify"),
    ("expired", lambda: assertion(exp=int(NOW) - 60), "expired"),
    ("exp more than 5 minutes ahead", lambda: assertion(exp=int(NOW) + 600), "seconds ahead"),
    ("no exp", lambda: assertion(exp=None), "no numeric exp"),
    ("not valid yet", lambda: assertion(nbf=int(NOW) + 120), "nbf"),
    ("wrong audience", lambda: assertion(aud="https://elsewhere.test/auth/token"), "aud"),
    (
        "audience of the FHIR base",
        lambda: assertion(aud="https://bridge.hospital.test/fhir"),
        "aud",
    ),
    (
        "HS256 with the public key as secret",
        lambda: hs256_with_public_key(rsa_public_pem()),
        "'HS256'",
    ),
    ("alg none", unsigned, "'none'"),
    ("RS256 (not offered)", lambda: assertion(alg="RS256"), "'RS256'"),
    (
        "RS384 header over an EC signature",
        lambda: reheader(assertion(ec_key(), "ES384"), {"alg": "RS384", "kid": "ec-1"}),
        "no registered RS384 key with kid 'ec-1'",
    ),
    (
        "kid of the other key",
        lambda: reheader(assertion(ec_key(), "ES384"), {"alg": "ES384", "kid": "rsa-1"}),
        "no registered ES384 key",
    ),
    ("iss differs from sub", lambda: assertion(sub="someone-else"), "iss and sub"),
    ("sub missing", lambda: assertion(sub=None), "iss and sub"),
    ("unknown client", lambda: assertion(iss="intruder", sub="intruder"), "unknown client"),
    ("unknown kid", lambda: assertion(header={"kid": "rsa-9"}), "kid"),
    ("no kid", lambda: reheader(assertion(), {"alg": "RS384"}), "no kid"),
    ("no jti", lambda: assertion(jti=None), "jti"),
    ("not a JWT", lambda: "not.a.jwt", "not base64url JSON"),
    ("two parts", lambda: "abc.def", "compact JWS"),
]


@pytest.mark.parametrize(("name", "make", "reason"), REFUSED, ids=[r[0] for r in REFUSED])
def test_bad_assertions_are_invalid_client(name: str, make: Callable[[], str], reason: str) -> None:
    world = World()
    status, body = post(world, form(make()))
    assert status == 401
    assert body["error"] == "invalid_client"
    assert reason in body["error_description"]


def test_a_replayed_jti_is_refused() -> None:
    world = World()
    value = assertion(jti="once")
    with TestClient(world.app()) as client:
        first = client.post("/auth/token", data=form(value))
        again = client.post("/auth/token", data=form(value))
        other = client.post("/auth/token", data=form(assertion(jti="twice")))
    assert first.status_code == 200
    assert again.status_code == 401
    assert again.json()["error"] == "invalid_client"
    assert "already used" in again.json()["error_description"]
    assert other.status_code == 200


def test_a_refused_assertion_does_not_burn_its_jti() -> None:
    world = World()
    with TestClient(world.app()) as client:
        bad = client.post("/auth/token", data=form(assertion(jti="j1", aud="https://x.test")))
        good = client.post("/auth/token", data=form(assertion(jti="j1")))
    assert (bad.status_code, good.status_code) == (401, 200)


def test_scope_never_widens_past_the_clients_registration() -> None:
    world = World()
    status, body = post(world, form(assertion(), scope="system/*.*"))
    assert (status, body["error"]) == (400, "invalid_scope")
    status, body = post(world, form(assertion(), scope="system/Binary.r system/Patient.cruds"))
    assert status == 200
    assert body["scope"] == "system/Binary.r"
    actor = SmartTokenVerifier(world.config, world.tokens).verify(body["access_token"])
    assert actor.scopes == frozenset({"system/Binary.r"})
    status, body = post(world, form(assertion(), scope=None))
    assert (status, body["error"]) == (400, "invalid_scope")


BAD_REQUESTS: list[tuple[str, dict[str, str], int, str]] = [
    ("grant type", {"grant_type": "authorization_code"}, 400, "unsupported_grant_type"),
    ("assertion type", {"client_assertion_type": "urn:x"}, 401, "invalid_client"),
    ("no grant type", {"grant_type": ""}, 400, "invalid_request"),
]


@pytest.mark.parametrize(
    ("name", "change", "status", "error"), BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS]
)
def test_bad_requests(name: str, change: dict[str, str], status: int, error: str) -> None:
    got, body = post(World(), {**form(assertion()), **change})
    assert (got, body["error"]) == (status, error)


def test_no_assertion_and_wrong_body_and_repeated_parameters() -> None:
    world = World()
    assert post(world, form(None)) == (
        401,
        {
            "error": "invalid_client",
            "error_description": post(world, form(None))[1]["error_description"],
        },
    )
    with TestClient(world.app()) as client:
        as_json = client.post("/auth/token", json=form(assertion()))
        repeated = client.post(
            "/auth/token",
            content="grant_type=client_credentials&grant_type=client_credentials",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        huge = client.post(
            "/auth/token",
            content=b"scope=" + b"a" * 70_000,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert (as_json.status_code, as_json.json()["error"]) == (400, "invalid_request")
    assert (repeated.status_code, repeated.json()["error"]) == (400, "invalid_request")
    assert "grant_type" in repeated.json()["error_description"]
    assert (huge.status_code, huge.json()["error"]) == (400, "invalid_request")


def test_smart_configuration() -> None:
    world = World()
    with TestClient(world.app()) as client:
        documents = [
            client.get(p).json()
            for p in ("/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration")
        ]
    assert documents[0] == documents[1]
    document = documents[0]
    assert document["token_endpoint"] == TOKEN_URL
    assert document["grant_types_supported"] == ["client_credentials"]
    assert document["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert document["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
    assert document["capabilities"] == ["client-confidential-asymmetric"]
    assert document["scopes_supported"] == ["system/Binary.r", "system/DocumentReference.crs"]


def test_registration_refuses_private_keys_and_keys_without_kid(tmp_path: Any) -> None:
    with pytest.raises(BridgeUsageError, match="private"):
        SmartClient.register(
            "c", jwks={"keys": [rsa_key().as_dict(private=True)]}, identity="i", scopes=["s/x.r"]
        )
    no_kid = public_jwks(rsa_key())
    del no_kid["keys"][0]["kid"]
    with pytest.raises(BridgeUsageError, match="kid"):
        SmartClient.register("c", jwks=no_kid, identity="i", scopes=["s/x.r"])
    with pytest.raises(BridgeUsageError, match="cannot read"):
        SmartClient.register("c", jwks=tmp_path / "missing.json", identity="i", scopes=["s/x.r"])
    path = tmp_path / "jwks.json"
    path.write_text(__import__("json").dumps(public_jwks(ec_key())))
    client = SmartClient.register("c", jwks=path, identity="i", scopes=["s/x.r"])
    assert [key.kid for key in client.jwks] == ["ec-1"]
