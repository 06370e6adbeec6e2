"""What the client believes of a gateway's ledger: its key, its heads, its receipts.

The ledger key is the one given to trust, or the one pinned for the gateway's URL (pinned
on first use). Every tree head must be signed with it, and must extend the largest head
seen from the gateway before (or be extended by it): a consistency proof between the two,
else the gateway rewrote or forked its log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ehrgate._client.session import Session
from ehrgate.errors import MalformedAnswer, UsageError, VerificationFailed
from ehrgate.models import LedgerCheckpoint, LedgerHead, Receipt, TreeHead
from ehrgate.trust import LedgerPins, parse_ledger_key
from ehrgate.verification import check_tree_head, verify_receipt
from envelope import VerifyKey, b64encode
from ledger.errors import NoteError, ProofError, UntrustedNote
from ledger.wire.checkpoints import open_checkpoint
from ledger.wire.cosignatures import CosignatureVerifier
from ledger.wire.merkle import verify_consistency
from ledger.wire.notes import Ed25519Verifier, Verifiers, open_note
from ledger.wire.transactions import Transaction

if TYPE_CHECKING:
    from ledger.verify import VerifyReport

ENTRY_PAGE = 1000


class Trust:
    """The ledger key and the heads the client has verified for one gateway."""

    def __init__(self, session: Session, trusted_key: VerifyKey | None, pins: LedgerPins) -> None:
        self._session = session
        self._trusted_key = trusted_key
        self._pins = pins

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

    def check_consistency(self, head: TreeHead) -> None:
        """A verified *head* must extend the largest head seen before (or be extended by
        it): otherwise the gateway rewrote or forked its log."""
        self._check_tree(head.tree_size, head.root)

    def _check_tree(self, tree_size: int, root: str) -> None:
        url = self._session.url
        known = self._pins.head(url)
        if known is None:
            self._pins.advance(url, tree_size, root)
            return
        known_size, known_root = known
        if tree_size == known_size:
            if root != known_root:
                raise VerificationFailed(
                    f"the gateway shows two different trees of {known_size} entries: its "
                    "log was rewritten or forked"
                )
            return
        older, newer = sorted([known, (tree_size, root)], key=lambda pair: pair[0])
        self._prove_extension(older, newer)
        self._pins.advance(url, tree_size, root)

    def ledger_checkpoint(self, witnesses: Sequence[str] = ()) -> LedgerCheckpoint:
        """The log's C2SP checkpoint, signed by its pinned checkpoint key and consistent
        with every tree head seen; `cosigned_by` names the *witnesses* (cosignature vkeys)
        whose valid cosignatures it carries."""
        try:
            trusted = Verifiers(CosignatureVerifier.from_vkey(vkey) for vkey in witnesses)
        except NoteError as exc:
            raise UsageError(f"not a witness vkey: {exc}") from exc
        self.ledger_head()  # the ledger key pinned and the head checked first
        offered = self._session.get("/v1/ledger/head", authenticated=False).get("checkpoint_key")
        if not isinstance(offered, str):
            raise MalformedAnswer("the gateway's ledger head has no checkpoint_key")
        vkey = self._pins.check_or_pin_checkpoint_key(self._session.url, offered)
        answer = self._session.connection.request(
            "GET", "/v1/ledger/checkpoint", authenticated=False
        )
        try:
            checkpoint, _ = open_checkpoint(
                answer.content, Verifiers([Ed25519Verifier.from_vkey(vkey)])
            )
        except NoteError as exc:
            raise VerificationFailed(f"the gateway's checkpoint does not verify: {exc}") from exc
        if checkpoint.size > 0:
            self._check_tree(checkpoint.size, checkpoint.root.hex())
        return LedgerCheckpoint(
            origin=checkpoint.origin,
            tree_size=checkpoint.size,
            root=checkpoint.root.hex(),
            checkpoint_key=vkey,
            cosigned_by=_cosigners(answer.content, trusted),
            note=answer.content.decode("utf-8"),
        )

    def _prove_extension(self, older: tuple[int, str], newer: tuple[int, str]) -> None:
        try:
            answer = self._session.get(
                "/v1/ledger/consistency",
                {"old_size": older[0], "new_size": newer[0]},
                authenticated=False,
            )
            proof = [bytes.fromhex(node) for node in answer["proof"]]
            verify_consistency(
                older[0], newer[0], bytes.fromhex(older[1]), bytes.fromhex(newer[1]), proof
            )
        except (UsageError, ProofError, KeyError, TypeError, ValueError) as exc:
            raise VerificationFailed(
                f"the tree of {newer[0]} entries does not extend the tree of {older[0]} "
                f"entries seen before: the log was rewritten or forked ({exc})"
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
        key = parse_ledger_key(head.ledger_public_key)
        count = head.tree_head.tree_size if head.tree_head is not None else 0
        source = ExportSource(self.ledger_entries(), self.ledger_blocks(), count=count)
        return verify(source, ledger_key=key, replay=replay, progress=progress)


def _offered_key(head_answer: Any) -> str:
    offered = head_answer.get("ledger_public_key") if isinstance(head_answer, dict) else None
    if not isinstance(offered, str):
        raise MalformedAnswer("the gateway's ledger head has no ledger_public_key")
    return offered


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
