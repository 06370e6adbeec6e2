"""Break-glass calls: the patient's opt-in, a clinician's act, the review queue.

Opting in signs the patient's `break_glass_policy` and deposits, sealed to the hospital's
emergency identity, the scoped keys of the chosen categories for every month the policy
covers (ehrgate.emergency says how the hospital uses them for a clinician). A clinician's
act and an auditor's review are signed by the caller; each answer's receipt is checked.
"""

from __future__ import annotations

from collections.abc import Iterable

from ehrgate._client.directory import Directory
from ehrgate._client.session import Session, TimeLike, items, ledger_now, ledger_time
from ehrgate._client.trust import Trust
from ehrgate.errors import MalformedAnswer, UsageError
from ehrgate.models import BreakGlassSession, Receipt
from envelope import EnvelopeError, HybridPublicKey, b64decode, seal_scoped_share
from envelope.scoped import months
from envelope.scopedshare import MAX_SHARE_SEEDS
from ledger.wire import builders
from ledger.wire.scoped import grant_months
from ledger.wire.transactions import Transaction


class BreakGlass:
    """The calls about break-glass access."""

    def __init__(self, session: Session, trust: Trust, directory: Directory) -> None:
        self._session = session
        self._trust = trust
        self._directory = directory

    def _submit(self, path: str, tx: Transaction) -> tuple[dict[str, object], Receipt]:
        answer = self._session.post(path, tx.to_json())
        return answer, self._trust.receipt(answer, tx)

    def opt_in_break_glass(
        self,
        emergency_identity: str,
        *,
        categories: Iterable[str],
        max_minutes: int,
        until: TimeLike,
        roles: Iterable[str] = ("clinician",),
    ) -> Receipt:
        """Opt in to break-glass access through *emergency_identity* (``name@hospital``)
        until *until*: the policy, then the scoped key share of *categories* for it."""
        patient = self._session.patient_keys("opt in to break-glass access")
        chosen = sorted(set(categories))
        not_before, not_after = ledger_now(), ledger_time(until)
        policy = builders.break_glass_policy(
            patient.identity, pseudonym=patient.pseudonym,
            emergency_identity=emergency_identity, categories=chosen, roles=sorted(set(roles)),
            max_minutes=max_minutes, not_before=not_before, not_after=not_after,
        )  # fmt: skip
        self._submit(f"/v1/patients/{patient.pseudonym}/break-glass-policy", policy)
        first, last = grant_months(not_before, not_after)
        scope = [(category, month) for category in chosen for month in months(first, last)]
        if len(scope) > MAX_SHARE_SEEDS:
            raise UsageError(
                f"the policy covers {len(scope)} (category, month) keys, more than one share "
                f"carries ({MAX_SHARE_SEEDS}): choose fewer categories or an earlier --until"
            )
        enrolled = self._directory.identity_of(emergency_identity)
        try:
            key = HybridPublicKey(b64decode(enrolled.encryption_public_key))
        except EnvelopeError as exc:
            raise MalformedAnswer(f"{emergency_identity}'s enrolled key: {exc}") from exc
        sealed = seal_scoped_share(
            patient.patient_key, pseudonym=patient.pseudonym, grantee_id=enrolled.id,
            grantee_key=key, scope=scope,
        )  # fmt: skip
        share = builders.key_share(
            patient.identity, pseudonym=patient.pseudonym, grantee=enrolled.id,
            sealed_key=sealed, scope=scope,
        )  # fmt: skip
        return self._submit("/v1/key-shares", share)[1]

    def break_glass(
        self,
        pseudonym: str,
        *,
        emergency_identity: str,
        reason: str,
        details: str,
        minutes: int,
    ) -> tuple[BreakGlassSession, Receipt]:
        """Open emergency access to a patient who opted in (clinician)."""
        tx = builders.break_glass(
            self._session.signer(), pseudonym=pseudonym, emergency_identity=emergency_identity,
            reason=reason, details=details, minutes=minutes,
        )  # fmt: skip
        answer, receipt = self._submit("/v1/break-glass", tx)
        return BreakGlassSession.from_json(answer.get("session")), receipt

    def break_glass_session(self, session_id: str) -> BreakGlassSession:
        return BreakGlassSession.from_json(self._session.get(f"/v1/break-glass/{session_id}"))

    def review_queue(self, *, everything: bool = False) -> list[BreakGlassSession]:
        """Sessions awaiting review (auditors and admins); *everything*: reviewed too."""
        answer = self._session.get(
            "/v1/break-glass", {"status": "all" if everything else "pending"}
        )
        return [BreakGlassSession.from_json(item) for item in items(answer, "sessions")]

    def review_break_glass(
        self, session_id: str, *, verdict: str, note: str
    ) -> tuple[BreakGlassSession, Receipt]:
        """Accept or flag a session ("accepted" or "flagged"), with a note."""
        tx = builders.break_glass_review(
            self._session.signer(), session_id=session_id, verdict=verdict, note=note
        )
        answer, receipt = self._submit(f"/v1/break-glass/{session_id}/review", tx)
        return BreakGlassSession.from_json(answer.get("session")), receipt
