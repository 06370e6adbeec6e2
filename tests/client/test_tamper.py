"""The SDK refuses what does not check out: changed bodies, segments, capsules, proofs,
tree heads and record transactions; and it leaves no output file behind when it does.

Most cases put a lying gateway between client and server (a transport that rewrites the
real gateway's answers); the others damage the stored bytes or upload forged data as a
malicious uploader would.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from ehrgate import Client, IntegrityFailure, VerificationFailed
from ehrgate._client.session import ledger_now
from ehrgate.models import LedgerCheckpoint
from ehrgate.pdf import text_pdf
from ehrgate.trust import LedgerPins
from envelope import SigningKey, b64encode
from envelope.body import DataKey
from envelope.capsule import build_capsule, encrypt_metadata
from envelope.scoped import key_id, record_period, scoped_record_key
from envelope.sealer import _seal_with_parts
from ledger.wire import builders
from ledger.wire.blocks import Block
from ledger.wire.checkpoints import Checkpoint, sign_checkpoint
from ledger.wire.notes import Ed25519Signer
from tests.client.live import Cast

Rewrite = Callable[[httpx.Request, httpx.Response], bytes | None]


class LyingGateway(httpx.BaseTransport):
    """Forwards to the real gateway; *rewrite* may replace an answer's body."""

    def __init__(self, rewrite: Rewrite) -> None:
        self._real = httpx.HTTPTransport()
        self._rewrite = rewrite

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._real.handle_request(request)
        response.read()
        replaced = self._rewrite(request, response)
        if replaced is None:
            return response
        headers = [
            (name, value)
            for name, value in response.headers.multi_items()
            if name.lower() not in ("content-length", "content-encoding", "transfer-encoding")
        ]
        return httpx.Response(response.status_code, headers=headers, content=replaced)

    def close(self) -> None:
        self._real.close()


def on_path(suffix: str, change: Callable[[bytes], bytes]) -> Rewrite:
    def rewrite(request: httpx.Request, response: httpx.Response) -> bytes | None:
        if request.url.path.endswith(suffix) and response.is_success:
            return change(response.content)
        return None

    return rewrite


def json_change(change: Callable[[dict[str, Any]], None]) -> Callable[[bytes], bytes]:
    def apply(content: bytes) -> bytes:
        document = json.loads(content)
        change(document)
        return json.dumps(document).encode()

    return apply


def forking_gateway(cast: Cast, pins: LedgerPins) -> tuple[LyingGateway, LedgerCheckpoint, bytes]:
    """A gateway answering with a fork of its real checkpoint, signed by the real key;
    with the real checkpoint (now pinned in *pins*) and the forged note."""
    signer = Ed25519Signer.from_private_key((cast.data_dir / "checkpoint.key").read_text())
    with cast.client(cast.doctor, pins=pins) as doctor:
        real = doctor.ledger_checkpoint()
    forged = sign_checkpoint(Checkpoint(real.origin, real.tree_size, bytes(32)), signer)
    return LyingGateway(on_path("/v1/ledger/checkpoint", lambda _: forged)), real, forged


def flip(data: bytes, position: int) -> bytes:
    changed = bytearray(data)
    changed[position] ^= 0x01
    return bytes(changed)


REPORT = text_pdf([f"line {n}: potassium 4.{n % 10} mmol/L" for n in range(50)], title="Lab")
LARGE = REPORT + b"%" + b"x" * 300_000 + b"\n"  # several 64 KiB segments


@pytest.fixture
def record_id(cast: Cast) -> str:
    with cast.client(cast.system) as system:
        return system.upload(
            io.BytesIO(LARGE),
            pseudonym=cast.pseudonym,
            category="lab-results",
            filename="report.pdf",
        ).record.record_id


def lying_doctor(cast: Cast, rewrite: Rewrite) -> Client:
    return cast.client(cast.doctor, transport=LyingGateway(rewrite))


def refuses(client: Client, record_id: str, tmp_path: Path, match: str) -> None:
    with client, pytest.raises(VerificationFailed, match=match):
        client.fetch(record_id, tmp_path / "out.pdf")
    assert list(tmp_path.iterdir()) == [], "a refused fetch left a file"


def test_an_honest_gateway_is_believed(cast: Cast, record_id: str, tmp_path: Path) -> None:
    with lying_doctor(cast, lambda request, response: None) as doctor:
        fetched = doctor.fetch(record_id, tmp_path / "out.pdf")
    assert fetched.path.read_bytes() == LARGE
    assert fetched.plaintext_sha256 == hashlib.sha256(LARGE).hexdigest()


