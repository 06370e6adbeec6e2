"""`ehrgate demo`: the whole system in one command, told step by step.

An embedded gateway (real uvicorn on 127.0.0.1, SQLite ledger, local blob directory) runs
in a temporary directory. An admin enrolls a doctor and a hospital system; a patient
registers and grants the system a write right; the system uploads a lab report and
imports a small ARIA-style export; the patient grants the doctor a read right that
expires in a few seconds and shares the keys of that grant's categories and month (never
K); the doctor fetches and decrypts the reports, each verified end to end; after the expiry
the doctor is refused, and its keys open no capsule of a later month; a hospital bridge
takes an HL7 v2 MDM^T02 and serves it through IHE MHD; an ER doctor breaks the glass and
an auditor reviews it; a study receives an anonymised export; the patient reads the audit;
an auditor's mirror of the ledger verifies.
"""

from __future__ import annotations

import csv
import io
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from ehrgate.client import Client
from ehrgate.demo.bridge_act import bridge_act
from ehrgate.demo.consent_act import consent_act
from ehrgate.embedded import embedded_gateway
from ehrgate.errors import Denied, VerificationFailed
from ehrgate.importer import CategoryTable, Journal, run_import, scan_folder
from ehrgate.importer.run import Status
from ehrgate.importer.upload import GatewayUploader
from ehrgate.pdf import text_pdf
from ehrgate.trust import LedgerPins
from envelope import (
    IdentityKeys,
    InvalidEnvelope,
    PatientKeys,
    ScopedSeeds,
    b64decode,
    open_scoped_share,
)
from envelope.scoped import next_period

PATIENT_UII = {"national_id": "756.1234.5678.97", "birth_date": "1961-04-12", "name": "Ana Müller"}
MRN = "A1234567"
READABLE = ["lab-results", "radiation-dose"]


class Story:
    """Numbered steps with indented details."""

    def __init__(self, echo: Callable[[str], None] = click.echo) -> None:
        self._echo = echo
        self._number = 0
        self.started = time.monotonic()

    def step(self, text: str) -> None:
        self._number += 1
        self._echo("")
        self._echo(click.style(f"{self._number}. {text}", bold=True))

    def detail(self, text: str) -> None:
        for line in text.splitlines():
            self._echo(f"   {line}")


def lab_report() -> bytes:
    return text_pdf(
        [
            "Patient: pseudonymous (MRN A1234567)",
            "Collected: 2024-03-01 08:10",
            "",
            "Potassium       4.1 mmol/L   (3.5 - 5.1)",
            "Sodium          140 mmol/L   (136 - 145)",
            "Creatinine       78 umol/L   (59 - 104)",
            "Haemoglobin     128 g/L      (120 - 160)",
            "Leukocytes      5.9 G/L      (4.0 - 10.0)",
        ],
        title="Laboratory report",
    )


def write_export(root: Path) -> None:
    """A small ARIA-style export: three PDFs of the patient, and a file that is no PDF."""
    documents = {
        "Laboratory Results/cbc-2024-03-08.pdf": ("Complete blood count", ["WBC 6.1 G/L"]),
        "Radiation Dose/dose-summary.pdf": (
            "Radiation dose summary",
            ["Breast, left: 40.05 Gy in 15 fractions", "Boost: 10 Gy in 5 fractions"],
        ),
        "History and Physical/h-and-p.pdf": ("History and physical", ["No known allergies."]),
    }
    for relative, (title, lines) in documents.items():
        path = root / MRN / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text_pdf(lines, title=title))
    (root / MRN / "Laboratory Results" / "scanner-log.txt").write_text("not a PDF\n")


def run(*, expiry_seconds: float, keep: Path | None = None) -> None:
    story = Story()
    with tempfile.TemporaryDirectory(prefix="ehrgate-demo-") as scratch:
        work = keep if keep is not None else Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        _tell(story, work, expiry_seconds)
    story.step(f"done in {time.monotonic() - story.started:.1f} s")


