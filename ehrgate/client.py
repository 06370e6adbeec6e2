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

`Client` is the one public face; the work is done by the parts in `ehrgate._client`
(trust, directory, consent, upload, fetch), which share one session.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import httpx

from ehrgate._client.consent import Consent
from ehrgate._client.directory import Directory
from ehrgate._client.fetch import Fetcher
from ehrgate._client.session import Session, TimeLike
from ehrgate._client.trust import ENTRY_PAGE, Trust
from ehrgate._client.upload import READ_SIZE, SPOOL_LIMIT, Uploads
from ehrgate._http import Connection, RetryPolicy
from ehrgate.models import (
    AccessEvent,
    AccessRequest,
    Fetched,
    Identity,
    LedgerHead,
    Patient,
    Permission,
    Receipt,
    Record,
    RecordProof,
    Uploaded,
)
from ehrgate.trust import LedgerPins, parse_ledger_key
from envelope import IdentityKeys, PatientKey, PatientKeys, PublicIdentity, VerifyKey

if TYPE_CHECKING:
    from ledger.verify import VerifyReport

__all__ = ["ENTRY_PAGE", "READ_SIZE", "SPOOL_LIMIT", "Client", "TimeLike"]


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
        patient: PatientKeys | None = None
        if isinstance(identity, PatientKeys):
            patient = identity
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
        session = Session(self._connection, identity, patient, patient_key)
        trusted = parse_ledger_key(ledger_key) if isinstance(ledger_key, str) else ledger_key
        self._trust = Trust(session, trusted, pins if pins is not None else LedgerPins())
        self._directory = Directory(session)
        self._consent = Consent(session, self._trust, self._directory)
        self._uploads = Uploads(session, self._trust, self._directory)
        self._fetcher = Fetcher(session, self._trust, self._directory)

    # --- lifetime ------------------------------------------------------------------------

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the ledger's key, heads and entries -------------------------------------------

    def ledger_key(self) -> VerifyKey:
        """The ledger key tree heads must be signed with (given, pinned, or pinned now)."""
        return self._trust.ledger_key()

    def ledger_head(self) -> LedgerHead:
        """The latest signed tree head, its signature checked with the trusted key."""
        return self._trust.ledger_head()

    def ledger_entries(self, start: int = 0) -> Iterator[dict[str, Any]]:
        """Every log entry `{index, block, tx}` from *start* (auditor or admin)."""
        return self._trust.ledger_entries(start)

    def ledger_blocks(self, start: int = 0) -> Iterator[dict[str, Any]]:
        """Every signed block (tree head) from height *start* (auditor or admin)."""
        return self._trust.ledger_blocks(start)

    def verify_ledger(
        self, *, replay: bool = True, progress: Callable[[int], None] | None = None
    ) -> VerifyReport:
        """Mirror the whole ledger from the gateway and verify it offline (auditor, admin).

        Rechecks every signature, the rules, the hash chain and the Merkle tree; the tree
        heads must be signed by the trusted (given or pinned) ledger key.
        """
        return self._trust.verify_ledger(replay=replay, progress=progress)

    # --- identities -----------------------------------------------------------------------

    def whoami(self) -> Identity:
        return self._directory.whoami()

    def identity_of(self, identity_id: str) -> Identity:
        """An enrolled identity's role and public keys."""
        return self._directory.identity_of(identity_id)

    def enroll(self, identity: PublicIdentity) -> Receipt:
        """Enroll a clinician, system, auditor or admin (the caller is an admin)."""
        return self._consent.enroll(identity)

    def suspend(self, identity_id: str, reason: str) -> Receipt:
        """Suspend an identity at once (the caller is an admin)."""
        return self._consent.suspend(identity_id, reason)

    # --- patients and consent -------------------------------------------------------------

    def register_patient(self) -> tuple[Patient, Receipt]:
        """Register the patient whose keys this client holds (needs no login)."""
        return self._consent.register_patient()

    def patient(self, pseudonym: str) -> Patient:
        """A registered patient's record public key (what uploads are sealed to)."""
        return self._directory.patient(pseudonym)

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
        return self._consent.grant(
            grantee,
            rights=rights,
            categories=categories,
            not_after=not_after,
            not_before=not_before,
            study_id=study_id,
            anonymise=anonymise,
            permission_id=permission_id,
        )

    def revoke(self, permission_id: str) -> tuple[Permission, Receipt]:
        """Revoke one of the patient's permissions, at once."""
        return self._consent.revoke(permission_id)

    def permissions(self, pseudonym: str | None = None) -> list[Permission]:
        """Permissions on a patient: all of them for the patient, the caller's own else."""
        return self._consent.permissions(pseudonym)

    def share_key(self, grantee: str | PublicIdentity) -> Receipt:
        """Seal K to *grantee*'s encryption key and deposit it on the ledger.

        Give a `PublicIdentity` obtained out of band to avoid trusting the gateway for the
        grantee's key; with an id, the key enrolled on the ledger is used.
        """
        return self._consent.share_key(grantee)

    def request_access(
        self,
        pseudonym: str,
        *,
        rights: Iterable[str],
        categories: Iterable[str] | str,
        reason: str,
    ) -> tuple[AccessRequest, Receipt]:
        """Ask a patient for rights (clinician, system or auditor)."""
        return self._consent.request_access(
            pseudonym, rights=rights, categories=categories, reason=reason
        )

    def access_requests(self, pseudonym: str | None = None) -> list[AccessRequest]:
        """Requests for rights made to the patient (the patient only)."""
        return self._consent.access_requests(pseudonym)

    def audit(self, pseudonym: str | None = None) -> list[AccessEvent]:
        """Who read what of the patient's, when, allowed or denied, and why (the patient)."""
        return self._consent.audit(pseudonym)

    # --- records ---------------------------------------------------------------------------

    def records(self, pseudonym: str, category: str | None = None) -> list[Record]:
        """A patient's records of *category*, or of every category the caller may read."""
        return self._fetcher.records(pseudonym, category)

    def record(self, record_id: str) -> RecordProof:
        """A record's metadata, proved to be on the ledger: its signed transaction is the
        leaf the inclusion proof leads from, under a tree head the ledger key signed."""
        return self._fetcher.record(record_id)

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
        return self._uploads.upload(
            source,
            pseudonym=pseudonym,
            category=category,
            filename=filename,
            content_type=content_type,
            record_id=record_id,
            created_at=created_at,
        )

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
        return self._fetcher.fetch(record_id, Path(destination), overwrite=overwrite)

    def fetch_bytes(self, record_id: str) -> tuple[Fetched, bytes]:
        """Like `fetch`, into memory (for small records)."""
        return self._fetcher.fetch_bytes(record_id)
