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

`Client` is the one public face. Each of its calls is a method of one of the parts in
`ehrgate._client` (trust, directory, consent, upload, fetch), which share one session; the
parts' methods carry the signatures and the documentation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

import httpx

from ehrgate._client.consent import Consent
from ehrgate._client.directory import Directory
from ehrgate._client.emergency import BreakGlass
from ehrgate._client.erasure import Erasures
from ehrgate._client.fetch import Fetcher
from ehrgate._client.keys import ScopedKeys
from ehrgate._client.notifications import Notifications
from ehrgate._client.rekey import Rekeying
from ehrgate._client.research import Research
from ehrgate._client.session import Session, TimeLike
from ehrgate._client.staged import Staged, StagedUploads
from ehrgate._client.trust import ENTRY_PAGE, Trust
from ehrgate._client.upload import READ_SIZE, SPOOL_LIMIT, Uploads
from ehrgate._http import Connection, RetryPolicy
from ehrgate.trust import LedgerPins, parse_ledger_key
from ehrgate.witness_policy import WitnessPolicy
from envelope import IdentityKeys, PatientKey, PatientKeys, VerifyKey

__all__ = ["ENTRY_PAGE", "READ_SIZE", "SPOOL_LIMIT", "Client", "Staged", "TimeLike"]

P = ParamSpec("P")
R = TypeVar("R")
Part = TypeVar("Part")


def _delegate(
    part: str, method: Callable[Concatenate[Part, P], R]
) -> Callable[Concatenate[Any, P], R]:
    """A `Client` method that calls *method* on the client's part named *part*, with the
    same signature and documentation."""

    @functools.wraps(method)
    def call(client: Any, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return method(getattr(client, part), *args, **kwargs)

    return call


class Client:
    """A connection to one gateway, acting as one identity.

    *identity*: the caller's `IdentityKeys`, or a patient's `PatientKeys` (which also
    give K); None for calls that need no login (registration uses the patient's keys).
    *patient_key*: K, for a caller that holds it otherwise (else fetched as a key share).
    *ledger_key*: the ledger public key to trust (base64 or VerifyKey); without it the key
    is pinned on first use in *pins* (in memory unless the pins have a file).
    *witness_policy*: k of n witnesses that must cosign a checkpoint covering every tree
    head a read relies on (`ehrgate.witness_policy`); None: checkpoints are not required.
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
        witness_policy: WitnessPolicy | None = None,
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
        self._trust = Trust(
            session, trusted, pins if pins is not None else LedgerPins(), witness_policy
        )
        self._directory = Directory(session)
        self._keys = ScopedKeys(session, self._trust, self._directory)
        self._consent = Consent(session, self._trust, self._directory, self._keys)
        self._uploads = Uploads(session, self._trust, self._directory, self._keys)
        self._staged = StagedUploads(self._uploads)
        self._fetcher = Fetcher(session, self._trust, self._directory)
        self._erasures = Erasures(session, self._trust)
        self._notifications = Notifications(session)
        self._break_glass = BreakGlass(session, self._trust, self._directory)
        self._research = Research(session, self._trust, self._directory, self._fetcher)
        self._rekeying = Rekeying(session, self._keys, self._consent, self._fetcher)

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # the ledger's key, heads and entries
    ledger_key = _delegate("_trust", Trust.ledger_key)
    ledger_head = _delegate("_trust", Trust.ledger_head)
    ledger_checkpoint = _delegate("_trust", Trust.ledger_checkpoint)
    ledger_entries = _delegate("_trust", Trust.ledger_entries)
    ledger_blocks = _delegate("_trust", Trust.ledger_blocks)
    verify_ledger = _delegate("_trust", Trust.verify_ledger)

    # identities and patients
    whoami = _delegate("_directory", Directory.whoami)
    identity_of = _delegate("_directory", Directory.identity_of)
    patient = _delegate("_directory", Directory.patient)
    enroll = _delegate("_consent", Consent.enroll)
    suspend = _delegate("_consent", Consent.suspend)
    reinstate = _delegate("_consent", Consent.reinstate)
    rotate_keys = _delegate("_consent", Consent.rotate_keys)
    identity_keys = _delegate("_directory", Directory.identity_keys)
    register_patient = _delegate("_consent", Consent.register_patient)

    # scoped record keys
    categories = _delegate("_keys", ScopedKeys.categories)
    publish_keys = _delegate("_keys", ScopedKeys.publish_keys)
    published_keys = _delegate("_keys", ScopedKeys.published)
    rotate_patient_key = _delegate("_rekeying", Rekeying.rotate_patient_key)
    rekey_status = _delegate("_rekeying", Rekeying.rekey_status)

    # consent
    grant = _delegate("_consent", Consent.grant)
    revoke = _delegate("_consent", Consent.revoke)
    permissions = _delegate("_consent", Consent.permissions)
    share_key = _delegate("_consent", Consent.share_key)
    request_access = _delegate("_consent", Consent.request_access)
    access_requests = _delegate("_consent", Consent.access_requests)
    approve_request = _delegate("_consent", Consent.approve_request)
    decline_request = _delegate("_consent", Consent.decline_request)
    audit = _delegate("_consent", Consent.audit)
    opt_in_break_glass = _delegate("_break_glass", BreakGlass.opt_in_break_glass)
    break_glass = _delegate("_break_glass", BreakGlass.break_glass)
    break_glass_session = _delegate("_break_glass", BreakGlass.break_glass_session)
    review_queue = _delegate("_break_glass", BreakGlass.review_queue)
    review_break_glass = _delegate("_break_glass", BreakGlass.review_break_glass)
    export_to_study = _delegate("_research", Research.export_to_study)
    study_exports = _delegate("_research", Research.study_exports)
    open_study_export = _delegate("_research", Research.open_study_export)

    # notifications
    add_webhook = _delegate("_notifications", Notifications.add_webhook)
    webhooks = _delegate("_notifications", Notifications.webhooks)
    remove_webhook = _delegate("_notifications", Notifications.remove_webhook)
    set_email = _delegate("_notifications", Notifications.set_email)
    remove_email = _delegate("_notifications", Notifications.remove_email)
    webhook_key = _delegate("_notifications", Notifications.webhook_key)
    dead_letters = _delegate("_notifications", Notifications.dead_letters)
    retry_dead_letter = _delegate("_notifications", Notifications.retry_dead_letter)

    # records
    records = _delegate("_fetcher", Fetcher.records)
    record = _delegate("_fetcher", Fetcher.record)
    upload = _delegate("_uploads", Uploads.upload)
    stage_upload = _delegate("_staged", StagedUploads.stage_upload)
    fetch = _delegate("_fetcher", Fetcher.fetch)
    fetch_bytes = _delegate("_fetcher", Fetcher.fetch_bytes)
    fetch_into = _delegate("_fetcher", Fetcher.fetch_into)
    erase = _delegate("_erasures", Erasures.erase)
