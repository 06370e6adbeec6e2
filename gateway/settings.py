"""Gateway settings, read from `EHRGATE_*` environment variables and an optional TOML file.

Precedence, highest first: values passed to `Settings(...)` (the `ehrgate serve` options),
environment variables, the TOML file named by `EHRGATE_SETTINGS_FILE`, built-in defaults.
The TOML file uses the field names without the prefix (`data_dir = "/var/lib/ehrgate"`).

With nothing set the gateway runs on the embedded default: a SQLite ledger and a local
blob directory, both under `./.ehrgate`.

Nothing is read, created or connected here at import time: a `Settings` object is a value,
and `gateway.create_app(settings)` builds everything else from it.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ByteSize,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ENV_PREFIX = "EHRGATE_"
SETTINGS_FILE_VARIABLE = "EHRGATE_SETTINGS_FILE"

LogLevel = Literal["debug", "info", "warning", "error", "critical"]


class WitnessEndpoint(BaseModel):
    """A witness the log submits its checkpoints to: its URL and cosigning vkey."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(min_length=1, description="Base URL; add-checkpoint is POSTed below it.")
    vkey: str = Field(description="The witness's cosignature/v1 verifier key (type 0x04).")

    @field_validator("vkey")
    @classmethod
    def _is_a_cosigning_vkey(cls, value: str) -> str:
        from ledger.errors import NoteError
        from ledger.wire.cosignatures import CosignatureVerifier

        try:
            CosignatureVerifier.from_vkey(value)
        except NoteError as exc:
            raise ValueError(f"not a witness vkey: {exc}") from exc
        return value


