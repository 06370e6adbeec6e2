"""MLLP framing (HL7 v2 over TCP): each message is 0x0B, the message, then 0x1C 0x0D.

`FrameReader` reads one framed message at a time from an asyncio stream, bounded in size
and in time. A message longer than the limit is read to its end block but not kept (its
first bytes are, so that the rejection can still mirror its MSH); bytes outside a frame or a
connection closed in the middle of one end the connection.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"
HEAD_KEPT = 4096
"""How much of an oversized message is kept: enough for its MSH segment."""
_CHUNK = 65536
_BETWEEN_FRAMES = b"\r\n"
"""Line ends some senders put between frames; skipped."""


class FramingError(Exception):
    """The peer broke MLLP framing; the connection cannot continue."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One framed message: its bytes, or only its head when it was over the limit."""

    payload: bytes
    oversized: bool = False


def frame(message: bytes) -> bytes:
    """*message* wrapped in MLLP start and end blocks."""
    return START_BLOCK + message + END_BLOCK


class FrameReader:
    """Reads MLLP frames from *reader*, at most *max_bytes* each.

    *idle_timeout* bounds the wait for the next frame to start and *frame_timeout* the time
    one frame may take from its start block to its end block.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        *,
        max_bytes: int,
        idle_timeout: float,
        frame_timeout: float,
    ) -> None:
        self._reader = reader
        self._max = max_bytes
        self._idle = idle_timeout
        self._frame_timeout = frame_timeout
        self._buf = bytearray()

    async def next(self) -> Frame | None:
        """The next frame, or None when the peer closed the connection between frames.

        Raises `FramingError` on bytes outside a frame or a connection closed mid-frame,
        and `TimeoutError` when the peer is too slow.
        """
        if not await self._await_start():
            return None
        async with asyncio.timeout(self._frame_timeout):
            return await self._read_body()

    async def _await_start(self) -> bool:
        while True:
            while self._buf[:1] and self._buf[:1] in _BETWEEN_FRAMES:
                del self._buf[:1]
            if self._buf:
                if self._buf[:1] != START_BLOCK:
                    raise FramingError("bytes outside an MLLP frame (no 0x0B start block)")
                del self._buf[:1]
                return True
            async with asyncio.timeout(self._idle):
                chunk = await self._reader.read(_CHUNK)
            if not chunk:
                return False
            self._buf += chunk

    async def _read_body(self) -> Frame:
        head = bytearray()
        oversized = False
        while True:
            end = self._buf.find(END_BLOCK)
            if end >= 0:
                body = bytes(self._buf[:end])
                del self._buf[: end + len(END_BLOCK)]
                if oversized or len(body) > self._max:
                    return Frame(bytes((head + body)[:HEAD_KEPT]), oversized=True)
                return Frame(body)
            if len(self._buf) > self._max + 1:
                # Keep the head and the last byte (it may be the first half of the end block).
                if not oversized:
                    head = bytearray(self._buf[:HEAD_KEPT])
                    oversized = True
                del self._buf[:-1]
            chunk = await self._reader.read(_CHUNK)
            if not chunk:
                raise FramingError("connection closed in the middle of an MLLP frame")
            self._buf += chunk
