"""The gateway's RFC 9457 problem types, kept once: each slug with its HTTP status and title.

Every error leaves the gateway as problem+json whose `type` is `urn:ehrgate:problem:<slug>`.
The gateway gives each of its error classes one of these (gateway/errors.py); a client maps
each slug to its own exception (ehrgate/errors.py). Neither spells a slug itself.
"""

from __future__ import annotations

from typing import NamedTuple

PROBLEM_TYPE_PREFIX = "urn:ehrgate:problem:"


class ProblemType(NamedTuple):
    """One problem type: unpacks as `status, slug, title`."""

    status: int
    slug: str
    title: str

    @property
    def uri(self) -> str:
        """The problem's `type` member: `urn:ehrgate:problem:<slug>`."""
        return PROBLEM_TYPE_PREFIX + self.slug


INTERNAL = ProblemType(500, "internal", "Internal error")
BAD_REQUEST = ProblemType(400, "bad-request", "Bad request")
VALIDATION_FAILED = ProblemType(422, "validation-failed", "The request is not valid")
UNSUPPORTED_MEDIA_TYPE = ProblemType(415, "unsupported-media-type", "Unsupported media type")
UNAUTHENTICATED = ProblemType(401, "unauthenticated", "Authentication required")
INVALID_TOKEN = ProblemType(401, "invalid-token", "The bearer token is not valid")
INVALID_CHALLENGE = ProblemType(401, "invalid-challenge", "The challenge is not valid")
AUTHENTICATION_FAILED = ProblemType(401, "authentication-failed", "Authentication failed")
FORBIDDEN = ProblemType(403, "forbidden", "Forbidden")
IDENTITY_SUSPENDED = ProblemType(403, "identity-suspended", "The identity is suspended")
ACCESS_DENIED = ProblemType(403, "access-denied", "Access denied")
NOT_FOUND = ProblemType(404, "not-found", "Not found")
METHOD_NOT_ALLOWED = ProblemType(405, "method-not-allowed", "Method not allowed")
CONFLICT = ProblemType(409, "conflict", "Conflict")
RECORD_ERASED = ProblemType(410, "record-erased", "The record was erased")
PAYLOAD_TOO_LARGE = ProblemType(413, "payload-too-large", "The request body is too large")
RULE_VIOLATION = ProblemType(422, "rule-violation", "The ledger refused the transaction")
RATE_LIMITED = ProblemType(429, "rate-limited", "Too many requests")
INTEGRITY_ERROR = ProblemType(502, "integrity-error", "Stored data failed its integrity check")
SERVICE_UNAVAILABLE = ProblemType(503, "service-unavailable", "A backing service is unavailable")

PROBLEM_TYPES: tuple[ProblemType, ...] = (
    INTERNAL,
    BAD_REQUEST,
    VALIDATION_FAILED,
    UNSUPPORTED_MEDIA_TYPE,
    UNAUTHENTICATED,
    INVALID_TOKEN,
    INVALID_CHALLENGE,
    AUTHENTICATION_FAILED,
    FORBIDDEN,
    IDENTITY_SUSPENDED,
    ACCESS_DENIED,
    NOT_FOUND,
    METHOD_NOT_ALLOWED,
    CONFLICT,
    RECORD_ERASED,
    PAYLOAD_TOO_LARGE,
    RULE_VIOLATION,
    RATE_LIMITED,
    INTEGRITY_ERROR,
    SERVICE_UNAVAILABLE,
)
"""Every problem type the gateway answers with."""


def slug_of(problem_type: str | None) -> str | None:
    """The slug of a problem `type`, or None when it is not one of ehrgate's."""
    if problem_type is None or not problem_type.startswith(PROBLEM_TYPE_PREFIX):
        return None
    return problem_type.removeprefix(PROBLEM_TYPE_PREFIX)
