"""The bridge and the web app's actors for `bench.load`, set up on the gateway under test.

`start_mixed(url, admin, directory)` enrolls the cast of tests/client/live.py (a doctor with
read on lab results and a scoped key share, the hospital system `aria-export` with write,
an auditor, a registered patient) on the running gateway, stores their keys in a bridge key
store, links the patient's MRN, and starts `ehrgate bridge`'s app as its own process on
loopback (bench/bridge.py `serve`, with the test token verifier: bearer `system` publishes,
bearer `doctor` retrieves). A few PDFs are uploaded with the SDK so the web readers and the
ITI-68 retrievals have records to open before the first timed ITI-105 publish, and one
untimed publish and retrieve warm the bridge up.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bridge.keystore import KeyStore
from ehrgate.embedded import free_port
from ehrgate.links import make_link_statement
from envelope import IdentityKeys
from tests.bridge.conftest import MRN
from tests.bridge.live import PASSPHRASE, bridge_settings
from tests.bridge.samples import document_reference, pdf
from tests.client.live import Cast, build_cast

CATEGORY = "lab-results"
SEEDED = 4


@dataclass
class Mixed:
    """What the bridge and web clients need: the FHIR base URL, the bridge's process, the
    doctor the web app signs in as, the patient, and records to open."""

    fhir: str
    process: subprocess.Popen[bytes]
    doctor: IdentityKeys
    pseudonym: str
    seeded: list[tuple[str, str]]
    """(record id, SHA-256 of the PDF) of the records uploaded before the run."""


def _wait_for(url: str, child: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/metadata").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or child.poll() is not None:
            raise RuntimeError("the bridge process did not start")
        time.sleep(0.1)


def _warm_up(fhir: str, size: int) -> tuple[str, str]:
    """One ITI-105 publish and one ITI-68 retrieve before the run: the bridge's first calls
    sign in to the gateway and pin its ledger, which the timed ones should not pay for."""
    content = pdf(size)
    with httpx.Client(timeout=120) as client:
        answer = client.post(
            f"{fhir}/DocumentReference",
            json=document_reference(content),
            headers={"Authorization": "Bearer system"},
        )
        answer.raise_for_status()
        record_id = answer.headers["location"].rsplit("/", 1)[1]
        back = client.get(
            f"{fhir}/Binary/{record_id}",
            headers={"Authorization": "Bearer doctor", "Accept": "application/pdf"},
        )
        back.raise_for_status()
        if back.content != content:
            raise RuntimeError("the bridge returned other bytes than it was given")
    return record_id, hashlib.sha256(content).hexdigest()


@contextmanager
def start_mixed(
    url: str, admin: IdentityKeys, data_dir: Path, directory: Path, size: int
) -> Iterator[Mixed]:
    """The cast enrolled on the gateway at *url* (its data in *data_dir*), the bridge's
    files under *directory*, PDFs of about *size* bytes."""
    cast: Cast = build_cast(url, data_dir, admin, directory / "keys")
    settings = bridge_settings(directory / "bridge", url, max_document_bytes=max(size * 4, 1 << 20))
    store = KeyStore(settings.keys_dir, PASSPHRASE)
    for keys in (cast.system, cast.doctor, cast.auditor):
        store.add(keys)
    statement = make_link_statement(cast.patient, hospital="st-elsewhere", mrn=MRN)
    link_file = directory / "link.json"
    link_file.write_text(json.dumps(statement.to_json()))
    environment = {
        f"EHRGATE_BRIDGE_{name.upper()}": str(value)
        for name, value in {
            "gateway_url": url,
            "hospital_id": settings.hospital_id,
            "system_identity": settings.system_identity,
            "data_dir": settings.data_dir,
            "passphrase": PASSPHRASE,
        }.items()
    }
    subprocess.run(
        [sys.executable, "-m", "ehrgate", "bridge", "link", "add", str(link_file)],
        env={**os.environ, **environment},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    seeded = []
    with cast.client(cast.system) as system:
        for _ in range(SEEDED):
            content = pdf(size)
            uploaded = system.upload(
                io.BytesIO(content), pseudonym=cast.pseudonym, category=CATEGORY,
                filename="seed.pdf",
            )  # fmt: skip
            seeded.append((uploaded.record.record_id, hashlib.sha256(content).hexdigest()))
    port = free_port()
    document = json.dumps({**json.loads(settings.model_dump_json()), "passphrase": PASSPHRASE})
    code = "import sys; from bench.bridge import serve; serve(sys.argv[1], int(sys.argv[2]))"
    child = subprocess.Popen([sys.executable, "-c", code, document, str(port)])
    fhir = f"http://127.0.0.1:{port}/fhir"
    try:
        _wait_for(fhir, child)
        seeded.append(_warm_up(fhir, size))
        yield Mixed(fhir, child, cast.doctor, cast.pseudonym, seeded)
    finally:
        child.terminate()
        child.wait(timeout=30)
