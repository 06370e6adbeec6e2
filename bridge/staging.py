"""An upload that runs while its document is still arriving (ITI-105 as it streams).

A `Staging` owns one worker thread: it seals the decoded PDF as the request's handler
feeds it pieces (`feed`), streams the sealed body to the gateway (`Client.stage_upload`),
then waits for the handler's verdict. Only `commit()`, called once every check of the
whole document passed, puts the record on the ledger; `abandon()` (bad input, a client
that went away, metadata that changed after the data) ends the upload instead, and a body
the gateway already stored stays an uncommitted orphan that `ehrgate gc` removes.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from anyio import CapacityLimiter, to_thread

from bridge.keystore import Identities
from ehrgate.client import Staged
from ehrgate.errors import Conflict, RecordExists

_WAIT_SECONDS = 600.0
"""How long the worker waits for the next piece or the verdict before giving up."""


class Outcome(Enum):
    CREATED = "created"
    EXISTED = "existed"  # the ledger had the record (an earlier attempt committed it)
    STALE_KEY = "stale-key"  # the patient rotated the key it was sealed to: upload anew
    ABANDONED = "abandoned"


class _Abandoned(Exception):
    """Raised inside the upload's body to end it."""


_END = object()
_ABANDON = object()


@dataclass(frozen=True, slots=True)
class Target:
    """Where the staged body goes and what it is sealed with."""

    actor: str
    pseudonym: str
    category: str
    record_id: str
    unique_id: str
    filename: str
    created: datetime


class Staging:
    def __init__(self, target: Target, identities: Identities, threads: CapacityLimiter) -> None:
        self.target = target
        self._identities = identities
        self._pieces: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._verdict: queue.SimpleQueue[bool] = queue.SimpleQueue()
        self._abandoned = False
        self._task = asyncio.get_running_loop().create_task(
            to_thread.run_sync(self._work, limiter=threads)
        )
        self._task.add_done_callback(_retrieve)

    def feed(self, piece: bytes) -> None:
        if piece:
            self._pieces.put(piece)

    def end(self) -> None:
        """The whole data was fed."""
        self._pieces.put(_END)

    def abandon(self) -> None:
        """End the upload without a record (never blocks; safe to repeat)."""
        self._abandoned = True
        self._pieces.put(_ABANDON)
        self._verdict.put(False)

    async def settle(self) -> None:
        """Wait until an abandoned upload has ended."""
        with contextlib.suppress(Exception):
            await asyncio.shield(self._task)

    async def commit(self) -> Outcome:
        """Commit the record once the body is stored; raises the SDK's errors."""
        self._verdict.put(True)
        return await asyncio.shield(self._task)

    def _body(self) -> Iterator[bytes]:
        while True:
            piece = self._pieces.get(timeout=_WAIT_SECONDS)
            if piece is _END:
                return
            if piece is _ABANDON or not isinstance(piece, bytes):
                raise _Abandoned
            yield piece

    def _work(self) -> Outcome:
        target = self.target
        client = self._identities.client(target.actor)
        try:
            staged: Staged = client.stage_upload(
                self._body(),
                pseudonym=target.pseudonym,
                category=target.category,
                filename=target.filename,
                content_type="application/pdf",
                record_id=target.record_id,
                created_at=target.created,
            )
        except BaseException as exc:
            if self._abandoned:
                raise _Abandoned from exc
            raise
        if self._abandoned or not self._verdict.get(timeout=_WAIT_SECONDS):
            return Outcome.ABANDONED
        try:
            staged.commit()
        except RecordExists:
            return Outcome.EXISTED
        except Conflict as exc:
            if exc.code != "stale-key-generation":
                raise
            return Outcome.STALE_KEY  # a plain upload seals anew to the current key
        return Outcome.CREATED


def _retrieve(task: asyncio.Task[Outcome]) -> None:
    """Consume an abandoned worker's exception (the handler answered already)."""
    if not task.cancelled():
        task.exception()