def _tell(story: Story, work: Path, expiry_seconds: float) -> None:
    story.step("an embedded gateway starts (SQLite ledger and local blob store)")
    with embedded_gateway(
        work / "gateway", auth_rate_limit=1000, webhook_allow_loopback=True
    ) as gateway:
        story.detail(f"listening on {gateway.url}, data in {gateway.data_dir}")
        pins = LedgerPins()  # every actor below trusts the ledger key pinned here
        admin = Client(gateway.url, gateway.admin, pins=pins)
        head = admin.ledger_head()
        story.detail(f"ledger key {head.ledger_public_key}, pinned on first use")

        doctor_keys = IdentityKeys.generate("dr-grey", "clinician")
        system_keys = IdentityKeys.generate("aria-export", "system")
        story.step("the admin enrolls a doctor and the hospital's export system")
        for keys in (doctor_keys, system_keys):
            receipt = admin.enroll(keys.public())
            story.detail(f"{keys.id} ({keys.role}): ledger entry {receipt.index}, proof checked")

        patient_keys = PatientKeys.generate(PATIENT_UII)
        patient = Client(gateway.url, patient_keys, pins=pins)
        doctor = Client(gateway.url, doctor_keys, pins=pins)
        system = Client(gateway.url, system_keys, pins=pins)
        with admin, patient, doctor, system:
            story.step("a patient makes a key K and registers its pseudonym H(K‖UII)")
            _, receipt = patient.register_patient()
            story.detail(f"pseudonym {patient_keys.pseudonym}")
            story.detail("the name and national id never leave the patient's device")
            published = patient.published_keys()
            story.detail(
                f"it publishes, signed, {len(published)} record public keys: one per category "
                f"and month, {published[0][1]} to {published[-1][1]}; uploads are sealed to them"
            )

            story.step("the patient lets the export system write (not read) its records")
            permission, _ = patient.grant(
                system_keys.id,
                rights=["write"],
                categories="all",
                not_after=datetime.now(UTC) + timedelta(days=1),
            )
            story.detail(f"permission {permission.permission_id}: write on all categories")

            story.step("the system seals a lab report to the patient and uploads it")
            report = work / "lab-report.pdf"
            report.write_bytes(lab_report())
            uploaded = system.upload(
                report, pseudonym=patient_keys.pseudonym, category="lab-results"
            )
            story.detail(
                f"record {uploaded.record.record_id}: {uploaded.plaintext_size:,} bytes sealed "
                f"client-side into a {uploaded.record.size:,}-byte body"
            )
            story.detail(
                f"ledger entry {uploaded.receipt.index}, inclusion proof checked against the "
                f"signed tree head {uploaded.receipt.tree_head.height}"
            )
            _import_export(story, work, system, patient_keys.pseudonym)

            story.step(
                f"the patient grants the doctor read on {', '.join(READABLE)} for "
                f"{expiry_seconds:g} seconds, and shares the keys that grant covers"
            )
            until = datetime.now(UTC) + timedelta(seconds=expiry_seconds)
            grant, _ = patient.grant(
                doctor_keys.id, rights=["read"], categories=READABLE, not_after=until
            )
            patient.share_key(doctor_keys.id)
            story.detail(f"permission {grant.permission_id}, valid until {grant.not_after}")
            seeds = _doctor_seeds(doctor, doctor_keys, patient_keys.pseudonym)
            story.detail(
                "the share holds the seeds of "
                + ", ".join(f"{c} {p}" for c, p in seeds.scope)
                + " (never K)"
            )

            story.step("the doctor lists the records it may read, fetches and decrypts them")
            records = doctor.records(patient_keys.pseudonym)
            fetched_dir = work / "doctor"
            fetched_dir.mkdir(exist_ok=True)
            for record in records:
                fetched = doctor.fetch(record.record_id, fetched_dir, overwrite=True)
                story.detail(
                    f"{fetched.filename} ({record.category}, {fetched.plaintext_size:,} bytes, "
                    f"signed by {fetched.signer_id}): proof, body SHA-256, every segment "
                    "and the uploader's signature verified"
                )
            unreadable = [r for r in patient.records(patient_keys.pseudonym) if r not in records]
            for record in unreadable:
                try:
                    doctor.fetch(record.record_id, fetched_dir)
                except Denied as exc:
                    story.detail(f"{record.category} record: refused ({exc.message})")

            # while the doctor's grant runs out
            cast = {"patient": patient, "patient_keys": patient_keys,
                    "system_keys": system_keys, "mrn": MRN}  # fmt: skip
            bridge_act(story, work, gateway.url, admin, cast)
            consent_act(
                story, gateway.url, pins, admin, patient, patient_keys, uploaded.record.record_id
            )

            remaining = (until - datetime.now(UTC)).total_seconds()
            story.step(
                f"{remaining:.1f} s later the doctor's grant has expired"
                if remaining > 0
                else "meanwhile the doctor's grant has expired"
            )
            if remaining > 0:
                time.sleep(remaining + 0.2)
            try:
                doctor.fetch(uploaded.record.record_id, fetched_dir, overwrite=True)
            except Denied as exc:
                story.detail(f"the doctor's read is refused: {exc.message}")
            else:
                raise VerificationFailed("the read after expiry was allowed")

            _expired_grantee(
                story, patient, system, seeds, patient_keys.pseudonym, uploaded.record.record_id
            )

            story.step("the patient reads its audit: every read, allowed or denied, is logged")
            events = patient.audit()
            for event in events:
                if event.actor == patient_keys.pseudonym:
                    continue
                which = f" {event.record_id[:8]}…" if event.record_id else ""
                story.detail(
                    f"{event.at[11:23]}  {event.actor:<12} {event.action:<10}{which:<11} "
                    f"{event.decision:<7} {event.reason}"
                )

            story.step("an auditor mirrors the ledger from the gateway and verifies it")
            auditor_keys = IdentityKeys.generate("auditor-1", "auditor")
            admin.enroll(auditor_keys.public())
            with Client(gateway.url, auditor_keys, pins=pins) as auditor:
                report_ = auditor.verify_ledger()
            story.detail(report_.summary())
            if not report_.ok:
                raise VerificationFailed("the ledger did not verify")


