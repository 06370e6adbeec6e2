"""A DocumentReference body split as it arrives: its skeleton, and the attachment's data.

`AttachmentScanner` follows the structure of a JSON text fed to it in pieces (objects,
arrays, keys, strings with their escapes) and finds the string value at
`content[0].attachment.data`. That string's characters (the PDF, base64) are handed on as
they come, never kept; everything else is kept as the *skeleton*: the same JSON text with
the data string's characters replaced by `PLACEHOLDER`. Parsing the skeleton with `json`
then checks the whole document, except the data, as parsing the body would.

The scanner tracks structure, it does not validate: a malformed body leaves a skeleton
that does not parse. It does refuse what it cannot follow (a closing bracket with nothing
open, the data string twice, a body that ends inside it). The body must be UTF-8, as FHIR
requires of JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bridge.errors import InvalidDocument

PLACEHOLDER = "ehrgate:streamed-data"
_STRUCTURE = re.compile(rb'[{}\[\],:"]')
_KEY_LIMIT = 256
_PATH = ("content", 0, "attachment", "data")
_ESCAPES = frozenset(b'"\\/bfnrtu')


def _string_end(piece: bytes, position: int) -> int:
    """Where the next quote or backslash is, -1 if none (`bytes.find` is memchr; a regular
    expression's character class is fifty times slower over a megabyte of base64)."""
    quote = piece.find(b'"', position)
    backslash = piece.find(b"\\", position, len(piece) if quote < 0 else quote)
    return backslash if backslash >= 0 else quote


@dataclass
class _Frame:
    kind: int  # ord("{") or ord("[")
    key: str | None = None  # object: the key whose value comes or came last
    expect_key: bool = True  # object: a key (not a value) is next
    index: int = 0  # array: the index of the current element


class AttachmentScanner:
    """Feed the body with `feed`, then call `end`; *on_data* gets the data's text pieces,
    *on_data_start* is called once before the first (the skeleton is complete up to it)."""

    def __init__(self, on_data_start: Callable[[], None], on_data: Callable[[bytes], None]):
        self._on_data_start = on_data_start
        self._on_data = on_data
        self._skeleton = bytearray()
        self._stack: list[_Frame] = []
        self._state = "out"  # out | string | key | data
        self._key = bytearray()
        self._escape = b""  # an escape sequence begun in the data string, not yet whole
        self._pending_escape = False  # a string (not data) ended a piece with a backslash
        self.found_data = False

    @property
    def skeleton(self) -> bytes:
        return bytes(self._skeleton)

    def partial(self) -> Any:
        """The skeleton so far, closed, as JSON (at data start: what preceded the data)."""
        closers = b"".join(b"}" if f.kind == ord("{") else b"]" for f in reversed(self._stack))
        return json.loads(bytes(self._skeleton) + b'"' + closers)

    def feed(self, piece: bytes) -> None:
        position = 0
        while position < len(piece):
            if self._state == "out":
                position = self._structure(piece, position)
            elif self._state == "data":
                position = self._data(piece, position)
            else:
                position = self._string(piece, position)

    def end(self) -> None:
        if self._state == "data":
            raise InvalidDocument("the body ends inside attachment.data")

    # --- outside strings ------------------------------------------------------------------

    def _structure(self, piece: bytes, position: int) -> int:
        found = _STRUCTURE.search(piece, position)
        if found is None:
            self._skeleton += piece[position:]
            return len(piece)
        at = found.start()
        self._skeleton += piece[position:at]
        char = piece[at]
        top = self._stack[-1] if self._stack else None
        if char == ord('"'):
            if top is not None and top.kind == ord("{") and top.expect_key:
                self._state = "key"
                self._key.clear()
            elif self._at_data():
                return self._data_start(at)
            else:
                self._state = "string"
        elif char in b"{[":
            self._stack.append(_Frame(char))
        elif char in b"}]":
            if top is None or top.kind != char - 2:  # "{" + 2 == "}", "[" + 2 == "]"
                raise InvalidDocument("the body is not JSON: a bracket closes nothing open")
            self._stack.pop()
        elif top is not None and char == ord(","):
            if top.kind == ord("{"):
                top.expect_key = True
            else:
                top.index += 1
        elif top is not None and char == ord(":") and top.kind == ord("{"):
            top.expect_key = False
        self._skeleton.append(char)
        return at + 1

    def _at_data(self) -> bool:
        stack = self._stack
        if len(stack) != len(_PATH) or stack[0].kind != ord("{"):
            return False
        return (
            stack[0].key == _PATH[0]
            and stack[1].kind == ord("[")
            and stack[1].index == _PATH[1]
            and stack[2].kind == ord("{")
            and stack[2].key == _PATH[2]
            and stack[3].kind == ord("{")
            and stack[3].key == _PATH[3]
            and not stack[3].expect_key
        )

    # --- strings other than the data ------------------------------------------------------

    def _string(self, piece: bytes, position: int) -> int:
        if self._pending_escape:  # the character after a backslash that ended a piece
            self._pending_escape = False
            self._keep(piece[position : position + 1])
            position += 1
        while True:
            at = _string_end(piece, position)
            if at < 0:
                self._keep(piece[position:])
                return len(piece)
            if piece[at] == ord("\\"):
                if at + 1 >= len(piece):
                    self._keep(piece[position:])
                    self._pending_escape = True
                    return len(piece)
                self._keep(piece[position : at + 2])
                position = at + 2
                continue
            self._keep(piece[position:at])
            self._skeleton.append(ord('"'))
            if self._state == "key":
                self._stack[-1].key = self._decoded_key()
            self._state = "out"
            return at + 1

    def _keep(self, text: bytes) -> None:
        self._skeleton += text
        if self._state == "key" and len(self._key) <= _KEY_LIMIT:
            self._key += text

    def _decoded_key(self) -> str | None:
        if len(self._key) > _KEY_LIMIT:
            return None
        try:
            key = json.loads(b'"' + bytes(self._key) + b'"')
        except ValueError:
            return None  # not JSON: parsing the skeleton will say so
        return key if isinstance(key, str) else None

    # --- the data string ------------------------------------------------------------------

    def _data_start(self, at: int) -> int:
        if self.found_data:
            raise InvalidDocument("content[0].attachment.data appears more than once")
        self._skeleton += b'"'
        self._on_data_start()
        self.found_data = True
        self._skeleton += PLACEHOLDER.encode()
        self._state = "data"
        return at + 1

    def _data(self, piece: bytes, position: int) -> int:
        if self._escape:
            position = self._continue_escape(piece, position)
            if self._escape:
                return position
        while position < len(piece):
            at = _string_end(piece, position)
            if at < 0:
                self._on_data(piece[position:])
                return len(piece)
            if at > position:
                self._on_data(piece[position:at])
            if piece[at] == ord('"'):
                self._skeleton += b'"'
                self._state = "out"
                return at + 1
            self._escape = b"\\"
            position = self._continue_escape(piece, at + 1)
            if self._escape:
                return position
        return position

    def _continue_escape(self, piece: bytes, position: int) -> int:
        """Take what the escape begun in `_escape` still needs; once whole, hand it on."""
        if len(self._escape) == 1:
            if position >= len(piece):
                return position
            if piece[position] not in _ESCAPES:
                raise InvalidDocument("the body is not JSON: a bad escape in attachment.data")
            self._escape += piece[position : position + 1]
            position += 1
        need = 6 if self._escape[1] == ord("u") else 2
        take = min(need - len(self._escape), len(piece) - position)
        self._escape += piece[position : position + take]
        position += take
        if len(self._escape) == need:
            try:
                text = json.loads(b'"' + self._escape + b'"')
            except ValueError as exc:
                raise InvalidDocument(
                    "the body is not JSON: a bad escape in attachment.data"
                ) from exc
            self._escape = b""
            self._on_data(text.encode("utf-8", "surrogatepass"))
        return position