class Settings(BaseSettings):
    """Everything the gateway needs to start; see docs/gateway.md for each variable."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    data_dir: Path = Field(
        default=Path(".ehrgate"),
        description="Directory for the embedded ledger, local blobs and key files.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the ledger database; default SQLite under data_dir.",
    )
    store_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Blob store URLs, comma separated or a JSON list; default "
        "file://<data_dir>/blobs.",
    )
    write_quorum: int | None = Field(
        default=None, ge=1, description="Stores that must accept a body; default all of them."
    )
    host: str = Field(
        default="127.0.0.1", min_length=1, description="Address `ehrgate serve` binds."
    )
    port: int = Field(default=8000, ge=1, le=65535, description="Port `ehrgate serve` listens on.")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses of reverse proxies whose X-Forwarded-For names the client "
        "(comma separated); empty: the peer address is the client.",
    )
    gateway_id: str = Field(
        default="ehrgate-gateway",
        min_length=1,
        max_length=128,
        description="Audience named in every signed authentication challenge.",
    )
    ledger_key_file: Path | None = Field(
        default=None, description="The ledger's signing key file; default <data_dir>/ledger.key."
    )
    ledger_key_passphrase: SecretStr | None = Field(
        default=None, description="Passphrase of the ledger key file, if it has one."
    )
    log_origin: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="The log's name in its C2SP checkpoints, e.g. hospital.example/ehrgate; "
        "default <gateway_id>/ehrgate. Witnesses know the log by it: never change it.",
    )
    checkpoint_key_file: Path | None = Field(
        default=None,
        description="The log's checkpoint signing key (C2SP note key); default "
        "<data_dir>/checkpoint.key.",
    )
    web_dir: Path | None = Field(
        default=None,
        description="The built browser app served at /app/; default web/dist of the source tree.",
    )
    witnesses: list[WitnessEndpoint] = Field(
        default_factory=list,
        description="Witnesses that cosign the log's checkpoints: a JSON list of "
        '{"url": ..., "vkey": ...}; empty: no witnessing.',
    )
    witness_interval: float = Field(
        default=2.0, gt=0, le=3600, description="Seconds between checks for a new checkpoint."
    )
    token_lifetime: timedelta = Field(
        default=timedelta(minutes=15),
        description="How long a bearer token stays valid (seconds or ISO 8601, e.g. PT15M).",
    )
    challenge_lifetime: timedelta = Field(
        default=timedelta(seconds=60),
        description="How long an authentication challenge stays valid.",
    )
    max_body_size: ByteSize = Field(
        default=ByteSize(4 * 1024**3), description="Largest streamed upload (blob or document)."
    )
    max_json_size: ByteSize = Field(
        default=ByteSize(1024**2), description="Largest request body on every other route."
    )
    auth_rate_limit: int = Field(
        default=30,
        ge=1,
        description="Authentication requests per minute allowed per client address.",
    )
    auth_global_rate_limit: int = Field(
        default=6000,
        ge=1,
        description="Authentication challenges per minute the whole gateway issues.",
    )
    refusal_audit_rate: int = Field(
        default=6,
        ge=1,
        description="Refused writes and logins per minute written to the ledger for each "
        "identity and kind of act; beyond that they are counted and summarised.",
    )
    refusal_audit_burst: int = Field(
        default=3,
        ge=1,
        description="Refusals of one identity and kind of act written at once before "
        "refusal_audit_rate applies.",
    )
    refusal_audit_global_rate: int = Field(
        default=600,
        ge=1,
        description="Refused writes and logins per minute the whole gateway writes to the "
        "ledger, whoever the identities.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token that /metrics requires; unset: /metrics answers only "
        "clients on a loopback address.",
    )
    log_level: LogLevel = Field(default="info", description="Log level of the gateway and uvicorn.")
    shutdown_timeout: timedelta = Field(
        default=timedelta(seconds=30),
        description="On SIGTERM, how long `ehrgate serve` lets requests in flight finish "
        "before it closes their connections.",
    )
    auth_state: Literal["auto", "memory", "database"] = Field(
        default="auto",
        description="Where challenges, tokens and rate limits are kept: 'memory' (this "
        "process only), 'database' (tables in the ledger's database, shared by every "
        "replica), or 'auto': the database on PostgreSQL, memory on SQLite.",
    )
    public_url: str | None = Field(
        default=None,
        description="The gateway's own external base URL; webhook URLs at it are refused.",
    )
    webhook_allow_loopback: bool = Field(
        default=False,
        description="Accept webhook URLs on a loopback address, plain http included (tests "
        "and local development only).",
    )
    webhook_timeout: float = Field(
        default=10.0, gt=0, description="Seconds one webhook delivery attempt may take."
    )
    webhook_max_attempts: int = Field(
        default=8,
        ge=1,
        le=50,
        description="Attempts per delivery (webhook or e-mail) before it becomes a dead letter.",
    )
    webhook_retry_base: float = Field(
        default=30.0,
        gt=0,
        description="Seconds before the first retry; each further retry waits twice as long.",
    )
    webhook_retry_max: float = Field(
        default=3600.0, gt=0, description="Longest wait in seconds between two attempts."
    )
    webhooks_per_identity: int = Field(
        default=10, ge=1, le=1000, description="Webhook endpoints one identity may register."
    )
    notify_poll_interval: float = Field(
        default=5.0,
        gt=0,
        description="Seconds between two looks at the delivery queue when nothing wakes it "
        "(events of this process and due retries wake it sooner).",
    )
    grant_expiry_window: timedelta = Field(
        default=timedelta(days=3),
        description="A grant_expiring event is sent once for a grant ending within this "
        "time (seconds, or an ISO 8601 duration).",
    )
    grant_expiry_scan_interval: float = Field(
        default=300.0, gt=0, description="Seconds between two scans for grants ending soon."
    )
    smtp_host: str | None = Field(
        default=None, description="SMTP server for e-mail notifications; unset: no e-mail."
    )
    smtp_port: int = Field(default=25, ge=1, le=65535, description="Port of the SMTP server.")
    smtp_starttls: bool = Field(default=False, description="Use STARTTLS with the SMTP server.")
    smtp_username: str | None = Field(default=None, description="SMTP login, if it needs one.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password.")
    smtp_from: str = Field(
        default="ehrgate@localhost", description="Sender address of notification e-mails."
    )
    contact_key: SecretStr | None = Field(
        default=None,
        description="32 bytes as base64: the AES-256-GCM key that seals patients' e-mail "
        "addresses at rest; unset: addresses cannot be registered.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        settings_file = os.environ.get(SETTINGS_FILE_VARIABLE)
        if settings_file:
            path = Path(settings_file)
            if not path.is_file():
                raise ValueError(f"{SETTINGS_FILE_VARIABLE} names {path}, which is not a file")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @field_validator("store_urls", "trusted_proxies", mode="before")
    @classmethod
    def _split_lists(cls, value: Any) -> Any:
        # A JSON list is accepted too, so that a list written by a tool round-trips.
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("log_origin")
    @classmethod
    def _origin_is_a_key_name(cls, value: str | None) -> str | None:
        # The origin is also the checkpoint key's name: no spaces, no '+', no controls.
        if value is not None and ("+" in value or any(c.isspace() or ord(c) < 0x20 for c in value)):
            raise ValueError("a log origin has no spaces, control characters or '+'")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_log_level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("contact_key")
    @classmethod
    def _contact_key_is_32_bytes(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            from gateway.notify.contacts import ContactError, contact_key_from_text

            try:
                contact_key_from_text(value.get_secret_value())
            except ContactError as exc:
                raise ValueError(str(exc)) from exc
        return value

    @field_validator(
        "token_lifetime",
        "challenge_lifetime",
        "shutdown_timeout",
        "grant_expiry_window",
        mode="before",
    )
    @classmethod
    def _seconds_as_text(cls, value: Any) -> Any:
        # Environment variables are text; "900" means seconds, as it would in TOML.
        if isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
            return float(value)
        return value

    @field_validator(
        "token_lifetime", "challenge_lifetime", "shutdown_timeout", "grant_expiry_window"
    )
    @classmethod
    def _positive_lifetime(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be a positive duration")
        return value

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        # The settings object is frozen; derived defaults are filled once, here.
        data_dir = self.data_dir.expanduser()
        if self.database_url is None:
            object.__setattr__(self, "database_url", f"sqlite:///{data_dir / 'ledger.db'}")
        if not self.store_urls:
            object.__setattr__(self, "store_urls", [(data_dir / "blobs").resolve().as_uri()])
        if self.ledger_key_file is None:
            object.__setattr__(self, "ledger_key_file", data_dir / "ledger.key")
        if self.log_origin is None:
            name = "".join("-" if c.isspace() or c == "+" else c for c in self.gateway_id)
            object.__setattr__(self, "log_origin", f"{name}/ehrgate")
        if self.checkpoint_key_file is None:
            object.__setattr__(self, "checkpoint_key_file", data_dir / "checkpoint.key")
        if self.write_quorum is not None and self.write_quorum > len(self.store_urls):
            raise ValueError(
                f"write_quorum is {self.write_quorum} but only "
                f"{len(self.store_urls)} store(s) are configured"
            )
        if self.max_json_size > self.max_body_size:
            raise ValueError("max_json_size cannot exceed max_body_size")
        return self

    @property
    def shared_auth_state(self) -> bool:
        """True when authentication state is kept in the ledger's database."""
        if self.auth_state == "auto":
            return not self.resolved_database_url.startswith("sqlite")
        return self.auth_state == "database"

    @property
    def resolved_database_url(self) -> str:
        assert self.database_url is not None  # filled by _fill_defaults
        return self.database_url

    @property
    def resolved_ledger_key_file(self) -> Path:
        assert self.ledger_key_file is not None  # filled by _fill_defaults
        return self.ledger_key_file

    @property
    def resolved_log_origin(self) -> str:
        assert self.log_origin is not None  # filled by _fill_defaults
        return self.log_origin

    @property
    def resolved_checkpoint_key_file(self) -> Path:
        assert self.checkpoint_key_file is not None  # filled by _fill_defaults
        return self.checkpoint_key_file

    @property
    def effective_write_quorum(self) -> int:
        return self.write_quorum if self.write_quorum is not None else len(self.store_urls)


def environment_variables() -> frozenset[str]:
    """Every `EHRGATE_*` variable the gateway reads (for checking deployment files)."""
    names = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    return frozenset(names | {SETTINGS_FILE_VARIABLE})
