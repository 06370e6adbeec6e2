"""`create_bridge_app(settings)`: the bridge's FastAPI app, with IHE MHD under `/fhir`.

Token verifiers (SMART Backend Services, OpenID Connect; anything implementing
`bridge.actors.TokenVerifier`) are a list in `app.state.token_verifiers`; every `/fhir`
route but `metadata` needs a bearer token one of them accepts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI

from bridge.actors import TokenVerifier
from bridge.fhir import recipient, responder
from bridge.fhir.outcome import install_error_handlers
from bridge.service import Bridge
from bridge.settings import BridgeSettings


def create_bridge_app(settings: BridgeSettings, verifiers: Sequence[TokenVerifier] = ()) -> FastAPI:
    bridge = Bridge(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            bridge.close()

    app = FastAPI(
        title="ehrgate bridge",
        description="IHE MHD (FHIR R4) for hospital systems, a client of the ehrgate gateway",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.bridge = bridge
    app.state.token_verifiers = list(verifiers)
    install_error_handlers(app)
    app.include_router(responder.router, prefix="/fhir")
    app.include_router(recipient.router, prefix="/fhir")
    return app
