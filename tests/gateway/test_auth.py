"""Challenge-response authentication, bearer tokens, suspension and rate limits."""

from __future__ import annotations

from datetime import timedelta

import pytest

from envelope import IdentityKeys, b64encode
from gateway.auth import auth_statement
from tests.gateway.helpers import (
    ManualClock,
    MemoryDirectory,
    TestClient,
    login,
    signed_token_request,
)

PROBLEM = "urn:ehrgate:problem:"


@pytest.fixture
def doctor(directory: MemoryDirectory) -> IdentityKeys:
    return directory.add(IdentityKeys.generate("dr-house", "clinician"))


def _challenge(client: TestClient, identity_id: str) -> dict[str, str]:
    response = client.post("/v1/auth/challenge", json={"identity_id": identity_id})
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


def _whoami(client: TestClient, token: str) -> int:
    response = client.get("/v1/identities/me", headers={"Authorization": f"Bearer {token}"})
    status: int = response.status_code
    return status


def test_signed_challenge_yields_a_token_for_the_identity(
    client: TestClient, doctor: IdentityKeys
) -> None:
    challenge = _challenge(client, doctor.id)
    assert challenge["audience"] == "ehrgate-gateway"
    response = client.post("/v1/auth/token", json=signed_token_request(doctor, challenge))
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["identity_id"] == doctor.id
    assert body["role"] == "clinician"
    me = client.get(
        "/v1/identities/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["id"] == doctor.id


def test_a_challenge_cannot_be_used_twice(client: TestClient, doctor: IdentityKeys) -> None:
    challenge = _challenge(client, doctor.id)
    request = signed_token_request(doctor, challenge)
    assert client.post("/v1/auth/token", json=request).status_code == 200
    replay = client.post("/v1/auth/token", json=request)
    assert replay.status_code == 401
    assert replay.json()["type"] == PROBLEM + "invalid-challenge"


def test_a_failed_attempt_spends_the_challenge(client: TestClient, doctor: IdentityKeys) -> None:
    challenge = _challenge(client, doctor.id)
    request = signed_token_request(doctor, challenge)
    forged = {**request, "signature": b64encode(bytes(64))}
    assert client.post("/v1/auth/token", json=forged).status_code == 401
    assert client.post("/v1/auth/token", json=request).json()["type"] == (
        PROBLEM + "invalid-challenge"
    )


def test_an_expired_challenge_is_refused(
    client: TestClient, doctor: IdentityKeys, clock: ManualClock
) -> None:
    challenge = _challenge(client, doctor.id)
    clock.advance(timedelta(seconds=61))
    response = client.post("/v1/auth/token", json=signed_token_request(doctor, challenge))
    assert response.status_code == 401
    assert response.json()["type"] == PROBLEM + "invalid-challenge"


def test_a_challenge_issued_to_another_identity_is_refused(
    client: TestClient, doctor: IdentityKeys, directory: MemoryDirectory
) -> None:
    nurse = directory.add(IdentityKeys.generate("nurse", "clinician"))
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


def test_a_malformed_signature_is_refused_and_spends_the_challenge(
    client: TestClient, doctor: IdentityKeys
) -> None:
    challenge = _challenge(client, doctor.id)
    request = signed_token_request(doctor, challenge)
    short = {**request, "signature": b64encode(b"short")}
    assert client.post("/v1/auth/token", json=short).json()["type"] == (
        PROBLEM + "authentication-failed"
    )
    assert client.post("/v1/auth/token", json=request).status_code == 401


def test_a_suspended_identity_gets_no_token(
    client: TestClient, doctor: IdentityKeys, directory: MemoryDirectory
) -> None:
    directory.suspended.add(doctor.id)
    challenge = _challenge(client, doctor.id)
    response = client.post("/v1/auth/token", json=signed_token_request(doctor, challenge))
    assert response.status_code == 403
    assert response.json()["type"] == PROBLEM + "identity-suspended"


def test_suspension_takes_effect_on_the_next_request(
    client: TestClient, doctor: IdentityKeys, directory: MemoryDirectory
) -> None:
    token = login(client, doctor)
    assert _whoami(client, token) == 200
    directory.suspended.add(doctor.id)
    response = client.get("/v1/identities/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert response.json()["type"] == PROBLEM + "identity-suspended"


def test_a_token_expires(client: TestClient, doctor: IdentityKeys, clock: ManualClock) -> None:
    token = login(client, doctor)
    clock.advance(timedelta(minutes=15, seconds=1))
    response = client.get("/v1/identities/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["type"] == PROBLEM + "invalid-token"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_token_from_another_gateway_instance_is_refused(
    app: object, doctor: IdentityKeys, directory: MemoryDirectory, settings: object
) -> None:
    from gateway import Settings, create_app
    from gateway.deps import get_directory

    assert isinstance(settings, Settings)
    first = create_app(settings)
    first.dependency_overrides[get_directory] = lambda: directory
    with TestClient(first) as client:
        token = login(client, doctor)
    second = create_app(settings)
    second.dependency_overrides[get_directory] = lambda: directory
    with TestClient(second) as client:
        assert _whoami(client, token) == 401


@pytest.mark.parametrize("header", [None, "Basic Zm9vOmJhcg==", "Bearer egt_forged"])
def test_requests_without_a_valid_bearer_token_are_refused(
    client: TestClient, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    response = client.get("/v1/identities/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["type"] == PROBLEM + "invalid-token"


def test_auth_is_rate_limited_per_identity(
    client: TestClient, doctor: IdentityKeys, clock: ManualClock
) -> None:
    for _ in range(30):
        _challenge(client, doctor.id)
    refused = client.post("/v1/auth/challenge", json={"identity_id": doctor.id})
    assert refused.status_code == 429
    assert refused.json()["type"] == PROBLEM + "rate-limited"
    assert int(refused.headers["retry-after"]) >= 1
    clock.advance(timedelta(seconds=int(refused.headers["retry-after"])))
    assert client.post("/v1/auth/challenge", json={"identity_id": doctor.id}).status_code == 200


def test_auth_is_rate_limited_per_client_address(client: TestClient) -> None:
    # Different identities, one address: the per-address bucket is the one that empties.
    for index in range(30):
        _challenge(client, f"someone-{index}")
    refused = client.post("/v1/auth/challenge", json={"identity_id": "someone-else"})
    assert refused.status_code == 429


def test_failed_attempts_are_counted_in_metrics(client: TestClient, doctor: IdentityKeys) -> None:
    challenge = _challenge(client, doctor.id)
    request = signed_token_request(doctor, challenge)
    client.post("/v1/auth/token", json=request)
    client.post("/v1/auth/token", json=request)
    text = client.get("/metrics").text
    assert 'ehrgate_auth_failures_total{reason="invalid-challenge"} 1.0' in text
