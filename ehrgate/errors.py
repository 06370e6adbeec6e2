"""The exception tree of the ehrgate client (SDK and command line).

EhrgateError                        exit 1 unless said otherwise
├── UsageError                      exit 2  bad input the caller can fix
│   ├── InvalidRequest                      gateway 400, 405, 413, 415, 422 validation-failed
│   ├── RuleViolation                       gateway 422 rule-violation: the ledger refused (`code`)
│   ├── NotFound                            gateway 404: no such record, patient or identity
│   │   └── RecordErased                    gateway 410 record-erased: an `erase` erased it
│   └── Conflict                            gateway 409: conflicts with the ledger (`code`)
│       └── RecordExists                    409 duplicate-record: that record id is taken
├── Denied                          exit 1  the gateway or the ledger's permissions say no
│   ├── AuthenticationFailed                gateway 401: the identity could not log in
│   └── Suspended                           gateway 403 identity-suspended
├── VerificationFailed              exit 1  a check made by the client failed: tree head
│   │                                       signature, inclusion proof, body hash, segments,
│   │                                       capsule signature, pinned ledger key
│   ├── IntegrityFailure                    gateway 502: it found its stored bytes wrong
│   ├── NoQuorum                            no checkpoint cosigned by k of the policy's
│   │                                       witnesses covers the tree head
│   └── SplitView                           the log signed two inconsistent views of its
│                                           history (`evidence`: the file keeping both)
└── Unavailable                     exit 3  the gateway (or its database or stores) cannot
    │                                       serve: connection refused or timed out, 5xx
    ├── RateLimited                         gateway 429 (`retry_after` seconds)
    └── MalformedAnswer                     the gateway answered with JSON that is not what
                                            its API promises

Gateway answers are RFC 9457 problem+json with a stable `type`
(`urn:ehrgate:problem:<slug>`, the slugs kept once in `ledger.wire.problems`);
`error_for_problem` maps each one to its class here, and `map_transport_errors` maps
httpx's errors, so no foreign exception leaves the SDK. Every exception the SDK raises is
one of these.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import httpx

from ledger.wire import problems
from ledger.wire.problems import slug_of

EXIT_OK = 0
EXIT_DENIED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3


class EhrgateError(Exception):
    """Root of every error the ehrgate client raises.

    When the error is the gateway's answer, `status`, `problem_type`, `code` (the ledger's
    rule code, if any) and `request_id` (quote it to the operator) say which.
    """

    exit_code: ClassVar[int] = EXIT_DENIED

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        problem_type: str | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.problem_type = problem_type
        self.code = code
        self.request_id = request_id

    def to_json(self) -> dict[str, Any]:
        """The error as the command line prints it with --json."""
        result: dict[str, Any] = {"error": type(self).__name__, "message": self.message}
        for name in ("status", "problem_type", "code", "request_id"):
            value = getattr(self, name)
            if value is not None:
                result[name] = value
        return result


class UsageError(EhrgateError):
    """Bad input the caller can fix: arguments, key files, unknown ids."""

    exit_code = EXIT_USAGE


class InvalidRequest(UsageError):
    """The gateway refused the request as malformed, too large or of the wrong type."""


class RuleViolation(UsageError):
    """The ledger refused the transaction (`code` names the rule)."""


class NotFound(UsageError):
    """No such record, patient, identity or resource."""


class RecordErased(NotFound):
    """The record was erased (an `erase` on the ledger): nothing of it can be fetched."""


class Conflict(UsageError):
    """The request conflicts with the ledger's state (`code` says how)."""


class RecordExists(Conflict):
    """The ledger already holds a record with this id."""


class Denied(EhrgateError):
    """Not allowed: a role, a suspension, or the patient's permissions say no."""

    exit_code = EXIT_DENIED


class AuthenticationFailed(Denied):
    """The gateway did not accept the identity's signed challenge."""


class Suspended(Denied):
    """The identity has been suspended by an administrator."""


class VerificationFailed(EhrgateError):
    """Something the client checked did not verify; nothing unverified was kept."""

    exit_code = EXIT_DENIED


class IntegrityFailure(VerificationFailed):
    """The gateway found the stored bytes different from what the ledger records."""


class NoQuorum(VerificationFailed):
    """No checkpoint cosigned by enough of the trusted witnesses covers the tree head."""


class SplitView(VerificationFailed):
    """The log signed two views of its history that cannot both be true: a fork.

    `evidence` is the file where both signed views were saved (None if nowhere to save).
    """

    def __init__(self, message: str, evidence: Any = None) -> None:
        super().__init__(message)
        self.evidence = evidence


