"""Tree heads a client believes only under a checkpoint k of its witnesses cosigned.

With a `WitnessPolicy`, a read that relies on a tree head of size N (a record's inclusion
proof, a ledger verification) first needs a *witnessed* checkpoint of size ≥ N from the
same gateway: signed by the log's pinned checkpoint key, cosigned by at least k of the
policy's witnesses, and consistent with everything seen from the log before. Every tree
the client checks is held consistent with the largest one seen (`Trust.check_tree`), so
a witnessed checkpoint at least as large as a head is a checkpoint that extends it.

Each checkpoint read is compared with the largest witnessed checkpoint remembered (in the
pins): the same size with another root, or a consistency proof that fails, is a split
view: both signed notes are saved as evidence and `SplitView` is raised. That comparison
comes before the quorum is counted: a conflicting checkpoint proves the fork whoever
cosigned it. A checkpoint that is consistent but lacks the quorum is not remembered; the
client asks again (the gateway's witnesses may be catching up) until `wait_seconds`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ehrgate.errors import NoQuorum, VerificationFailed
from ehrgate.witness_policy import WitnessPolicy
from ledger.errors import NoteError, ProofError, UntrustedNote
from ledger.wire.checkpoints import Checkpoint
from ledger.wire.merkle import verify_consistency
from ledger.wire.notes import Verifiers, open_note, parse_note

if TYPE_CHECKING:
    from ehrgate._client.trust import Trust

POLL = 0.05


class Witnessed:
    """The witnessed checkpoints of one gateway, under one policy."""

    def __init__(self, trust: Trust, policy: WitnessPolicy) -> None:
        self._trust = trust
        self.policy = policy
        self._verifiers = Verifiers(policy.witnesses)

    def remembered(self) -> Checkpoint | None:
        note = self._trust.pins.witnessed(self._trust.session.url)
        return Checkpoint.from_text(parse_note(note.encode()).text) if note else None

    def checkpoint(self, *, required: bool = False) -> tuple[Checkpoint, str, tuple[str, ...]]:
        """The gateway's checkpoint (preferring one with a quorum), verified and checked
        against what was seen; remembered if it has the quorum. *required*: raise
        `NoQuorum` if it has not."""
        answer = self._trust.session.connection.request(
            "GET",
            "/v1/ledger/checkpoint",
            params={"cosignatures": self.policy.quorum},
            authenticated=False,
        )
        return self.accept(answer.content, required=required)

    def accept(
        self, content: bytes, *, required: bool = False
    ) -> tuple[Checkpoint, str, tuple[str, ...]]:
        """A checkpoint note the gateway sent, checked as `checkpoint` checks its own."""
        checkpoint, _ = self._trust.open_checkpoint(content)
        note = content.decode("utf-8")
        self._check_against_remembered(checkpoint, note)
        cosigners = self._cosigners(content)
        if len(cosigners) >= self.policy.quorum:
            known = self.remembered()
            if known is None or checkpoint.size > known.size:
                self._trust.pins.remember_witnessed(self._trust.session.url, note)
        elif required:
            raise self._no_quorum(checkpoint, cosigners)
        return checkpoint, note, cosigners

    def require(self, tree_size: int, *, offered: bytes | None = None) -> Checkpoint:
        """A witnessed checkpoint covering *tree_size* entries (waiting for it a while).
        *offered*: a checkpoint note sent along with the answer being checked, tried
        before asking the gateway for one."""
        known = self.remembered()
        if known is not None and known.size >= tree_size:
            return known
        if offered is not None:
            checkpoint, _, cosigners = self.accept(offered)
            if len(cosigners) >= self.policy.quorum and checkpoint.size >= tree_size:
                return checkpoint
        deadline = time.monotonic() + self.policy.wait_seconds
        while True:
            checkpoint, _, cosigners = self.checkpoint()
            if len(cosigners) >= self.policy.quorum and checkpoint.size >= tree_size:
                return checkpoint
            if time.monotonic() >= deadline:
                if len(cosigners) < self.policy.quorum:
                    raise self._no_quorum(checkpoint, cosigners)
                raise NoQuorum(
                    f"no checkpoint cosigned by {self.policy.quorum} of the trusted witnesses "
                    f"covers the tree of {tree_size} entries after "
                    f"{self.policy.wait_seconds:g} s (the largest covers {checkpoint.size}): "
                    "the witnesses are behind or do not hear from the gateway"
                )
            time.sleep(POLL)

    def _cosigners(self, note: bytes) -> tuple[str, ...]:
        try:
            opened = open_note(note, self._verifiers)
        except UntrustedNote:
            return ()
        except NoteError as exc:
            raise VerificationFailed(f"a witness's cosignature does not verify: {exc}") from exc
        return tuple(signature.name for signature in opened.verified)

    def _no_quorum(self, checkpoint: Checkpoint, cosigners: tuple[str, ...]) -> NoQuorum:
        names = ", ".join(cosigners) or "none of them"
        return NoQuorum(
            f"the checkpoint of {checkpoint.origin} at {checkpoint.size} entries is cosigned "
            f"by {len(cosigners)} of the trusted witnesses ({names}); the policy needs "
            f"{self.policy.quorum} of {len(self.policy.witnesses)}"
        )

    def _check_against_remembered(self, checkpoint: Checkpoint, note: str) -> None:
        """*checkpoint* must be consistent with the largest witnessed one seen before."""
        known_note = self._trust.pins.witnessed(self._trust.session.url)
        known = self.remembered()
        if known is None or known_note is None or known.size == 0 or checkpoint.size == 0:
            return
        views = (("checkpoint", note), ("witnessed checkpoint seen before", known_note))
        if known.origin != checkpoint.origin:
            raise VerificationFailed(
                f"the gateway's log is now {checkpoint.origin!r}, it was {known.origin!r}"
            )
        if checkpoint.size == known.size:
            if checkpoint.root != known.root:
                raise self._trust.split_view(
                    f"{known.origin} signed two checkpoints of {known.size} entries with "
                    "different roots: the log forked",
                    *views,
                )
            return
        older, newer = sorted((known, checkpoint), key=lambda cp: cp.size)
        proof = self._trust.consistency_proof(older.size, newer.size)
        try:
            verify_consistency(older.size, newer.size, older.root, newer.root, proof)
        except ProofError as exc:
            raise self._trust.split_view(
                f"{known.origin}'s checkpoint of {newer.size} entries does not extend its "
                f"checkpoint of {older.size} entries: the log forked ({exc})",
                *views,
            ) from exc
