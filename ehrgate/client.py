"""`ehrgate.Client`: the Python SDK for an ehrgate gateway.

    from ehrgate import Client
    from envelope import load_key_file

    with Client("http://127.0.0.1:8000", load_key_file("dr-grey.key")) as client:
        for record in client.records(pseudonym, category="lab-results"):
            client.fetch(record.record_id, "reports/")

Everything the patient consents to (grants, revocations, key shares) and every record is a
ledger transaction signed here, with the caller's own key; the gateway only forwards it.
Files are sealed here before they leave and opened here after every check passed: the
signed tree head (against the pinned ledger key), the inclusion proof, the record's signed
transaction, the capsule's hash and signature, the body's SHA-256 and each of its segments.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import mimetypes
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

import httpx

from ehrgate._http import Connection, RetryPolicy
from ehrgate.errors import UsageError, VerificationFailed, map_transport_errors
from ehrgate.models import (
    AccessEvent,
    AccessRequest,
    Fetched,
    Identity,
    LedgerHead,
    MalformedAnswer,
    Patient,
    Permission,
    Receipt,
    Record,
    RecordProof,
    TreeHead,
    Uploaded,
)
from ehrgate.trust import LedgerPins, parse_ledger_key
from ehrgate.verification import check_tree_head, record_transaction, verify_receipt
from envelope import (
    EnvelopeError,
    HybridPublicKey,
    IdentityKeys,
    InvalidEnvelope,
    InvalidSignature,
    OpenedCapsule,
    PatientKey,
    PatientKeys,
    PublicIdentity,
    Sealer,
    VerifyKey,
    b64decode,
    b64encode,
    open_capsule,
    open_key_share,
    seal_key_share,
    verify_capsule_signature,
)
from ledger.errors import ProofError
from ledger.wire import builders
from ledger.wire.clock import format_time
from ledger.wire.ids import LEDGER_ID
from ledger.wire.merkle import verify_consistency
from ledger.wire.transactions import Transaction

if TYPE_CHECKING:
    from ledger.verify import VerifyReport

# Bodies up to this size are sealed in memory first, so that the upload announces their
# SHA-256 and length and can be repeated after a connection failure; larger ones are sealed
# while they stream (memory stays at about one read).
SPOOL_LIMIT = 16 * 1024 * 1024
READ_SIZE = 1024 * 1024
ENTRY_PAGE = 1000

TimeLike = datetime | str


def _time(value: TimeLike) -> str:
    """The ledger's time form of an aware datetime or an ISO 8601 text with a zone."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError as exc:
            raise UsageError(f"{value!r} is not an ISO 8601 time") from exc
    else:
        moment = value
    if moment.tzinfo is None:
        raise UsageError(f"the time {value} needs a time zone (e.g. Z or +01:00)")
    return format_time(moment)


def _now() -> str:
    return format_time(datetime.now(UTC))