class Unavailable(EhrgateError):
    """The gateway, its database or its blob stores cannot serve the request now."""

    exit_code = EXIT_UNAVAILABLE


class RateLimited(Unavailable):
    """Too many attempts; wait `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class MalformedAnswer(Unavailable):
    """The gateway answered with JSON that is not what its API promises."""


ERROR_FOR_PROBLEM: dict[problems.ProblemType, type[EhrgateError]] = {
    problems.BAD_REQUEST: InvalidRequest,
    problems.VALIDATION_FAILED: InvalidRequest,
    problems.UNSUPPORTED_MEDIA_TYPE: InvalidRequest,
    problems.PAYLOAD_TOO_LARGE: InvalidRequest,
    problems.METHOD_NOT_ALLOWED: InvalidRequest,
    problems.RULE_VIOLATION: RuleViolation,
    problems.NOT_FOUND: NotFound,
    problems.RECORD_ERASED: RecordErased,
    problems.CONFLICT: Conflict,
    problems.UNAUTHENTICATED: AuthenticationFailed,
    problems.INVALID_TOKEN: AuthenticationFailed,
    problems.INVALID_CHALLENGE: AuthenticationFailed,
    problems.AUTHENTICATION_FAILED: AuthenticationFailed,
    problems.FORBIDDEN: Denied,
    problems.ACCESS_DENIED: Denied,
    problems.IDENTITY_SUSPENDED: Suspended,
    problems.INTEGRITY_ERROR: IntegrityFailure,
    problems.RATE_LIMITED: RateLimited,
    problems.SERVICE_UNAVAILABLE: Unavailable,
    problems.INTERNAL: Unavailable,
}
"""The client error for each of the gateway's problem types."""

_BY_SLUG = {problem.slug: error for problem, error in ERROR_FOR_PROBLEM.items()}

_BY_STATUS: dict[int, type[EhrgateError]] = {
    400: InvalidRequest,
    401: AuthenticationFailed,
    403: Denied,
    404: NotFound,
    405: InvalidRequest,
    409: Conflict,
    410: RecordErased,
    413: InvalidRequest,
    415: InvalidRequest,
    422: InvalidRequest,
    429: RateLimited,
    502: IntegrityFailure,
}


def error_for_problem(response: httpx.Response) -> EhrgateError:
    """The client error for a gateway's error *response* (problem+json or not)."""
    status = response.status_code
    problem: dict[str, Any] = {}
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        body = response.json()
        if isinstance(body, dict):
            problem = body
    problem_type = problem.get("type") if isinstance(problem.get("type"), str) else None
    slug = slug_of(problem_type)
    code = problem.get("code") if isinstance(problem.get("code"), str) else None
    error_class = _BY_SLUG.get(slug or "") or _BY_STATUS.get(status)
    if error_class is None:
        error_class = Unavailable if status >= 500 else InvalidRequest
    if error_class is Conflict and code == "duplicate-record":
        error_class = RecordExists
    detail = problem.get("detail")
    message = detail if isinstance(detail, str) and detail else f"the gateway answered {status}"
    request_id = problem.get("request_id")
    if not isinstance(request_id, str):
        request_id = response.headers.get("x-request-id")
    fields: dict[str, Any] = {
        "status": status,
        "problem_type": problem_type,
        "code": code,
        "request_id": request_id,
    }
    if error_class is RateLimited:
        retry_after: float | None = None
        with contextlib.suppress(ValueError):
            retry_after = float(response.headers.get("retry-after", ""))
        return RateLimited(message, retry_after=retry_after, **fields)
    return error_class(message, **fields)


@contextlib.contextmanager
def map_transport_errors(url: str) -> Iterator[None]:
    """Turn httpx's errors (connection, timeout, protocol) into Unavailable, once."""
    import httpx  # here, so that the command line starts without the HTTP stack

    try:
        yield
    except httpx.TimeoutException as exc:
        raise Unavailable(f"the gateway at {url} did not answer in time ({exc})") from exc
    except httpx.ConnectError as exc:
        raise Unavailable(f"cannot connect to the gateway at {url} ({exc})") from exc
    except httpx.TransportError as exc:
        raise Unavailable(f"the connection to the gateway at {url} failed ({exc})") from exc
    except httpx.InvalidURL as exc:
        raise UsageError(f"{url} is not a usable gateway URL ({exc})") from exc
