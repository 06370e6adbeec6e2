"""The witness's HTTP face (C2SP tlog-witness), a small FastAPI application.

    POST /add-checkpoint          old size, proof lines, blank line, signed checkpoint
    GET  /<sha256(origin) hex>/checkpoint
                                  the latest checkpoint cosigned for that log, with the
                                  log's signature and this witness's cosignature
    GET  /healthz                 liveness

Bodies above `MAX_BODY` bytes are refused with 413 before they are read in full.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from witness.errors import Refused
from witness.witness import Witness

MAX_BODY = 256 * 1024
TEXT = "text/plain; charset=utf-8"
_ORIGIN_HASH = re.compile(r"[0-9a-f]{64}")


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise Refused(413, f"a request body is at most {MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise Refused(413, f"a request body is at most {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _refusal(refused: Refused) -> Response:
    # The content type is set as given: Starlette would add a charset to text/x.tlog.size.
    headers = {"content-type": refused.content_type}
    return Response(refused.body, status_code=refused.status, headers=headers)


def create_witness_app(witness: Witness) -> FastAPI:
    """The application serving *witness*; it closes the state database when it stops."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            witness.state.close()

    app = FastAPI(
        title="ehrgate witness",
        summary="A C2SP tlog-witness that cosigns checkpoints of ehrgate logs.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    by_hash = {hashlib.sha256(origin.encode()).hexdigest(): origin for origin in witness.logs}

    @app.post("/add-checkpoint", response_class=Response)
    async def add_checkpoint(request: Request) -> Response:
        """Submit a checkpoint with a consistency proof from the witness's known size."""
        try:
            body = await _read_body(request)
            lines = await run_in_threadpool(witness.add_checkpoint, body)
        except Refused as refused:
            return _refusal(refused)
        return Response(lines, media_type=TEXT)

    @app.get("/{origin_hash}/checkpoint", response_class=Response)
    async def checkpoint(origin_hash: str) -> Response:
        """The latest checkpoint this witness cosigned for the log of that origin hash."""
        origin = by_hash.get(origin_hash) if _ORIGIN_HASH.fullmatch(origin_hash) else None
        known = await run_in_threadpool(witness.state.latest, origin) if origin else None
        if known is None:
            return Response("no checkpoint cosigned for that log\n", 404, media_type=TEXT)
        return Response(known.note, media_type=TEXT)

    @app.get("/healthz", response_class=Response)
    async def healthz() -> Response:
        return Response("ok\n", media_type=TEXT)

    return app
