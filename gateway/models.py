"""Request and response models shared by the routes; every one rejects unknown fields."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

IdentityId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$",
        description="An enrolled identity's id.",
        examples=["dr-house"],
    ),
]
Base64 = Annotated[
    str,
    Field(
        min_length=1,
        max_length=65_536,
        pattern=r"^[A-Za-z0-9+/]+={0,2}$",
        description="Standard base64 with padding.",
    ),
]


class StrictModel(BaseModel):
    """Base of every model on the wire: unknown fields are an error, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class HealthStatus(StrictModel):
    status: str = Field(description="'ok' when the process answers.")


class ReadinessStatus(StrictModel):
    status: str = Field(description="'ready' when every backing service answers.")
    checks: dict[str, str] = Field(description="Each service's state: 'ok' or why not.")


class IdentityOut(StrictModel):
    """An identity's public keys and role, as enrolled on the ledger."""

    id: str
    role: str
    signing_public_key: str = Field(description="Ed25519 public key, base64.")
    encryption_public_key: str = Field(description="ML-KEM-768+X25519 public key, base64.")


class FieldError(StrictModel):
    loc: list[str] = Field(description="Where: body, query, path or header, then names.")
    msg: str
    type: str


class Problem(StrictModel):
    """An RFC 9457 problem detail, as every error of the gateway is reported."""

    type: str = Field(description="Stable problem type: urn:ehrgate:problem:<slug>.")
    title: str
    status: int
    detail: str
    instance: str | None = Field(default=None, description="The request path.")
    request_id: str | None = Field(default=None, description="Also in X-Request-ID and the log.")
    errors: list[FieldError] | None = Field(
        default=None, description="For validation-failed: each invalid field."
    )


PROBLEM_REF = "#/components/schemas/Problem"


def problem_schemas() -> dict[str, object]:
    """The component schemas that PROBLEM_REF points into (added to the OpenAPI document)."""
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions: dict[str, object] = schema.pop("$defs", {})
    return {**definitions, "Problem": schema}


_PROBLEM_DESCRIPTIONS = {
    400: "Malformed request.",
    401: "No valid bearer token, or authentication failed.",
    403: "The caller may not do this, or is suspended.",
    404: "No such resource.",
    405: "The method is not allowed on this path.",
    409: "Conflicts with the current state.",
    413: "The body is larger than allowed.",
    415: "Wrong content type.",
    422: "The request does not validate, or the ledger refused it.",
    429: "Too many requests; see Retry-After.",
    500: "Unexpected failure.",
    502: "Stored data failed its integrity check.",
    503: "A backing service is unavailable; see Retry-After.",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI `responses` entries documenting problem+json errors."""
    return {
        status: {
            "description": _PROBLEM_DESCRIPTIONS[status],
            "content": {"application/problem+json": {"schema": {"$ref": PROBLEM_REF}}},
        }
        for status in statuses
    }
