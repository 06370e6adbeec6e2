"""The gateway's exception tree and its RFC 9457 problem+json responses.

GatewayError                      500 internal
├── BadRequest                    400 bad-request
│   ├── ValidationFailed          422 validation-failed   (field errors in `errors`)
│   └── UnsupportedMediaType      415 unsupported-media-type
├── Unauthenticated               401 unauthenticated
│   ├── InvalidToken              401 invalid-token        (missing, unknown or expired)
│   ├── InvalidChallenge          401 invalid-challenge    (unknown, expired or used)
│   └── AuthenticationFailed      401 authentication-failed
├── Forbidden                     403 forbidden              (role, or a ledger rule: `code`)
│   ├── IdentitySuspended         403 identity-suspended
│   └── AccessDenied              403 access-denied        (ledger permissions say no)
├── NotFound                      404 not-found
├── MethodNotAllowed              405 method-not-allowed
├── Conflict                      409 conflict             (replayed or duplicate: `code`)
├── RecordErased                  410 record-erased        (an `erase` entry erased it)
├── PayloadTooLarge               413 payload-too-large
├── RuleViolation                 422 rule-violation       (the ledger refused a transaction)
├── RateLimited                   429 rate-limited         (Retry-After)
├── IntegrityFailure              502 integrity-error      (stored bytes do not match the ledger)
└── ServiceUnavailable            503 service-unavailable  (database or blob store down)
    └── GcFailed                  (gateway.gc) orphan collection could not read the ledger
        └── GcMisconfigured       or a store; or a store URL is wrong

Every error leaves the gateway as `application/problem+json` with a stable `type` of the
form `urn:ehrgate:problem:<slug>` (a URN, so that no client is tempted to fetch it), the
HTTP `status`, a short `title`, a `detail` a user can act on, the request path as
`instance` and the `request_id` that also appears in the gateway's log. Each class takes its
status, slug and title from the one table of problem types, `ledger.wire.problems`, which
clients map from too. Errors of the ledger and the stores are translated in one place,
`from_backend_error`.

A client that closes its connection before its request is read (`ClientDisconnect`) is not
a failure of the gateway: it is logged in one line, without a traceback, and answered with
the status 499 (`CLIENT_CLOSED`), which nobody receives but the request metrics count.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

import ledger.errors as ledger_errors
import storage.errors as storage_errors
from ledger.wire import problems
from ledger.wire.problems import PROBLEM_TYPE_PREFIX

PROBLEM_CONTENT_TYPE = "application/problem+json"
# "Client closed request": the client went away before its request was read to the end.
CLIENT_CLOSED = 499

log = logging.getLogger("gateway.errors")


class GatewayError(Exception):
    """Root of every error the gateway turns into a problem response."""

    status: ClassVar[int]
    slug: ClassVar[str]
    title: ClassVar[str]
    status, slug, title = problems.INTERNAL
    # Headers every answer of this kind carries unless the raiser gives its own.
    default_headers: ClassVar[Mapping[str, str]] = {}

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        self.detail = detail or self.title
        self.headers = {**self.default_headers, **(headers or {})}
        self.extensions = dict(extensions or {})
        super().__init__(self.detail)

    @classmethod
    def type_uri(cls) -> str:
        return PROBLEM_TYPE_PREFIX + cls.slug


class BadRequest(GatewayError):
    status, slug, title = problems.BAD_REQUEST


class ValidationFailed(BadRequest):
    status, slug, title = problems.VALIDATION_FAILED


class UnsupportedMediaType(BadRequest):
    status, slug, title = problems.UNSUPPORTED_MEDIA_TYPE


class Unauthenticated(GatewayError):
    status, slug, title = problems.UNAUTHENTICATED
    default_headers: ClassVar[Mapping[str, str]] = {"WWW-Authenticate": 'Bearer realm="ehrgate"'}


class InvalidToken(Unauthenticated):
    status, slug, title = problems.INVALID_TOKEN


class InvalidChallenge(Unauthenticated):
    status, slug, title = problems.INVALID_CHALLENGE


class AuthenticationFailed(Unauthenticated):
    status, slug, title = problems.AUTHENTICATION_FAILED


class Forbidden(GatewayError):
    status, slug, title = problems.FORBIDDEN


class IdentitySuspended(Forbidden):
    status, slug, title = problems.IDENTITY_SUSPENDED


class AccessDenied(Forbidden):
    status, slug, title = problems.ACCESS_DENIED


class NotFound(GatewayError):
    status, slug, title = problems.NOT_FOUND


class MethodNotAllowed(GatewayError):
    status, slug, title = problems.METHOD_NOT_ALLOWED


class Conflict(GatewayError):
    status, slug, title = problems.CONFLICT


class RecordErased(GatewayError):
    status, slug, title = problems.RECORD_ERASED


class PayloadTooLarge(GatewayError):
    status, slug, title = problems.PAYLOAD_TOO_LARGE


class RuleViolation(GatewayError):
    status, slug, title = problems.RULE_VIOLATION
    # `code` (an extension member) is the ledger's stable reason, e.g. "bad-signature".


class RateLimited(GatewayError):
    status, slug, title = problems.RATE_LIMITED

    def __init__(self, detail: str | None = None, *, retry_after: int, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.headers["Retry-After"] = str(max(1, retry_after))


class IntegrityFailure(GatewayError):
    status, slug, title = problems.INTEGRITY_ERROR


class ServiceUnavailable(GatewayError):
    status, slug, title = problems.SERVICE_UNAVAILABLE
    default_headers: ClassVar[Mapping[str, str]] = {"Retry-After": "5"}


_BY_STATUS: dict[int, type[GatewayError]] = {
    400: BadRequest,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: ValidationFailed,
    429: RateLimited,
    503: ServiceUnavailable,
}


def problem_body(
    error_type: type[GatewayError],
    detail: str,
    *,
    instance: str | None,
    request_id: str | None,
    extensions: Mapping[str, Any] | None = None,
    status: int | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": error_type.type_uri(),
        "title": error_type.title,
        "status": status or error_type.status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    if request_id is not None:
        body["request_id"] = request_id
    for key, value in (extensions or {}).items():
        body.setdefault(key, value)
    return body


def problem_response(
    error_type: type[GatewayError],
    detail: str,
    *,
    request: Request | None = None,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
    status: int | None = None,
) -> JSONResponse:
    instance = request.url.path if request is not None else None
    request_id = getattr(request.state, "request_id", None) if request is not None else None
    body = problem_body(
        error_type,
        detail,
        instance=instance,
        request_id=request_id,
        extensions=extensions,
        status=status,
    )
    return JSONResponse(
        body,
        status_code=body["status"],
        headers=dict(headers or {}),
        media_type=PROBLEM_CONTENT_TYPE,
    )


def field_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic's errors without the rejected input (which may carry personal data)."""
    fields: list[dict[str, Any]] = []
    for error in errors:
        fields.append(
            {
                "loc": [str(part) for part in error.get("loc", ())],
                "msg": str(error.get("msg", "")),
                "type": str(error.get("type", "")),
            }
        )
    return fields


