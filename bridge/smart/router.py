"""The SMART Backend Services HTTP surface: `POST /auth/token` and the SMART configuration.

`smart_router` returns a FastAPI `APIRouter` the bridge app includes. The token endpoint
takes an `application/x-www-form-urlencoded` body (parsed here, at most 64 KiB) and answers
RFC 6749 §5.1 JSON, or §5.2 errors with 400 (401 for `invalid_client`), never a 5xx.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from bridge.errors import TokenRequestRefused
from bridge.smart.assertion import verify_assertion
from bridge.smart.config import ASSERTION_ALGORITHMS, SmartConfig
from bridge.smart.replay import MemoryReplayCache, ReplayCache
from bridge.smart.tokens import AccessTokens

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_FORM_BYTES = 64 * 1024
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def smart_configuration(config: SmartConfig) -> dict[str, Any]:
    """The `.well-known/smart-configuration` document."""
    return {
        "token_endpoint": config.token_url,
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "scopes_supported": config.scopes_supported(),
        "capabilities": ["client-confidential-asymmetric"],
    }


def smart_router(
    config: SmartConfig,
    tokens: AccessTokens,
    *,
    replay: ReplayCache | None = None,
    clock: Callable[[], float] = time.time,
    well_known_paths: tuple[str, ...] = (
        "/.well-known/smart-configuration",
        "/fhir/.well-known/smart-configuration",
    ),
) -> APIRouter:
    """The token endpoint (`/auth/token`) and the SMART configuration at *well_known_paths*."""
    cache = replay if replay is not None else MemoryReplayCache()
    router = APIRouter(tags=["auth"])

    async def configuration() -> JSONResponse:
        return JSONResponse(smart_configuration(config))

    for path in well_known_paths:
        router.add_api_route(path, configuration, methods=["GET"], include_in_schema=False)

    @router.post("/auth/token", include_in_schema=False)
    async def token(request: Request) -> JSONResponse:
        try:
            form = await _form(request)
            body = _grant(form, config, tokens, cache, clock())
        except TokenRequestRefused as exc:
            error = {"error": exc.error, "error_description": str(exc)}
            return JSONResponse(error, status_code=exc.status, headers=_NO_STORE)
        return JSONResponse(body, headers=_NO_STORE)

    return router


async def _form(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise TokenRequestRefused(
            "invalid_request", "send the parameters as application/x-www-form-urlencoded"
        )
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise TokenRequestRefused(
                "invalid_request", f"the request body is over {MAX_FORM_BYTES} bytes"
            )
    try:
        pairs = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError) as exc:
        raise TokenRequestRefused("invalid_request", f"the form does not parse: {exc}") from exc
    repeated = sorted(name for name, values in pairs.items() if len(values) > 1)
    if repeated:
        raise TokenRequestRefused(
            "invalid_request", f"parameters given more than once: {', '.join(repeated)}"
        )
    return {name: values[0] for name, values in pairs.items()}


def _grant(
    form: dict[str, str],
    config: SmartConfig,
    tokens: AccessTokens,
    cache: ReplayCache,
    now: float,
) -> dict[str, Any]:
    grant_type = form.get("grant_type")
    if not grant_type:
        raise TokenRequestRefused("invalid_request", "grant_type is missing")
    if grant_type != "client_credentials":
        raise TokenRequestRefused(
            "unsupported_grant_type", f"grant_type {grant_type!r}: only client_credentials"
        )
    if form.get("client_assertion_type") != JWT_BEARER or not form.get("client_assertion"):
        raise TokenRequestRefused(
            "invalid_client",
            "authenticate with private_key_jwt: "
            f"client_assertion_type={JWT_BEARER} and a client_assertion",
            401,
        )
    client = verify_assertion(form["client_assertion"], config, cache, now)
    requested = frozenset(form.get("scope", "").split())
    if not requested:
        raise TokenRequestRefused(
            "invalid_scope", "scope is missing: name the scopes the client needs"
        )
    granted = requested & client.scopes
    if not granted:
        raise TokenRequestRefused(
            "invalid_scope",
            f"none of the requested scopes is allowed for {client.client_id} "
            f"(allowed: {' '.join(sorted(client.scopes))})",
        )
    return {
        "access_token": tokens.issue(client.client_id, granted),
        "token_type": "bearer",
        "expires_in": tokens.lifetime,
        "scope": " ".join(sorted(granted)),
    }
