"""Identities, patients and consent: transactions signed here, and what they left behind.

Each call builds its ledger transaction with `ledger.wire.builders`, signed with the
caller's own key (the patient's for grants, revocations and key shares), submits it, and
returns only after the receipt proves that very transaction is on the ledger.
"""

from __future__ import annotations

from collections.abc import Iterable

from ehrgate._client.directory import Directory
from ehrgate._client.keys import ScopedKeys
from ehrgate._client.session import Session, TimeLike, items, ledger_now, ledger_time
from ehrgate._client.trust import Trust
from ehrgate.errors import MalformedAnswer, UsageError
from ehrgate.models import AccessEvent, AccessRequest, Patient, Permission, Receipt
from envelope import (
    EnvelopeError,
    HybridPublicKey,
    PublicIdentity,
    StudySecret,
    b64decode,
    seal_scoped_share,
    seal_study_secret,
)
from envelope.scoped import months
from envelope.scopedshare import MAX_SHARE_SEEDS
from ledger.wire import builders
from ledger.wire.rotation import RotationRequest
from ledger.wire.scoped import DEFAULT_MONTHS_AHEAD, grant_months
from ledger.wire.transactions import Transaction


def _categories(categories: Iterable[str] | str) -> list[str] | str:
    return categories if categories == "all" else list(categories)


