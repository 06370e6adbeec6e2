"""The demo's consent act: a break-glass read and a research export.

The patient opts in to break-glass access through the hospital's emergency identity; an ER
clinician of that hospital opens a session and reads the lab report, its data key rewrapped
for it by the hospital's emergency key service; an auditor reviews the act. Then the patient
gives a research clinician a share right for a study with anonymisation, the clinician
exports the report, and the study opens a copy under its own pseudonym with no file name,
no uploader, a shifted date and no PDF metadata.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pypdf import PdfReader

from ehrgate.client import Client
from ehrgate.demo.inbox import WebhookInbox
from ehrgate.emergency import EmergencyKeyService
from ehrgate.errors import VerificationFailed
from envelope import IdentityKeys, PatientKeys, b64decode, open_body, open_capsule

if TYPE_CHECKING:
    from ehrgate.demo.story import Story
    from ehrgate.trust import LedgerPins

HOSPITAL = "st-mary"
STUDY = "onco-2031"


@dataclass(frozen=True, slots=True)
class _Act:
    """Who takes part in the act, and the record it is about."""

    story: Story
    patient: Client
    patient_keys: PatientKeys
    clients: dict[str, Client]
    actors: dict[str, IdentityKeys]
    record_id: str


def consent_act(
    story: Story,
    url: str,
    pins: LedgerPins,
    admin: Client,
    patient: Client,
    patient_keys: PatientKeys,
    record_id: str,
) -> None:
    actors = {
        "emergency": IdentityKeys.generate(f"emergency@{HOSPITAL}", "system"),
        "er": IdentityKeys.generate(f"dr-er@{HOSPITAL}", "clinician"),
        "reviewer": IdentityKeys.generate("audit-review", "auditor"),
        "researcher": IdentityKeys.generate(f"dr-yang@{HOSPITAL}", "clinician"),
        "study": IdentityKeys.generate(STUDY, "study"),
    }
    story.step(
        f"the admin enrolls {HOSPITAL}'s emergency identity, an ER doctor, a reviewer, a "
        "research doctor and a study"
    )
    for keys in actors.values():
        admin.enroll(keys.public())
        story.detail(f"{keys.id} ({keys.role})")
    clients = {name: Client(url, keys, pins=pins) for name, keys in actors.items()}
    try:
        act = _Act(story, patient, patient_keys, clients, actors, record_id)
        _break_glass(act)
        _research(act)
    finally:
        for client in clients.values():
            client.close()


def _break_glass(act: _Act) -> None:
    story, patient, actors = act.story, act.patient, act.actors
    emergency = actors["emergency"]
    story.step("the patient opts in to break-glass access for lab results through St Mary's")
    patient.opt_in_break_glass(
        emergency.id, categories=["lab-results"], max_minutes=60,
        until=datetime.now(UTC) + timedelta(days=30),
    )  # fmt: skip
    story.detail(
        f"a signed policy (lab-results, at most 60 minutes, clinicians of {HOSPITAL}) and the "
        f"keys of lab-results for those months, sealed to {emergency.id}"
    )

    inbox = WebhookInbox(patient.webhook_key())
    try:
        patient.add_webhook(inbox.url, kinds=["break_glass"])
        story.detail(f"the patient's phone takes signed notifications at {inbox.url}")
        _open_session(act, inbox)
    finally:
        inbox.close()


def _open_session(act: _Act, inbox: WebhookInbox) -> None:
    story, patient, clients, actors = act.story, act.patient, act.clients, act.actors
    record_id, pseudonym = act.record_id, act.patient_keys.pseudonym
    emergency, er = actors["emergency"], actors["er"]
    story.step("the ER doctor breaks the glass: the patient arrived unconscious")
    session, receipt = clients["er"].break_glass(
        pseudonym, emergency_identity=emergency.id, reason="unconscious-patient",
        details="brought in unconscious after a fall", minutes=15,
    )  # fmt: skip
    story.detail(
        f"session {session.session_id} until {session.ends_at} (ledger entry {receipt.index})"
    )
    told = inbox.wait_for("break_glass")
    if told is None:
        raise VerificationFailed("the patient's webhook heard nothing of the break-glass act")
    story.detail(
        f"the patient is told at once: a {told['type']} event {told['id'][:16]}…, signed by the"
        f" gateway and verified, naming {', '.join(sorted(told['data']))} (no content)"
    )
    body = clients["er"]._connection.request("GET", f"/v1/records/{record_id}/body").content
    record = clients["er"].record(record_id).record
    service = EmergencyKeyService(emergency)
    emergency_connection = clients["emergency"]._connection
    share = emergency_connection.request("GET", f"/v1/patients/{pseudonym}/key-share").json()
    seeds = service.seeds(b64decode(share["sealed_key"]), pseudonym)
    rewrapped = service.unlock(
        seeds=seeds, pseudonym=pseudonym,
        capsule=emergency_connection.request("GET", f"/v1/records/{record_id}/capsule").content,
        category=record.category, created_at=record.created_at, clinician_id=er.id,
        clinician_key=er.public().encryption_key,
    )  # fmt: skip
    opened = open_capsule(rewrapped, er.encryption_key, er.id)
    plaintext = b"".join(open_body([body], opened))
    story.detail(
        f"the hospital's emergency key service rewraps the report's data key for {er.id}: "
        f"{opened.filename}, {len(plaintext):,} bytes (no seed, no K leaves the hospital)"
    )
    reads = [e for e in patient.audit() if e.actor in (er.id, emergency.id)]
    for event in reads:
        kind = "break-glass read" if event.reason.startswith("break-glass") else event.reason
        story.detail(f"audit: {event.actor:<18} {event.action:<9} {event.decision:<7} {kind}")

    story.step("an auditor reviews the break-glass act")
    queue = clients["reviewer"].review_queue()
    story.detail(f"{len(queue)} act(s) awaiting review")
    reviewed, _ = clients["reviewer"].review_break_glass(
        session.session_id, verdict="accepted", note="unconscious on arrival, documented"
    )
    story.detail(f"{reviewed.session_id}: {reviewed.verdict} by {reviewed.reviewer}")


def _research(act: _Act) -> None:
    story, patient, clients, actors = act.story, act.patient, act.clients, act.actors
    researcher = actors["researcher"]
    story.step(f"the patient lets a research doctor export lab results to {STUDY}, anonymised")
    permission, _ = patient.grant(
        researcher.id, rights=["read", "share"], categories=["lab-results"],
        not_after=datetime.now(UTC) + timedelta(days=1), study_id=STUDY, anonymise=True,
    )  # fmt: skip
    patient.share_key(researcher.id)
    story.detail(
        f"permission {permission.permission_id} publishes the patient's pseudonym in {STUDY}: "
        f"{permission.study_pseudonym} (derived from K: no other study shares it)"
    )
    export, receipt = clients["researcher"].export_to_study(act.record_id)
    story.detail(f"export {export.export_id}: ledger entry {receipt.index}")

    story.step(f"{STUDY} fetches its export under its own pseudonym")
    [found] = clients["study"].study_exports()
    plaintext = clients["study"].open_study_export(found)
    connection = clients["study"]._connection
    capsule = connection.request("GET", f"/v1/study-exports/{found.export_id}/capsule").content
    meta = open_capsule(capsule, actors["study"].encryption_key, found.study_pseudonym)
    metadata = PdfReader(io.BytesIO(plaintext)).metadata
    if metadata or meta.pseudonym == act.patient_keys.pseudonym:
        raise VerificationFailed("the anonymised copy still carries identifiers")
    story.detail(
        f"subject {found.study_pseudonym[:16]}…, file name {meta.filename!r}, uploader "
        f"{meta.uploader_id!r}, dated {meta.created_at[:10]} (shifted), PDF metadata: none"
    )
    story.detail("the PDF's page text is not redacted: what is printed on the page stays")
