"""Research sharing through the gateway: share grants with per-study pseudonyms, exports
with and without anonymisation, and what each study can fetch.

Embedded gateway (SQLite, local blobs) with a hand-driven clock; the anonymised copy is
opened as the study opens it, and its PDF is read back with pypdf."""

from __future__ import annotations

import io
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from pypdf import PdfReader, PdfWriter
from pypdf.generic import NameObject, StreamObject

from ehrgate.pdf import text_pdf
from ehrgate.research import export_entry, rewrap_for_study, seal_anonymised, study_secret
from envelope import (
    IdentityKeys,
    PatientKeys,
    StudySecret,
    b64decode,
    b64encode,
    open_body,
    open_capsule,
    open_scoped_share,
    seal_study_secret,
)
from gateway import Settings
from gateway.gc import collect_orphans, referenced_blobs
from ledger import DatabaseSource, schema
from ledger.verify import verify
from ledger.wire import builders
from ledger.wire.clock import parse_time
from tests.gateway.consent_world import EMERGENCY, RecordingSink, break_glass, opt_in
from tests.gateway.helpers import World, tx_json

FILENAME = "jane-doe-labs-2030.pdf"
AUTHOR = "Dr Meredith Grey"
TITLE = "Jane Doe, born 1970-01-01: lab report"
CREATED = "D:20300101120000Z"
XMP_MARK = "xmp-creator-jane-doe"


