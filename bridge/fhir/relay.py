"""ITI-68's PDF passed on as the SDK opens it, segment by segment, never held whole.

The fetch runs on a worker thread (`Client.fetch_into`) and writes each opened segment to
a `Relay`; the answer streams what the relay holds. Its status and headers wait for the
first opened segment, so a refusal (403, 404, 410) or a body the gateway found damaged
(502) is still an OperationOutcome. Every segment is authenticated before the SDK writes
it, and the last one only after the body's hashes and size were checked: a client that
received all of `Content-Length` received a verified whole. A failure after the first
byte ends the connection short of it, which every HTTP client reports as an error. The
relay holds at most about twice `HELD_BYTES`: the fetch waits while the client reads slower
than the gateway sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable

from ehrgate.models import Fetched

HELD_BYTES = 2 * 1024 * 1024
_WAIT_SECONDS = 120.0
"""How long a fetch waits for a client that reads nothing before giving up."""


class ClientGone(Exception):
    """The answer was abandoned (the client went away): the fetch stops."""


class Relay:
    """Plaintext from a fetching thread to an answer on the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._room = threading.Condition()
        self._pieces: list[bytes] = []
        self._held = 0
        self._gone = False
        self._ready = asyncio.Event()
        self._opened: asyncio.Future[Fetched] = loop.create_future()

    # --- on the fetching thread ----------------------------------------------------------

    def opened(self, fetched: Fetched) -> None:
        self._loop.call_soon_threadsafe(_settle, self._opened, fetched)

    def write(self, data: bytes, /) -> int:
        with self._room:
            if not self._room.wait_for(
                lambda: self._gone or self._held < HELD_BYTES, timeout=_WAIT_SECONDS
            ):
                raise ClientGone("the client read nothing for too long")
            if self._gone:
                raise ClientGone("the client went away")
            wake = not self._pieces
            self._pieces.append(data)
            self._held += len(data)
        if wake:
            self._loop.call_soon_threadsafe(self._ready.set)
        return len(data)

    # --- on the event loop ---------------------------------------------------------------

    async def start(self, fetch: asyncio.Future[Fetched]) -> Fetched:
        """The record's metadata once its first segment is opened (or the fetch ended);
        the fetch's exception if it failed before that."""
        while not fetch.done():
            with self._room:
                if self._pieces:
                    break
                self._ready.clear()
            await self._ready.wait()
        if fetch.done():
            fetch.result()  # raises a failure
        return await self._opened

    async def pieces(self, fetch: asyncio.Future[Fetched]) -> AsyncGenerator[bytes, None]:
        """The plaintext as it is written, to the end of a fetch that succeeded (one that
        failed raises its error here, after what was already passed on)."""
        try:
            while True:
                with self._room:
                    pieces, self._pieces = self._pieces, []
                    self._held = 0
                    self._ready.clear()
                    self._room.notify_all()
                for piece in pieces:
                    yield piece
                if pieces:
                    continue
                if fetch.done():
                    fetch.result()
                    return
                await self._ready.wait()
        finally:
            self.close()

    def wake(self) -> None:
        """Look again (the fetch ended)."""
        self._ready.set()

    def close(self) -> None:
        """Stop the fetch at its next write (the answer ended or was abandoned)."""
        with self._room:
            self._gone = True
            self._room.notify_all()


def relayed_fetch(
    loop: asyncio.AbstractEventLoop, fetch: Callable[[Relay], Awaitable[Fetched]]
) -> tuple[Relay, asyncio.Future[Fetched]]:
    """A relay and the fetch writing to it, started (*fetch* runs the SDK's `fetch_into`
    with the relay as both its sink and its `opened`)."""
    relay = Relay(loop)
    task = asyncio.ensure_future(fetch(relay))
    task.add_done_callback(_retrieve)
    task.add_done_callback(lambda _: relay.wake())
    return relay, task


def _retrieve(task: asyncio.Future[Fetched]) -> None:
    """Consume a failed fetch's exception when the answer has already ended."""
    if not task.cancelled():
        task.exception()


def _settle(future: asyncio.Future[Fetched], value: Fetched) -> None:
    with contextlib.suppress(asyncio.InvalidStateError):
        future.set_result(value)