class Client:
    """A connection to one gateway, acting as one identity.

    *identity*: the caller's `IdentityKeys`, or a patient's `PatientKeys` (which also
    give K); None for calls that need no login (registration uses the patient's keys).
    *patient_key*: K, for a caller that holds it otherwise (else fetched as a key share).
    *ledger_key*: the ledger public key to trust (base64 or VerifyKey); without it the key
    is pinned on first use in *pins* (in memory unless the pins have a file).
    *transport*: an httpx transport (tests use `httpx.MockTransport`).
    """

    def __init__(
        self,
        url: str,
        identity: IdentityKeys | PatientKeys | None = None,
        *,
        patient_key: PatientKey | None = None,
        ledger_key: str | VerifyKey | None = None,
        pins: LedgerPins | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        max_connections: int = 32,
    ) -> None:
        self._patient: PatientKeys | None = None
        if isinstance(identity, PatientKeys):
            self._patient = identity
            patient_key = patient_key or identity.patient_key
            identity = identity.identity
        self.identity: IdentityKeys | None = identity
        self._connection = Connection(
            url,
            identity,
            timeout=timeout,
            retry=retry or RetryPolicy(),
            transport=transport,
            max_connections=max_connections,
        )
        self.url = self._connection.url
        self._trusted_key = (
            parse_ledger_key(ledger_key) if isinstance(ledger_key, str) else (ledger_key)
        )
        self._pins = pins if pins is not None else LedgerPins()
        self._patient_keys: dict[str, PatientKey] = {}
        if self._patient is not None and patient_key is not None:
            self._patient_keys[self._patient.pseudonym] = patient_key
        self._own_patient_key = patient_key
        self._patients: dict[str, Patient] = {}
        self._identities: dict[str, Identity] = {}
        self._lock = threading.Lock()

    # --- lifetime ------------------------------------------------------------------------

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- helpers -------------------------------------------------------------------------

    def _get(
        self, path: str, params: dict[str, Any] | None = None, *, authenticated: bool = True
    ) -> Any:
        response = self._connection.request("GET", path, params=params, authenticated=authenticated)
        return self._json(response)

    def _post(self, path: str, body: Any, *, authenticated: bool = True) -> Any:
        response = self._connection.request("POST", path, json=body, authenticated=authenticated)
        return self._json(response)

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise MalformedAnswer(
                f"the gateway answered {response.request.url.path} with something not JSON"
            ) from exc

    def _signer(self) -> IdentityKeys:
        if self.identity is None:
            raise UsageError("this call needs an identity: give a key file (--as KEYFILE)")
        return self.identity

    def _patient_keys_or_fail(self, what: str) -> PatientKeys:
        if self._patient is None:
            raise UsageError(f"only a patient can {what}: use the patient's key file")
        return self._patient

    def _own_pseudonym(self, pseudonym: str | None) -> str:
        if pseudonym is not None:
            return pseudonym
        if self._patient is None:
            raise UsageError("give the patient's pseudonym (--patient PSEUDONYM)")
        return self._patient.pseudonym

    def _receipt(self, data: Any, tx: Transaction | None) -> Receipt:
        receipt = Receipt.from_json(data.get("receipt") if isinstance(data, dict) else None)
        verify_receipt(receipt, self.ledger_key(), tx_hash=tx.tx_hash if tx else None)
        return receipt

    def _submit(self, path: str, tx: Transaction) -> Any:
        return self._post(path, tx.to_json())

    # --- the ledger's key, heads and entries -------------------------------------------

    def ledger_key(self) -> VerifyKey:
        """The ledger key tree heads must be signed with (given, pinned, or pinned now)."""
        if self._trusted_key is not None:
            return self._trusted_key
        pinned = self._pins.pinned(self.url)
        if pinned is not None:
            return pinned
        offered = self._get("/v1/ledger/head", authenticated=False).get("ledger_public_key")
        if not isinstance(offered, str):
            raise MalformedAnswer("the gateway's ledger head has no ledger_public_key")
        return self._pins.check_or_pin(self.url, parse_ledger_key(offered))

    def ledger_head(self) -> LedgerHead:
        """The latest signed tree head, its signature checked with the trusted key."""
        data = self._get("/v1/ledger/head", authenticated=False)
        offered = data.get("ledger_public_key") if isinstance(data, dict) else None
        if not isinstance(offered, str):
            raise MalformedAnswer("the gateway's ledger head has no ledger_public_key")
        offered_key = parse_ledger_key(offered)
        if self._trusted_key is not None:
            if offered_key != self._trusted_key:
                raise VerificationFailed(
                    "the gateway's ledger key is not the one given to trust "
                    f"({offered} vs {b64encode(self._trusted_key.to_bytes())})"
                )
            key = self._trusted_key
        else:
            key = self._pins.check_or_pin(self.url, offered_key)
        raw_head = data.get("tree_head")
        head = TreeHead.from_json(raw_head) if raw_head is not None else None
        if head is not None:
            check_tree_head(head, key)
            self._check_consistency(head)
        return LedgerHead(head, b64encode(key.to_bytes()))

    def _check_consistency(self, head: TreeHead) -> None:
        """A verified *head* must extend the largest head seen before (or be extended by
        it): otherwise the gateway rewrote or forked its log."""
        known = self._pins.head(self.url)
        if known is None:
            self._pins.advance(self.url, head.tree_size, head.root)
            return
        known_size, known_root = known
        if head.tree_size == known_size:
            if head.root != known_root:
                raise VerificationFailed(
                    f"the gateway shows two different trees of {known_size} entries: its "
                    "log was rewritten or forked"
                )
            return
        older, newer = sorted(
            [(known_size, known_root), (head.tree_size, head.root)], key=lambda pair: pair[0]
        )
        try:
            answer = self._get(
                "/v1/ledger/consistency",
                {"old_size": older[0], "new_size": newer[0]},
                authenticated=False,
            )
            proof = [bytes.fromhex(node) for node in answer["proof"]]
            verify_consistency(
                older[0], newer[0], bytes.fromhex(older[1]), bytes.fromhex(newer[1]), proof
            )
        except (UsageError, ProofError, KeyError, TypeError, ValueError) as exc:
            raise VerificationFailed(
                f"the tree of {newer[0]} entries does not extend the tree of {older[0]} "
                f"entries seen before: the log was rewritten or forked ({exc})"
            ) from exc
        self._pins.advance(self.url, head.tree_size, head.root)

    def _pages(self, path: str, field: str, start: int) -> Iterator[dict[str, Any]]:
        next_start: int | None = start
        while next_start is not None:
            page = self._get(path, {"start": next_start, "limit": ENTRY_PAGE})
            items = page.get(field) if isinstance(page, dict) else None
            if not isinstance(items, list):
                raise MalformedAnswer(f"the gateway's {path} page has no {field!r}")
            yield from items
            following = page.get("next_start")
            if following is not None and (
                not isinstance(following, int) or following <= next_start
            ):
                raise MalformedAnswer(f"the gateway's {path} page goes backwards")
            next_start = following

    def ledger_entries(self, start: int = 0) -> Iterator[dict[str, Any]]:
        """Every log entry `{index, block, tx}` from *start* (auditor or admin)."""
        return self._pages("/v1/ledger/entries", "entries", start)

    def ledger_blocks(self, start: int = 0) -> Iterator[dict[str, Any]]:
        """Every signed block (tree head) from height *start* (auditor or admin)."""
        return self._pages("/v1/ledger/blocks", "blocks", start)

    def verify_ledger(
        self, *, replay: bool = True, progress: Callable[[int], None] | None = None
    ) -> VerifyReport:
        """Mirror the whole ledger from the gateway and verify it offline (auditor, admin).

        Rechecks every signature, the rules, the hash chain and the Merkle tree; the tree
        heads must be signed by the trusted (given or pinned) ledger key.
        """
        from ledger.exported import ExportSource
        from ledger.verify import verify

        head = self.ledger_head()
        key = parse_ledger_key(head.ledger_public_key)
        count = head.tree_head.tree_size if head.tree_head is not None else 0
        source = ExportSource(self.ledger_entries(), self.ledger_blocks(), count=count)
        return verify(source, ledger_key=key, replay=replay, progress=progress)

    # --- identities -----------------------------------------------------------------------

    def whoami(self) -> Identity:
        return Identity.from_json(self._get("/v1/identities/me"))

    def identity_of(self, identity_id: str) -> Identity:
        """An enrolled identity's role and public keys."""
        with self._lock:
            known = self._identities.get(identity_id)
        if known is not None:
            return known
        found = Identity.from_json(self._get(f"/v1/identities/{identity_id}"))
        with self._lock:
            self._identities[identity_id] = found
        return found

    def enroll(self, identity: PublicIdentity) -> Receipt:
        """Enroll a clinician, system, auditor or admin (the caller is an admin)."""
        tx = builders.enroll(self._signer(), identity)
        return self._receipt(self._submit("/v1/identities", tx), tx)

    def suspend(self, identity_id: str, reason: str) -> Receipt:
        """Suspend an identity at once (the caller is an admin)."""
        tx = builders.suspend(self._signer(), identity_id, reason)
        return self._receipt(self._submit(f"/v1/identities/{identity_id}/suspend", tx), tx)

    # --- patients and consent -------------------------------------------------------------

    def register_patient(self) -> tuple[Patient, Receipt]:
        """Register the patient whose keys this client holds (needs no login)."""
        patient = self._patient_keys_or_fail("register")
        tx = builders.register_patient(
            patient.identity,
            patient.pseudonym,
            patient.patient_key.record_public_key().to_bytes(),
        )
        answer = self._post("/v1/patients", tx.to_json(), authenticated=False)
        return Patient.from_json(answer.get("patient")), self._receipt(answer, tx)

    def patient(self, pseudonym: str) -> Patient:
        """A registered patient's record public key (what uploads are sealed to)."""
        with self._lock:
            known = self._patients.get(pseudonym)
        if known is not None:
            return known
        found = Patient.from_json(self._get(f"/v1/patients/{pseudonym}"))
        if found.pseudonym != pseudonym:
            raise MalformedAnswer("the gateway answered for another pseudonym")
        with self._lock:
            self._patients[pseudonym] = found
        return found

    def grant(
        self,
        grantee: str,
        *,
        rights: Iterable[str],
        categories: Iterable[str] | str,
        not_after: TimeLike,
        not_before: TimeLike | None = None,
        study_id: str | None = None,
        anonymise: bool | None = None,
        permission_id: str | None = None,
    ) -> tuple[Permission, Receipt]:
        """Grant *grantee* rights on categories from *not_before* (default now) until
        *not_after* (exclusive). A share right needs *study_id* and *anonymise*."""
        patient = self._patient_keys_or_fail("grant")
        tx = builders.grant(
            patient.identity,
            pseudonym=patient.pseudonym,
            grantee=grantee,
            rights=list(rights),
            categories=categories if categories == "all" else list(categories),
            not_before=_time(not_before) if not_before is not None else _now(),
            not_after=_time(not_after),
            study_id=study_id,
            anonymise=anonymise,
            permission_id=permission_id,
        )
        answer = self._submit("/v1/permissions", tx)
        return Permission.from_json(answer.get("permission")), self._receipt(answer, tx)

    def revoke(self, permission_id: str) -> tuple[Permission, Receipt]:
        """Revoke one of the patient's permissions, at once."""
        patient = self._patient_keys_or_fail("revoke")
        tx = builders.revoke(
            patient.identity, pseudonym=patient.pseudonym, permission_id=permission_id
        )
        answer = self._submit(f"/v1/permissions/{permission_id}/revoke", tx)
        return Permission.from_json(answer.get("permission")), self._receipt(answer, tx)

    def permissions(self, pseudonym: str | None = None) -> list[Permission]:
        """Permissions on a patient: all of them for the patient, the caller's own else."""
        pseudonym = self._own_pseudonym(pseudonym)
        answer = self._get(f"/v1/patients/{pseudonym}/permissions")
        return [Permission.from_json(item) for item in _list(answer, "permissions")]

    def share_key(self, grantee: str | PublicIdentity) -> Receipt:
        """Seal K to *grantee*'s encryption key and deposit it on the ledger.

        Give a `PublicIdentity` obtained out of band to avoid trusting the gateway for the
        grantee's key; with an id, the key enrolled on the ledger is used.
        """
        patient = self._patient_keys_or_fail("share its key")
        if isinstance(grantee, PublicIdentity):
            grantee_id, grantee_key = grantee.id, grantee.encryption_key
        else:
            enrolled = self.identity_of(grantee)
            grantee_id = enrolled.id
            try:
                grantee_key = HybridPublicKey(b64decode(enrolled.encryption_public_key))
            except EnvelopeError as exc:
                raise MalformedAnswer(f"{grantee}'s enrolled encryption key: {exc}") from exc
        sealed = seal_key_share(
            patient.patient_key,
            pseudonym=patient.pseudonym,
            grantee_id=grantee_id,
            grantee_key=grantee_key,
        )
        tx = builders.key_share(
            patient.identity, pseudonym=patient.pseudonym, grantee=grantee_id, sealed_key=sealed
        )
        return self._receipt(self._submit("/v1/key-shares", tx), tx)

    def request_access(
        self,
        pseudonym: str,
        *,
        rights: Iterable[str],
        categories: Iterable[str] | str,
        reason: str,
    ) -> tuple[AccessRequest, Receipt]:
        """Ask a patient for rights (clinician, system or auditor)."""
        tx = builders.access_request(
            self._signer(),
            pseudonym=pseudonym,
            rights=list(rights),
            categories=categories if categories == "all" else list(categories),
            reason=reason,
        )
        answer = self._submit("/v1/access-requests", tx)
        return AccessRequest.from_json(answer.get("access_request")), self._receipt(answer, tx)

    def access_requests(self, pseudonym: str | None = None) -> list[AccessRequest]:
        """Requests for rights made to the patient (the patient only)."""
        pseudonym = self._own_pseudonym(pseudonym)
        answer = self._get(f"/v1/patients/{pseudonym}/access-requests")
        return [AccessRequest.from_json(item) for item in _list(answer, "access_requests")]

    def audit(self, pseudonym: str | None = None) -> list[AccessEvent]:
        """Who read what of the patient's, when, allowed or denied, and why (the patient)."""
        pseudonym = self._own_pseudonym(pseudonym)
        answer = self._get(f"/v1/patients/{pseudonym}/audit")
        return [AccessEvent.from_json(item) for item in _list(answer, "events")]

    # --- records ---------------------------------------------------------------------------

    def records(self, pseudonym: str, category: str | None = None) -> list[Record]:
        """A patient's records of *category*, or of every category the caller may read."""
        params = {"category": category} if category is not None else None
        answer = self._get(f"/v1/patients/{pseudonym}/records", params)
        return [Record.from_json(item) for item in _list(answer, "records")]

    def record(self, record_id: str) -> RecordProof:
        """A record's metadata, proved to be on the ledger: its signed transaction is the
        leaf the inclusion proof leads from, under a tree head the ledger key signed."""
        answer = self._get(f"/v1/records/{record_id}")
        record = Record.from_json(answer.get("record") if isinstance(answer, dict) else None)
        if record.record_id != record_id:
            raise VerificationFailed(f"asked for record {record_id}, got {record.record_id}")
        raw_tx = answer.get("transaction")
        if raw_tx is None:
            raise VerificationFailed(
                "the gateway did not send the record's signed transaction, so its inclusion "
                "proof cannot be tied to the record"
            )
        tx = record_transaction(raw_tx, record)
        receipt = self._receipt(answer, tx)
        if receipt.index != record.entry_index:
            raise VerificationFailed(
                f"the proof is for entry {receipt.index}, the record is entry {record.entry_index}"
            )
        self._check_consistency(receipt.tree_head)
        return RecordProof(record, receipt, b64encode(self.ledger_key().to_bytes()))

    def upload(
        self,
        source: str | os.PathLike[str] | IO[bytes],
        *,
        pseudonym: str,
        category: str,
        filename: str | None = None,
        content_type: str | None = None,
        record_id: str | None = None,
        created_at: TimeLike | None = None,
    ) -> Uploaded:
        """Seal *source* (a path or a binary stream) to the patient and commit it as a record.

        One call: the sealed body is streamed to `POST /v1/blobs`, then a `record` signed
        here is committed with the capsule; its receipt is verified before returning.
        *record_id* may be chosen by the caller (the importer does, to be idempotent);
        `RecordExists` is raised when the ledger already has it.
        """
        signer = self._signer()
        if isinstance(source, str | os.PathLike):
            path = Path(source)
            name = filename or path.name
            try:
                stream: IO[bytes] = path.open("rb")
            except FileNotFoundError as exc:
                raise UsageError(f"no file at {path}") from exc
            except OSError as exc:
                raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
        else:
            stream, name = source, filename or "document"
        media_type = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        created = _time(created_at) if created_at is not None else _now()
        with contextlib.ExitStack() as cleanup:
            if stream is not source:
                cleanup.enter_context(stream)
            patient = self.patient(pseudonym)
            try:
                sealer = Sealer(
                    recipients=[(pseudonym, HybridPublicKey(b64decode(patient.record_public_key)))],
                    filename=name,
                    content_type=media_type,
                    pseudonym=pseudonym,
                    category=category,
                    created_at=created,
                    uploader_id=signer.id,
                    signer=signer,
                )
            except EnvelopeError as exc:
                raise UsageError(str(exc)) from exc
            cleanup.callback(sealer.close)
            blob = self._upload_body(stream, sealer)
        result = sealer.result
        if blob.get("sha256") != result.body_sha256 or blob.get("size") != result.body_size:
            raise VerificationFailed(
                "the gateway stored a body with another SHA-256 or size than the one sealed"
            )
        locators = blob.get("locators")
        if not isinstance(locators, list) or not all(isinstance(x, str) for x in locators):
            raise MalformedAnswer("the gateway's blob answer has no locators")
        tx = builders.record(
            signer,
            pseudonym=pseudonym,
            category=category,
            body_sha256=result.body_sha256,
            size=result.body_size,
            locators=locators,
            capsule_sha256=result.capsule_sha256,
            content_type=media_type,
            created_at=created,
            record_id=record_id,
        )
        answer = self._post(
            "/v1/records", {"transaction": tx.to_json(), "capsule": b64encode(result.capsule)}
        )
        record = Record.from_json(answer.get("record"))
        receipt = self._receipt(answer, tx)
        return Uploaded(record, receipt, name, result.plaintext_sha256, result.plaintext_size)

    def _upload_body(self, stream: IO[bytes], sealer: Sealer) -> dict[str, Any]:
        pieces: list[bytes] = []
        held = 0
        exhausted = False
        try:
            while held <= SPOOL_LIMIT:
                chunk = stream.read(READ_SIZE)
                if not chunk:
                    exhausted = True
                    break
                for piece in sealer.update_segments(chunk):
                    pieces.append(bytes(piece))
                    held += len(piece)
            if exhausted:
                pieces.extend(bytes(piece) for piece in sealer.finalize_segments())
        except OSError as exc:
            raise UsageError(f"cannot read the file to upload: {exc.strerror or exc}") from exc
        if exhausted:
            body = b"".join(pieces)
            answer = self._connection.request(
                "POST",
                "/v1/blobs",
                params={"sha256": hashlib.sha256(body).hexdigest()},
                content=body,
                headers={"Content-Type": "application/octet-stream"},
            )
        else:

            def streamed() -> Iterator[bytes]:
                yield from pieces
                pieces.clear()
                try:
                    while chunk := stream.read(READ_SIZE):
                        for piece in sealer.update_segments(chunk):
                            yield bytes(piece)
                except OSError as exc:
                    raise UsageError(f"cannot read the file to upload: {exc}") from exc
                for piece in sealer.finalize_segments():
                    yield bytes(piece)

            answer = self._connection.request(
                "POST",
                "/v1/blobs",
                content=streamed(),
                headers={"Content-Type": "application/octet-stream"},
            )
        data = self._json(answer)
        if not isinstance(data, dict):
            raise MalformedAnswer("the gateway's blob answer is not an object")
        return data

    def _patient_key_for(self, pseudonym: str) -> PatientKey:
        with self._lock:
            known = self._patient_keys.get(pseudonym)
        if known is not None:
            return known
        record_key = self.patient(pseudonym).record_public_key
        held = self._own_patient_key
        if held is not None and b64encode(held.record_public_key().to_bytes()) == record_key:
            return held
        reader = self._signer()
        share = self._get(f"/v1/patients/{pseudonym}/key-share")
        try:
            record_public_key = HybridPublicKey(b64decode(share["record_public_key"]))
            sealed = b64decode(share["sealed_key"])
        except (KeyError, TypeError, EnvelopeError) as exc:
            raise MalformedAnswer("the gateway's key share answer is malformed") from exc
        if b64encode(record_public_key.to_bytes()) != record_key:
            raise VerificationFailed("the key share names another record key than the patient's")
        try:
            patient_key = open_key_share(
                sealed,
                reader.encryption_key,
                pseudonym=pseudonym,
                grantee_id=reader.id,
                record_public_key=record_public_key,
            )
        except InvalidEnvelope as exc:
            raise VerificationFailed(
                "the key share does not open with this identity's key, or does not give the "
                "patient's key"
            ) from exc
        with self._lock:
            self._patient_keys[pseudonym] = patient_key
        return patient_key

    def _capsule(self, record: Record, patient_key: PatientKey) -> OpenedCapsule:
        response = self._connection.request("GET", f"/v1/records/{record.record_id}/capsule")
        capsule = response.content
        if hashlib.sha256(capsule).hexdigest() != record.capsule_sha256:
            raise VerificationFailed("the capsule's SHA-256 is not the one on the ledger")
        try:
            opened = open_capsule(capsule, patient_key.record_private_key(), record.pseudonym)
        except InvalidEnvelope as exc:
            raise VerificationFailed("the capsule does not open with the patient's key") from exc
        if opened.body_sha256 != record.body_sha256 or opened.body_size != record.size:
            raise VerificationFailed("the capsule describes another body than the ledger's")
        if opened.signer_id != record.uploader or opened.uploader_id != record.writer:
            raise VerificationFailed("the capsule names another uploader than the ledger")
        if opened.signer_id == LEDGER_ID:
            signer_key = self.ledger_key()
        else:
            try:
                signer_key = VerifyKey(
                    b64decode(self.identity_of(opened.signer_id).signing_public_key, length=32)
                )
            except EnvelopeError as exc:
                raise MalformedAnswer(f"{opened.signer_id}'s enrolled signing key") from exc
        try:
            verify_capsule_signature(
                opened,
                signer_key,
                pseudonym=record.pseudonym,
                category=record.category,
                created_at=record.created_at,
            )
        except InvalidSignature as exc:
            raise VerificationFailed(
                f"the uploader's signature in the capsule does not verify: {exc}"
            ) from exc
        return opened

    def _fetch_into(self, record_id: str, sink: IO[bytes]) -> tuple[RecordProof, OpenedCapsule]:
        """Write the verified plaintext to *sink*; on any failure its content is garbage
        and must be discarded (the callers do)."""
        proof = self.record(record_id)
        record = proof.record
        opened = self._capsule(record, self._patient_key_for(record.pseudonym))
        opener = opened.body_opener()
        digest = hashlib.sha256()
        received = 0
        try:
            with (
                self._connection.stream("GET", f"/v1/records/{record_id}/body") as response,
                map_transport_errors(self.url),
            ):
                for chunk in response.iter_bytes(READ_SIZE):
                    digest.update(chunk)
                    received += len(chunk)
                    if received > record.size:
                        raise VerificationFailed("the body is longer than the ledger records")
                    for piece in opener.update_pieces(chunk):
                        sink.write(piece)
            if received != record.size or digest.hexdigest() != record.body_sha256:
                raise VerificationFailed(
                    f"the body's SHA-256 or size ({received} bytes) is not the ledger's"
                )
            sink.write(opener.finalize())
        except InvalidEnvelope as exc:
            raise VerificationFailed(
                "a segment of the body failed to decrypt and verify; nothing was kept"
            ) from exc
        return proof, opened

    def fetch(
        self,
        record_id: str,
        destination: str | os.PathLike[str],
        *,
        overwrite: bool = False,
    ) -> Fetched:
        """Fetch, verify and decrypt a record to *destination* (a file, or a directory to
        put it in under the file name the uploader gave).

        The plaintext goes to a temporary file next to the destination, which is renamed
        into place only after every check passed; on any failure nothing is left.
        """
        target = Path(destination)
        directory = target if target.is_dir() else target.parent
        temporary = directory / f".ehrgate-{record_id[:40]}.{os.urandom(6).hex()}.partial"
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise UsageError(f"cannot write in {directory}: {exc.strerror}") from exc
        try:
            with os.fdopen(fd, "wb") as sink:
                proof, opened = self._fetch_into(record_id, sink)
                sink.flush()
                os.fsync(sink.fileno())
            if target.is_dir():
                target = target / _safe_name(opened.filename, record_id)
            _publish(temporary, target, overwrite=overwrite)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
        return Fetched(
            record=proof.record,
            receipt=proof.receipt,
            path=target,
            filename=opened.filename,
            content_type=opened.content_type,
            plaintext_sha256=opened.plaintext_sha256,
            plaintext_size=opened.plaintext_size,
            signer_id=opened.signer_id,
        )

    def fetch_bytes(self, record_id: str) -> tuple[Fetched, bytes]:
        """Like `fetch`, into memory (for small records)."""
        sink = io.BytesIO()
        proof, opened = self._fetch_into(record_id, sink)
        fetched = Fetched(
            record=proof.record,
            receipt=proof.receipt,
            path=Path(opened.filename),
            filename=opened.filename,
            content_type=opened.content_type,
            plaintext_sha256=opened.plaintext_sha256,
            plaintext_size=opened.plaintext_size,
            signer_id=opened.signer_id,
        )
        return fetched, sink.getvalue()


def _safe_name(filename: str, record_id: str) -> str:
    """The uploader's file name, unless it could surprise (hidden, dots, no name at all)."""
    name = Path(filename).name
    if not name or name.startswith(".") or name != filename.strip():
        return f"record-{record_id}"
    return name


def _list(answer: Any, field: str) -> list[Any]:
    items = answer.get(field) if isinstance(answer, dict) else None
    if not isinstance(items, list):
        raise MalformedAnswer(f"the gateway's answer has no list {field!r}")
    return items


def _publish(temporary: Path, target: Path, *, overwrite: bool) -> None:
    try:
        if overwrite:
            os.replace(temporary, target)
        else:
            os.link(temporary, target)
    except FileExistsError as exc:
        raise UsageError(
            f"{target} already exists; choose another name or allow replacing it (--force)"
        ) from exc
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror}") from exc