class Consent:
    """The calls that sign and submit transactions about identities and consent."""

    def __init__(
        self, session: Session, trust: Trust, directory: Directory, keys: ScopedKeys
    ) -> None:
        self._session = session
        self._trust = trust
        self._directory = directory
        self._keys = keys

    def _submit(self, path: str, tx: Transaction) -> tuple[dict[str, object], Receipt]:
        answer = self._session.post(path, tx.to_json())
        return answer, self._trust.receipt(answer, tx)

    def enroll(self, identity: PublicIdentity) -> Receipt:
        """Enroll a clinician, system, auditor or admin (the caller is an admin)."""
        tx = builders.enroll(self._session.signer(), identity)
        return self._submit("/v1/identities", tx)[1]

    def suspend(self, identity_id: str, reason: str) -> Receipt:
        """Suspend an identity at once (the caller is an admin)."""
        tx = builders.suspend(self._session.signer(), identity_id, reason)
        return self._submit(f"/v1/identities/{identity_id}/suspend", tx)[1]

    def reinstate(self, identity_id: str, reason: str) -> Receipt:
        """Lift the suspension of an identity (the caller is an admin)."""
        tx = builders.reinstate(self._session.signer(), identity_id, reason)
        return self._submit(f"/v1/identities/{identity_id}/reinstate", tx)[1]

    def rotate_keys(self, request: RotationRequest) -> Receipt:
        """Replace an identity's keys as its *request* (signed by its old and new keys)
        asks; the caller is an admin, who countersigns. See `ledger.wire.rotation`."""
        tx = builders.rotate_keys(self._session.signer(), request)
        return self._submit(f"/v1/identities/{request.identity_id}/rotate-keys", tx)[1]

    def register_patient(
        self, *, publish_months: int | None = DEFAULT_MONTHS_AHEAD
    ) -> tuple[Patient, Receipt]:
        """Register the patient whose keys this client holds, then publish its record keys
        for the current month and *publish_months* coming ones (None: publish none yet;
        uploads need them, see `publish_keys`)."""
        patient = self._session.patient_keys("register")
        tx = builders.register_patient(
            patient.identity,
            patient.pseudonym,
            patient.patient_key.record_public_key().to_bytes(),
        )
        answer = self._session.post("/v1/patients", tx.to_json(), authenticated=False)
        registered = Patient.from_json(answer.get("patient")), self._trust.receipt(answer, tx)
        if publish_months is not None:
            self._keys.publish_keys(publish_months)
        return registered

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
        *not_after* (exclusive). A share right needs *study_id* and *anonymise*; it also
        publishes the patient's pseudonym in that study and seals the study secret to the
        grantee (envelope.research), so that the grantee can export to the study."""
        patient = self._session.patient_keys("grant")
        rights = list(rights)
        study_pseudonym, sealed_secret = None, None
        if study_id is not None and "share" in rights:
            secret = StudySecret.derive(patient.patient_key, study_id)
            grantee_id, grantee_key = self._enrolled_encryption_key(grantee)
            study_pseudonym = secret.pseudonym
            sealed_secret = seal_study_secret(
                secret, pseudonym=patient.pseudonym, grantee_id=grantee_id,
                grantee_key=grantee_key,
            )  # fmt: skip
        tx = builders.grant(
            patient.identity,
            pseudonym=patient.pseudonym,
            grantee=grantee,
            rights=list(rights),
            categories=_categories(categories),
            not_before=ledger_time(not_before) if not_before is not None else ledger_now(),
            not_after=ledger_time(not_after),
            study_id=study_id,
            anonymise=anonymise,
            study_pseudonym=study_pseudonym,
            study_secret=sealed_secret,
            permission_id=permission_id,
        )
        answer, receipt = self._submit("/v1/permissions", tx)
        return Permission.from_json(answer.get("permission")), receipt

    def revoke(self, permission_id: str) -> tuple[Permission, Receipt]:
        """Revoke one of the patient's permissions, at once."""
        patient = self._session.patient_keys("revoke")
        tx = builders.revoke(
            patient.identity, pseudonym=patient.pseudonym, permission_id=permission_id
        )
        answer, receipt = self._submit(f"/v1/permissions/{permission_id}/revoke", tx)
        return Permission.from_json(answer.get("permission")), receipt

    def permissions(self, pseudonym: str | None = None) -> list[Permission]:
        """Permissions on a patient: all of them for the patient, the caller's own else."""
        pseudonym = self._session.pseudonym(pseudonym)
        answer = self._session.get(f"/v1/patients/{pseudonym}/permissions")
        return [Permission.from_json(item) for item in items(answer, "permissions")]

    def share_key(self, grantee: str | PublicIdentity, *, until: TimeLike | None = None) -> Receipt:
        """Share with *grantee* the keys of exactly what its read permissions cover: their
        categories x every month from each one's not_before to its not_after (or *until*,
        if earlier). Never K. Sealed to the grantee's encryption key, deposited on the
        ledger with its scope; a later share replaces the earlier one.

        Give a `PublicIdentity` obtained out of band to avoid trusting the gateway for the
        grantee's key; with an id, the key enrolled on the ledger is used.
        """
        patient = self._session.patient_keys("share its key")
        if isinstance(grantee, PublicIdentity):
            grantee_id, grantee_key = grantee.id, grantee.encryption_key
        else:
            grantee_id, grantee_key = self._enrolled_encryption_key(grantee)
        scope = self._share_scope(patient.pseudonym, grantee_id, until)
        try:
            sealed = seal_scoped_share(
                patient.patient_key,
                pseudonym=patient.pseudonym,
                grantee_id=grantee_id,
                grantee_key=grantee_key,
                scope=scope,
            )
        except EnvelopeError as exc:
            raise UsageError(str(exc)) from exc
        tx = builders.key_share(
            patient.identity,
            pseudonym=patient.pseudonym,
            grantee=grantee_id,
            sealed_key=sealed,
            scope=scope,
        )
        return self._submit("/v1/key-shares", tx)[1]

    def _share_scope(
        self, pseudonym: str, grantee_id: str, until: TimeLike | None
    ) -> list[tuple[str, str]]:
        now = ledger_now()
        grants = [
            p
            for p in self.permissions(pseudonym)
            if p.grantee == grantee_id
            and not p.revoked
            and "read" in p.rights
            and p.not_after > now
        ]
        if not grants:
            raise UsageError(
                f"{grantee_id} has no read permission on these records that has not ended: "
                "grant one first (`ehrgate patient grant`), then share the key"
            )
        last_wanted = ledger_time(until)[:7] if until is not None else None
        categories = self._keys.categories() if any(p.categories == "all" for p in grants) else []
        scope: set[tuple[str, str]] = set()
        for permission in grants:
            first, last = grant_months(permission.not_before, permission.not_after)
            last = min(last, last_wanted) if last_wanted is not None else last
            if last < first:
                continue
            names = categories if permission.categories == "all" else permission.categories
            try:
                scope.update((c, m) for c in names for m in months(first, last))
            except EnvelopeError as exc:
                raise UsageError(f"permission {permission.permission_id}: {exc}") from exc
        if not scope:
            raise UsageError(f"the permissions of {grantee_id} start after {last_wanted}")
        if len(scope) > MAX_SHARE_SEEDS:
            raise UsageError(
                f"the permissions of {grantee_id} cover {len(scope)} (category, month) keys, "
                f"more than one share carries ({MAX_SHARE_SEEDS}): share up to an earlier "
                "month with until= (`--until`), and share again later"
            )
        return sorted(scope)

    def _enrolled_encryption_key(self, identity_id: str) -> tuple[str, HybridPublicKey]:
        enrolled = self._directory.current_identity(identity_id)
        try:
            return enrolled.id, HybridPublicKey(b64decode(enrolled.encryption_public_key))
        except EnvelopeError as exc:
            raise MalformedAnswer(f"{identity_id}'s enrolled encryption key: {exc}") from exc

    def request_access(
        self,
        pseudonym: str,
        *,
        rights: Iterable[str],
        categories: Iterable[str] | str,
        reason: str,
        not_before: TimeLike | None = None,
        not_after: TimeLike | None = None,
    ) -> tuple[AccessRequest, Receipt]:
        """Ask a patient for rights (clinician, system or auditor), for the period
        *not_before* to *not_after* if given (both or neither)."""
        if (not_before is None) != (not_after is None):
            raise UsageError("a requested period needs both a start and an end")
        tx = builders.access_request(
            self._session.signer(),
            pseudonym=pseudonym,
            rights=list(rights),
            categories=_categories(categories),
            reason=reason,
            not_before=ledger_time(not_before) if not_before is not None else None,
            not_after=ledger_time(not_after) if not_after is not None else None,
        )
        answer, receipt = self._submit("/v1/access-requests", tx)
        return AccessRequest.from_json(answer.get("access_request")), receipt

    def access_requests(
        self, pseudonym: str | None = None, *, pending: bool = False
    ) -> list[AccessRequest]:
        """Requests for rights made to the patient (the patient only), oldest first; only
        those not answered yet with *pending*."""
        pseudonym = self._session.pseudonym(pseudonym)
        params = {"pending": "true"} if pending else None
        answer = self._session.get(f"/v1/patients/{pseudonym}/access-requests", params)
        return [AccessRequest.from_json(item) for item in items(answer, "access_requests")]

    def _pending_request(self, request_id: str) -> AccessRequest:
        for request in self.access_requests():
            if request.request_id == request_id:
                if not request.pending:
                    raise UsageError(f"access request {request_id} was already {request.decision}")
                return request
        raise UsageError(f"there is no access request {request_id} to this patient")

    def approve_request(
        self,
        request_id: str,
        *,
        not_after: TimeLike | None = None,
        not_before: TimeLike | None = None,
        permission_id: str | None = None,
    ) -> tuple[AccessRequest, Permission, Receipt]:
        """Approve a request with the grant it asks for (the patient only): the requester,
        rights and categories of the request, for its period, or from *not_before*
        (default now) to *not_after* when the request names none or the patient shortens
        it. The grant is committed first, then the signed answer that names it. With
        *permission_id*, an existing grant to the requester is named instead (to finish an
        approval whose answer did not reach the gateway)."""
        patient = self._session.patient_keys("approve an access request")
        request = self._pending_request(request_id)
        if permission_id is not None:
            found = [p for p in self.permissions() if p.permission_id == permission_id]
            if not found:
                raise UsageError(f"the patient has no permission {permission_id}")
            permission = found[0]
        else:
            start = not_before if not_before is not None else request.not_before
            end = not_after if not_after is not None else request.not_after
            if end is None:
                raise UsageError(
                    "the request names no period: say until when the grant holds (not_after)"
                )
            permission, _ = self.grant(
                request.requester,
                rights=request.rights,
                categories=request.categories,
                not_before=start,
                not_after=end,
            )
        tx = builders.answer_request(
            patient.identity,
            pseudonym=patient.pseudonym,
            request_id=request_id,
            decision="approved",
            permission_id=permission.permission_id,
        )
        answer, receipt = self._submit(f"/v1/access-requests/{request_id}/answer", tx)
        return AccessRequest.from_json(answer.get("access_request")), permission, receipt

    def decline_request(self, request_id: str) -> tuple[AccessRequest, Receipt]:
        """Decline a request (the patient only); the answer is signed and on the ledger."""
        patient = self._session.patient_keys("decline an access request")
        tx = builders.answer_request(
            patient.identity,
            pseudonym=patient.pseudonym,
            request_id=request_id,
            decision="declined",
        )
        answer, receipt = self._submit(f"/v1/access-requests/{request_id}/answer", tx)
        return AccessRequest.from_json(answer.get("access_request")), receipt

    def audit(self, pseudonym: str | None = None) -> list[AccessEvent]:
        """Who read what of the patient's, when, allowed or denied, and why (the patient)."""
        pseudonym = self._session.pseudonym(pseudonym)
        answer = self._session.get(f"/v1/patients/{pseudonym}/audit")
        return [AccessEvent.from_json(item) for item in items(answer, "events")]