async def _gateway_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GatewayError)
    if exc.status >= 500:
        log.warning("%s: %s", exc.slug, exc.detail)
    return problem_response(
        type(exc), exc.detail, request=request, headers=exc.headers, extensions=exc.extensions
    )


async def _validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = field_errors(exc.errors())
    where = ", ".join(".".join(e["loc"]) + ": " + e["msg"] for e in errors[:5])
    return problem_response(
        ValidationFailed,
        f"the request does not match the schema ({where})",
        request=request,
        extensions={"errors": errors},
    )


async def _http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    error_type = _BY_STATUS.get(exc.status_code, GatewayError)
    detail = exc.detail if isinstance(exc.detail, str) else error_type.title
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"there is no resource at {request.url.path}"
    elif exc.status_code == 405 and detail == "Method Not Allowed":
        detail = f"{request.method} is not allowed on {request.url.path}"
    return problem_response(
        error_type, detail, request=request, headers=exc.headers, status=exc.status_code
    )


async def _unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    # Answered outside the request-id middleware, so the id header is added here.
    request_id = getattr(request.state, "request_id", None)
    return problem_response(
        GatewayError,
        "the gateway failed unexpectedly; quote the request_id",
        request=request,
        headers={"x-request-id": request_id} if request_id else None,
    )


