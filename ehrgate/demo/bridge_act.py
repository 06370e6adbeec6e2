"""The demo's bridge act: a hospital bridge in front of the demo's gateway takes an HL7 v2
MDM^T02 over MLLP (as an interface engine sends it) and serves it back through IHE MHD
(ITI-67 search, ITI-68 retrieve) to a viewer system with a SMART Backend Services token.

The bridge runs as `ehrgate bridge serve` would (its settings, uvicorn, the MLLP listener in
the same event loop), on 127.0.0.1 ports of its own.
"""

from __future__ import annotations

import base64
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey

from ehrgate.client import Client
from ehrgate.embedded import free_port, serve_app
from ehrgate.errors import VerificationFailed
from ehrgate.links import make_link_statement
from ehrgate.pdf import text_pdf
from envelope import IdentityKeys, PatientKeys

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ehrgate.demo.story import Story

HOSPITAL = "st-elsewhere"
VIEWER = "viewer"
_PASSPHRASE = "demo bridge key store"
_JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def bridge_act(
    story: Story, work: Path, gateway_url: str, admin: Client, cast: dict[str, Any]
) -> None:
    """*cast*: `patient` (a Client), `patient_keys`, `system_keys`, `mrn`."""
    patient: Client = cast["patient"]
    patient_keys: PatientKeys = cast["patient_keys"]
    viewer_keys = IdentityKeys.generate("dr-house", "clinician")
    admin.enroll(viewer_keys.public())
    patient.grant(viewer_keys.id, rights=["read"], categories=["lab-results"],
                  not_after=datetime.now(UTC) + timedelta(hours=1))  # fmt: skip
    patient.share_key(viewer_keys.id)
    story.step("the hospital starts its bridge: MHD on FHIR, SMART tokens, HL7 v2 over MLLP")
    client_key = ECKey.generate_key("P-384", parameters={"kid": "viewer-1"}, private=True)
    with _served_bridge(work / "bridge", gateway_url, cast, viewer_keys, client_key) as (url, app):
        story.detail(f"FHIR at {url}/fhir, MLLP on 127.0.0.1:{app.state.mllp.port}")
        statement = make_link_statement(patient_keys, hospital=HOSPITAL, mrn=cast["mrn"])
        service = app.state.bridge
        service.links.add(statement.to_json(), service.identities.client(cast["system_keys"].id))
        story.detail(f"MRN {cast['mrn']} linked from a statement the patient signed")

        story.step("the interface engine sends a discharge letter as MDM^T02 over MLLP")
        letter = text_pdf(["Discharged in good health.", "Follow-up in 6 weeks."],
                          title="Discharge letter")  # fmt: skip
        unique_id = f"DOC-{uuid.uuid4().hex[:10]}"
        ack = _send_mllp(app.state.mllp.port, _mdm(cast["mrn"], unique_id, letter))
        msa = next(s for s in ack.split("\r") if s.startswith("MSA|")).split("|")
        story.detail(f"ACK {msa[1]}: {msa[3] if len(msa) > 3 else ''}")
        if msa[1] != "AA":
            raise VerificationFailed(f"the bridge did not accept the MDM: {ack!r}")

        story.step("a viewer system finds and retrieves it through IHE MHD (ITI-67, ITI-68)")
        token = _token(url, client_key)
        story.detail("SMART token from a private_key_jwt assertion (ES384)")
        _find_and_retrieve(story, url, token, cast["mrn"], unique_id, letter)


def _find_and_retrieve(
    story: Story, url: str, token: str, mrn: str, unique_id: str, letter: bytes
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(headers=headers, timeout=60) as http:
        bundle = http.get(f"{url}/fhir/DocumentReference", params={"patient": mrn}).json()
        found = [e["resource"] for e in bundle.get("entry", [])
                 if e["resource"]["masterIdentifier"]["value"] == unique_id]  # fmt: skip
        if not found:
            raise VerificationFailed("ITI-67 did not find the MDM's document")
        attachment = found[0]["content"][0]["attachment"]
        story.detail(f"ITI-67: {bundle['total']} document(s); {unique_id} is "
                     f"DocumentReference/{found[0]['id']}")  # fmt: skip
        pdf = http.get(attachment["url"], headers={"Accept": "application/pdf"}).content
    if pdf != letter:
        raise VerificationFailed("ITI-68 returned other bytes than the MDM carried")
    story.detail(f"ITI-68: {len(pdf):,} bytes, identical to the PDF in OBX-5, verified end "
                 "to end by the bridge (proof, hashes, signature)")  # fmt: skip


@contextmanager
def _served_bridge(
    data: Path, gateway_url: str, cast: dict[str, Any], viewer: IdentityKeys, key: ECKey
) -> Iterator[tuple[str, FastAPI]]:
    from pydantic import SecretStr

    from bridge.app import create_bridge_app
    from bridge.keystore import KeyStore
    from bridge.settings import BridgeSettings, SmartClientSettings

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    scopes = ("system/DocumentReference.rs", "system/Binary.r")
    client = SmartClientSettings(
        jwks={"keys": [key.as_dict(private=False)]}, identity=viewer.id, scopes=scopes
    )
    settings = BridgeSettings(
        gateway_url=gateway_url, hospital_id=HOSPITAL, system_identity=cast["system_keys"].id,
        data_dir=data, passphrase=SecretStr(_PASSPHRASE), public_url=url, mllp_port=0,
        smart_clients={VIEWER: client}, log_level="warning",
    )  # fmt: skip
    store = KeyStore(settings.keys_dir, _PASSPHRASE)
    for keys in (cast["system_keys"], viewer):
        store.add(keys)
    app = create_bridge_app(settings)
    with serve_app(app, port, "the demo bridge"):
        yield url, app


def _mdm(mrn: str, unique_id: str, pdf: bytes) -> bytes:
    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    data = base64.b64encode(pdf).decode()
    segments = [
        f"MSH|^~\\&|ARIA|ONCO|EHRGATE|{HOSPITAL}|{now}||MDM^T02^MDM_T02|{unique_id}|P|2.5",
        f"EVN|T02|{now}",
        f"PID|1||{mrn}^^^HOSP^MR||Demo^Patient",
        "PV1|1|O",
        f"TXA|1|LAB|AP|{now}||{now}||||||{unique_id}||||||AU",
        f"OBX|1|ED|PDF^Discharge letter^L||^Application^PDF^Base64^{data}||||||F",
    ]
    return ("\r".join(segments) + "\r").encode()


def _send_mllp(port: int, message: bytes) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(b"\x0b" + message + b"\x1c\x0d")
        answer = b""
        while b"\x1c\x0d" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                raise VerificationFailed("the MLLP listener closed without an ACK")
            answer += chunk
    return answer[1 : answer.index(b"\x1c\x0d")].decode()


def _token(url: str, key: ECKey) -> str:
    now = int(time.time())
    claims = {"iss": VIEWER, "sub": VIEWER, "aud": f"{url}/auth/token", "exp": now + 240,
              "jti": str(uuid.uuid4())}  # fmt: skip
    assertion = jwt.encode({"alg": "ES384", "kid": key.kid}, claims, key, algorithms=["ES384"])
    answer = httpx.post(f"{url}/auth/token", data={
        "grant_type": "client_credentials", "scope": "system/DocumentReference.rs system/Binary.r",
        "client_assertion_type": _JWT_BEARER, "client_assertion": assertion,
    }, timeout=30)  # fmt: skip
    answer.raise_for_status()
    return str(answer.json()["access_token"])
