"""`create_bridge_app(settings)`: the bridge's FastAPI app, with IHE MHD under `/fhir`.

Token verifiers (SMART Backend Services and OpenID Connect as the settings configure them,
then any given; anything implementing `bridge.actors.TokenVerifier`) are a list in
`app.state.token_verifiers`; every `/fhir` route but `metadata` needs a bearer token one of
them accepts. With SMART clients registered, `/auth/token` and the SMART configuration are
served; with an MLLP port set, the HL7 v2 listener runs in the app's event loop for the
app's lifetime (`app.state.mllp` once started).
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
from bridge.wiring import auth_parts, mllp_listener


def create_bridge_app(settings: BridgeSettings, verifiers: Sequence[TokenVerifier] = ()) -> FastAPI:
    auth = auth_parts(settings)
    bridge = Bridge(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        listener = mllp_listener(settings, bridge)
        try:
            if listener is not None:
                await listener.start()
            app.state.mllp = listener
            yield
        finally:
            if listener is not None:
                await listener.close()
            bridge.close()

    app = FastAPI(
        title="ehrgate bridge",
        description="IHE MHD (FHIR R4) for hospital systems, a client of the ehrgate gateway",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.bridge = bridge
    app.state.token_verifiers = [*auth.verifiers, *verifiers]
    app.state.mllp = None
    install_error_handlers(app)
    for router in auth.routers:
        app.include_router(router)
    app.include_router(responder.router, prefix="/fhir")
    app.include_router(recipient.router, prefix="/fhir")
    return app
