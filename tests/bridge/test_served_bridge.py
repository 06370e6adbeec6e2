"""The bridge as a hospital runs it, end to end: settings with SMART clients (ES384 and RS384
keys, JWKS files), an OpenID Connect provider (a JWKS file) and an MLLP port; real uvicorn in
front of a real gateway; fhirpy and httpx as systems with SMART tokens, clinicians with
OIDC JWTs, MDM^T02 over a real MLLP socket with hl7apy reading the ACKs. Every FHIR response
passes the independent validator (conftest)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fhirpy import SyncFHIRClient
from hl7apy.parser import parse_message
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from bridge.keystore import KeyStore
from bridge.wiring import load_or_make_token_key
from ehrgate.embedded import free_port
from ehrgate.links import make_link_statement
from tests.bridge.conftest import MRN
from tests.bridge.hl7v2.support import MllpClient, mdm
from tests.bridge.live import PASSPHRASE, LiveBridge, bridge_settings, live_bridge
from tests.bridge.samples import document_reference, pdf
from tests.client.live import Cast

ISSUER = "https://login.hospital.test/realms/staff"
AUDIENCE = "ehrgate-bridge"
WRITE = ["system/DocumentReference.crs", "system/Binary.r", "system/List.s"]
_EC = ECKey.generate_key("P-384", parameters={"kid": "engine-ec"}, private=True)
_RSA = RSAKey.generate_key(2048, parameters={"kid": "engine-rsa"}, private=True)
_IDP = RSAKey.generate_key(2048, parameters={"kid": "idp-1"}, private=True)
_OTHER_IDP = RSAKey.generate_key(2048, parameters={"kid": "idp-1"}, private=True)


def _jwks_file(path: Path, *keys: ECKey | RSAKey) -> Path:
    path.write_text(json.dumps({"keys": [k.as_dict(private=False) for k in keys]}))
    return path


@pytest.fixture(scope="module")
def live(cast: Cast, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveBridge]:
    directory = tmp_path_factory.mktemp("served")
    port = free_port()
    clients = {
        "engine-ec": {"jwks": str(_jwks_file(directory / "ec.json", _EC)),
                      "identity": "aria-export", "scopes": WRITE},
        "engine-rsa": {"jwks": str(_jwks_file(directory / "rsa.json", _RSA)),
                       "identity": "aria-export", "scopes": WRITE},
        "viewer": {"jwks": {"keys": [_EC.as_dict(private=False)]}, "identity": "dr-grey",
                   "scopes": ["system/DocumentReference.crs", "system/Binary.r"]},
    }  # fmt: skip
    settings = bridge_settings(
        directory / "data",
        cast.url,
        public_url=f"http://127.0.0.1:{port}",
        smart_clients=clients,
        oidc_issuer=ISSUER,
        oidc_jwks=_jwks_file(directory / "idp.json", _IDP),
        oidc_audience=AUDIENCE,
        oidc_identity_claim="preferred_username",
        oidc_identities={"grey": "dr-grey"},
        mllp_port=0,
        mllp_assigning_authorities=["HOSP"],
    )
    store = KeyStore(settings.keys_dir, PASSPHRASE)
    for keys in (cast.system, cast.doctor, cast.auditor):
        store.add(keys)
    with live_bridge(settings, port=port) as running:
        statement = make_link_statement(cast.patient, hospital="st-elsewhere", mrn=MRN)
        client = running.service.identities.client("aria-export")
        running.service.links.add(statement.to_json(), client)
        yield running


def smart_token(
    live: LiveBridge,
    client_id: str,
    key: ECKey | RSAKey,
    alg: str,
    scope: str = "system/DocumentReference.crs system/Binary.r",
) -> str:
    token_url = f"{live.url}/auth/token"
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": token_url, "exp": now + 240,
              "jti": str(uuid.uuid4())}  # fmt: skip
    assertion = jwt.encode({"alg": alg, "kid": key.kid}, claims, key, algorithms=[alg])
    answer = httpx.post(token_url, data={
        "grant_type": "client_credentials",
        "scope": scope,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    })  # fmt: skip
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def clinician_token(key: RSAKey, issuer: str = ISSUER) -> str:
    now = int(time.time())
    claims = {"iss": issuer, "aud": AUDIENCE, "sub": "u-17", "preferred_username": "grey",
              "scope": "user/*.rs", "iat": now, "exp": now + 300}  # fmt: skip
    return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key, algorithms=["RS256"])


def retrieve(live: LiveBridge, token: str, record_id: str) -> bytes:
    answer = httpx.get(
        f"{live.fhir}/Binary/{record_id}",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/pdf"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    return answer.content


def search_ids(live: LiveBridge, token: str, **params: str) -> dict[str, dict[str, Any]]:
    client = SyncFHIRClient(live.fhir, authorization=f"Bearer {token}")
    found = client.resources("DocumentReference").search(patient=MRN, **params).fetch_all()
    return {str(item.id): dict(item) for item in found}


@pytest.mark.parametrize(("client_id", "key", "alg"),
                         [("engine-ec", _EC, "ES384"), ("engine-rsa", _RSA, "RS384")])  # fmt: skip
def test_smart_system_publishes_searches_and_retrieves(
    live: LiveBridge, client_id: str, key: ECKey | RSAKey, alg: str
) -> None:
    token = smart_token(live, client_id, key, alg)
    content = pdf()
    created = SyncFHIRClient(live.fhir, authorization=f"Bearer {token}").resource(
        "DocumentReference", **document_reference(content)
    )
    created.save()
    viewer = smart_token(live, "viewer", _EC, "ES384")
    assert created.id in search_ids(live, viewer, type="11502-2")
    assert retrieve(live, viewer, str(created.id)) == content


def test_mdm_over_mllp_is_acked_and_served_through_mhd(live: LiveBridge) -> None:
    assert live.mllp is not None
    content = pdf(30_000)
    unique_id = f"DOC-{uuid.uuid4().hex[:12]}"
    # Authored now: the patient has published record keys from this month on.
    authored = datetime.now(UTC).strftime("%Y%m%d%H%M%S+0000")
    message = mdm(pid3=f"{MRN}^^^HOSP&1.2.3&ISO^MR", txa2="LAB", unique_id=unique_id,
                  obx5=base64.b64encode(content).decode(), control_id="C-1",
                  authored=authored)  # fmt: skip
    sender = MllpClient(live.mllp.port, timeout=60)
    try:
        first = parse_message(sender.send(message))
        again = parse_message(sender.send(message.replace("|C-1|", "|C-2|")))
        unlinked = parse_message(sender.send(message.replace(MRN, "MRN-NOBODY")))
    finally:
        sender.close()
    assert first.msa.msa_1.value == "AA"
    assert again.msa.msa_1.value == "AA"
    assert unlinked.msa.msa_1.value == "AE"
    assert "link" in unlinked.msa.to_er7().lower() or "link" in unlinked.to_er7().lower()

    token = smart_token(live, "viewer", _EC, "ES384")
    found = search_ids(live, token, type="11502-2")
    matching = [rid for rid, doc in found.items()
                if doc["masterIdentifier"]["value"] == unique_id]  # fmt: skip
    assert len(matching) == 1, "the MDM was published once"
    assert retrieve(live, token, matching[0]) == content


def test_clinician_oidc_reads_and_another_issuer_is_refused(live: LiveBridge) -> None:
    content = pdf()
    system = smart_token(live, "engine-rsa", _RSA, "RS384")
    created = httpx.post(f"{live.fhir}/DocumentReference", json=document_reference(content),
                         headers={"Authorization": f"Bearer {system}"}, timeout=60)  # fmt: skip
    assert created.status_code == 201, created.text
    record_id = created.headers["location"].rsplit("/", 1)[1]
    clinician = clinician_token(_IDP)
    assert record_id in search_ids(live, clinician)
    assert retrieve(live, clinician, record_id) == content
    for forged in (clinician_token(_OTHER_IDP), clinician_token(_IDP, "https://evil.test")):
        refused = httpx.get(f"{live.fhir}/DocumentReference", params={"patient": MRN},
                            headers={"Authorization": f"Bearer {forged}"})  # fmt: skip
        assert refused.status_code == 401
        assert refused.json()["resourceType"] == "OperationOutcome"


def test_system_without_write_grant_gets_403_on_the_ledger(live: LiveBridge, cast: Cast) -> None:
    token = smart_token(live, "viewer", _EC, "ES384")
    answer = httpx.post(f"{live.fhir}/DocumentReference", json=document_reference(pdf()),
                        headers={"Authorization": f"Bearer {token}"}, timeout=60)  # fmt: skip
    assert answer.status_code == 403
    assert answer.json()["issue"][0]["code"] == "forbidden"
    with cast.client(cast.patient) as patient:
        events = patient.audit()
    assert any(e.actor == "dr-grey" and e.decision == "denied" and e.record_id is None
               for e in events)  # fmt: skip


def test_token_key_persists_across_restarts(live: LiveBridge) -> None:
    key_file = live.settings.data_dir / "token-key.jwk"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert load_or_make_token_key(key_file).as_dict(private=True) == json.loads(
        key_file.read_text()
    )
