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
