"""Fixtures of the bridge tests: a live gateway with its cast, a live bridge in front of it
holding the cast's system, doctor and auditor in its key store, the patient linked by a
statement the patient signed; every FHIR response checked by the independent validator."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from bridge.actors import Actor
from bridge.keystore import KeyStore
from ehrgate.links import make_link_statement
from tests.bridge.live import (
    PASSPHRASE,
    READ_ALL,
    WRITE_DOCS,
    FixedTokens,
    LiveBridge,
    bridge_settings,
    live_bridge,
)
from tests.bridge.validator import validate
from tests.client.live import Cast, live_cast

MRN = "MRN-1001"
TOKENS = {
    "system": Actor("system", "aria-export", "aria", WRITE_DOCS),
    "doctor": Actor("clinician", "dr-grey", "grey@hospital", READ_ALL),
    "auditor": Actor("system", "auditor-1", "audit-viewer", frozenset({"system/AuditEvent.rs"})),
    "doctor-writer": Actor(
        "clinician", "dr-grey", "grey@hospital", frozenset({"user/DocumentReference.c"})
    ),
    "narrow": Actor("system", "aria-export", "aria", frozenset({"system/Binary.r"})),
}


@pytest.fixture(scope="module")
def cast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cast]:
    with live_cast(tmp_path_factory.mktemp("gateway")) as found:
        yield found


@pytest.fixture(scope="module")
def live(cast: Cast, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveBridge]:
    directory = tmp_path_factory.mktemp("bridge")
    settings = bridge_settings(directory, cast.url)
    store = KeyStore(settings.keys_dir, PASSPHRASE)
    for keys in (cast.system, cast.doctor, cast.auditor):
        store.add(keys)
    with live_bridge(settings, FixedTokens(TOKENS)) as running:
        statement = make_link_statement(cast.patient, hospital="st-elsewhere", mrn=MRN)
        directory_client = running.service.identities.client("aria-export")
        running.service.links.add(statement.to_json(), directory_client)
        yield running


@pytest.fixture(autouse=True)
def fhir_responses_validate(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every FHIR JSON response a test received passes the independent validator."""
    if "live" not in request.fixturenames:
        yield
        return
    live: LiveBridge = request.getfixturevalue("live")
    start = len(live.recorder.responses)
    yield
    received = [r for r in live.recorder.responses[start:] if "fhir+json" in r.content_type]
    if not received:
        return
    problems = validate([json.loads(r.body) for r in received])
    failures = [
        f"{r.method} {r.path} ({r.status}): {issues}"
        for r, issues in zip(received, problems, strict=True)
        if issues
    ]
    assert not failures, "FHIR validation errors:\n" + "\n".join(failures)


Http = Callable[[str], httpx.Client]


@pytest.fixture
def http(live: LiveBridge) -> Iterator[Http]:
    """httpx clients with a test token, closed after the test."""
    clients: list[httpx.Client] = []

    def make(token: str) -> httpx.Client:
        client = httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
