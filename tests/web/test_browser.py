"""End to end in Debian's Chromium (headless, driven by playwright-core from Node) against a
live gateway served by uvicorn: a patient registers (keys, pseudonym and key file made in
the browser) and grants, a system uploads through the SDK, a
clinician opens the PDF in the browser and gets its exact bytes, the grant ends and the next
open is refused, the patient's audit shows both, an admin enrolls and suspends and the
suspended clinician is shown out. The run fails on any console error or CSP violation, and
no request the app sends may carry K, a private key or the PDF's plaintext. Screenshots of
each view go to docs/web/ (set EHRGATE_WEB_SCREENSHOTS to write them elsewhere)."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import pytest

from ehrgate import Client
from envelope import IdentityKeys, PatientKeys, load_key_file
from envelope.keyfile import encode_key_file
from envelope.scoped import next_period, scoped_private_key, scoped_seed
from envelope.scopedshare import open_scoped_share
from gateway import Settings
from ledger import DEFAULT_CATEGORIES
from tests.gateway.helpers import ManualClock, World
from tests.gateway.live import live_world

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
CHROMIUM = Path("/usr/bin/chromium")
MARKER = b"EHRGATE-E2E-PLAINTEXT-MARKER-7c1f"
UII = {"name": "Ana Müller", "birth_date": "1961-04-12"}
UPLOADED = (
    b"%PDF-1.4\n% treatment summary sealed in the browser "
    + os.urandom(16).hex().encode()
    + b"\n%%EOF\n"
)
EXPECTED_MISSING = re.compile(r"Failed to load resource: the server responded with a status of 404")
EXPECTED_REFUSAL = re.compile(
    r"Failed to load resource: the server responded with a status of (401|403)"
)


def _check_tools() -> None:
    """Like the PostgreSQL tests, these fail (never skip) without what they need."""
    if shutil.which("node") is None:
        pytest.fail("the browser tests need Node.js 20")
    if not CHROMIUM.exists():
        pytest.fail(
            "the browser tests need Debian's chromium: apt-get install chromium (.ci/run does)"
        )


def _pdf() -> bytes:
    """A small valid PDF whose text holds MARKER, larger than one body segment."""
    text = MARKER.decode()
    stream = f"BT /F1 12 Tf 40 700 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    out += b"% " + os.urandom(48).hex().encode() * 1500 + b"\n"  # > 64 KiB: several segments
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


class Browser:
    """The Node side of the scenario, spoken to line by line."""

    def __init__(self, plan: dict[str, Any]) -> None:
        env = {**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1", "TZ": "UTC"}
        self.process = subprocess.Popen(
            ["node", str(Path(__file__).with_name("browser_scenario.mjs"))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self._send(json.dumps(plan))

    def _send(self, line: str) -> None:
        stdin: IO[str] | None = self.process.stdin
        assert stdin is not None
        stdin.write(line + "\n")
        stdin.flush()

    def next(self, step: str) -> dict[str, Any]:
        stdout: IO[str] | None = self.process.stdout
        assert stdout is not None
        line = stdout.readline()
        assert line, f"the browser stopped before {step}"
        answer: dict[str, Any] = json.loads(line)
        assert "error" not in answer, (
            answer["error"] + "\nconsole: " + json.dumps(answer.get("console"))
        )
        assert answer["step"] == step, answer
        return answer

    def go(self) -> None:
        self._send("go")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def browser_world(tmp_path: Path) -> Iterator[tuple[str, World, ManualClock]]:
    _check_tools()
    if not (WEB / "dist" / "index.html").is_file():
        pytest.fail("web/dist is not built: run web/build (./dev runs it)")
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    settings = Settings(data_dir=tmp_path / "data", web_dir=WEB / "dist")
    with live_world(settings, clock) as (url, world):
        yield url, world, clock


def _secrets(*keys: Any, months: tuple[str, ...] = ()) -> list[str]:
    """Every encoding of the secrets that must never leave the browser (with a patient's
    K, the seeds of its month keys for *months*, every category)."""
    raw: list[bytes] = []
    for key in keys:
        if hasattr(key, "patient_key"):
            raw.append(key.patient_key.to_bytes())
            raw += [
                scoped_seed(key.patient_key, category, month)
                for category in (c.name for c in DEFAULT_CATEGORIES)
                for month in months
            ]
            key = key.identity
        raw.append(key.signing_key.private_bytes())
        raw.append(key.encryption_key.private_bytes())
    forms = []
    for value in raw:
        forms += [
            value.hex(),
            base64.b64encode(value).decode(),
            base64.urlsafe_b64encode(value).decode().rstrip("="),
        ]
    return forms


def test_patient_clinician_admin_in_chromium(
    browser_world: tuple[str, World, ManualClock], tmp_path: Path
) -> None:
    url, world, clock = browser_world
    clinician = world.enroll("dr-house", "clinician")
    system = world.enroll("his-1", "system")
    files = tmp_path / "keys"
    files.mkdir()
    (files / "dr-house.key").write_bytes(
        encode_key_file(clinician, passphrase="correct horse", _scrypt_n=2**12)
    )
    auditor = IdentityKeys.generate("auditor-1", "auditor")
    shots = Path(os.environ.get("EHRGATE_WEB_SCREENSHOTS", ROOT / "docs" / "web"))
    shots.mkdir(parents=True, exist_ok=True)
    unpublished = world.register_patient("No Keys Yet", publish=False)
    world.grant(unpublished, clinician, ["read", "write"], ["treatment-summary"])
    (files / "late.key").write_bytes(encode_key_file(unpublished))
    now = clock()
    plan = {
        "unpublished_pseudonym": unpublished.pseudonym,
        "late_patient_key": str(files / "late.key"),
        "url": url,
        "web_dir": str(WEB),
        "chromium": str(CHROMIUM),
        "screenshots": str(shots),
        "patient_key": str(files / "patient.key"),
        "patient_passphrase": "patient passphrase",
        "uii": UII,
        "clinician_key": str(files / "dr-house.key"),
        "clinician_passphrase": "correct horse",
        "clinician_id": clinician.id,
        "admin_key": str(world.admin and (tmp_path / "data" / "admin.key")),
        "from": (now - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M"),
        "until": (now + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M"),
        "enroll_public": json.dumps(auditor.public().to_json()),
        "upload_pdf": str(_write(tmp_path / "summary.pdf", UPLOADED)),
    }
    browser = Browser(plan)
    try:
        registered = browser.next("patient-registers")
        patient = load_key_file(files / "patient.key", "patient passphrase")
        assert isinstance(patient, PatientKeys)
        # the browser's pseudonym, K and key file agree with envelope's
        assert patient.pseudonym == registered["pseudonym"]
        assert patient.patient_key.pseudonym(UII) == patient.pseudonym
        assert (
            world.client.get(
                f"/v1/patients/{patient.pseudonym}", headers=world.headers(system)
            ).status_code
            == 200
        )
        # the browser published every category's key for this month and the next 24, each
        # the one envelope derives from K
        assert "record keys published" in registered["status"], registered["status"]
        listed = world.client.get(
            f"/v1/patients/{patient.pseudonym}/keys", headers=world.headers(system)
        ).json()["keys"]
        categories = world.client.get("/v1/categories", headers=world.headers(system)).json()
        month = clock().strftime("%Y-%m")
        wanted = {(c, next_period(month, n)) for c in categories["categories"] for n in range(25)}
        assert {(k["category"], k["period"]) for k in listed} == wanted
        proof = world.client.get(
            f"/v1/patients/{patient.pseudonym}/keys/lab-results/{month}",
            headers=world.headers(system),
        ).json()
        signed = proof["entry"]["tx"]["body"]["keys"]
        raw = next(
            k["public_key"]
            for k in signed
            if (k["category"], k["period"]) == ("lab-results", month)
        )
        expected = scoped_private_key(patient.patient_key, "lab-results", month)
        assert base64.b64decode(raw) == expected.public_key().to_bytes()
        world.grant(patient, system, ["write"], "all")
        world.grant(patient, clinician, ["write"], ["treatment-summary"])
        browser.go()
        granted = browser.next("patient-grants")
        assert "Granted dr-house read access to lab-results" in granted["status"]
        # the clinician's request, approved: the grant form came prefilled from it
        assert "follow-up of the March results" in granted["prefilled"]["requests"]
        assert granted["prefilled"]["grantee"] == "dr-house"
        assert granted["prefilled"]["lab"] is True
        assert granted["prefilled"]["others"] is False
        # both answers are on the ledger, signed in the browser: the approval names the grant
        assert "Declined dr-house's request" in granted["declined"]
        asked = world.client.get(
            f"/v1/patients/{patient.pseudonym}/access-requests",
            headers=world.headers(patient.identity),
        ).json()["access_requests"]
        decisions = {r["reason"]: (r["decision"], r["permission_id"]) for r in asked}
        assert decisions["curious about the dose"] == ("declined", None)
        approved, permission_id = decisions["follow-up of the March results"]
        assert approved == "approved"
        assert permission_id is not None
        # the share the browser deposited: scoped to lab-results months, seeds derived from K
        assert "and shared the" in granted["status"], granted["status"]
        share = world.client.get(
            f"/v1/patients/{patient.pseudonym}/key-share", headers=world.headers(clinician)
        ).json()
        assert share["scope"]
        assert all(i.startswith("lab-results/") for i in share["scope"])
        assert f"lab-results/{month}" in share["scope"]
        seeds = open_scoped_share(
            base64.b64decode(share["sealed_key"]),
            clinician.encryption_key,
            pseudonym=patient.pseudonym,
            grantee_id=clinician.id,
        )
        assert [f"{c}/{p}" for c, p in seeds.scope] == share["scope"]
        for item, seed in seeds.seeds.items():
            assert seed == scoped_seed(patient.patient_key, *item)
        pdf = _pdf()
        with Client(url, system) as sdk:
            uploaded = sdk.upload(
                _write(tmp_path / "report.pdf", pdf),
                pseudonym=patient.pseudonym,
                category="lab-results",
            )
        browser.go()

        opened = browser.next("clinician-opens")
        assert bytes.fromhex(opened["downloaded_hex"]) == pdf
        # the body was decrypted in the worker with a progress bar that reached the whole body
        progress = opened["open_progress"]
        assert progress["value"] == progress["max"] == uploaded.record.size, progress
        assert not progress["hidden"]
        assert (
            f"{uploaded.record.size:,} of {uploaded.record.size:,} bytes (100 %)"
            in (progress["words"])
        ), progress["words"]
        # the patient's link code: it carries the pseudonym, a typo in it is caught, and the
        # link (the code in the URL's fragment) opens the patient
        assert opened["link"].endswith(f"/app/#/patient/{opened['code']}")
        assert "the link code has a typo" in opened["typo_status"], opened["typo_status"]
        assert opened["by_link"]["field"] == opened["code"]
        assert f"of patient {patient.pseudonym[:12]}" in opened["by_link"]["status"]
        sealed_progress = opened["upload_progress"]
        assert sealed_progress["value"] == sealed_progress["max"] > len(UPLOADED), sealed_progress
        assert "sending the sealed body" in sealed_progress["words"]
        assert "(100 %)" in sealed_progress["words"]
        assert "Verified and opened report.pdf" in opened["status"]
        assert "signed by his-1" in opened["checks"]
        assert "consistent with the pinned ledger" in opened["checks"]
        # what the clinician sealed in the browser, the patient opens with the SDK
        found = re.search(
            r"^Uploaded summary.pdf to treatment-summary: .* record ([0-9a-f]{32})\.$",
            opened["uploaded"],
        )
        assert found, opened["uploaded"]
        assert opened["unpublished"].startswith(
            f"Not uploaded. Not found: patient {unpublished.pseudonym} has published no record key"
            " for treatment-summary in "
        ), opened["unpublished"]
        with Client(url, patient) as own:
            fetched, data = own.fetch_bytes(found.group(1))
        assert data == UPLOADED
        assert fetched.record.uploader == clinician.id
        # the late patient published last month, this one and the next only
        world.publish_keys(unpublished, months=1)
        clock.advance(timedelta(minutes=11))  # past the grant's end, within the token's life
        answer = world.client.get(
            f"/v1/records/{uploaded.record.record_id}", headers=world.headers(clinician)
        )
        assert answer.status_code == 403, answer.text
        browser.go()

        refused = browser.next("clinician-refused")
        assert refused["status"].startswith("Refused by the gateway:"), refused["status"]

        audited = browser.next("patient-audit")
        audit = audited["audit"]
        assert f"Pseudonym {patient.pseudonym}" in audited["kept_sign_in"]
        assert "DENIED" in audit
        assert "Verified and opened summary.pdf" in audited["patient_opened"]
        assert re.search(r"allowed .*dr-house", audit), audit
        # the patient's keys: every category published for this month and the next 24
        assert audited["republished"].startswith("Nothing to publish"), audited["republished"]
        assert "missing" not in audited["keys_status"]
        assert "NOT PUBLISHED" not in audited["keys_status"]
        published = browser.next("patient-publishes")
        assert "missing" in published["before"], published["before"]
        assert published["status"].startswith("Published "), published["status"]
        assert "missing" not in published["after"], published["after"]
        listed = world.client.get(
            f"/v1/patients/{unpublished.pseudonym}/keys", headers=world.headers(system)
        ).json()["keys"]
        held = {(k["category"], k["period"]) for k in listed}
        assert wanted <= held, sorted(wanted - held)
        republished = wanted - {
            (c.name, next_period(month, n)) for c in DEFAULT_CATEGORIES for n in range(2)
        }
        assert int(published["status"].split()[1]) == len(republished)
        for category, period in sorted(republished)[:3]:
            proof = world.client.get(
                f"/v1/patients/{unpublished.pseudonym}/keys/{category}/{period}",
                headers=world.headers(system),
            ).json()
            entry = next(
                k
                for k in proof["entry"]["tx"]["body"]["keys"]
                if (k["category"], k["period"]) == (category, period)
            )
            key = scoped_private_key(unpublished.patient_key, category, period)
            assert base64.b64decode(entry["public_key"]) == key.public_key().to_bytes()
        admin = browser.next("admin")
        assert "Enrolled auditor-1 as auditor" in admin["enrolled"]
        assert "suspended: left the hospital" in admin["identities"]
        assert admin["suspended"].startswith("Suspended dr-house")
        assert re.search(
            r"Ledger verified: .*consistent with the pinned ledger: \d+ → \d+ entries",
            admin["verified"],
        ), admin["verified"]
        shown_out = browser.next("clinician-shown-out")
        assert (
            "suspended" in shown_out["status"].lower()
            or "signed out" in shown_out["status"].lower()
        )
        done = browser.next("done")
    finally:
        browser.close()

    unexpected = [
        error
        for error in done["console"]
        if not (
            error["step"] in {"clinician-refused", "clinician-shown-out"}
            and EXPECTED_REFUSAL.search(error["text"])
        )
        # the one 404: the published key of the patient who published none
        and not (error["step"] == "clinician-opens" and EXPECTED_MISSING.search(error["text"]))
    ]
    assert unexpected == [], unexpected
    assert not [e for e in done["console"] if "CSP" in e["text"]]
    sent = [request["url"] + "\n" + request["body"] for request in done["requests"]]
    # a record is opened in one audited request, its body read on the open's ticket
    assert any(re.search(r"/v1/records/[0-9a-f]+/open(\?known_size=\d+)?\n$", s) for s in sent)
    # with a pinned head the open asks for the consistency proof to come along
    assert any(re.search(r"/v1/records/[0-9a-f]+/open\?known_size=\d+\n$", s) for s in sent)
    assert any(re.search(r"/open/body\?ticket=[^\n]+\n$", s) for s in sent), "the body was fetched"
    assert not [s for s in sent if re.search(r"/v1/records/[^/]+/(capsule|body)\n$", s)]
    # chrome:// and chrome-extension:// are the browser's own PDF viewer, never the network
    origins = {
        re.sub(r"^(blob:)?(https?://[^/]+).*$", r"\1\2", r["url"])
        for r in done["requests"]
        if not r["url"].startswith(("chrome://", "chrome-extension://"))
    }
    assert origins <= {url, f"blob:{url}", "data:,"}, origins  # nothing from any other origin
    month = clock().strftime("%Y-%m")
    for secret in _secrets(patient, clinician, world.admin, months=(month, next_period(month))):
        assert not [s for s in sent if secret in s], "a private key, a seed or K left the browser"
    assert not [s for s in sent if MARKER.decode() in s or pdf[:200].hex() in s]
    assert not [s for s in sent if "treatment summary sealed" in s]
    # the link code rides in the URL's fragment, which never leaves the browser
    code = opened["code"]
    assert not [s for s in sent if code in s or code.replace("-", "") in s]
    # the identifying fields never leave the browser either
    assert not [s for s in sent if "Müller" in s or "M%C3%BCller" in s or "1961-04-12" in s]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
