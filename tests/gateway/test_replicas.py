"""Three `ehrgate serve` replicas on one PostgreSQL ledger behind a real HAProxy on loopback.

Authentication state is shared: a token issued by one replica works at the others, a
challenge is spent once whichever replica redeems it, a suspension made through one replica
is refused at every replica on the very next request, and a per-address rate limit counts
the attempts made at all replicas. Each would fail if the state were kept per process.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from envelope import IdentityKeys
from tests.gateway.helpers import SystemClock, World, signed_token_request
from tests.postgres import scratch_database
from tests.replicas import REPLICA_HEADER, Deployment, haproxy_available

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not haproxy_available(), reason="needs Debian's haproxy (.ci/run installs it)"
    ),
]

AUTH_LIMIT = 40


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("replicas")
    with scratch_database("ehrgate_replicas") as url:
        deployment = Deployment(root, url, env={"EHRGATE_AUTH_RATE_LIMIT": str(AUTH_LIMIT)})
        try:
            deployment.start()
            yield deployment
        except BaseException:
            print(deployment.logs())
            raise
        finally:
            deployment.stop()


def _clients(deployment: Deployment) -> list[httpx.Client]:
    return [httpx.Client(base_url=r.url, timeout=30) for r in deployment.replicas]


def _me(client: httpx.Client, token: str) -> httpx.Response:
    return client.get("/v1/identities/me", headers={"Authorization": f"Bearer {token}"})


def _challenge(client: httpx.Client, keys: IdentityKeys, source: str) -> dict[str, str]:
    response = client.post(
        "/v1/auth/challenge", json={"identity_id": keys.id}, headers={"X-Forwarded-For": source}
    )
    assert response.status_code == 200, response.text
    answer: dict[str, str] = response.json()
    return answer


def test_a_token_from_one_replica_works_at_every_replica(deployment: Deployment) -> None:
    clients = _clients(deployment)
    try:
        world = World(clients[0], SystemClock(), deployment.admin_keys())
        clinician = world.enroll("dr-anywhere", "clinician")
        token = World(clients[1], SystemClock(), clinician).headers(clinician)
        for client in clients:
            response = client.get("/v1/identities/me", headers=token)
            assert response.status_code == 200, response.text
            assert response.json()["id"] == clinician.id
        # Through the balancer the requests reach every replica, and each knows the token.
        with httpx.Client(base_url=deployment.url, timeout=30) as balanced:
            served: Counter[str] = Counter()
            for _ in range(9):
                response = balanced.get("/v1/identities/me", headers=token)
                assert response.status_code == 200, response.text
                served[response.headers[REPLICA_HEADER]] += 1
        assert set(served) == {"r0", "r1", "r2"}
        # A token no replica issued is refused by all of them.
        for client in clients:
            assert _me(client, "egt_" + "A" * 43).status_code == 401
    finally:
        for client in clients:
            client.close()


def test_a_challenge_cannot_be_used_twice_across_replicas(deployment: Deployment) -> None:
    clients = _clients(deployment)
    try:
        world = World(clients[0], SystemClock(), deployment.admin_keys())
        clinician = world.enroll("dr-once", "clinician")
        challenge = _challenge(clients[0], clinician, "198.51.100.20")
        answer = signed_token_request(clinician, challenge)
        first = clients[1].post("/v1/auth/token", json=answer)
        assert first.status_code == 200, first.text
        again = clients[2].post("/v1/auth/token", json=answer)
        assert again.status_code == 401, again.text
        assert again.json()["type"].endswith("invalid-challenge")
        # Raced at two replicas at once: exactly one wins.
        for _ in range(5):
            challenge = _challenge(clients[2], clinician, "198.51.100.21")
            answer = signed_token_request(clinician, challenge)
            with ThreadPoolExecutor(2) as pool:
                racing = [pool.submit(c.post, "/v1/auth/token", json=answer) for c in clients[:2]]
                statuses = sorted(f.result().status_code for f in racing)
            assert statuses == [200, 401]
    finally:
        for client in clients:
            client.close()


def test_a_suspension_at_one_replica_is_refused_at_all_on_the_next_request(
    deployment: Deployment,
) -> None:
    clients = _clients(deployment)
    try:
        admin = World(clients[2], SystemClock(), deployment.admin_keys())
        clinician = admin.enroll("dr-suspended-soon", "clinician")
        token = World(clients[0], SystemClock(), clinician).headers(clinician)
        for client in clients:  # every replica has seen the token (and the identity)
            assert client.get("/v1/identities/me", headers=token).status_code == 200
        admin.suspend(clinician)  # through replica 2
        clients.append(httpx.Client(base_url=deployment.url, timeout=30))  # the balancer
        for client in clients:
            response = client.get("/v1/identities/me", headers=token)
            assert response.status_code == 403, response.text
            assert response.json()["type"].endswith("identity-suspended")
        # Nor can it log in again anywhere.
        challenge = _challenge(clients[1], clinician, "198.51.100.30")
        assert clients[1].base_url != clients[0].base_url
        refused = clients[0].post("/v1/auth/token", json=signed_token_request(clinician, challenge))
        assert refused.status_code == 403, refused.text
    finally:
        for client in clients:
            client.close()


def test_the_per_address_limit_holds_across_replicas(deployment: Deployment) -> None:
    clients = _clients(deployment)
    nobody = IdentityKeys.generate("nobody-in-particular", "clinician")
    try:
        statuses: Counter[int] = Counter()
        started = time.monotonic()
        attempts = AUTH_LIMIT + 20
        for n in range(attempts):
            response = clients[n % 3].post(
                "/v1/auth/challenge",
                json={"identity_id": nobody.id},
                headers={"X-Forwarded-For": "203.0.113.9"},
            )
            statuses[response.status_code] += 1
        refilled = math.ceil((time.monotonic() - started) * AUTH_LIMIT / 60)
        # Per replica each would have seen a third of the attempts, all within the limit.
        assert statuses[200] + statuses[429] == attempts, statuses
        assert statuses[200] <= AUTH_LIMIT + refilled, (statuses, refilled)
        assert statuses[429] >= 1, statuses
        # Another address is not affected.
        other = clients[0].post(
            "/v1/auth/challenge",
            json={"identity_id": nobody.id},
            headers={"X-Forwarded-For": "203.0.113.10"},
        )
        assert other.status_code == 200
    finally:
        for client in clients:
            client.close()


def test_readiness_names_the_shared_state(deployment: Deployment) -> None:
    with httpx.Client(base_url=deployment.replicas[0].url, timeout=10) as client:
        body = client.get("/readyz").json()
    assert body["checks"] == {"database": "ok", "stores": "ok", "auth_state": "ok"}