# --- the body ---------------------------------------------------------------------------


def test_a_changed_body_byte_is_refused(cast: Cast, record_id: str, tmp_path: Path) -> None:
    doctor = lying_doctor(cast, on_path("/body", lambda body: flip(body, len(body) // 2)))
    refuses(doctor, record_id, tmp_path, "segment")


def test_an_extended_body_is_refused(cast: Cast, record_id: str, tmp_path: Path) -> None:
    doctor = lying_doctor(cast, on_path("/body", lambda body: body + b"\x00" * 32))
    refuses(doctor, record_id, tmp_path, "longer")


def test_a_truncated_body_is_refused(cast: Cast, record_id: str, tmp_path: Path) -> None:
    doctor = lying_doctor(cast, on_path("/body", lambda body: body[:-100]))
    refuses(doctor, record_id, tmp_path, "SHA-256 or size")


def test_another_records_body_is_refused(cast: Cast, record_id: str, tmp_path: Path) -> None:
    with cast.client(cast.system) as system:
        other = system.upload(
            io.BytesIO(REPORT), pseudonym=cast.pseudonym, category="lab-results", filename="o.pdf"
        )
    with cast.client(cast.doctor) as doctor:
        _, other_body_plain = doctor.fetch_bytes(other.record.record_id)
    assert other_body_plain == REPORT
    stored = next(cast.data_dir.rglob(other.record.body_sha256)).read_bytes()
    doctor = lying_doctor(cast, on_path("/body", lambda body: stored))
    refuses(doctor, record_id, tmp_path, "SHA-256|segment")


def test_a_changed_stored_byte_is_refused(cast: Cast, record_id: str, tmp_path: Path) -> None:
    with cast.client(cast.doctor) as doctor:
        record = doctor.record(record_id).record
        blob = next(cast.data_dir.rglob(record.body_sha256))
        blob.write_bytes(flip(blob.read_bytes(), 100_000))
        with pytest.raises(VerificationFailed):  # the gateway or the client notices
            doctor.fetch(record_id, tmp_path / "out.pdf")
    assert list(tmp_path.iterdir()) == []


def test_a_swapped_stored_body_is_an_integrity_failure(
    cast: Cast, record_id: str, tmp_path: Path
) -> None:
    with cast.client(cast.doctor) as doctor:
        record = doctor.record(record_id).record
        blob = next(cast.data_dir.rglob(record.body_sha256))
        blob.write_bytes(b"not the sealed body")
        with pytest.raises(IntegrityFailure):
            doctor.fetch(record_id, tmp_path / "out.pdf")
    assert list(tmp_path.iterdir()) == []


def test_a_forged_segment_with_matching_hashes_is_refused(cast: Cast, tmp_path: Path) -> None:
    """A malicious uploader stores a body whose hash the ledger and capsule agree on, but
    one of whose segments was changed after sealing: only segment verification sees it."""
    # sealed, as every upload now, to the patient's key of the category and month
    created_at = ledger_now()
    month_key = scoped_record_key(cast.patient.patient_key, "lab-results", created_at)
    dek = DataKey.generate()
    sealed = io.BytesIO()
    result = _seal_with_parts(
        io.BytesIO(LARGE),
        sealed,
        dek=dek,
        salt=bytes(16),
        meta_nonce=bytes(12),
        recipients=[(cast.pseudonym, month_key.public_key())],
        scoped=True,
        filename="forged.pdf",
        content_type="application/pdf",
        pseudonym=cast.pseudonym,
        category="lab-results",
        created_at=created_at,
        uploader_id=cast.system.id,
        signer=cast.system,
    )
    body = flip(sealed.getvalue(), 70_000)  # inside the second segment
    body_sha256 = hashlib.sha256(body).hexdigest()
    # The metadata is the genuine one but for the forged body's hash (the signature
    # covers the plaintext's hash, which is unchanged).
    opened = _opened(result.capsule, cast)
    metadata = {**opened, "body_sha256": body_sha256, "body_size": len(body)}
    capsule = build_capsule(
        dek,
        [(cast.pseudonym, month_key.public_key())],
        encrypt_metadata(dek, metadata),
        {cast.pseudonym: key_id("lab-results", record_period(created_at))},
    )
    with cast.client(cast.system) as system:
        blob = system._connection.request(
            "POST",
            "/v1/blobs",
            params={"pseudonym": cast.pseudonym, "category": "lab-results"},
            content=body,
            headers={"Content-Type": "application/octet-stream"},
        ).json()
        tx = builders.record(
            cast.system,
            pseudonym=cast.pseudonym,
            category="lab-results",
            body_sha256=body_sha256,
            size=len(body),
            locators=blob["locators"],
            capsule_sha256=hashlib.sha256(capsule).hexdigest(),
            content_type="application/pdf",
            created_at=created_at,
        )
        system._connection.request(
            "POST", "/v1/records", json={"transaction": tx.to_json(), "capsule": b64encode(capsule)}
        )
    refuses(cast.client(cast.doctor), str(tx.body["record_id"]), tmp_path, "segment")


def _opened(capsule: bytes, cast: Cast) -> dict[str, Any]:
    from envelope import open_with_patient_key

    opened = open_with_patient_key(capsule, cast.patient.patient_key, cast.pseudonym)
    return opened.metadata()


# --- the capsule ------------------------------------------------------------------------


def _flip_capsule_field(document: dict[str, Any]) -> None:
    document["capsule"] = b64encode(flip(base64.b64decode(document["capsule"]), 40))


def test_a_changed_capsule_is_refused(cast: Cast, record_id: str, tmp_path: Path) -> None:
    # the capsule as an open answer carries it (the old route's: test_open_client.py)
    doctor = lying_doctor(cast, on_path("/open", json_change(_flip_capsule_field)))
    refuses(doctor, record_id, tmp_path, "capsule")


# --- the proof, the tree head and the record's transaction -------------------------------


def _record_json(change: Callable[[dict[str, Any]], None]) -> Rewrite:
    """Rewrite the record with its proof, in GET /v1/records/{id} and in its open."""

    def rewrite(request: httpx.Request, response: httpx.Response) -> bytes | None:
        parts = request.url.path.split("/")
        is_record = len(parts) == 4 or (len(parts) == 5 and parts[4] == "open")
        if is_record and parts[2] == "records" and response.is_success:
            return json_change(change)(response.content)
        return None

    return rewrite


def _flip_proof(receipt: dict[str, Any]) -> None:
    first = receipt["inclusion_proof"][0]
    receipt["inclusion_proof"][0] = ("1" if first[0] == "0" else "0") + first[1:]


def test_a_changed_proof_element_is_refused(cast: Cast, record_id: str, tmp_path: Path) -> None:
    doctor = lying_doctor(cast, _record_json(lambda d: _flip_proof(d["receipt"])))
    refuses(doctor, record_id, tmp_path, "inclusion proof")


def test_a_shortened_proof_is_refused(cast: Cast, record_id: str, tmp_path: Path) -> None:
    doctor = lying_doctor(cast, _record_json(lambda d: d["receipt"]["inclusion_proof"].pop()))
    refuses(doctor, record_id, tmp_path, "inclusion proof")


def test_another_index_is_refused(cast: Cast, record_id: str, tmp_path: Path) -> None:
    def shift(document: dict[str, Any]) -> None:
        document["receipt"]["index"] -= 1

    refuses(lying_doctor(cast, _record_json(shift)), record_id, tmp_path, "inclusion proof")


def test_a_changed_root_is_refused(cast: Cast, record_id: str, tmp_path: Path) -> None:
    def change_root(document: dict[str, Any]) -> None:
        head = document["receipt"]["tree_head"]
        head["root"] = ("f" if head["root"][0] != "f" else "e") + head["root"][1:]

    refuses(lying_doctor(cast, _record_json(change_root)), record_id, tmp_path, "not signed")


def test_a_tree_head_signed_by_another_key_is_refused(
    cast: Cast, record_id: str, tmp_path: Path
) -> None:
    forger = SigningKey.generate()

    def resign(document: dict[str, Any]) -> None:
        head = Block.from_json(document["receipt"]["tree_head"])
        forged = Block.signed(
            forger,
            height=head.height,
            previous_hash=head.previous_hash,
            tree_size=head.tree_size,
            root=head.root,
            timestamp=head.timestamp,
        )
        document["receipt"]["tree_head"] = forged.to_json()

    refuses(lying_doctor(cast, _record_json(resign)), record_id, tmp_path, "not signed")


def test_a_record_that_differs_from_its_transaction_is_refused(
    cast: Cast, record_id: str, tmp_path: Path
) -> None:
    def recategorise(document: dict[str, Any]) -> None:
        document["record"]["category"] = "radiation-dose"

    refuses(lying_doctor(cast, _record_json(recategorise)), record_id, tmp_path, "category")


def test_a_changed_transaction_is_refused(cast: Cast, record_id: str, tmp_path: Path) -> None:
    def change_both(document: dict[str, Any]) -> None:
        document["record"]["size"] += 1
        document["transaction"]["body"]["size"] += 1

    doctor = lying_doctor(cast, _record_json(change_both))
    refuses(doctor, record_id, tmp_path, "receipt is for transaction")


def test_a_record_without_its_transaction_is_refused(
    cast: Cast, record_id: str, tmp_path: Path
) -> None:
    def drop(document: dict[str, Any]) -> None:
        del document["transaction"]

    refuses(lying_doctor(cast, _record_json(drop)), record_id, tmp_path, "transaction")


def test_a_gateway_with_another_ledger_key_than_pinned_is_refused(
    cast: Cast, record_id: str, tmp_path: Path
) -> None:
    pins = LedgerPins()
    pins.check_or_pin(cast.url, SigningKey.generate().verify_key)
    with cast.client(cast.doctor, pins=pins) as doctor:
        with pytest.raises(VerificationFailed, match="not signed"):
            doctor.fetch(record_id, tmp_path / "out.pdf")
        with pytest.raises(VerificationFailed, match="pinned"):
            doctor.ledger_head()
    assert list(tmp_path.iterdir()) == []


# --- uploads ------------------------------------------------------------------------------


def test_an_upload_whose_stored_hash_differs_is_refused(cast: Cast) -> None:
    def lie(document: dict[str, Any]) -> None:
        document["sha256"] = "0" * 64

    lying = LyingGateway(on_path("/v1/blobs", json_change(lie)))
    system = cast.client(cast.system, transport=lying)
    with system, pytest.raises(VerificationFailed, match="another SHA-256"):
        system.upload(io.BytesIO(REPORT), pseudonym=cast.pseudonym, category="lab-results")


def test_an_upload_receipt_with_a_bad_proof_is_refused(cast: Cast) -> None:
    def lie(document: dict[str, Any]) -> None:
        _flip_proof(document["receipt"])

    system = cast.client(
        cast.system, transport=LyingGateway(on_path("/v1/records", json_change(lie)))
    )
    with system, pytest.raises(VerificationFailed, match="inclusion proof"):
        system.upload(io.BytesIO(REPORT), pseudonym=cast.pseudonym, category="lab-results")


# --- a rewritten or forked log ------------------------------------------------------------


def _forged_head(cast: Cast, head: dict[str, Any], *, grow: int) -> dict[str, Any]:
    """A tree head signed with the real ledger key (as a compromised gateway could) over a
    root that is not the log's."""
    from envelope import IdentityKeys, load_key_file

    ledger_keys = load_key_file(cast.data_dir / "ledger.key")
    assert isinstance(ledger_keys, IdentityKeys)
    real = Block.from_json(head)
    forged = Block.signed(
        ledger_keys.signing_key,
        height=real.height + grow,
        previous_hash=real.previous_hash,
        tree_size=real.tree_size + grow,
        root=hashlib.sha256(b"another history").digest(),
        timestamp=real.timestamp,
    )
    return forged.to_json()


@pytest.mark.parametrize("grow", [0, 3])
def test_a_head_that_does_not_extend_the_one_seen_is_refused(cast: Cast, grow: int) -> None:
    pins = LedgerPins()
    with cast.client(cast.doctor, pins=pins) as honest:
        seen = honest.ledger_head()
    assert seen.tree_head is not None
    real_head = seen.tree_head.to_json()

    def fork(document: dict[str, Any]) -> None:
        document["tree_head"] = _forged_head(cast, real_head, grow=grow)

    lying = LyingGateway(on_path("/v1/ledger/head", json_change(fork)))
    doctor = cast.client(cast.doctor, pins=pins, transport=lying)
    with doctor, pytest.raises(VerificationFailed, match="rewritten or forked"):
        doctor.ledger_head()


def test_a_growing_log_is_followed_with_consistency_proofs(cast: Cast) -> None:
    pins = LedgerPins()
    with cast.client(cast.doctor, pins=pins) as doctor:
        first = doctor.ledger_head().tree_head
        with cast.client(cast.system) as system:
            system.upload(io.BytesIO(REPORT), pseudonym=cast.pseudonym, category="lab-results")
        second = doctor.ledger_head().tree_head
    assert first is not None
    assert second is not None
    assert second.tree_size > first.tree_size
    assert pins.head(cast.url) == (second.tree_size, second.root)
