"""C2SP tlog-witness (c2sp.org/tlog-witness): the `add-checkpoint` request body and the
409 answer, as bytes. The witness (`witness/`) and the log that submits share this.

    old <size>\n                 decimal, no leading zeros ("0" if the log has none yet)
    <base64 hash>\n              zero to 63 consistency proof lines, 32 bytes each
    \n                           an empty line
    <signed checkpoint note>     origin, size, root, blank line, signature lines
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from envelope import EnvelopeError, b64decode, b64encode
from ledger.errors import MalformedNote
from ledger.wire.checkpoints import parse_size
from ledger.wire.merkle import HASH_LEN

MAX_PROOF_LINES = 63
SIZE_CONTENT_TYPE = "text/x.tlog.size"
"""The content type of a 409 answer: the size the witness knows, in decimal, a newline."""


@dataclass(frozen=True, slots=True)
class AddCheckpoint:
    old_size: int
    proof: tuple[bytes, ...]
    note: bytes


def _next_line(body: bytes, start: int) -> tuple[str, int]:
    end = body.find(b"\n", start)
    if end < 0:
        raise MalformedNote("every line before the checkpoint ends with a newline")
    try:
        return body[start:end].decode("ascii"), end + 1
    except UnicodeDecodeError as exc:
        raise MalformedNote("the old size and proof lines are ASCII") from exc


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Split a request body into old size, proof and note; MalformedNote if it is not one."""
    line, position = _next_line(body, 0)
    if not line.startswith("old "):
        raise MalformedNote("the request starts with an old size line: old <size>")
    old_size = parse_size(line[4:], "old size")
    proof: list[bytes] = []
    while True:
        line, position = _next_line(body, position)
        if not line:
            break
        if len(proof) == MAX_PROOF_LINES:
            raise MalformedNote(f"a consistency proof has at most {MAX_PROOF_LINES} lines")
        try:
            proof.append(b64decode(line, length=HASH_LEN, what="a consistency proof line"))
        except EnvelopeError as exc:
            raise MalformedNote(str(exc)) from exc
    return AddCheckpoint(old_size, tuple(proof), body[position:])


def format_add_checkpoint(old_size: int, proof: Sequence[bytes], note: bytes) -> bytes:
    """The request body a log sends (the inverse of `parse_add_checkpoint`)."""
    lines = [f"old {old_size}\n", *(b64encode(p) + "\n" for p in proof), "\n"]
    return "".join(lines).encode("ascii") + note


def parse_known_size(body: bytes) -> int:
    """The size in a 409 answer (`<decimal>\\n`)."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError as exc:
        raise MalformedNote("a witness's size answer is ASCII") from exc
    if not text.endswith("\n"):
        raise MalformedNote("a witness's size answer ends with a newline")
    return parse_size(text[:-1], "known size")
