"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from gateway.deps import StateDep
from gateway.metrics import CONTENT_TYPE_LATEST
from gateway.models import HealthStatus, ReadinessStatus

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


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def metrics(state: StateDep) -> Response:
    """Prometheus metrics of this gateway, in the text exposition format."""
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
