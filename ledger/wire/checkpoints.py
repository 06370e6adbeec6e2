"""C2SP tlog-checkpoint v1 (c2sp.org/tlog-checkpoint): a log's tree head as a signed note.

The note text is at least three non-empty lines:

    <origin>                 the log's name, e.g. hospital.example/ehrgate
    <tree size>              ASCII decimal, no leading zeros ("0" for the empty tree)
    <root hash>              standard base64 of the 32-byte RFC 9162 root
    [extension lines]        optional, opaque, each non-empty

Every block of the ledger is also a checkpoint (`checkpoint_of`): origin the configured
log name, size and root those of the block, no extension lines. The log signs it with
its own Ed25519 checkpoint key, whose key name is the origin.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from envelope import EnvelopeError, b64decode, b64encode
from ledger.errors import MalformedNote
from ledger.wire.blocks import Block
from ledger.wire.merkle import EMPTY_ROOT, HASH_LEN
from ledger.wire.notes import (
    Ed25519Signer,
    OpenedNote,
    Verifiers,
    check_note_text,
    open_note,
    sign_note,
)

MAX_TREE_SIZE = 2**63 - 1
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,18}")


def parse_size(text: str, what: str = "tree size") -> int:
    """A decimal size with no leading zeros (or "0"), at most 2^63 - 1."""
    if not _DECIMAL.fullmatch(text) or int(text) > MAX_TREE_SIZE:
        raise MalformedNote(f"{text[:30]!r} is not a {what} (decimal, no leading zeros)")
    return int(text)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A log's tree head: origin, size, root hash and optional extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise MalformedNote("a checkpoint's origin is one non-empty line")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise MalformedNote(f"tree size {self.size} is out of range")
        if len(self.root) != HASH_LEN:
            raise MalformedNote(f"a root hash is {HASH_LEN} bytes, got {len(self.root)}")
        if any(not line or "\n" in line for line in self.extensions):
            raise MalformedNote("a checkpoint's extension lines are non-empty single lines")

    def text(self) -> str:
        """The note text: origin, size, base64 root and extension lines, each with newline."""
        lines = [self.origin, str(self.size), b64encode(self.root), *self.extensions]
        return check_note_text("".join(f"{line}\n" for line in lines))

    def body(self) -> bytes:
        return self.text().encode("utf-8")

    @property
    def is_empty_tree(self) -> bool:
        return self.size == 0 and self.root == EMPTY_ROOT

    @classmethod
    def from_text(cls, text: str) -> Checkpoint:
        """Parse a checkpoint's note text byte for byte; MalformedNote if it is not one."""
        if not text.endswith("\n"):
            raise MalformedNote("a checkpoint's text ends with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3 or any(not line for line in lines):
            raise MalformedNote("a checkpoint has at least three lines, none of them empty")
        origin, size, root, *extensions = lines
        try:
            digest = b64decode(root, length=HASH_LEN, what="the checkpoint's root hash")
        except EnvelopeError as exc:
            raise MalformedNote(str(exc)) from exc
        return cls(origin, parse_size(size), digest, tuple(extensions))


def checkpoint_of(block: Block | None, origin: str) -> Checkpoint:
    """The checkpoint of *block* (of the empty tree when there is no block yet)."""
    if block is None:
        return Checkpoint(origin, 0, EMPTY_ROOT)
    return Checkpoint(origin, block.tree_size, block.root)


def sign_checkpoint(checkpoint: Checkpoint, signer: Ed25519Signer) -> bytes:
    """The signed note of *checkpoint* (the signer's name should be the origin)."""
    return sign_note(checkpoint.text(), signer)


def open_checkpoint(data: bytes, verifiers: Verifiers) -> tuple[Checkpoint, OpenedNote]:
    """Verify a signed checkpoint note; the checkpoint and the verified note."""
    opened = open_note(data, verifiers)
    return Checkpoint.from_text(opened.text), opened
