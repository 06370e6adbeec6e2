"""The SMART router in a FastAPI app served by real uvicorn on 127.0.0.1, over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from fastapi import Depends, FastAPI, HTTPException, Request

from bridge.actors import Actor
from bridge.errors import AuthFailed
from bridge.smart import AccessTokens, SmartClient, SmartConfig, SmartTokenVerifier, smart_router
from ehrgate.embedded import serve_app
from tests.bridge.smart.support import ALLOWED, assertion, ec_key, form, public_jwks, rsa_key
from tests.ports import free_port


@contextmanager
def serve(app: FastAPI, port: int) -> Iterator[str]:
    with serve_app(app, port, "uvicorn", timeout=20) as url:
        yield url


def app_with(config: SmartConfig) -> FastAPI:
    tokens = AccessTokens(config.token_url)
    verifier = SmartTokenVerifier(config, tokens)
    app = FastAPI()
    app.include_router(smart_router(config, tokens))

    def actor(request: Request) -> Actor:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        try:
            if scheme.lower() != "bearer":
                raise AuthFailed("a bearer token is required")
            return verifier.verify(token)
        except AuthFailed as exc:
            raise HTTPException(401, str(exc)) from exc

    @app.get("/whoami")
    def whoami(caller: Actor = Depends(actor)) -> dict[str, object]:  # noqa: B008
        return {
            "identity": caller.identity,
            "subject": caller.subject,
            "scopes": sorted(caller.scopes),
        }

    return app


def test_token_and_protected_call_over_real_http() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    client = SmartClient.register(
        "aria-engine",
        jwks=public_jwks(rsa_key(), ec_key()),
        identity="hospital-system",
        scopes=ALLOWED,
    )
    config = SmartConfig(token_url=f"{url}/auth/token", clients={"aria-engine": client})
    with serve(app_with(config), port), httpx.Client(base_url=url, timeout=10) as http:
        discovered = http.get("/fhir/.well-known/smart-configuration").json()["token_endpoint"]
        assert discovered == f"{url}/auth/token"
        now = time.time()
        signed = assertion(ec_key(), "ES384", aud=discovered, exp=int(now) + 120)
        issued = http.post(discovered, data=form(signed, scope="system/Binary.r"))
        assert issued.status_code == 200, issued.text
        token = issued.json()["access_token"]
        me = http.get("/whoami", headers={"Authorization": f"Bearer {token}"})
        assert me.json() == {
            "identity": "hospital-system",
            "subject": "aria-engine",
            "scopes": ["system/Binary.r"],
        }
        # The same assertion again is a replay; an assertion for another audience is refused.
        replay = http.post(discovered, data=form(signed, scope="system/Binary.r"))
        assert replay.status_code == 401
        foreign = http.post(discovered, data=form(assertion(exp=int(now) + 120)))
        assert (foreign.status_code, foreign.json()["error"]) == (401, "invalid_client")
        assert (
            http.get(
                "/whoami", headers={"Authorization": "Bearer " + token[:-4] + "AAAA"}
            ).status_code
            == 401
        )