async def _client_closed_handler(request: Request, exc: Exception) -> Response:
    log.info(
        "client closed the connection during %s %s (request %s)",
        request.method,
        request.url.path,
        getattr(request.state, "request_id", None) or "unknown",
    )
    return Response(status_code=CLIENT_CLOSED)


def install_error_handlers(app: FastAPI) -> None:
    """Make every error of *app* a problem+json response (a client's abort a bare 499)."""
    app.add_exception_handler(ClientDisconnect, _client_closed_handler)
    app.add_exception_handler(GatewayError, _gateway_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    app.add_exception_handler(Exception, _unexpected_error_handler)


# --- errors of the ledger and the stores ------------------------------------------------

# Rule codes that mean "this caller may not", as opposed to "this transaction is wrong".
_FORBIDDEN_CODES = frozenset(
    {
        "not-granted",
        "not-owner",
        "wrong-role",
        "suspended",
        "unknown-signer",
        "self-suspend",
        "self-countersign",
        "not-opted-in",
        "not-of-hospital",
    }
)
_CONFLICT_CODES = frozenset(
    {
        "replayed",
        "duplicate-identity",
        "duplicate-pseudonym",
        "duplicate-permission",
        "duplicate-record",
        "already-revoked",
        "already-erased",
        "already-suspended",
        "not-suspended",
        "stale-rotation",
        "already-answered",
        "genesis-exists",
        "already-reviewed",
        "duplicate-session",
        "duplicate-export",
    }
)


def from_backend_error(exc: Exception) -> GatewayError:
    """The gateway error for an error of the ledger or storage packages (mapped here only)."""
    if isinstance(exc, ledger_errors.RuleViolation):
        extensions = {"code": exc.code}
        if exc.code in _FORBIDDEN_CODES:
            return Forbidden(exc.message, extensions=extensions)
        if exc.code in _CONFLICT_CODES:
            return Conflict(exc.message, extensions=extensions)
        return RuleViolation(exc.message, extensions=extensions)
    if isinstance(exc, ledger_errors.NotFound):
        return NotFound(str(exc))
    if isinstance(exc, ledger_errors.ProofError):
        return BadRequest(str(exc))
    if isinstance(exc, ledger_errors.LedgerError):  # unavailable, conflict, schema missing
        return ServiceUnavailable(f"the ledger is unavailable: {exc}")
    if isinstance(exc, storage_errors.IntegrityError):
        return IntegrityFailure(str(exc))
    if isinstance(exc, storage_errors.BlobNotFound):
        return NotFound(str(exc))
    if isinstance(exc, storage_errors.InvalidLocator):
        return ValidationFailed(str(exc))
    if isinstance(exc, storage_errors.StorageError):  # unavailable, quorum, misconfigured
        return ServiceUnavailable(f"the blob store is unavailable: {exc}")
    return GatewayError("unexpected backend failure")


async def _backend_error_handler(request: Request, exc: Exception) -> JSONResponse:
    error = from_backend_error(exc)
    if error.status >= 500:
        log.warning("%s: %s", error.slug, exc)
    return problem_response(
        type(error), error.detail, request=request, headers=error.headers,
        extensions=error.extensions,
    )  # fmt: skip


def install_backend_error_handlers(app: FastAPI) -> None:
    """Turn any ledger or storage error that reaches the top into its problem response."""
    app.add_exception_handler(ledger_errors.LedgerError, _backend_error_handler)
    app.add_exception_handler(storage_errors.StorageError, _backend_error_handler)
