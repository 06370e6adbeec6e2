"""Reading records: each proved on the ledger, opened with the patient's key, checked whole.

A record's metadata is believed once its signed transaction is the leaf its inclusion proof
leads from (and, with a witness policy, its tree head is covered by a checkpoint k of the
witnesses cosigned); its capsule once its hash is the ledger's and the uploader's signature in it
verifies; its body once every segment opens and its hash and size are the ledger's. The
plaintext goes to a temporary file that is put in place only after all of that.

A fetch opens the record in one audited request (GET /v1/records/{id}/open: the record and
its proof, the capsule, the caller's key share and a ticket) and reads the body with the
ticket, under the one `access` entry of the open. A gateway without that route (an older
one answers 404) is read through the old routes: the record, its capsule and its body (and
the key share on the first record of a patient), each audited apart. Either way the same
checks are made.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from ehrgate._client.directory import Directory
from ehrgate._client.session import Session, items
from ehrgate._client.trust import Trust
from ehrgate.errors import (
    MalformedAnswer,
    NotFound,
    RecordErased,
    UsageError,
    VerificationFailed,
    map_transport_errors,
)
from ehrgate.files import publish
from ehrgate.models import Fetched, Record, RecordProof
from ehrgate.verification import record_transaction
from envelope import (
    EnvelopeError,
    HybridPublicKey,
    InvalidEnvelope,
    InvalidSignature,
    OpenedCapsule,
    PatientKey,
    ScopedSeeds,
    VerifyKey,
    b64decode,
    b64encode,
    open_key_share,
    open_scoped_share,
    open_with_patient_key,
    verify_capsule_signature,
)
from ledger.errors import LedgerError
from ledger.wire.ids import LEDGER_ID
from ledger.wire.transactions import Transaction

READ_SIZE = 1024 * 1024


class PlaintextSink(Protocol):
    """Where a fetch writes the plaintext: a binary file, or anything with `write`."""

    def write(self, data: bytes, /) -> object: ...


_NO_ROUTE = "there is no resource at"
"""How a gateway answers a path it has no route for (an older one, for the open route)."""


class Fetcher:
    """Finds, proves and opens records for one client."""

    def __init__(self, session: Session, trust: Trust, directory: Directory) -> None:
        self._session = session
        self._trust = trust
        self._directory = directory
        self._patient_keys = _PatientKeys(session, directory)
        self._no_open_route = False

    def seeds_of(self, pseudonym: str) -> KeyHolder:
        """The caller's key for *pseudonym*: K, or the scoped seeds of its key share."""
        return self._patient_keys.of(pseudonym)

    def use_patient_key(self, pseudonym: str, key: PatientKey) -> None:
        """Open the patient's own records with *key* (its K after a rotation)."""
        self._patient_keys.keep(pseudonym, key)

    def records(self, pseudonym: str, category: str | None = None) -> list[Record]:
        """A patient's records of *category*, or of every category the caller may read."""
        params = {"category": category} if category is not None else None
        answer = self._session.get(f"/v1/patients/{pseudonym}/records", params)
        return [Record.from_json(item) for item in items(answer, "records")]

    def record(self, record_id: str) -> RecordProof:
        """A record's metadata, proved to be on the ledger: its signed transaction is the
        leaf the inclusion proof leads from, under a tree head the ledger key signed."""
        return self._prove(record_id, self._session.get(f"/v1/records/{record_id}"))

    def _prove(self, record_id: str, answer: Any, checkpoint: bytes | None = None) -> RecordProof:
        """The record of a gateway's *answer* (GET /v1/records/{id} or its open), proved;
        *checkpoint*: a cosigned checkpoint the answer carried, tried first for a policy;
        the answer's `consistency` proof, if any, is used for the head when it fits."""
        record = Record.from_json(answer.get("record") if isinstance(answer, dict) else None)
        if record.record_id != record_id:
            raise VerificationFailed(f"asked for record {record_id}, got {record.record_id}")
        raw_tx = answer.get("transaction")
        if raw_tx is None:
            raise VerificationFailed(
                "the gateway did not send the record's signed transaction, so its inclusion "
                "proof cannot be tied to the record"
            )
        committed = record
        if answer.get("rekey") is not None:
            committed = self._rekeyed(record, answer["rekey"], raw_tx)
        receipt = self._trust.receipt(answer, record_transaction(raw_tx, committed))
        if receipt.index != record.entry_index:
            raise VerificationFailed(
                f"the proof is for entry {receipt.index}, the record is entry {record.entry_index}"
            )
        self._trust.check_consistency(receipt.tree_head, offered=answer.get("consistency"))
        self._trust.require_witnessed(receipt.tree_head, offered=checkpoint)
        return RecordProof(record, receipt, b64encode(self._trust.ledger_key().to_bytes()))

    def _rekeyed(self, record: Record, proof: Any, raw_tx: Any) -> Record:
        """Check the rekey that set *record*'s current capsule: signed by the patient with
        its enrolled key, on the ledger (receipt), for this record and this capsule. Returns
        the record as committed (with the capsule its record transaction names)."""
        try:
            tx = Transaction.from_json(proof["transaction"])
            committed_capsule = raw_tx["body"]["capsule_sha256"]
        except (KeyError, TypeError, LedgerError) as exc:
            raise VerificationFailed("the record's rekey proof is malformed") from exc
        body = tx.body
        if tx.type != "rekey" or body.get("record_id") != record.record_id:
            raise VerificationFailed("the rekey proof is not a rekey of this record")
        if body.get("capsule_sha256") != record.capsule_sha256:
            raise VerificationFailed("the record's capsule is not the one its rekey names")
        patient = self._directory.patient(record.pseudonym)
        if tx.signer != patient.identity_id:
            raise VerificationFailed("the record's rekey is not signed by its patient")
        signer = self._directory.identity_of(patient.identity_id)
        try:
            tx.verify_signature(b64decode(signer.signing_public_key, length=32))
        except (LedgerError, EnvelopeError) as exc:
            raise VerificationFailed("the rekey's signature is not the patient's") from exc
        receipt = self._trust.receipt(proof, tx)
        if receipt.index <= record.entry_index:
            raise VerificationFailed("the rekey proof comes before the record it rekeys")
        return dataclasses.replace(record, capsule_sha256=str(committed_capsule))

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
                proof, opened, entry = self._fetch_into(record_id, sink)
                sink.flush()
                os.fsync(sink.fileno())
            if target.is_dir():
                target = target / _safe_name(opened.filename, record_id)
            publish(temporary, target, replace=overwrite)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
        return _fetched(proof, opened, target, entry)

    def fetch_bytes(self, record_id: str) -> tuple[Fetched, bytes]:
        """Like `fetch`, into memory (for small records)."""
        sink = io.BytesIO()
        proof, opened, entry = self._fetch_into(record_id, sink)
        return _fetched(proof, opened, Path(opened.filename), entry), sink.getvalue()

    def fetch_into(
        self,
        record_id: str,
        sink: PlaintextSink,
        *,
        opened: Callable[[Fetched], None] | None = None,
    ) -> Fetched:
        """Like `fetch`, writing the plaintext to *sink* segment by segment as the body
        arrives (to pass a record on without holding it whole).

        Each segment is authenticated before it is written, and the last one only after
        the body's SHA-256 and size (the ledger's) and the plaintext's (the capsule's)
        were checked: a sink that received the last write holds a verified whole. After
        an exception, what it received must be discarded. *opened*, if given, is called
        once the record is proved and its capsule opened, before the first write, with
        what `fetch` returns (`path` is the uploader's file name): the plaintext's size
        and content type, say, for an HTTP answer's headers."""

        def started(proof: RecordProof, capsule: OpenedCapsule, index: int | None) -> None:
            if opened is not None:
                opened(_fetched(proof, capsule, Path(capsule.filename), index))

        # pieces as they arrive, not a megabyte at a time: the sink passes them on sooner
        proof, capsule, entry = self._fetch_into(record_id, sink, started, read_size=None)
        return _fetched(proof, capsule, Path(capsule.filename), entry)

    def _fetch_into(
        self,
        record_id: str,
        sink: PlaintextSink,
        started: Callable[[RecordProof, OpenedCapsule, int | None], None] | None = None,
        read_size: int | None = READ_SIZE,
    ) -> tuple[RecordProof, OpenedCapsule, int | None]:
        """Write the verified plaintext to *sink*; on any failure its content is garbage
        and must be discarded (the callers do). The third value is the ledger index of the
        `access` entry that audited the whole read (None from a gateway without the open
        route, which audits each of the old requests)."""
        opened = self._open(record_id)
        if opened is None:
            proof, capsule = self._opened_by_old_routes(record_id)
            body_path, params, entry = f"/v1/records/{record_id}/body", None, None
        else:
            proof, capsule, ticket, entry = opened
            body_path, params = f"/v1/records/{record_id}/open/body", {"ticket": ticket}
        if started is not None:
            started(proof, capsule, entry)
        self._read_body(proof.record, capsule, body_path, params, sink, read_size)
        return proof, capsule, entry

    def _ask_open(self, record_id: str) -> Any:
        """The gateway's answer to GET /v1/records/{id}/open; None if it has no such route
        (an older gateway), or if it found no such record (the old route then says so)."""
        if self._no_open_route:
            return None
        params: dict[str, Any] = {}
        if self._trust.policy is not None:
            params["cosignatures"] = self._trust.policy.quorum
        known = self._trust.known_size()
        if known is not None:
            params["known_size"] = known  # the consistency proof then comes with the open
        try:
            return self._session.get(f"/v1/records/{record_id}/open", params or None)
        except NotFound as exc:
            if isinstance(exc, RecordErased):
                raise
            # An older gateway's 404 says it has no such resource: the route is not asked
            # for again.
            if _NO_ROUTE in exc.message:
                self._no_open_route = True
            return None

    def _open(self, record_id: str) -> tuple[RecordProof, OpenedCapsule, str, int] | None:
        """Open *record_id* in one audited request (GET /v1/records/{id}/open): the record
        proved, the capsule opened and checked, the body ticket and the `access` entry.
        None if the gateway has no such route (an older gateway): then the old routes."""
        answer = self._ask_open(record_id)
        if answer is None:
            return None
        if not isinstance(answer, dict):
            raise MalformedAnswer("the gateway's open answer is not an object")
        checkpoint = answer.get("checkpoint")
        if checkpoint is not None and not isinstance(checkpoint, str):
            raise MalformedAnswer("the gateway's open answer has a malformed checkpoint")
        proof = self._prove(
            record_id, answer, checkpoint.encode("utf-8") if checkpoint is not None else None
        )
        try:
            capsule = b64decode(answer["capsule"])
            ticket = answer["ticket"]
            entry = answer["access_entry"]["index"]
        except (KeyError, TypeError, EnvelopeError) as exc:
            raise MalformedAnswer("the gateway's open answer is malformed") from exc
        if not isinstance(ticket, str) or not isinstance(entry, int):
            raise MalformedAnswer("the gateway's open answer is malformed")
        share = answer.get("key_share")
        record = proof.record
        try:
            opened = self._capsule(record, self._patient_keys.of(record.pseudonym, share), capsule)
        except VerificationFailed:
            # Seeds kept from an earlier share may predate a wider one: take the share the
            # open carried (or fetch it, if it carried none).
            if not self._patient_keys.forget_seeds(record.pseudonym):
                raise
            opened = self._capsule(record, self._patient_keys.of(record.pseudonym, share), capsule)
        return proof, opened, ticket, entry

    def _opened_by_old_routes(self, record_id: str) -> tuple[RecordProof, OpenedCapsule]:
        """The record proved and its capsule opened through GET /v1/records/{id} and
        /capsule (and the key share route, when needed): three or four audited requests."""
        proof = self.record(record_id)
        record = proof.record
        try:
            opened = self._capsule(record, self._patient_keys.of(record.pseudonym))
        except VerificationFailed:
            # Seeds kept from an earlier share may predate a wider one: fetch it once more.
            if not self._patient_keys.forget_seeds(record.pseudonym):
                raise
            opened = self._capsule(record, self._patient_keys.of(record.pseudonym))
        return proof, opened

    def _read_body(
        self,
        record: Record,
        opened: OpenedCapsule,
        path: str,
        params: dict[str, Any] | None,
        sink: PlaintextSink,
        read_size: int | None = READ_SIZE,
    ) -> None:
        """Stream the sealed body from *path*, checking its hash and size against the
        ledger and opening each segment, into *sink*."""
        opener = opened.body_opener()
        digest = hashlib.sha256()
        received = 0
        try:
            with (
                self._session.connection.stream("GET", path, params=params) as body,
                map_transport_errors(self._session.url),
            ):
                for chunk in body.iter_bytes(read_size):
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

    def _capsule(
        self, record: Record, patient_key: KeyHolder, capsule: bytes | None = None
    ) -> OpenedCapsule:
        """The record's capsule (*capsule*, or fetched), opened and checked against the
        ledger's record."""
        if capsule is None:
            capsule = self._session.connection.request(
                "GET", f"/v1/records/{record.record_id}/capsule"
            ).content
        if hashlib.sha256(capsule).hexdigest() != record.capsule_sha256:
            raise VerificationFailed("the capsule's SHA-256 is not the one on the ledger")
        try:
            if isinstance(patient_key, ScopedSeeds):
                opened = patient_key.open_capsule(capsule)
            else:
                opened = open_with_patient_key(capsule, patient_key, record.pseudonym)
        except InvalidEnvelope as exc:
            raise VerificationFailed(
                "the capsule does not open with the patient's key, nor with the keys the "
                "patient shared with this identity (its category and month may be outside them)"
            ) from exc
        if opened.body_sha256 != record.body_sha256 or opened.body_size != record.size:
            raise VerificationFailed("the capsule describes another body than the ledger's")
        if opened.signer_id != record.uploader or opened.uploader_id != record.writer:
            raise VerificationFailed("the capsule names another uploader than the ledger")

        def check(key: VerifyKey) -> None:
            verify_capsule_signature(
                opened,
                key,
                pseudonym=record.pseudonym,
                category=record.category,
                created_at=record.created_at,
            )

        try:
            try:
                check(self._signing_key(opened.signer_id))
            except InvalidSignature:
                if opened.signer_id == LEDGER_ID:
                    raise
                # The uploader may have rotated its keys since: the key valid when the
                # record was committed is the one that signed it.
                check(self._signing_key_at(opened.signer_id, record.entry_index))
        except InvalidSignature as exc:
            raise VerificationFailed(
                f"the uploader's signature in the capsule does not verify: {exc}"
            ) from exc
        return opened

    def _signing_key_at(self, signer_id: str, index: int) -> VerifyKey:
        """The key *signer_id* signed with at ledger entry *index* (before a rotation)."""
        try:
            return VerifyKey(b64decode(self._directory.signing_key_at(signer_id, index), length=32))
        except EnvelopeError as exc:
            raise MalformedAnswer(f"{signer_id}'s signing key at entry {index}") from exc

    def _signing_key(self, signer_id: str) -> VerifyKey:
        """The key an uploader signs capsules with: enrolled, or the ledger's own."""
        if signer_id == LEDGER_ID:
            return self._trust.ledger_key()
        enrolled = self._directory.identity_of(signer_id).signing_public_key
        try:
            return VerifyKey(b64decode(enrolled, length=32))
        except EnvelopeError as exc:
            raise MalformedAnswer(f"{signer_id}'s enrolled signing key") from exc


