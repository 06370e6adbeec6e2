"""FHIR JSON responses and OperationOutcome: every error the bridge answers with."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from bridge.errors import (
    AuthFailed,
    BridgeError,
    BridgeUnavailable,
    DocumentGone,
    Forbidden,
    UnlinkedPatient,
)
from ehrgate.errors import (
    Denied,
    EhrgateError,
    NotFound,
    RecordErased,
    Unavailable,
    UsageError,
)

FHIR_JSON = "application/fhir+json"
_log = logging.getLogger("bridge.fhir")


class FhirError(BridgeError):
    """An error with its HTTP status and OperationOutcome issue code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def fhir_response(resource: dict[str, Any], status: int = 200, **headers: str) -> Response:
    body = json.dumps(resource, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Response(body, status_code=status, media_type=FHIR_JSON, headers=headers or None)


def operation_outcome(code: str, message: str, severity: str = "error") -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": message}],
    }


def outcome_response(status: int, code: str, message: str, **headers: str) -> Response:
    return fhir_response(operation_outcome(code, message), status, **headers)


_BRIDGE: tuple[tuple[type[BaseException], int, str], ...] = (
    (FhirError, 400, "invalid"),
    (UnlinkedPatient, 422, "not-found"),
    (AuthFailed, 401, "login"),
    (Forbidden, 403, "forbidden"),
    (DocumentGone, 410, "deleted"),
    (RecordErased, 410, "deleted"),
    (BridgeUnavailable, 503, "transient"),
    (NotFound, 404, "not-found"),
    (Denied, 403, "forbidden"),
    (UsageError, 400, "invalid"),
    (Unavailable, 503, "transient"),
    (EhrgateError, 502, "exception"),
    (BridgeError, 400, "invalid"),
)


def status_of(exc: BaseException) -> tuple[int, str]:
    if isinstance(exc, FhirError):
        return exc.status, exc.code
    for kind, status, code in _BRIDGE:
        if isinstance(exc, kind):
            return status, code
    return 500, "exception"


async def _bridge_error(request: Request, exc: Exception) -> Response:
    status, code = status_of(exc)
    headers = {"WWW-Authenticate": 'Bearer realm="ehrgate-bridge"'} if status == 401 else {}
    return outcome_response(status, code, str(exc) or type(exc).__name__, **headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not-found", 405: "not-supported", 413: "too-costly"}.get(
        exc.status_code, "processing"
    )
    return outcome_response(exc.status_code, code, str(exc.detail))


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(
        f"{'.'.join(str(part) for part in error.get('loc', ()))}: {error.get('msg')}"
        for error in exc.errors()
    )
    return outcome_response(400, "invalid", f"invalid request: {problems}")


async def _unexpected(request: Request, exc: Exception) -> Response:
    _log.exception("unexpected error answering %s %s", request.method, request.url.path)
    return outcome_response(500, "exception", "the bridge failed unexpectedly; see its log")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(BridgeError, _bridge_error)
    app.add_exception_handler(EhrgateError, _bridge_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
