"""What the client believes of a gateway's ledger: its key, its heads, its receipts.

The ledger key is the one given to trust, or the one pinned for the gateway's URL (pinned
on first use). Every tree head must be signed with it, and must extend the largest head
seen from the gateway before (or be extended by it): a consistency proof between the two,
else the gateway rewrote or forked its log (a `SplitView`, its evidence saved).

With a witness policy, a tree head a read relies on must also be covered by a checkpoint
that k of the policy's witnesses cosigned (`ehrgate._client.witnessed`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ehrgate._client.session import Session
from ehrgate._client.witnessed import Witnessed
from ehrgate.errors import MalformedAnswer, SplitView, UsageError, VerificationFailed
from ehrgate.evidence import save_split_view
from ehrgate.models import LedgerCheckpoint, LedgerHead, Receipt, TreeHead
from ehrgate.trust import LedgerPins, parse_ledger_key
from ehrgate.verification import check_tree_head, verify_receipt
from ehrgate.witness_policy import WitnessPolicy
from envelope import VerifyKey, b64encode
from ledger.errors import NoteError, ProofError, UntrustedNote
from ledger.wire.checkpoints import Checkpoint, open_checkpoint
from ledger.wire.cosignatures import CosignatureVerifier
from ledger.wire.merkle import verify_consistency
from ledger.wire.notes import Ed25519Verifier, Verifiers, open_note
from ledger.wire.transactions import Transaction

if TYPE_CHECKING:
    from ledger.verify import VerifyReport

ENTRY_PAGE = 1000


class Trust:
    """The ledger key and the heads the client has verified for one gateway."""

    def __init__(
        self,
        session: Session,
        trusted_key: VerifyKey | None,
        pins: LedgerPins,
        policy: WitnessPolicy | None = None,
    ) -> None:
        self._session = session
        self._trusted_key = trusted_key
        self._pins = pins
        self.policy = policy
        self._witnessed = Witnessed(self, policy) if policy is not None else None

    @property
    def session(self) -> Session:
        return self._session

    @property
    def pins(self) -> LedgerPins:
        return self._pins

    def ledger_key(self) -> VerifyKey:
        """The ledger key tree heads must be signed with (given, pinned, or pinned now)."""
        if self._trusted_key is not None:
            return self._trusted_key
        pinned = self._pins.pinned(self._session.url)
        if pinned is not None:
            return pinned
        offered = _offered_key(self._session.get("/v1/ledger/head", authenticated=False))
        return self._pins.check_or_pin(self._session.url, parse_ledger_key(offered))

    def ledger_head(self) -> LedgerHead:
        """The latest signed tree head, its signature checked with the trusted key."""
        data = self._session.get("/v1/ledger/head", authenticated=False)
        key = self._accept_key(_offered_key(data))
        raw_head = data.get("tree_head")
        head = TreeHead.from_json(raw_head) if raw_head is not None else None
        if head is not None:
            check_tree_head(head, key)
            self.check_consistency(head)
        return LedgerHead(head, b64encode(key.to_bytes()))

    def require_witnessed(self, head: TreeHead, *, offered: bytes | None = None) -> None:
        """With a witness policy: *head* (verified) must be covered by a checkpoint k of
        its witnesses cosigned; waits up to the policy's `wait_seconds` for them.
        *offered*: a checkpoint note the gateway sent along (an open's), tried first."""
        if self._witnessed is not None:
            self._witnessed.require(head.tree_size, offered=offered)

    def _accept_key(self, offered: str) -> VerifyKey:
        offered_key = parse_ledger_key(offered)
        if self._trusted_key is None:
            return self._pins.check_or_pin(self._session.url, offered_key)
        if offered_key != self._trusted_key:
            raise VerificationFailed(
                "the gateway's ledger key is not the one given to trust "
                f"({offered} vs {b64encode(self._trusted_key.to_bytes())})"
            )
        return self._trusted_key

    def receipt(self, data: Any, tx: Transaction | None) -> Receipt:
        """The receipt in a gateway's answer, verified (and, given *tx*, for *tx*)."""
        receipt = Receipt.from_json(data.get("receipt") if isinstance(data, dict) else None)
        verify_receipt(receipt, self.ledger_key(), tx_hash=tx.tx_hash if tx else None)
        return receipt

    def check_consistency(self, head: TreeHead, *, offered: Any = None) -> None:
        """A verified *head* must extend the largest head seen before (or be extended by
        it): otherwise the gateway rewrote or forked its log. *offered*: a consistency
        proof the gateway sent along (`{old_size, new_size, proof}`, an open's), used if it
        is between the two trees; it is checked like one asked for."""
        self.check_tree(
            head.tree_size, head.root, ("signed tree head", head.to_json()), offered=offered
        )

    def known_size(self) -> int | None:
        """The size of the largest tree seen from this gateway (None before the first)."""
        known = self._pins.head(self._session.url)
        return known[0] if known is not None else None

    def check_tree(
        self, tree_size: int, root: str, signed: tuple[str, Any], *, offered: Any = None
    ) -> None:
        """The tree (*signed*: what signed it, for the evidence) must be consistent with
        the largest one seen from this gateway; it is remembered if larger."""
        url = self._session.url
        known = self._pins.head(url)
        if known is None:
            self._pins.advance(url, tree_size, root)
            return
        known_size, known_root = known
        if tree_size == known_size:
            if root != known_root:
                raise self.split_view(
                    f"the gateway shows two different trees of {known_size} entries: its "
                    "log was rewritten or forked",
                    signed,
                )
            return
        older, newer = sorted([known, (tree_size, root)], key=lambda pair: pair[0])
        self._prove_extension(older, newer, signed, _offered_proof(offered, older[0], newer[0]))
        self._pins.advance(url, tree_size, root)

    def split_view(self, reason: str, *views: tuple[str, Any]) -> SplitView:
        """The error for a split view, with *views* and what the client held before (the
        largest head seen, the witnessed checkpoint) saved as evidence."""
        url = self._session.url
        held: list[tuple[str, Any]] = list(views)
        for what, note in (
            ("witnessed checkpoint seen before", self._pins.witnessed(url)),
            ("largest checkpoint seen before", self._pins.checkpoint(url)),
        ):
            if note is not None and all(signed != note for _, signed in held):
                held.append((what, note))
        known = self._pins.head(url)
        if known is not None:
            held.append(("largest tree seen before", {"tree_size": known[0], "root": known[1]}))
        directory = self.policy.evidence_dir if self.policy is not None else None
        path = save_split_view(directory or self._pins.directory, url, reason, held)
        where = f"; the evidence is in {path}" if path is not None else ""
        return SplitView(f"{reason}{where}", evidence=path)

    def checkpoint_key(self) -> str:
        """The log's checkpoint vkey the gateway offers, which must be the pinned one (or is
        pinned now)."""
        data = self._session.get("/v1/ledger/head", authenticated=False)
        self._accept_key(_offered_key(data))
        offered = data.get("checkpoint_key")
        if not isinstance(offered, str):
            raise MalformedAnswer("the gateway's ledger head has no checkpoint_key")
        return self._pins.check_or_pin_checkpoint_key(self._session.url, offered)

    def ledger_checkpoint(self, witnesses: Sequence[str] = ()) -> LedgerCheckpoint:
        """The log's C2SP checkpoint, signed by its pinned checkpoint key and consistent
        with every tree head seen; `cosigned_by` names the *witnesses* (cosignature vkeys,
        and the policy's) whose valid cosignatures it carries. With a witness policy, a
        checkpoint without a quorum of cosignatures is refused (`NoQuorum`)."""
        try:
            given = [CosignatureVerifier.from_vkey(vkey) for vkey in witnesses]
        except NoteError as exc:
            raise UsageError(f"not a witness vkey: {exc}") from exc
        if self._witnessed is not None:
            checkpoint, note, _ = self._witnessed.checkpoint(required=True)
            content = note.encode("utf-8")
        else:
            self.ledger_head()  # the ledger key pinned and the head checked first
            checkpoint, content = self.open_checkpoint(
                self._session.connection.request(
                    "GET", "/v1/ledger/checkpoint", authenticated=False
                ).content
            )
        policy = list(self.policy.witnesses) if self.policy is not None else []
        known = {(w.name, w.key_id) for w in policy}
        trusted = Verifiers([*policy, *(w for w in given if (w.name, w.key_id) not in known)])
        return LedgerCheckpoint(
            origin=checkpoint.origin,
            tree_size=checkpoint.size,
            root=checkpoint.root.hex(),
            checkpoint_key=self.checkpoint_key(),
            cosigned_by=_cosigners(content, trusted),
            note=content.decode("utf-8"),
        )

    def open_checkpoint(self, note: bytes) -> tuple[Checkpoint, bytes]:
        """A checkpoint note from the gateway, its log signature verified with the pinned
        checkpoint key and its tree consistent with every tree seen."""
        vkey = self.checkpoint_key()
        try:
            checkpoint, _ = open_checkpoint(note, Verifiers([Ed25519Verifier.from_vkey(vkey)]))
        except NoteError as exc:
            raise VerificationFailed(f"the gateway's checkpoint does not verify: {exc}") from exc
        if checkpoint.size > 0:
            text = note.decode("utf-8")
            self.check_tree(checkpoint.size, checkpoint.root.hex(), ("checkpoint", text))
            self._pins.remember_checkpoint(self._session.url, checkpoint.size, text)
        return checkpoint, note

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """The gateway's proof that its tree of *new_size* extends that of *old_size*."""
        answer = self._session.get(
            "/v1/ledger/consistency",
            {"old_size": old_size, "new_size": new_size},
            authenticated=False,
        )
        try:
            return [bytes.fromhex(node) for node in answer["proof"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedAnswer("the gateway's consistency proof is malformed") from exc

    def _prove_extension(
        self,
        older: tuple[int, str],
        newer: tuple[int, str],
        signed: tuple[str, Any],
        offered: list[bytes] | None = None,
    ) -> None:
        try:
            proof = offered if offered is not None else self.consistency_proof(older[0], newer[0])
        except (UsageError, MalformedAnswer) as exc:
            raise VerificationFailed(
                f"the gateway cannot prove that its tree of {newer[0]} entries extends the "
                f"tree of {older[0]} entries seen before: the log was rewritten or forked, "
                f"or the gateway cannot serve the proof ({exc})"
            ) from exc
        try:
            verify_consistency(
                older[0], newer[0], bytes.fromhex(older[1]), bytes.fromhex(newer[1]), proof
            )
        except (ProofError, ValueError) as exc:
            raise self.split_view(
                f"the tree of {newer[0]} entries does not extend the tree of {older[0]} "
                f"entries seen before: the log was rewritten or forked ({exc})",
                signed,
            ) from exc

    def _pages(self, path: str, field: str, start: int) -> Iterator[dict[str, Any]]:
        next_start: int | None = start
        while next_start is not None:
            page = self._session.get(path, {"start": next_start, "limit": ENTRY_PAGE})
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
        heads must be signed by the trusted (given or pinned) ledger key. The verifier is
        the ledger's own pure one (rules, state and Merkle checks; no database code).
        """
        from ledger.exported import ExportSource
        from ledger.verify import verify

        head = self.ledger_head()
        if head.tree_head is not None:
            self.require_witnessed(head.tree_head)
        key = parse_ledger_key(head.ledger_public_key)
        count = head.tree_head.tree_size if head.tree_head is not None else 0
        source = ExportSource(self.ledger_entries(), self.ledger_blocks(), count=count)
        return verify(source, ledger_key=key, replay=replay, progress=progress)


def _offered_key(head_answer: Any) -> str:
    offered = head_answer.get("ledger_public_key") if isinstance(head_answer, dict) else None
    if not isinstance(offered, str):
        raise MalformedAnswer("the gateway's ledger head has no ledger_public_key")
    return offered


def _offered_proof(offered: Any, old_size: int, new_size: int) -> list[bytes] | None:
    """The nodes of an *offered* consistency proof, if it is one from *old_size* to
    *new_size* (else None: the client asks for the proof it needs)."""
    if not isinstance(offered, dict):
        return None
    if offered.get("old_size") != old_size or offered.get("new_size") != new_size:
        return None
    nodes = offered.get("proof")
    if not isinstance(nodes, list):
        raise MalformedAnswer("the gateway's consistency proof is malformed")
    try:
        return [bytes.fromhex(node) for node in nodes]
    except (TypeError, ValueError) as exc:
        raise MalformedAnswer("the gateway's consistency proof is malformed") from exc


def _cosigners(note: bytes, witnesses: Verifiers) -> tuple[str, ...]:
    """The names of *witnesses* whose cosignatures on *note* verify."""
    if not len(witnesses):
        return ()
    try:
        opened = open_note(note, witnesses)
    except UntrustedNote:
        return ()
    except NoteError as exc:
        raise VerificationFailed(f"a witness's cosignature does not verify: {exc}") from exc
    return tuple(signature.name for signature in opened.verified)
