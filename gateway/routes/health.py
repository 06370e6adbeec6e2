"""Liveness, readiness and Prometheus metrics.

`/metrics` tells usage and attack patterns, so it is not public: with
`EHRGATE_METRICS_TOKEN` set it takes `Authorization: Bearer <that token>` from anywhere;
without it, it answers only clients on a loopback address.
"""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from gateway.deps import StateDep, client_address
from gateway.errors import Forbidden, Unauthenticated
from gateway.metrics import CONTENT_TYPE_LATEST
from gateway.models import HealthStatus, ReadinessStatus, problem_responses

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthStatus)
async def healthz() -> HealthStatus:
    """The process is up and answering."""
    return HealthStatus(status="ok")


@router.get(
    "/readyz",
    response_model=ReadinessStatus,
    responses={503: {"model": ReadinessStatus, "description": "A backing service is down."}},
)
async def readyz(state: StateDep) -> JSONResponse:
    """The ledger database and every blob store answer."""
    if state.backends is None:
        body = ReadinessStatus(status="starting", checks={})
        return JSONResponse(body.model_dump(), status_code=503)
    checks = await run_in_threadpool(state.backends.readiness)
    ready = all(value == "ok" for value in checks.values())
    body = ReadinessStatus(status="ready" if ready else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback; False for names and None."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _admit_scraper(request: Request, state: StateDep) -> None:
    token = state.settings.metrics_token
    if token is None:
        if not is_loopback(client_address(request)):
            raise Forbidden(
                "/metrics answers only loopback clients unless the gateway has a metrics token"
            )
        return
    scheme, _, offered = request.headers.get("authorization", "").partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(offered.strip().encode(), expected):
        raise Unauthenticated("send 'Authorization: Bearer <metrics token>'")


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}},
        **problem_responses(401, 403),
    },
)
async def metrics(request: Request, state: StateDep) -> Response:
    """Prometheus metrics of this gateway, in the text exposition format (not public)."""
    _admit_scraper(request, state)
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
