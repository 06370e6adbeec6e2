"""The MLLP listener: an asyncio TCP server answering each framed message with an ACK.

It binds 127.0.0.1 unless told otherwise, serves many messages per connection one after the
other (a sender waits for each ACK), bounds each message in size and time, and never lets
one connection's failure stop it: a framing error, a timeout or a peer closing mid-frame
closes that connection only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from bridge.hl7v2.mllp import FrameReader, FramingError, frame
from bridge.hl7v2.receiver import MdmReceiver

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ListenerSettings:
    """Where the listener binds and how much it tolerates."""

    host: str = "127.0.0.1"
    port: int = 2575
    """0 picks a free port (see `MllpListener.port`)."""
    max_message_bytes: int = 32 * 1024 * 1024
    """The largest message accepted (the base64 PDF is 4/3 of the PDF's size)."""
    idle_timeout: float = 300.0
    """Seconds a connection may wait between messages before it is closed."""
    frame_timeout: float = 60.0
    """Seconds one message may take from its start block to its end block."""
    max_connections: int = 64
    """Connections served at once; one more is closed at once (interface engines keep one
    or a few connections open)."""


class MllpListener:
    """Serves MDM messages over MLLP to *receiver*; `start` it, then `close` it."""

    def __init__(self, receiver: MdmReceiver, settings: ListenerSettings) -> None:
        self._receiver = receiver
        self._settings = settings
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> tuple[str, int]:
        """The host and port bound."""
        if self._server is None:
            raise RuntimeError("the listener is not started")
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    @property
    def port(self) -> int:
        """The port bound (useful when the settings asked for 0)."""
        return self.address[1]

    async def start(self) -> None:
        """Bind and start accepting connections."""
        self._server = await asyncio.start_server(
            self._serve, host=self._settings.host, port=self._settings.port
        )
        log.info("HL7 v2 MLLP listener on %s:%d", self._settings.host, self.port)

    async def serve_forever(self) -> None:
        """Start (if needed) and serve until cancelled."""
        if self._server is None:
            await self.start()
        assert self._server is not None
        try:
            await self._server.serve_forever()
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop accepting, end open connections and wait for them."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        peer = writer.get_extra_info("peername")
        if len(self._connections) >= self._settings.max_connections:
            log.warning("MLLP connection from %s refused: too many connections", peer)
            writer.close()
            return
        self._connections.add(task)
        try:
            await self._conversation(reader, writer)
        except FramingError as exc:
            log.warning("MLLP connection from %s closed: %s", peer, exc)
        except TimeoutError:
            log.info("MLLP connection from %s closed: timed out", peer)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            log.info("MLLP connection from %s lost: %s", peer, exc)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("MLLP connection from %s failed", peer)
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _conversation(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        settings = self._settings
        frames = FrameReader(
            reader,
            max_bytes=settings.max_message_bytes,
            idle_timeout=settings.idle_timeout,
            frame_timeout=settings.frame_timeout,
        )
        while (message := await frames.next()) is not None:
            if message.oversized:
                ack = self._receiver.reject_oversized(message.payload, settings.max_message_bytes)
            else:
                ack = await self._receiver.handle(message.payload)
            writer.write(frame(ack))
            await writer.drain()