def pdf_with_metadata() -> bytes:
    """A PDF whose page says nothing identifying, but whose metadata does."""
    source = PdfReader(io.BytesIO(text_pdf(["potassium 4.1 mmol/L", "sodium 140 mmol/L"])))
    writer = PdfWriter(clone_from=source)
    writer.add_metadata(
        {"/Author": AUTHOR, "/Title": TITLE, "/CreationDate": CREATED, "/Subject": FILENAME}
    )
    xmp = StreamObject()
    xmp.set_data(
        b'<?xpacket begin=""?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf='
        b'"http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:dc='
        b'"http://purl.org/dc/elements/1.1/"><dc:creator>' + XMP_MARK.encode() + b"</dc:creator>"
        b'</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    )
    xmp.update({NameObject("/Type"): NameObject("/Metadata"),
                NameObject("/Subtype"): NameObject("/XML")})  # fmt: skip
    writer.root_object[NameObject("/Metadata")] = writer._add_object(xmp)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


PDF = pdf_with_metadata()


class Research:
    def __init__(self, world: World) -> None:
        self.world = world
        self.clinician = world.enroll("dr-grey", "clinician")
        self.uploader = world.enroll("aria-export", "system")
        self.study_a = world.enroll("study-a", "study")
        self.study_b = world.enroll("study-b", "study")
        self.patient = world.register_patient()
        world.grant(self.patient, self.uploader, ["write"], "all")
        self.lab = self.ingest("lab-results")
        self.dose = self.ingest("radiation-dose")

    def ingest(self, category: str) -> dict[str, Any]:
        response = self.world.client.post(
            "/v1/documents",
            params={"pseudonym": self.patient.pseudonym, "category": category,
                    "filename": FILENAME},
            content=PDF,
            headers={**self.world.headers(self.uploader), "Content-Type": "application/pdf"},
        )  # fmt: skip
        assert response.status_code == 201, response.text
        record: dict[str, Any] = response.json()["record"]
        return record

    def share_grant(
        self,
        study: str,
        *,
        anonymise: bool,
        categories: list[str] | None = None,
        hours: int = 2,
    ) -> StudySecret:
        """The patient grants the clinician read and share for *study*, with study terms."""
        patient: PatientKeys = self.patient
        secret = StudySecret.derive(patient.patient_key, study)
        now = self.world.clock()
        tx = builders.grant(
            patient.identity,
            pseudonym=patient.pseudonym,
            grantee=self.clinician.id,
            rights=["read", "share"],
            categories=categories or ["lab-results"],
            not_before=now - timedelta(minutes=1),
            not_after=now + timedelta(hours=hours),
            study_id=study,
            anonymise=anonymise,
            study_pseudonym=secret.pseudonym,
            study_secret=seal_study_secret(
                secret,
                pseudonym=patient.pseudonym,
                grantee_id=self.clinician.id,
                grantee_key=self.clinician.public().encryption_key,
            ),
            issued_at=now,
        )
        response = self.world.client.post(
            "/v1/permissions", json=tx_json(tx), headers=self.world.headers(patient.identity)
        )
        assert response.status_code == 201, response.text
        return secret

    def get(self, who: IdentityKeys, path: str) -> Any:
        response = self.world.client.get(path, headers=self.world.headers(who))
        assert response.status_code == 200, response.text
        return response

    def right(self, study: str) -> Any:
        permissions = self.get(
            self.clinician, f"/v1/patients/{self.patient.pseudonym}/permissions"
        ).json()["permissions"]
        [right] = [p for p in permissions if p["study_id"] == study]
        return SimpleNamespace(**right)

    def seeds(self) -> Any:
        share = self.get(self.clinician, f"/v1/patients/{self.patient.pseudonym}/key-share")
        return open_scoped_share(
            b64decode(share.json()["sealed_key"]), self.clinician.encryption_key,
            pseudonym=self.patient.pseudonym, grantee_id=self.clinician.id,
        )  # fmt: skip

    def record(self, record: dict[str, Any]) -> Any:
        facts = self.get(self.clinician, f"/v1/records/{record['record_id']}").json()["record"]
        return SimpleNamespace(**facts)

    def capsule(self, record: dict[str, Any]) -> bytes:
        path = f"/v1/records/{record['record_id']}/capsule"
        capsule: bytes = self.get(self.clinician, path).content
        return capsule

    def commit(self, tx: Any, capsule: bytes) -> Any:
        return self.world.client.post(
            "/v1/study-exports",
            json={"transaction": tx_json(tx), "capsule": b64encode(capsule)},
            headers=self.world.headers(self.clinician),
        )

    def rewrapped_export(self, study: IdentityKeys, record: dict[str, Any]) -> Any:
        prepared = rewrap_for_study(
            exporter=self.clinician, right=self.right(study.id), seeds=self.seeds(),
            study_key=study.public().encryption_key, record=self.record(record),
            capsule=self.capsule(record), issued_at=self.world.clock(),
        )  # fmt: skip
        return self.commit(prepared.transaction, prepared.capsule)

    def anonymised_export(self, study: IdentityKeys, record: dict[str, Any]) -> Any:
        seeds, facts = self.seeds(), self.record(record)
        body = self.get(self.clinician, f"/v1/records/{record['record_id']}/body").content
        plaintext = b"".join(open_body([body], seeds.open_capsule(self.capsule(record))))
        right = self.right(study.id)
        copy = seal_anonymised(
            exporter=self.clinician, right=right, study_key=study.public().encryption_key,
            record=facts, plaintext=plaintext,
        )  # fmt: skip
        stored = self.world.client.post(
            "/v1/study-exports/bodies",
            params={"permission_id": right.permission_id},
            content=copy.body,
            headers={**self.world.headers(self.clinician),
                     "Content-Type": "application/octet-stream"},
        )  # fmt: skip
        assert stored.status_code == 201, stored.text
        tx = export_entry(
            self.clinician, right=right, secret=study_secret(self.clinician, right),
            record=facts, created_at=copy.created_at, body_sha256=copy.body_sha256,
            size=copy.size, locators=stored.json()["locators"], capsule=copy.capsule,
            issued_at=self.world.clock(),
        )  # fmt: skip
        return self.commit(tx, copy.capsule)

    def study_opens(self, study: IdentityKeys) -> list[tuple[dict[str, Any], Any, bytes]]:
        """What the study fetches and opens: (export, opened capsule, plaintext) each."""
        exports = self.get(study, f"/v1/studies/{study.id}/exports").json()["exports"]
        opened = []
        for item in exports:
            capsule = self.get(study, f"/v1/study-exports/{item['export_id']}/capsule").content
            body = self.get(study, f"/v1/study-exports/{item['export_id']}/body").content
            meta = open_capsule(capsule, study.encryption_key, item["study_pseudonym"])
            opened.append((item, meta, b"".join(open_body([body], meta))))
        return opened


@pytest.fixture
def research(world: World) -> Research:
    return Research(world)


@pytest.fixture
def sink(app: FastAPI) -> RecordingSink:
    recording = RecordingSink()
    app.state.gateway.events.subscribe(recording)
    return recording


def test_a_rewrapped_export_opens_exactly_the_granted_record(
    research: Research, sink: RecordingSink
) -> None:
    r = research
    secret = r.share_grant("study-a", anonymise=False)
    r.world.share_key(r.patient, r.clinician)
    done = r.rewrapped_export(r.study_a, r.lab)
    assert done.status_code == 201, done.text
    export = done.json()["export"]
    assert export["study_pseudonym"] == secret.pseudonym
    assert export["body_sha256"] == r.lab["body_sha256"]  # the body is the record's own
    # A record of a category the right does not share is refused, and nothing is added (the
    # clinician cannot open it either; the entry is made from the record's ledger facts).
    dose = r.dose
    tx = builders.study_export(
        r.clinician, permission_id=r.right("study-a").permission_id, study_id="study-a",
        study_pseudonym=secret.pseudonym, source_record_id=dose["record_id"],
        anonymise=False, category=dose["category"], created_at=dose["created_at"],
        content_type=dose["content_type"], body_sha256=dose["body_sha256"], size=dose["size"],
        locators=dose["locators"], capsule_sha256=_sha(b"c"), issued_at=r.world.clock(),
    )  # fmt: skip
    outside = r.commit(tx, b"c")
    assert outside.status_code == 403, outside.text
    assert "does not share" in outside.json()["detail"]
    assert outside.json()["code"] == "not-granted"

    [(item, meta, plaintext)] = r.study_opens(r.study_a)
    assert plaintext == PDF
    assert item["export_id"] == export["export_id"]
    assert set(item) >= {"study_pseudonym"}
    assert "pseudonym" not in item
    assert "source_record_id" not in item
    # The patient is told: ids and categories only.
    [event] = sink.of_kind("export_done")
    assert event.pseudonym == r.patient.pseudonym
    assert event.details["study_id"] == "study-a"
    assert event.details["category"] == "lab-results"
    # Another study cannot read it, and every fetch is audited under the study pseudonym.
    denied = r.world.client.get(
        f"/v1/study-exports/{export['export_id']}/body", headers=r.world.headers(r.study_b)
    )
    assert denied.status_code == 403
    listing = r.world.client.get("/v1/studies/study-a/exports", headers=r.world.headers(r.study_b))
    assert listing.status_code == 403
    # Not anonymised: the study gets the record as it is, its metadata included.
    assert meta.filename == FILENAME
    assert meta.uploader_id == r.uploader.id


def test_an_anonymised_export_carries_no_direct_identifiers(research: Research) -> None:
    r = research
    secret_a = r.share_grant("study-a", anonymise=False)
    secret_b = r.share_grant("study-b", anonymise=True)
    r.world.share_key(r.patient, r.clinician)
    done = r.anonymised_export(r.study_b, r.lab)
    assert done.status_code == 201, done.text

    [(item, meta, plaintext)] = r.study_opens(r.study_b)
    # Per-study pseudonyms: unlinkable, and neither is the patient's.
    assert secret_a.pseudonym != secret_b.pseudonym
    assert r.patient.pseudonym not in (secret_a.pseudonym, secret_b.pseudonym)
    assert item["study_pseudonym"] == meta.pseudonym == secret_b.pseudonym
    # No file name, no uploader, a shifted date.
    assert meta.filename == "document.pdf"
    assert meta.uploader_id == "anonymised"
    shift = parse_time(meta.created_at) - parse_time(r.lab["created_at"])
    assert shift == timedelta(days=secret_b.day_offset) != timedelta(0)
    assert item["created_at"] == meta.created_at
    # PDF document information and XMP metadata stripped (read back with pypdf).
    reader = PdfReader(io.BytesIO(plaintext))
    assert not reader.metadata
    assert reader.xmp_metadata is None
    assert "potassium 4.1" in reader.pages[0].extract_text()  # the text is left as it was
    for identifier in (FILENAME, AUTHOR, TITLE, CREATED, XMP_MARK, r.uploader.id,
                       r.patient.pseudonym, "Jane"):  # fmt: skip
        assert identifier.encode() not in plaintext, identifier
    # The original still has them (so the search above can find them).
    assert AUTHOR.encode() in PDF
    assert XMP_MARK.encode() in PDF


def test_a_rewrap_under_an_anonymising_right_is_refused(research: Research) -> None:
    r = research
    right_secret = r.share_grant("study-b", anonymise=True)
    r.world.share_key(r.patient, r.clinician)
    right = r.right("study-b")
    facts = r.record(r.lab)
    forced = SimpleNamespace(**{**vars(right), "anonymise": False})
    prepared = rewrap_for_study(
        exporter=r.clinician, right=forced, seeds=r.seeds(),
        study_key=r.study_b.public().encryption_key, record=facts, capsule=r.capsule(r.lab),
        issued_at=r.world.clock(),
    )  # fmt: skip
    refused = r.commit(prepared.transaction, prepared.capsule)
    assert refused.status_code == 403
    assert "anonymise=true" in refused.json()["detail"]
    assert right_secret.pseudonym == right.study_pseudonym
    listing = r.get(r.study_b, "/v1/studies/study-b/exports").json()["exports"]
    assert listing == []


def test_a_share_right_outside_its_period_is_refused(research: Research) -> None:
    r = research
    r.share_grant("study-b", anonymise=True, hours=1)
    r.world.share_key(r.patient, r.clinician)
    right = r.right("study-b")
    r.world.clock.advance(timedelta(hours=1, seconds=1))
    r.world.tokens.clear()
    upload = r.world.client.post(
        "/v1/study-exports/bodies",
        params={"permission_id": right.permission_id},
        content=b"sealed",
        headers={**r.world.headers(r.clinician), "Content-Type": "application/octet-stream"},
    )
    assert upload.status_code == 403, upload.text
    assert upload.json()["code"] == "not-granted"
    tx = builders.study_export(
        r.clinician, permission_id=right.permission_id, study_id="study-b",
        study_pseudonym=right.study_pseudonym, source_record_id=r.lab["record_id"],
        anonymise=True, category="lab-results", created_at=r.lab["created_at"],
        content_type="application/pdf", body_sha256="ab" * 32, size=10,
        locators=["local:nowhere"], capsule_sha256=_sha(b"c"), issued_at=r.world.clock(),
    )  # fmt: skip
    late = r.commit(tx, b"c")
    assert late.status_code == 403, late.text
    assert "not at" in late.json()["detail"]


def test_an_unknown_study_is_refused(research: Research) -> None:
    r = research
    r.share_grant("study-zz", anonymise=False)  # granted, but no such study is enrolled
    r.world.share_key(r.patient, r.clinician)
    unknown = IdentityKeys.generate("study-zz", "study")
    refused = r.rewrapped_export(unknown, r.lab)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "unknown-study"
    assert "not an enrolled study" in refused.json()["detail"]


def test_a_study_pseudonym_is_the_patients_own_derivation() -> None:
    patient = PatientKeys.generate({"name": "Jane Doe", "birth_date": "1970-01-01"})
    a = StudySecret.derive(patient.patient_key, "study-a")
    again = StudySecret.derive(patient.patient_key, "study-a")
    other = StudySecret.derive(PatientKeys.generate({"name": "Jane Doe"}).patient_key, "study-a")
    assert a.pseudonym == again.pseudonym
    assert a.day_offset == again.day_offset
    assert a.pseudonym != other.pseudonym
    assert 1 <= abs(a.day_offset) <= 365


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_the_ledger_verifies_after_exports_and_break_glass(
    research: Research, settings: Settings
) -> None:
    """Replaying the log gives the stored state, new tables included (digest compared)."""
    r = research
    r.share_grant("study-a", anonymise=False)
    r.share_grant("study-b", anonymise=True)
    r.world.share_key(r.patient, r.clinician)
    assert r.rewrapped_export(r.study_a, r.lab).status_code == 201
    assert r.anonymised_export(r.study_b, r.lab).status_code == 201
    emergency = r.world.enroll(EMERGENCY, "system")
    er = r.world.enroll("dr-er@general", "clinician")
    opt_in(r.world, r.patient, emergency, categories=["lab-results"])
    opened = break_glass(r.world, er, r.patient)
    assert opened.status_code == 201, opened.text
    assert break_glass(r.world, r.clinician, r.patient).status_code == 403
    with DatabaseSource(settings.resolved_database_url) as source:
        report = verify(source)
    assert report.ok, report.summary()
    assert report.state is not None
    assert len(report.state.rows("study_exports")) == 2
    assert len(report.state.rows("break_glass_sessions")) == 1
    # A changed export capsule is found and named.
    exported = report.state.rows("study_exports")[0]
    engine = sa.create_engine(settings.resolved_database_url)
    with engine.begin() as conn:
        conn.execute(
            schema.capsules.update()
            .where(schema.capsules.c.sha256 == exported["capsule_sha256"])
            .values(data=b"changed bytes")
        )
    engine.dispose()
    with DatabaseSource(settings.resolved_database_url) as source:
        damaged = verify(source)
    assert not damaged.ok
    assert f"study export {exported['export_id']}" in damaged.summary()


def test_an_anonymised_exports_body_is_no_orphan(research: Research, settings: Settings) -> None:
    """The body of an anonymised copy is named by its study_export alone: gc keeps it."""
    r = research
    r.share_grant("study-b", anonymise=True)
    r.world.share_key(r.patient, r.clinician)
    done = r.anonymised_export(r.study_b, r.lab)
    assert done.status_code == 201, done.text
    export = done.json()["export"]
    referenced = referenced_blobs(settings.resolved_database_url)
    assert {export["body_sha256"], export["capsule_sha256"]} <= referenced
    collect_orphans(settings.resolved_database_url, settings.store_urls, grace=timedelta(0))
    [(_, _, plaintext)] = r.study_opens(r.study_b)
    assert b"potassium 4.1" in plaintext


def test_a_changed_export_body_is_refused_to_the_study(
    research: Research, settings: Settings
) -> None:
    r = research
    r.share_grant("study-b", anonymise=True)
    r.world.share_key(r.patient, r.clinician)
    done = r.anonymised_export(r.study_b, r.lab)
    assert done.status_code == 201, done.text
    export = done.json()["export"]
    [stored] = [p for p in settings.data_dir.rglob("*") if export["body_sha256"] in p.name]
    data = bytearray(stored.read_bytes())
    data[-1] ^= 1
    stored.write_bytes(bytes(data))
    fetched = r.world.client.get(
        f"/v1/study-exports/{export['export_id']}/body", headers=r.world.headers(r.study_b)
    )
    assert fetched.status_code == 502
    assert fetched.headers["content-type"] == "application/problem+json"
