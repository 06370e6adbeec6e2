"""Actors and acts of the break-glass and research tests, over the gateway's HTTP API."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from envelope import IdentityKeys, PatientKeys, seal_scoped_share
from envelope.scoped import months
from gateway.events import GatewayEvent
from ledger.wire import builders
from ledger.wire.scoped import grant_months
from tests.gateway.helpers import World, tx_json

EMERGENCY = "emergency@general"


@dataclass
class RecordingSink:
    """An event sink that keeps what the hub gives it."""

    events: list[GatewayEvent] = field(default_factory=list)

    def publish(self, event: GatewayEvent) -> None:
        self.events.append(event)

    def of_kind(self, kind: str) -> list[GatewayEvent]:
        return [event for event in self.events if event.kind == kind]


def opt_in(
    world: World,
    patient: PatientKeys,
    emergency: IdentityKeys,
    *,
    categories: list[str],
    max_minutes: int = 60,
    roles: list[str] | None = None,
    days: int = 30,
) -> None:
    """The patient's break-glass policy and the scoped key share to the emergency identity."""
    now = world.clock()
    not_before, not_after = now - timedelta(minutes=1), now + timedelta(days=days)
    policy = builders.break_glass_policy(
        patient.identity,
        pseudonym=patient.pseudonym,
        emergency_identity=emergency.id,
        categories=categories,
        roles=roles or ["clinician"],
        max_minutes=max_minutes,
        not_before=not_before,
        not_after=not_after,
        issued_at=now,
    )
    response = world.client.post(
        f"/v1/patients/{patient.pseudonym}/break-glass-policy",
        json=tx_json(policy),
        headers=world.headers(patient.identity),
    )
    assert response.status_code == 201, response.text
    first, last = grant_months(str(policy.body["not_before"]), str(policy.body["not_after"]))
    scope = [(c, m) for c in categories for m in months(first, last)]
    sealed = seal_scoped_share(
        patient.patient_key,
        pseudonym=patient.pseudonym,
        grantee_id=emergency.id,
        grantee_key=emergency.public().encryption_key,
        scope=scope,
    )
    share = builders.key_share(
        patient.identity,
        pseudonym=patient.pseudonym,
        grantee=emergency.id,
        sealed_key=sealed,
        scope=scope,
        issued_at=now,
    )
    response = world.client.post(
        "/v1/key-shares", json=tx_json(share), headers=world.headers(patient.identity)
    )
    assert response.status_code == 201, response.text


def break_glass(
    world: World,
    clinician: IdentityKeys,
    patient: PatientKeys,
    *,
    minutes: int = 30,
    reason: str = "unconscious-patient",
    emergency: str = EMERGENCY,
) -> Any:
    tx = builders.break_glass(
        clinician,
        pseudonym=patient.pseudonym,
        emergency_identity=emergency,
        reason=reason,
        details="brought in unconscious, no relatives reachable",
        minutes=minutes,
        issued_at=world.clock(),
    )
    return world.client.post("/v1/break-glass", json=tx_json(tx), headers=world.headers(clinician))


def audit_events(world: World, patient: PatientKeys) -> list[dict[str, Any]]:
    response = world.client.get(
        f"/v1/patients/{patient.pseudonym}/audit", headers=world.headers(patient.identity)
    )
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events