def _doctor_seeds(doctor: Client, keys: IdentityKeys, pseudonym: str) -> ScopedSeeds:
    """The doctor's scoped share, opened with its own key (what its client holds)."""
    share = doctor._connection.request("GET", f"/v1/patients/{pseudonym}/key-share").json()
    return open_scoped_share(
        b64decode(share["sealed_key"]),
        keys.encryption_key,
        pseudonym=pseudonym,
        grantee_id=keys.id,
    )


def _expired_grantee(
    story: Story, patient: Client, system: Client, seeds: ScopedSeeds, pseudonym: str, earlier: str
) -> None:
    """With every body and capsule in hand (say, from a leaked backup), what the expired
    doctor's seeds still open: this month's records of its categories, nothing later."""
    story.step("even with the capsules in hand, the expired doctor's keys open nothing newer")
    later = f"{next_period(datetime.now(UTC).strftime('%Y-%m'))}-01T00:00:00Z"
    uploaded = system.upload(
        io.BytesIO(lab_report()),
        pseudonym=pseudonym,
        category="lab-results",
        filename="next-month.pdf",
        created_at=later,
    )
    for record_id, what in ((earlier, "this month's lab report"), (
        uploaded.record.record_id, f"a lab report of {later[:7]}, after the grant's month"
    )):  # fmt: skip
        capsule = patient._connection.request("GET", f"/v1/records/{record_id}/capsule").content
        try:
            seeds.open_capsule(capsule)
        except InvalidEnvelope:
            story.detail(f"{what}: its capsule does not open with the doctor's seeds")
        else:
            story.detail(
                f"{what}: opens with the doctor's seeds (months are shared whole; the "
                "gateway refuses the read)"
            )


def _import_export(story: Story, work: Path, system: Client, pseudonym: str) -> None:
    story.step("the system imports an ARIA-style export folder (resumable, idempotent)")
    export = work / "aria-export"
    write_export(export)
    mapping = work / "mrn-map.csv"
    with mapping.open("w", newline="") as handle:
        csv.writer(handle).writerows([("mrn", "pseudonym"), (MRN, pseudonym)])
    state = work / "import-state.sqlite"
    with Journal(state) as journal:
        summary = run_import(
            scan_folder(export, {MRN: pseudonym}, CategoryTable()),
            GatewayUploader(system),
            journal,
            concurrency=4,
        )
    for outcome in sorted(summary.outcomes, key=lambda o: o.relpath):
        story.detail(f"{outcome.relpath}: {outcome.status.value} {outcome.detail}".rstrip())
    with Journal(state) as journal:
        again = run_import(
            scan_folder(export, {MRN: pseudonym}, CategoryTable()),
            GatewayUploader(system),
            journal,
        )
    story.detail(
        f"run again: {again.count(Status.UPLOADED)} uploaded, "
        f"{again.count(Status.ALREADY_IMPORTED)} already imported (nothing twice)"
    )
