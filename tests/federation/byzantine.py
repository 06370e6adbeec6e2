"""A Byzantine witness: it speaks tlog-witness but cosigns any checkpoint it is sent,
consistent or not, with a witness key the clients trust."""

from __future__ import annotations

import time

from fastapi import FastAPI, Request, Response

from ledger.wire.cosignatures import Cosigner
from ledger.wire.notes import parse_note
from ledger.wire.tlog_witness import parse_add_checkpoint


def byzantine_witness_app(cosigner: Cosigner) -> FastAPI:
    app = FastAPI()
    app.state.cosigned = []

    @app.post("/add-checkpoint")
    async def add_checkpoint(request: Request) -> Response:
        submitted = parse_add_checkpoint(await request.body())
        text = parse_note(submitted.note).text
        app.state.cosigned.append(text)
        line = cosigner.cosign(text, int(time.time())).line()
        return Response(line, media_type="text/plain; charset=utf-8")

    return app
