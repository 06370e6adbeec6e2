"""The ITI-68 relay: a fetching thread's plaintext to a streamed answer, in order, bounded,
with the fetch's errors where the answer can still say them."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bridge.fhir import relay as relay_module
from bridge.fhir.relay import ClientGone, Relay, relayed_fetch
from ehrgate.errors import Denied, VerificationFailed
from ehrgate.models import Fetched


def _fetched() -> Any:
    # only the relay's caller reads it: any object stands for the SDK's Fetched here
    return object()


async def _run(fetch: Any) -> tuple[Relay, asyncio.Future[Fetched]]:
    loop = asyncio.get_running_loop()
    return relayed_fetch(loop, lambda relay: asyncio.to_thread(fetch, relay))


async def _drain(stream: AsyncIterator[bytes], into: list[bytes]) -> None:
    async for piece in stream:
        into.append(piece)


def test_the_pieces_come_out_whole_and_in_order() -> None:
    pieces = [bytes([n]) * (1000 + n) for n in range(50)]

    def fetch(relay: Relay) -> Any:
        fetched = _fetched()
        relay.opened(fetched)
        for piece in pieces:
            relay.write(piece)
        return fetched

    async def main() -> list[bytes]:
        relay, task = await _run(fetch)
        await relay.start(task)
        return [piece async for piece in relay.pieces(task)]

    assert b"".join(asyncio.run(main())) == b"".join(pieces)


def test_a_refusal_before_the_record_opens_is_raised_by_start() -> None:
    def fetch(relay: Relay) -> Any:
        raise Denied("no read grant")

    async def main() -> None:
        relay, task = await _run(fetch)
        await relay.start(task)

    with pytest.raises(Denied, match="no read grant"):
        asyncio.run(main())


def test_a_failure_mid_body_ends_the_answer_with_the_error() -> None:
    def fetch(relay: Relay) -> Any:
        relay.opened(_fetched())
        relay.write(b"first")
        raise VerificationFailed("a segment failed")

    async def main() -> list[bytes]:
        relay, task = await _run(fetch)
        await relay.start(task)
        got: list[bytes] = []
        with pytest.raises(VerificationFailed):
            await _drain(relay.pieces(task), got)
        return got

    assert asyncio.run(main()) == [b"first"]


def test_an_abandoned_answer_stops_the_fetch() -> None:
    stopped = threading.Event()

    def fetch(relay: Relay) -> Any:
        relay.opened(_fetched())
        try:
            while True:
                relay.write(b"x" * 1024)
        except ClientGone:
            stopped.set()
            raise

    async def main() -> None:
        relay, task = await _run(fetch)
        await relay.start(task)
        stream = relay.pieces(task)
        await stream.__anext__()
        await stream.aclose()
        with pytest.raises(ClientGone):
            await task

    asyncio.run(main())
    assert stopped.is_set()


def test_a_slow_reader_holds_back_the_fetch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(relay_module, "HELD_BYTES", 10_000)
    most_held = 0

    def fetch(relay: Relay) -> Any:
        nonlocal most_held
        relay.opened(_fetched())
        for _ in range(100):
            relay.write(b"y" * 1000)
            most_held = max(most_held, relay._held)
        return _fetched()

    async def main() -> int:
        relay, task = await _run(fetch)
        await relay.start(task)
        total = 0
        async for piece in relay.pieces(task):
            total += len(piece)
            await asyncio.sleep(0.001)
        return total

    assert asyncio.run(main()) == 100_000
    assert most_held <= 10_000 + 1000


def test_it_is_not_left_waiting() -> None:
    """A fetch that ends without writing anything ends the answer too."""

    def fetch(relay: Relay) -> Any:
        relay.opened(_fetched())
        time.sleep(0.01)
        return _fetched()

    async def main() -> list[bytes]:
        relay, task = await _run(fetch)
        await relay.start(task)
        return [piece async for piece in relay.pieces(task)]

    assert asyncio.run(main()) == []
