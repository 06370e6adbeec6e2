"""Challenge-response authentication, bearer tokens, suspension and rate limits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI

from envelope import IdentityKeys, b64encode
from gateway import Settings, create_app
from gateway.auth import auth_statement
from tests.gateway.conftest import first_admin
from tests.gateway.helpers import (
    ManualClock,
    TestClient,
    World,
    login,
    metrics_text,
    signed_token_request,
)

PROBLEM = "urn:ehrgate:problem:"


@pytest.fixture
def doctor(world: World) -> IdentityKeys:
    return world.enroll("dr-house", "clinician")


def _challenge(client: TestClient, identity_id: str) -> dict[str, str]:
    response = client.post("/v1/auth/challenge", json={"identity_id": identity_id})
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


def _me(client: TestClient, token: str) -> tuple[int, dict[str, str]]:
    response = client.get("/v1/identities/me", headers={"Authorization": f"Bearer {token}"})
    body: dict[str, str] = response.json()
    return response.status_code, body


def test_signed_challenge_yields_a_token_for_the_identity(
    client: TestClient, doctor: IdentityKeys
) -> None:
    challenge = _challenge(client, doctor.id)
    assert challenge["audience"] == "ehrgate-gateway"
    response = client.post("/v1/auth/token", json=signed_token_request(doctor, challenge))
    assert response.status_code == 200
    body = response.json()
    assert (body["token_type"], body["identity_id"], body["role"]) == (
        "bearer",
        doctor.id,
        "clinician",
    )
    status, me = _me(client, body["access_token"])
    assert status == 200
    assert me["id"] == doctor.id


def test_a_challenge_cannot_be_used_twice(client: TestClient, doctor: IdentityKeys) -> None:
    request = signed_token_request(doctor, _challenge(client, doctor.id))
    assert client.post("/v1/auth/token", json=request).status_code == 200
    replay = client.post("/v1/auth/token", json=request)
    assert replay.status_code == 401
    assert replay.json()["type"] == PROBLEM + "invalid-challenge"


def test_a_failed_attempt_spends_the_challenge(client: TestClient, doctor: IdentityKeys) -> None:
    request = signed_token_request(doctor, _challenge(client, doctor.id))
    forged = {**request, "signature": b64encode(bytes(64))}
    assert client.post("/v1/auth/token", json=forged).status_code == 401
    retry = client.post("/v1/auth/token", json=request)
    assert retry.json()["type"] == PROBLEM + "invalid-challenge"


def test_an_expired_challenge_is_refused(
    client: TestClient, doctor: IdentityKeys, clock: ManualClock
) -> None:
    challenge = _challenge(client, doctor.id)
    clock.advance(timedelta(seconds=61))
    response = client.post("/v1/auth/token", json=signed_token_request(doctor, challenge))
    assert response.status_code == 401
    assert response.json()["type"] == PROBLEM + "invalid-challenge"


def test_a_challenge_issued_to_another_identity_is_refused(
    client: TestClient, doctor: IdentityKeys, world: World
) -> None:
    nurse = world.enroll("nurse", "clinician")
    challenge = _challenge(client, doctor.id)
    response = client.post("/v1/auth/token", json=signed_token_request(nurse, challenge))
    assert response.json()["type"] == PROBLEM + "invalid-challenge"


def test_a_signature_by_another_key_is_refused(client: TestClient, doctor: IdentityKeys) -> None:
    impostor = IdentityKeys.generate(doctor.id, "clinician")
    challenge = _challenge(client, doctor.id)
    response = client.post("/v1/auth/token", json=signed_token_request(impostor, challenge))
    assert response.status_code == 401
    assert response.json()["type"] == PROBLEM + "authentication-failed"


def test_a_signature_for_another_audience_is_refused(
    client: TestClient, doctor: IdentityKeys
) -> None:
    challenge = _challenge(client, doctor.id)
    statement = auth_statement(
        challenge=challenge["challenge"], identity_id=doctor.id, audience="another-gateway"
    )
    request = {
        "identity_id": doctor.id,
        "challenge": challenge["challenge"],
        "signature": b64encode(doctor.sign(statement)),
    }
    response = client.post("/v1/auth/token", json=request)
    assert response.json()["type"] == PROBLEM + "authentication-failed"


def test_an_unknown_identity_gets_a_challenge_but_no_token(client: TestClient) -> None:
    stranger = IdentityKeys.generate("stranger", "clinician")
    challenge = _challenge(client, stranger.id)
    response = client.post("/v1/auth/token", json=signed_token_request(stranger, challenge))
    assert response.status_code == 401
    assert response.json()["type"] == PROBLEM + "authentication-failed"


def test_the_ledger_identity_cannot_log_in(client: TestClient, settings: Settings) -> None:
    from envelope import load_key_file

    ledger_keys = load_key_file(settings.resolved_ledger_key_file)
    assert isinstance(ledger_keys, IdentityKeys)
    challenge = _challenge(client, ledger_keys.id)
    response = client.post("/v1/auth/token", json=signed_token_request(ledger_keys, challenge))
    assert response.status_code == 401


def test_a_malformed_signature_is_refused_and_spends_the_challenge(
    client: TestClient, doctor: IdentityKeys
) -> None:
    request = signed_token_request(doctor, _challenge(client, doctor.id))
    short = {**request, "signature": b64encode(b"short")}
    assert client.post("/v1/auth/token", json=short).json()["type"] == (
        PROBLEM + "authentication-failed"
    )
    assert client.post("/v1/auth/token", json=request).status_code == 401


def test_a_suspended_identity_gets_no_token(
    client: TestClient, doctor: IdentityKeys, world: World
) -> None:
    world.suspend(doctor)
    challenge = _challenge(client, doctor.id)
    response = client.post("/v1/auth/token", json=signed_token_request(doctor, challenge))
    assert response.status_code == 403
    assert response.json()["type"] == PROBLEM + "identity-suspended"


def test_suspension_takes_effect_on_the_next_request(
    client: TestClient, doctor: IdentityKeys, world: World
) -> None:
    token = login(client, doctor)
    assert _me(client, token)[0] == 200
    world.suspend(doctor)
    status, body = _me(client, token)
    assert status == 403
    assert body["type"] == PROBLEM + "identity-suspended"


def test_a_token_expires(client: TestClient, doctor: IdentityKeys, clock: ManualClock) -> None:
    token = login(client, doctor)
    clock.advance(timedelta(minutes=15, seconds=1))
    response = client.get("/v1/identities/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["type"] == PROBLEM + "invalid-token"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_token_from_a_previous_gateway_process_is_refused(
    settings: Settings, clock: ManualClock
) -> None:
    with TestClient(create_app(settings, clock=clock)) as client:
        token = login(client, first_admin(settings))
        assert _me(client, token)[0] == 200
    with TestClient(create_app(settings, clock=clock)) as client:
        assert _me(client, token)[0] == 401


@pytest.mark.parametrize("header", [None, "Basic Zm9vOmJhcg==", "Bearer egt_forged"])
def test_requests_without_a_valid_bearer_token_are_refused(
    client: TestClient, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    response = client.get("/v1/identities/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["type"] == PROBLEM + "invalid-token"


@pytest.fixture
def limited(app: FastAPI) -> Iterator[FastAPI]:
    with TestClient(app):  # lifespan up, so that the ledger exists for the first admin
        yield app


def test_challenge_issuance_is_capped_for_the_whole_gateway(
    tmp_path: Path, clock: ManualClock
) -> None:
    settings = Settings(data_dir=tmp_path / "capped", auth_global_rate_limit=30)
    app = create_app(settings, clock=clock)
    with TestClient(app):
        admin = first_admin(settings)
        # Each attempt from a different address: only the gateway-wide bucket empties.
        for index in range(30):
            with TestClient(app, client=(f"10.0.0.{index}", 1000)) as client:
                _challenge(client, admin.id)
        with TestClient(app, client=("10.0.1.1", 1000)) as client:
            refused = client.post("/v1/auth/challenge", json={"identity_id": admin.id})
            assert refused.status_code == 429
            assert refused.json()["type"] == PROBLEM + "rate-limited"
            wait = int(refused.headers["retry-after"])
            assert wait >= 1
            clock.advance(timedelta(seconds=wait))
            assert _challenge(client, admin.id)


def test_auth_is_rate_limited_per_client_address(limited: FastAPI) -> None:
    with TestClient(limited, client=("10.0.2.1", 1000)) as client:
        for index in range(30):
            _challenge(client, f"someone-{index}")
        refused = client.post("/v1/auth/challenge", json={"identity_id": "someone-else"})
    assert refused.status_code == 429
    with TestClient(limited, client=("10.0.2.2", 1000)) as other:
        assert other.post("/v1/auth/challenge", json={"identity_id": "x"}).status_code == 200


def test_failed_attempts_are_counted_in_metrics(client: TestClient, doctor: IdentityKeys) -> None:
    request = signed_token_request(doctor, _challenge(client, doctor.id))
    client.post("/v1/auth/token", json=request)
    client.post("/v1/auth/token", json=request)
    text = metrics_text(client)
    assert 'ehrgate_auth_failures_total{reason="invalid-challenge"} 1.0' in text
