"""Identity names: a patient's registration cannot take a staff member's id, nor the ledger's.

A patient's identity id is the pseudonym it registers; staff ids never have that form; the
ledger's id is reserved. Each attempt is refused with a 422 problem whose `code` says why.
"""

from __future__ import annotations

import hashlib

from envelope import IdentityKeys, PatientKeys
from ledger.wire import builders
from ledger.wire.ids import LEDGER_ID
from tests.gateway.helpers import World, tx_json


def _register(world: World, identity: IdentityKeys, pseudonym: str) -> tuple[int, dict[str, str]]:
    """An anonymous registration of *identity* under *pseudonym*: (status, problem)."""
    record_key = PatientKeys.generate({"name": "Mallory"}).patient_key.record_public_key()
    tx = builders.register_patient(
        identity, pseudonym, record_key.to_bytes(), issued_at=world.clock()
    )
    response = world.client.post("/v1/patients", json=tx_json(tx))
    return response.status_code, response.json()


def _pseudonym(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_patient_cannot_register_under_a_clinician_id(world: World) -> None:
    squatter = IdentityKeys.generate("dr-newhire-0042", "patient")
    status, problem = _register(world, squatter, _pseudonym("squatter"))
    assert status == 422, problem
    assert problem["code"] == "identity-id-form"
    assert "pseudonym" in problem["detail"]
    # The name is still free: the admin enrolls the real clinician.
    clinician = world.enroll("dr-newhire-0042", "clinician")
    me = world.client.get("/v1/identities/me", headers=world.headers(clinician))
    assert me.json()["role"] == "clinician"


def test_a_patient_cannot_register_as_the_ledger(world: World) -> None:
    impostor = IdentityKeys.generate(LEDGER_ID, "patient")
    status, problem = _register(world, impostor, _pseudonym("ledger"))
    assert status == 422, problem
    assert problem["code"] == "reserved-identity"


def test_a_patient_is_registered_under_its_pseudonym_only(world: World) -> None:
    # A pseudonym-like id that is not the pseudonym registered is refused too.
    keys = IdentityKeys.generate(_pseudonym("one"), "patient")
    status, problem = _register(world, keys, _pseudonym("two"))
    assert status == 422, problem
    assert problem["code"] == "identity-id-form"
    patient = world.register_patient("Proper Patient")
    assert patient.identity.id == patient.pseudonym


def _enroll(world: World, identity_id: str, role: str) -> tuple[int, dict[str, str]]:
    keys = IdentityKeys.generate(identity_id, role)
    tx = builders.enroll(world.admin, keys.public(), issued_at=world.clock())
    response = world.client.post(
        "/v1/identities", json=tx_json(tx), headers=world.headers(world.admin)
    )
    return response.status_code, response.json()


def test_staff_cannot_be_enrolled_under_a_patient_form_id(world: World) -> None:
    patient = world.register_patient("Known Patient")
    for identity_id in (patient.pseudonym, _pseudonym("future patient")):
        status, problem = _enroll(world, identity_id, "clinician")
        assert status == 422, problem
        assert problem["code"] == "identity-id-form"
    status, problem = _enroll(world, LEDGER_ID, "auditor")
    assert status == 422, problem
    assert problem["code"] == "reserved-identity"
