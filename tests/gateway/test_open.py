"""Opening a record in one round trip: one audited request, the body bound to it by a ticket.

GET /v1/records/{id}/open answers the record, its proof, the capsule and the caller's key
share under ONE `access` entry; GET /v1/records/{id}/open/body?ticket=… streams the body
under that entry. A ticket that is forged, expired, another caller's or another record's
is refused and audited; the right is re-checked before the body and during it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI

from envelope import IdentityKeys, b64decode, open_body, open_scoped_share
from gateway import tickets
from gateway.routes.records import SEGMENT_BYTES
from ledger.wire import builders
from tests.gateway import scenario
from tests.gateway.helpers import World, tx_json

CATEGORY = "lab-results"
BIG_PDF = b"%PDF-1.7\n" + os.urandom(3 * 1024 * 1024) + b"\n%%EOF\n"


@dataclass
class Setting:
    world: World
    cast: scenario.Cast
    permission: str
    record: dict[str, Any]

    @property
    def record_id(self) -> str:
        return str(self.record["record_id"])

    def headers(self, who: IdentityKeys | None = None) -> dict[str, str]:
        return self.world.headers(who or self.cast.doctor)

    def open(self, who: IdentityKeys | None = None, record_id: str | None = None) -> Any:
        return self.world.client.get(
            f"/v1/records/{record_id or self.record_id}/open", headers=self.headers(who)
        )

    def body(
        self, ticket: str, who: IdentityKeys | None = None, record_id: str | None = None
    ) -> Any:
        return self.world.client.get(
            f"/v1/records/{record_id or self.record_id}/open/body",
            params={"ticket": ticket},
            headers=self.headers(who),
        )

    def entries(self, actor: IdentityKeys | None = None) -> list[dict[str, Any]]:
        """The `access` entries of *actor* (the doctor) on the patient, oldest first."""
        patient = self.cast.patient
        answer = self.world.client.get(
            f"/v1/patients/{patient.pseudonym}/audit", headers=self.world.headers(patient.identity)
        )
        assert answer.status_code == 200, answer.text
        who = (actor or self.cast.doctor).id
        return [e for e in answer.json()["events"] if e["actor"] == who]


@pytest.fixture
def setting(world: World) -> Setting:
    cast = scenario.set_up(world)
    world.grant(cast.patient, cast.system, ["write"], [CATEGORY])
    permission = world.grant(cast.patient, cast.doctor, ["read"], [CATEGORY])
    world.share_key(cast.patient, cast.doctor)
    record = world.ingest_pdf(cast.system, cast.patient, CATEGORY, scenario.PDF)
    return Setting(world, cast, permission, record)


def _decrypt(setting: Setting, opened: dict[str, Any], body: bytes) -> bytes:
    share = opened["key_share"]
    reader = setting.cast.doctor
    seeds = open_scoped_share(
        b64decode(share["sealed_key"]),
        reader.encryption_key,
        pseudonym=setting.cast.patient.pseudonym,
        grantee_id=reader.id,
    )
    capsule = seeds.open_capsule(b64decode(opened["capsule"]))
    return b"".join(open_body([body], capsule))


def test_an_open_and_its_body_are_one_access_entry(setting: Setting) -> None:
    before = len(setting.entries())
    opened = setting.open()
    assert opened.status_code == 200, opened.text
    answer = opened.json()
    body = setting.body(answer["ticket"])
    assert body.status_code == 200, body.text
    assert hashlib.sha256(body.content).hexdigest() == setting.record["body_sha256"]
    assert _decrypt(setting, answer, body.content) == scenario.PDF

    new = setting.entries()[before:]
    assert [(e["action"], e["decision"], e["record_id"]) for e in new] == [
        ("body", "allowed", setting.record_id)
    ]
    # the answer names that entry, and it was durable before the answer was sent
    assert new[0]["entry_index"] == answer["access_entry"]["index"]
    assert answer["body_path"] == f"/v1/records/{setting.record_id}/open/body"
    assert answer["record"] == {**answer["record"], "record_id": setting.record_id}
    assert (
        hashlib.sha256(b64decode(answer["capsule"])).hexdigest()
        == (setting.record["capsule_sha256"])
    )


def test_the_old_routes_write_an_entry_each(setting: Setting) -> None:
    """The contrast (and the old routes unchanged): record, capsule, body, key share."""
    before = len(setting.entries())
    scenario.fetch_and_decrypt(setting.world, setting.cast.doctor, setting.record)
    setting.world.client.get(f"/v1/records/{setting.record_id}", headers=setting.headers())
    actions = sorted(e["action"] for e in setting.entries()[before:])
    assert actions == ["body", "capsule", "key_share", "record"]


def test_the_open_answer_has_the_proof_and_the_callers_key_share(setting: Setting) -> None:
    answer = setting.open().json()
    assert answer["receipt"]["index"] == setting.record["entry_index"]
    assert answer["transaction"]["type"] == "record"
    assert answer["key_share"]["grantee"] == setting.cast.doctor.id
    assert answer["key_share"]["scope"]
    assert answer["checkpoint"] is None  # this gateway has no witnesses
    # the patient holds K: no share
    own = setting.open(setting.cast.patient.identity).json()
    assert own["key_share"] is None


def test_a_reader_without_the_right_is_refused_the_open_and_audited(setting: Setting) -> None:
    refused = setting.open(setting.cast.system)  # write-only
    assert refused.status_code == 403
    assert refused.json()["type"] == "urn:ehrgate:problem:access-denied"
    assert "ticket" not in refused.text
    denied = setting.entries(setting.cast.system)
    assert [(e["action"], e["decision"], e["record_id"]) for e in denied] == [
        ("body", "denied", setting.record_id)
    ]


def test_an_erased_record_is_gone_on_open(setting: Setting) -> None:
    world, patient = setting.world, setting.cast.patient
    tx = builders.erase(
        patient.identity, pseudonym=patient.pseudonym, record_id=setting.record_id,
        reason="patient's request", issued_at=world.clock(),
    )  # fmt: skip
    erased = world.client.post(
        f"/v1/records/{setting.record_id}/erase",
        json=tx_json(tx),
        headers=world.headers(patient.identity),
    )
    assert erased.status_code == 200, erased.text
    gone = setting.open()
    assert gone.status_code == 410
    assert "ticket" not in gone.text


def test_a_record_erased_between_open_and_body_is_not_served(setting: Setting) -> None:
    world, patient = setting.world, setting.cast.patient
    ticket = setting.open().json()["ticket"]
    tx = builders.erase(
        patient.identity, pseudonym=patient.pseudonym, record_id=setting.record_id,
        reason="patient's request", issued_at=world.clock(),
    )  # fmt: skip
    erased = world.client.post(
        f"/v1/records/{setting.record_id}/erase",
        json=tx_json(tx),
        headers=world.headers(patient.identity),
    )
    assert erased.status_code == 200, erased.text
    assert setting.body(ticket).status_code == 410
    assert setting.entries()[-1]["decision"] == "denied"


def _refused(setting: Setting, answer: Any, words: str, actor: IdentityKeys | None = None) -> None:
    assert answer.status_code == 403, answer.text
    assert answer.json()["type"] == "urn:ehrgate:problem:access-denied"
    assert words in answer.json()["detail"]
    last = setting.entries(actor)[-1]
    assert (last["action"], last["decision"], last["record_id"]) == (
        "body",
        "denied",
        setting.record_id,
    )
    assert words in last["reason"]


def _altered(ticket: str, **changes: Any) -> str:
    """*ticket* with fields of its payload changed, its MAC kept."""
    encoded, mac = ticket.split(".")
    payload = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    positions = {"record_id": 3, "caller": 4, "expires": 5}
    for name, value in changes.items():
        payload[positions[name]] = value
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode() + "." + mac


def test_a_forged_ticket_is_refused_and_audited(setting: Setting, app: FastAPI) -> None:
    ticket = setting.open().json()["ticket"]
    # a later expiry, the MAC left as it was
    later = _altered(ticket, expires=2**40)
    _refused(setting, setting.body(later), "does not verify")
    # a ticket made with another key
    parsed = tickets.verify(
        tickets.ticket_key(app.state.gateway.backends.signer.signing_key.private_bytes()),
        ticket,
        record_id=setting.record_id,
        caller=setting.cast.doctor.id,
        now=setting.world.clock(),
    )
    forged = tickets.issue(tickets.ticket_key(os.urandom(32)), parsed)
    _refused(setting, setting.body(forged), "does not verify")
    _refused(setting, setting.body("not-a-ticket"), "malformed")
    # the genuine one still works
    assert setting.body(ticket).status_code == 200


def test_an_expired_ticket_is_refused_and_audited(setting: Setting) -> None:
    ticket = setting.open().json()["ticket"]
    setting.world.clock.advance(tickets.TICKET_LIFETIME + timedelta(seconds=1))
    _refused(setting, setting.body(ticket), "expired")


def test_a_ticket_within_its_lifetime_is_good(setting: Setting) -> None:
    ticket = setting.open().json()["ticket"]
    setting.world.clock.advance(tickets.TICKET_LIFETIME - timedelta(seconds=2))
    assert setting.body(ticket).status_code == 200


def test_another_callers_ticket_is_refused_and_audited(setting: Setting) -> None:
    world, cast = setting.world, setting.cast
    colleague = world.enroll("dr-white", "clinician")
    world.grant(cast.patient, colleague, ["read"], [CATEGORY])
    ticket = setting.open().json()["ticket"]
    _refused(setting, setting.body(ticket, colleague), "another identity", colleague)
    # nor can the colleague pass it off as its own by changing the name in it
    renamed = _altered(ticket, caller=colleague.id)
    _refused(setting, setting.body(renamed, colleague), "does not verify", colleague)


def test_a_ticket_for_another_record_is_refused_and_audited(setting: Setting) -> None:
    world, cast = setting.world, setting.cast
    other = world.ingest_pdf(cast.system, cast.patient, CATEGORY, scenario.PDF + b"\n")
    ticket = setting.open(record_id=str(other["record_id"])).json()["ticket"]
    _refused(setting, setting.body(ticket), f"for record {other['record_id']}")


def test_a_right_revoked_between_open_and_body_is_refused_and_audited(setting: Setting) -> None:
    ticket = setting.open().json()["ticket"]
    setting.world.revoke(setting.cast.patient, setting.permission)
    _refused(setting, setting.body(ticket), "ended between the open and the body read")


def test_a_suspended_caller_cannot_use_its_ticket(setting: Setting) -> None:
    ticket = setting.open().json()["ticket"]
    setting.world.suspend(setting.cast.doctor)
    answer = setting.body(ticket)
    assert answer.status_code == 403
    assert answer.json()["type"] == "urn:ehrgate:problem:identity-suspended"


def test_a_right_ending_mid_stream_cuts_the_ticketed_body(world: World) -> None:
    cast = scenario.set_up(world)
    world.grant(cast.patient, cast.system, ["write"], [CATEGORY])
    until = world.clock() + timedelta(minutes=10)
    world.grant(cast.patient, cast.doctor, ["read"], [CATEGORY], not_after=until)
    record = world.ingest_pdf(cast.system, cast.patient, CATEGORY, BIG_PDF)
    setting = Setting(world, cast, "", record)
    ticket = setting.open().json()["ticket"]
    received, at_expiry = 0, None
    with world.client.stream(
        "GET",
        f"/v1/records/{setting.record_id}/open/body",
        params={"ticket": ticket},
        headers=setting.headers(),
    ) as answer:
        assert answer.status_code == 200
        for piece in answer.iter_raw():
            received += len(piece)
            if at_expiry is None and received >= 2 * SEGMENT_BYTES:
                world.clock.advance(timedelta(minutes=11))  # the right ends now
                at_expiry = received
    assert at_expiry is not None
    assert received < record["size"], "the whole body was served after the right ended"
    assert received - at_expiry <= SEGMENT_BYTES
    cut = [e for e in setting.entries() if "ended while the body was streaming" in e["reason"]]
    assert [(e["decision"], e["record_id"]) for e in cut] == [("denied", setting.record_id)]


def test_a_damaged_stored_body_is_refused_under_a_ticket(setting: Setting, app: FastAPI) -> None:
    data_dir = app.state.gateway.settings.data_dir
    stored = next(p for p in data_dir.rglob(setting.record["body_sha256"]) if p.is_file())
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01
    stored.write_bytes(bytes(data))
    ticket = setting.open().json()["ticket"]
    answer = setting.body(ticket)
    assert answer.status_code == 502
    assert answer.json()["type"] == "urn:ehrgate:problem:integrity-error"
    last = setting.entries()[-1]
    assert (last["decision"], last["reason"].split(":")[0]) == ("denied", "integrity")


def test_a_ticket_is_needed_for_the_body(setting: Setting) -> None:
    answer = setting.world.client.get(
        f"/v1/records/{setting.record_id}/open/body", headers=setting.headers()
    )
    assert answer.status_code == 422
