"""The cast the record-opening benchmarks share: a gateway's admin enrolls a clinician and a
system; a patient grants the clinician read access to lab results (sharing the month keys)
and the system write access, so that the system uploads and the clinician opens."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx

from envelope import IdentityKeys, PatientKeys, load_key_file
from tests.gateway.helpers import ManualClock, World


@dataclass(frozen=True)
class LabCast:
    world: World
    doctor: IdentityKeys
    system: IdentityKeys
    patient: PatientKeys


def lab_results_cast(http: httpx.Client, data_dir: Path) -> LabCast:
    """Enroll the cast on the gateway *http* talks to (its admin key is in *data_dir*)."""
    admin = load_key_file(data_dir / "admin.key")
    assert isinstance(admin, IdentityKeys)
    world = World(http, ManualClock.system(), admin)
    doctor = world.enroll("dr-bench", "clinician")
    system = world.enroll("his-bench", "system")
    patient = world.register_patient("Bench Patient")
    world.grant(patient, doctor, ["read"], ["lab-results"])
    world.share_key(patient, doctor)
    world.grant(patient, system, ["write"], ["lab-results"])
    return LabCast(world, doctor, system, patient)
