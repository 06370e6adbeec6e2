"""The witness's decision on an `add-checkpoint` request (C2SP tlog-witness).

In the order the protocol gives its answers:

    400  the body is not an old size line, proof lines, an empty line and a checkpoint
    404  the checkpoint's origin is not a log this witness follows
    403  no valid signature from the log's key (or a signature of its key fails)
    400  the old size is larger than the checkpoint's size
    409  the old size is not the size the witness last cosigned (body: that size,
         Content-Type text/x.tlog.size)
    422  the empty tree with another root; a proof when old is 0; a different root at
         the same size; a consistency proof that does not verify
    200  the tree is consistent: the new size is stored, then cosigned; the answer is the
         cosignature line (tlog-cosignature/v1, Ed25519)

A checkpoint that is validly signed by the log but conflicts with the one the witness
holds (422: another root at the same size, or a consistency proof that fails) is kept,
with the one it contradicts, in the `evidence` table. Two roots signed by the log for one
size prove that it forked; a failing proof is kept as a lead (the proof itself may be
what is wrong). Malformed requests (a proof where none belongs) are refused, not kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from envelope import b64encode
from ledger.errors import NoteError, ProofError
from ledger.wire.checkpoints import Checkpoint
from ledger.wire.cosignatures import Cosigner
from ledger.wire.merkle import EMPTY_ROOT, verify_consistency
from ledger.wire.notes import Note, OpenedNote, open_note, parse_note
from ledger.wire.tlog_witness import SIZE_CONTENT_TYPE, AddCheckpoint, parse_add_checkpoint
from witness.config import TrustedLog
from witness.errors import Refused
from witness.state import Evidence, Known, Transaction, WitnessState

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class _Submission:
    request: AddCheckpoint
    checkpoint: Checkpoint
    opened: OpenedNote


@dataclass(frozen=True, slots=True)
class _Inconsistent:
    kind: str
    reason: str

    @property
    def is_evidence(self) -> bool:
        """A conflict with the known tree, not merely a malformed request."""
        return self.kind in EVIDENCE_KINDS


EVIDENCE_KINDS = frozenset({"same-size-other-root", "inconsistent"})


class Witness:
    """Cosigns checkpoints of the logs it follows, never a tree inconsistent with one it saw."""

    def __init__(
        self,
        cosigner: Cosigner,
        logs: dict[str, TrustedLog],
        state: WitnessState,
        *,
        clock: Clock = time.time,
    ) -> None:
        self.cosigner = cosigner
        self.logs = logs
        self.state = state
        self.clock = clock

    def add_checkpoint(self, body: bytes) -> bytes:
        """The cosignature line(s) for a request body; raises Refused with the status."""
        submission = self._check(body)
        with self.state.transaction() as txn:
            outcome = self._decide(txn, submission)
        if isinstance(outcome, Refused):
            raise outcome
        return outcome

    def _check(self, body: bytes) -> _Submission:
        try:
            request = parse_add_checkpoint(body)
            checkpoint = Checkpoint.from_text(parse_note(request.note).text)
        except NoteError as exc:
            raise Refused(400, f"malformed add-checkpoint request: {exc}") from exc
        log = self.logs.get(checkpoint.origin)
        if log is None:
            raise Refused(404, f"this witness does not follow a log named {checkpoint.origin}")
        try:
            opened = open_note(request.note, log.verifiers)
        except NoteError as exc:
            raise Refused(
                403, f"the checkpoint is not signed by {log.origin}'s key: {exc}"
            ) from exc
        if request.old_size > checkpoint.size:
            raise Refused(
                400,
                f"old size {request.old_size} is larger than the checkpoint's {checkpoint.size}",
            )
        return _Submission(request, checkpoint, opened)

    def _decide(self, txn: Transaction, submission: _Submission) -> bytes | Refused:
        checkpoint, request = submission.checkpoint, submission.request
        known = txn.latest(checkpoint.origin)
        known_size = known.size if known is not None else 0
        if request.old_size != known_size:
            return Refused(
                409,
                f"this witness last cosigned {checkpoint.origin} at size {known_size}",
                body=f"{known_size}\n".encode("ascii"),
                content_type=SIZE_CONTENT_TYPE,
            )
        problem = _inconsistency(known, request, checkpoint)
        now = int(self.clock())
        if problem is not None:
            if problem.is_evidence:
                txn.keep_evidence(_evidence(problem, known, submission, now))
            return Refused(422, problem.reason)
        cosignature = self.cosigner.cosign(submission.opened.text, max(now, 1))
        note = Note(submission.opened.text, (*submission.opened.verified, cosignature))
        txn.store(checkpoint.origin, Known(checkpoint.size, checkpoint.root, note.to_bytes()), now)
        return cosignature.line().encode("utf-8")


def _inconsistency(
    known: Known | None, request: AddCheckpoint, checkpoint: Checkpoint
) -> _Inconsistent | None:
    """Why *checkpoint* cannot follow *known* (whose size equals the request's old size)."""
    if checkpoint.size == 0 and checkpoint.root != EMPTY_ROOT:
        return _Inconsistent("empty-tree-root", "a tree of size 0 has the empty tree's root")
    if request.old_size == 0:
        if request.proof:
            return _Inconsistent("proof-from-empty", "a proof from size 0 must be empty")
        return None
    assert known is not None  # old size = known size > 0
    if request.old_size == checkpoint.size:
        if known.root != checkpoint.root:
            return _Inconsistent(
                "same-size-other-root",
                f"size {checkpoint.size} was cosigned with another root: the log forked",
            )
        if request.proof:
            return _Inconsistent("proof-same-size", "a proof between equal sizes must be empty")
        return None
    try:
        verify_consistency(
            request.old_size, checkpoint.size, known.root, checkpoint.root, request.proof
        )
    except ProofError as exc:
        return _Inconsistent("inconsistent", f"consistency proof does not verify: {exc}")
    return None


def _evidence(
    problem: _Inconsistent, known: Known | None, submission: _Submission, now: int
) -> Evidence:
    return Evidence(
        origin=submission.checkpoint.origin,
        kind=problem.kind,
        known_size=known.size if known is not None else 0,
        known_note=known.note if known is not None else None,
        submitted_note=submission.request.note,
        proof="\n".join(b64encode(p) for p in submission.request.proof),
        reason=problem.reason,
        received_at=now,
    )