KeyHolder = PatientKey | ScopedSeeds
"""What opens a patient's capsules: K (the patient's own, or an old version 1 share), or
the seeds of the (category, month) keys a scoped share carries."""


class _PatientKeys:
    """The keys of each patient whose records the client reads: its own K, or those of the
    key share the patient deposited for the caller (scoped seeds; K for an old share,
    checked against the registered record key)."""

    def __init__(self, session: Session, directory: Directory) -> None:
        self._session = session
        self._directory = directory
        self._kept: dict[str, KeyHolder] = {}
        self._lock = threading.Lock()
        own = session.patient
        if own is not None and session.patient_key is not None:
            self._kept[own.pseudonym] = session.patient_key

    def keep(self, pseudonym: str, key: PatientKey) -> None:
        """Open *pseudonym*'s records with *key* from now on (the patient's own, rotated)."""
        with self._lock:
            self._kept[pseudonym] = key

    def forget_seeds(self, pseudonym: str) -> bool:
        """Drop kept scoped seeds of *pseudonym* (True if there were some)."""
        with self._lock:
            if isinstance(self._kept.get(pseudonym), ScopedSeeds):
                del self._kept[pseudonym]
                return True
        return False

    def of(self, pseudonym: str, share: Any = None) -> KeyHolder:
        """The key that opens *pseudonym*'s capsules; *share*: the caller's key share as
        an open answer carried it (else it is fetched when needed)."""
        with self._lock:
            known = self._kept.get(pseudonym)
        if known is not None:
            return known
        record_key = self._directory.patient(pseudonym).record_public_key
        held = self._session.patient_key
        if held is not None and b64encode(held.record_public_key().to_bytes()) == record_key:
            return held
        patient_key = self._open_share(pseudonym, record_key, share)
        with self._lock:
            self._kept[pseudonym] = patient_key
        return patient_key

    def _open_share(self, pseudonym: str, record_key: str, share: Any = None) -> KeyHolder:
        reader = self._session.signer()
        if share is None:
            share = self._session.get(f"/v1/patients/{pseudonym}/key-share")
        try:
            record_public_key = HybridPublicKey(b64decode(share["record_public_key"]))
            sealed = b64decode(share["sealed_key"])
        except (KeyError, TypeError, EnvelopeError) as exc:
            raise MalformedAnswer("the gateway's key share answer is malformed") from exc
        if share.get("scope") is not None:
            try:
                # A wrong seed only fails to open: each capsule is checked against the
                # ledger's hash and its uploader's signature before it is believed.
                return open_scoped_share(
                    sealed, reader.encryption_key, pseudonym=pseudonym, grantee_id=reader.id
                )
            except InvalidEnvelope as exc:
                raise VerificationFailed(
                    "the scoped key share does not open with this identity's key"
                ) from exc
        if b64encode(record_public_key.to_bytes()) != record_key:
            raise VerificationFailed("the key share names another record key than the patient's")
        try:
            return open_key_share(
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


def _fetched(
    proof: RecordProof, opened: OpenedCapsule, path: Path, access_entry: int | None
) -> Fetched:
    return Fetched(
        record=proof.record,
        receipt=proof.receipt,
        path=path,
        filename=opened.filename,
        content_type=opened.content_type,
        plaintext_sha256=opened.plaintext_sha256,
        plaintext_size=opened.plaintext_size,
        signer_id=opened.signer_id,
        access_entry=access_entry,
    )


def _safe_name(filename: str, record_id: str) -> str:
    """The uploader's file name, unless it could surprise (hidden, dots, no name at all)."""
    name = Path(filename).name
    if not name or name.startswith(".") or name != filename.strip():
        return f"record-{record_id}"
    return name
