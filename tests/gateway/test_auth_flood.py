"""Strangers who know an identity id cannot lock its holder out of authentication."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from envelope import IdentityKeys, b64encode
from gateway.auth import CHALLENGES_PER_REQUESTER
from tests.gateway.helpers import ManualClock, TestClient, World, signed_token_request

FLOODER = ("10.0.0.66", 1234)
HOLDER = ("10.0.0.7", 1234)


def _flood(flooder: TestClient, identity_id: str, requests: int) -> list[int]:
    """Challenges for *identity_id*, and a bad signature for each one that is issued."""
    statuses = []
    for _ in range(requests):
        issued = flooder.post("/v1/auth/challenge", json={"identity_id": identity_id})
        statuses.append(issued.status_code)
        if issued.status_code == 200:
            forged = {
                "identity_id": identity_id,
                "challenge": issued.json()["challenge"],
                "signature": b64encode(bytes(64)),
            }
            statuses.append(flooder.post("/v1/auth/token", json=forged).status_code)
    return statuses


def test_an_anonymous_flood_for_an_identity_does_not_lock_its_holder_out(
    app: FastAPI, world: World, clock: ManualClock
) -> None:
    doctor = world.enroll("dr-target", "clinician")
    logins = 0
    flood: list[int] = []
    with TestClient(app, client=FLOODER) as flooder, TestClient(app, client=HOLDER) as holder:
        for _ in range(10):
            flood += _flood(flooder, doctor.id, 3)
            challenge = holder.post("/v1/auth/challenge", json={"identity_id": doctor.id})
            assert challenge.status_code == 200, challenge.text
            # The flood goes on between the holder's challenge and its answer.
            flood += _flood(flooder, doctor.id, 2 * CHALLENGES_PER_REQUESTER)
            answer = holder.post(
                "/v1/auth/token", json=signed_token_request(doctor, challenge.json())
            )
            assert answer.status_code == 200, answer.text
            logins += 1
            clock.advance(timedelta(seconds=2))
    assert logins == 10
    # The flooder ran out of its own allowance, not of the holder's.
    assert 429 in flood
    assert flood.count(429) > flood.count(200)


def test_bad_signatures_are_limited_by_their_source_not_the_identity(
    app: FastAPI, world: World
) -> None:
    doctor = world.enroll("dr-signed", "clinician")
    with TestClient(app, client=FLOODER) as flooder:
        statuses = _flood(flooder, doctor.id, 40)
    assert statuses[-1] == 429
    assert 401 in statuses
    with TestClient(app, client=HOLDER) as holder:
        challenge = holder.post("/v1/auth/challenge", json={"identity_id": doctor.id}).json()
        answer = holder.post("/v1/auth/token", json=signed_token_request(doctor, challenge))
    assert answer.status_code == 200, answer.text


def test_a_flood_evicts_only_its_own_challenges(app: FastAPI, world: World) -> None:
    holder_keys: IdentityKeys = world.enroll("dr-patient", "clinician")
    with TestClient(app, client=HOLDER) as holder, TestClient(app, client=FLOODER) as flooder:
        mine = holder.post("/v1/auth/challenge", json={"identity_id": holder_keys.id}).json()
        theirs = [
            flooder.post("/v1/auth/challenge", json={"identity_id": holder_keys.id}).json()
            for _ in range(CHALLENGES_PER_REQUESTER + 1)
        ]
        # The flooder's oldest challenge was evicted by its own newer ones ...
        oldest = signed_token_request(holder_keys, theirs[0])
        assert holder.post("/v1/auth/token", json=oldest).status_code == 401
        # ... while the holder's, older still, is answered.
        answer = holder.post("/v1/auth/token", json=signed_token_request(holder_keys, mine))
    assert answer.status_code == 200, answer.text
