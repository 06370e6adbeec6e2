"""Break-glass: the patient's opt-in policy, a clinician's emergency act, and its review.

- `POST /v1/patients/{pseudonym}/break-glass-policy`: a `break_glass_policy` signed by the
  patient (with it, the patient deposits a scoped key share to the emergency identity at
  `POST /v1/key-shares`).
- `POST /v1/break-glass`: a `break_glass` signed by the clinician. Allowed, it opens a
  session the reads of `gateway.access` honour until it ends; the patient is told at once
  (a `break_glass` event). Refused (no opt-in, another hospital, the wrong role), it is
  answered 403 with the rule's words and recorded on the ledger as a denied `access` entry
  of action `break_glass` (`gateway.refusals`), and the patient is told of the attempt.
- `GET /v1/break-glass/{session_id}`: the session, to its invoker, the emergency identity,
  the patient, auditors and admins.
- `GET /v1/break-glass`: the review queue (auditors and admins): sessions not yet reviewed,
  or all with `?status=all`.
- `POST /v1/break-glass/{session_id}/review`: a `break_glass_review` (accepted or flagged)
  signed by an auditor or admin.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import Field

from gateway import emergency
from gateway.access import read_time
from gateway.deps import Caller, CallerDep, require_role
from gateway.errors import Forbidden, GatewayError, NotFound, ValidationFailed
from gateway.events import GatewayEvent
from gateway.models import (
    Pseudonym,
    ReceiptOut,
    SignedTransaction,
    StrictModel,
    problem_responses,
)
from gateway.refusals import audited, is_refusal
from gateway.transactions import parse_signed, submit
from gateway.views import receipt_out
from ledger.wire.clock import format_time
from ledger.wire.emergency import REASONS
from ledger.wire.transactions import Transaction

router = APIRouter(prefix="/v1", tags=["break-glass"], responses=problem_responses(401, 403))

REVIEWERS = ("auditor", "admin")
ReviewerDep = Annotated[Caller, Depends(require_role(*REVIEWERS))]


class SessionOut(StrictModel):
    """A break-glass session: who opened it on whom, why, until when, and its review."""

    session_id: str
    pseudonym: str
    invoker: str
    emergency_identity: str
    hospital: str
    categories: list[str] | str = Field(description="Category names, or 'all'.")
    reason: str = Field(description=f"One of {', '.join(REASONS)}.")
    details: str
    started_at: str
    ends_at: str
    active: bool = Field(description="Whether the session still allows reads now.")
    entry_index: int
    verdict: str | None = Field(description="'accepted' or 'flagged' once reviewed.")
    reviewer: str | None
    review_note: str | None


class SessionOpened(StrictModel):
    """A session with the receipt of the entry that opened or reviewed it."""

    session: SessionOut
    receipt: ReceiptOut


class SessionList(StrictModel):
    sessions: list[SessionOut]


class PolicySet(StrictModel):
    receipt: ReceiptOut


def session_out(session: emergency.Session, now: str) -> SessionOut:
    categories = session.categories
    return SessionOut(
        session_id=session.session_id,
        pseudonym=session.pseudonym,
        invoker=session.invoker,
        emergency_identity=session.emergency_identity,
        hospital=session.hospital,
        categories=categories if isinstance(categories, str) else list(categories),
        reason=session.reason,
        details=session.details,
        started_at=session.started_at,
        ends_at=session.ends_at,
        active=session.live_at(now),
        entry_index=session.entry_index,
        verdict=session.verdict,
        reviewer=session.reviewer,
        review_note=session.review_note,
    )


def _now(caller: Caller) -> str:
    return format_time(read_time(caller.state.clock, caller.backends.ledger))


@router.post(
    "/patients/{pseudonym}/break-glass-policy",
    response_model=PolicySet,
    status_code=201,
)
async def set_policy(
    pseudonym: Pseudonym, transaction: SignedTransaction, caller: CallerDep
) -> PolicySet:
    """Opt in to break-glass access (a `break_glass_policy` signed by the patient)."""
    async with audited(caller, "break_glass_policy") as scope:
        scope.about(pseudonym)
        tx = parse_signed(
            transaction, expected_type="break_glass_policy", principal=caller.principal
        )
        if tx.body.get("pseudonym") != pseudonym:
            raise ValidationFailed("the transaction sets the policy of another pseudonym")
        receipt = await submit(caller.backends, caller.state.metrics, tx)
    return PolicySet(receipt=receipt_out(receipt))


def _tell_patient(caller: Caller, tx: Transaction, outcome: str) -> None:
    """The patient hears of every break-glass act on it, opened or refused."""
    pseudonym = tx.body.get("pseudonym")
    if not isinstance(pseudonym, str) or caller.backends.ledger.patient(pseudonym) is None:
        return
    caller.state.events.emit(
        GatewayEvent(
            kind="break_glass",
            event_id=tx.tx_hash,
            pseudonym=pseudonym,
            at=_now(caller),
            details={
                "outcome": outcome,
                "session_id": str(tx.body.get("session_id", "")),
                "invoker": tx.signer,
                "reason": str(tx.body.get("reason", "")),
            },
        )
    )


@router.post(
    "/break-glass",
    response_model=SessionOpened,
    status_code=201,
    responses=problem_responses(404, 409),
)
async def break_glass(transaction: SignedTransaction, caller: CallerDep) -> SessionOpened:
    """Open emergency access to a patient who opted in (a `break_glass` by the clinician)."""
    tx: Transaction | None = None
    try:
        async with audited(caller, "break_glass") as scope:
            scope.about(transaction.body.get("pseudonym"))
            tx = parse_signed(transaction, expected_type="break_glass", principal=caller.principal)
            receipt = await submit(caller.backends, caller.state.metrics, tx)
    except GatewayError as exc:
        if tx is not None and is_refusal(exc):
            _tell_patient(caller, tx, "refused")
        raise
    opened = emergency.session(caller.backends.ledger, str(tx.body["session_id"]))
    assert opened is not None
    _tell_patient(caller, tx, "opened")
    return SessionOpened(session=session_out(opened, _now(caller)), receipt=receipt_out(receipt))


@router.get("/break-glass", response_model=SessionList)
async def review_queue(
    reviewer: ReviewerDep,
    status: Annotated[
        Literal["pending", "all"],
        Query(description="pending: not yet reviewed (the queue); all: every session."),
    ] = "pending",
) -> SessionList:
    """Break-glass sessions for auditors and admins to review, oldest first."""
    now = _now(reviewer)
    found = emergency.sessions(reviewer.backends.ledger)
    if status == "pending":
        found = [s for s in found if s.verdict is None]
    return SessionList(sessions=[session_out(s, now) for s in found])


SessionId = Annotated[
    str,
    Path(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$",
        min_length=1,
        max_length=200,
        description="The break-glass session's id.",
    ),
]


@router.get(
    "/break-glass/{session_id}", response_model=SessionOut, responses=problem_responses(404)
)
async def get_session(session_id: SessionId, caller: CallerDep) -> SessionOut:
    """One session, for its invoker, its emergency identity, its patient and reviewers."""
    ledger = caller.backends.ledger
    found = emergency.session(ledger, session_id)
    if found is None:
        raise NotFound(f"there is no break-glass session {session_id}")
    patient = ledger.patient(found.pseudonym)
    principal = caller.principal
    if (
        principal.id not in (found.invoker, found.emergency_identity)
        and principal.role not in REVIEWERS
        and (patient is None or patient.identity_id != principal.id)
    ):
        raise Forbidden(
            "only the session's clinician, its emergency identity, the patient, auditors and "
            "admins may see a break-glass session"
        )
    return session_out(found, _now(caller))


@router.post(
    "/break-glass/{session_id}/review",
    response_model=SessionOpened,
    responses=problem_responses(404, 409),
)
async def review(
    session_id: SessionId, transaction: SignedTransaction, caller: CallerDep
) -> SessionOpened:
    """Accept or flag a break-glass act (a `break_glass_review` by an auditor or admin)."""
    ledger = caller.backends.ledger
    async with audited(caller, "break_glass_review") as scope:
        found = emergency.session(ledger, session_id)
        if found is not None:
            scope.about(found.pseudonym)
        if caller.principal.role not in REVIEWERS:
            raise Forbidden("only auditors and admins review break-glass acts")
        tx = parse_signed(
            transaction, expected_type="break_glass_review", principal=caller.principal
        )
        if tx.body.get("session_id") != session_id:
            raise ValidationFailed("the transaction reviews another session than the path names")
        if found is None:
            raise NotFound(f"there is no break-glass session {session_id}")
        receipt = await submit(caller.backends, caller.state.metrics, tx)
    reviewed = emergency.session(ledger, session_id)
    assert reviewed is not None
    return SessionOpened(session=session_out(reviewed, _now(caller)), receipt=receipt_out(receipt))
