"""The story of the gateway's acceptance test, runnable against any client of a gateway.

A patient registers and grants a doctor read on lab-results until T; a hospital system with
a write-only right uploads a PDF (and cannot read it back); the doctor lists, fetches and
decrypts it; after T the doctor is denied; the patient's audit shows both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from envelope import (
    IdentityKeys,
    PatientKeys,
    b64decode,
    open_body,
    open_scoped_share,
)
from ledger.wire import builders
from ledger.wire.transactions import Transaction
from tests.gateway.helpers import World

PDF = b"%PDF-1.7\n" + b"lab results: potassium 4.1 mmol/L\n" * 3000 + b"%%EOF\n"


@dataclass
class Cast:
    patient: PatientKeys
    doctor: IdentityKeys
    system: IdentityKeys


def set_up(world: World) -> Cast:
    doctor = world.enroll("dr-grey", "clinician")
    system = world.enroll("aria-export", "system")
    patient = world.register_patient()
    return Cast(patient, doctor, system)


def read_grant(
    cast: Cast,
    now: datetime,
    *,
    lasting: timedelta,
    categories: list[str] | str = "all",
    signer: IdentityKeys | None = None,
) -> Transaction:
    """The patient's grant of read to the doctor from *now* for *lasting* (signed by *signer*)."""
    return builders.grant(
        signer or cast.patient.identity,
        pseudonym=cast.patient.pseudonym,
        grantee=cast.doctor.id,
        rights=["read"],
        categories=categories,
        not_before=now,
        not_after=now + lasting,
        issued_at=now,
    )


def fetch_and_decrypt(world: World, reader: IdentityKeys, record: dict[str, Any]) -> bytes:
    """What a clinician's client does: key share (scoped seeds), capsule, body, then open
    all three."""
    client, headers = world.client, world.headers(reader)
    pseudonym = record["pseudonym"]
    share = client.get(f"/v1/patients/{pseudonym}/key-share", headers=headers)
    assert share.status_code == 200, share.text
    share_body = share.json()
    assert share_body["scope"], "a share is scoped"
    seeds = open_scoped_share(
        b64decode(share_body["sealed_key"]),
        reader.encryption_key,
        pseudonym=pseudonym,
        grantee_id=reader.id,
    )
    capsule = client.get(f"/v1/records/{record['record_id']}/capsule", headers=headers)
    assert capsule.status_code == 200, capsule.text
    body = client.get(f"/v1/records/{record['record_id']}/body", headers=headers)
    assert body.status_code == 200, body.text
    opened = seeds.open_capsule(capsule.content)
    return b"".join(open_body([body.content], opened))


def run(world: World) -> None:
    client = world.client
    cast = set_up(world)
    pseudonym = cast.patient.pseudonym
    until = world.clock() + timedelta(hours=1)
    world.grant(cast.patient, cast.doctor, ["read"], ["lab-results"], not_after=until)
    world.grant(cast.patient, cast.system, ["write"], ["lab-results"])
    world.share_key(cast.patient, cast.doctor)

    record = world.ingest_pdf(cast.system, cast.patient, "lab-results", PDF)
    assert record["on_behalf_of"] == cast.system.id

    # Write-only: the system cannot read back what it uploaded.
    denied = client.get(
        f"/v1/records/{record['record_id']}/body", headers=world.headers(cast.system)
    )
    assert denied.status_code == 403
    assert denied.json()["type"] == "urn:ehrgate:problem:access-denied"

    listing = client.get(
        f"/v1/patients/{pseudonym}/records",
        params={"category": "lab-results"},
        headers=world.headers(cast.doctor),
    )
    assert listing.status_code == 200, listing.text
    assert [r["record_id"] for r in listing.json()["records"]] == [record["record_id"]]
    assert fetch_and_decrypt(world, cast.doctor, record) == PDF

    world.clock.advance(timedelta(hours=1, seconds=1))
    world.tokens.clear()  # the doctor's token would have expired too
    late = client.get(f"/v1/records/{record['record_id']}/body", headers=world.headers(cast.doctor))
    assert late.status_code == 403

    audit = client.get(
        f"/v1/patients/{pseudonym}/audit", headers=world.headers(cast.patient.identity)
    )
    assert audit.status_code == 200, audit.text
    events = [
        (e["actor"], e["action"], e["decision"])
        for e in audit.json()["events"]
        if e["record_id"] == record["record_id"]
    ]
    assert (cast.system.id, "body", "denied") in events
    assert (cast.doctor.id, "body", "allowed") in events
    assert (cast.doctor.id, "capsule", "allowed") in events
    assert events[-1] == (cast.doctor.id, "body", "denied")
