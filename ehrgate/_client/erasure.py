"""Erasure: an `erase` signed here (by the patient, or an admin with the legal reason),
its receipt verified, and what the gateway deleted because of it."""

from __future__ import annotations

from typing import Any

from ehrgate._client.session import Session, items
from ehrgate._client.trust import Trust
from ehrgate.errors import MalformedAnswer, UsageError
from ehrgate.models import Erased, PendingDeletion
from ledger.wire import builders

MAX_REASON = 500


def _reason(reason: str | None) -> str | None:
    if reason is None:
        return None
    if not reason.strip() or len(reason) > MAX_REASON:
        raise UsageError(
            f"the reason must be a non-blank legal reason of at most {MAX_REASON} characters"
        )
    return reason


class Erasures:
    """The calls that erase records."""

    def __init__(self, session: Session, trust: Trust) -> None:
        self._session = session
        self._trust = trust

    def erase(
        self,
        record_id: str | None = None,
        *,
        pseudonym: str | None = None,
        reason: str | None = None,
    ) -> Erased:
        """Erase one record (*record_id*) or, without it, every record of the patient.

        A patient erases its own records (*pseudonym*: its own, by default). An admin
        erases any patient's, naming the *pseudonym* and the legal *reason* (required of
        an admin; kept on the ledger, so it must name no person). Every copy of the
        capsules and bodies is deleted; `Erased.pending` lists any a store could not
        delete yet (`ehrgate gc` finishes them). Erasing a record twice raises Conflict.
        """
        reason = _reason(reason)
        signer = self._session.signer()
        pseudonym = self._session.pseudonym(pseudonym)
        tx = builders.erase(signer, pseudonym=pseudonym, record_id=record_id, reason=reason)
        path = (
            f"/v1/records/{record_id}/erase"
            if record_id is not None
            else f"/v1/patients/{pseudonym}/erase"
        )
        answer = self._session.post(path, tx.to_json())
        receipt = self._trust.receipt(answer, tx)
        return _erased(answer, receipt)


def _erased(answer: dict[str, Any], receipt: Any) -> Erased:
    try:
        return Erased(
            scope=str(answer["scope"]),
            pseudonym=str(answer["pseudonym"]),
            record_ids=tuple(str(r) for r in answer["record_ids"]),
            receipt=receipt,
            deleted=int(answer["deleted"]),
            pending=tuple(PendingDeletion.from_json(p) for p in items(answer, "pending")),
            complete=bool(answer["complete"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedAnswer(f"the gateway's answer to an erasure lacks {exc}") from exc
