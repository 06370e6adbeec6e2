"""The bridge's settings: environment variables with the prefix `EHRGATE_BRIDGE_`.

`EHRGATE_BRIDGE_GATEWAY_URL`, `..._HOSPITAL_ID`, `..._SYSTEM_IDENTITY` and a passphrase
(`..._PASSPHRASE` or `..._PASSPHRASE_FILE`) are needed; the rest have defaults. Lists and
tables (`..._CATEGORIES`) are JSON.

The witness policy (`witness_policy()`): `..._WITNESSES` (a JSON list of witness vkeys)
with `..._WITNESS_QUORUM` (k), or `..._WITNESS_POLICY_FILE` (the SDK's policy file); then
the bridge serves a record only under a tree head that k of those witnesses cosigned.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from bridge.categories import DEFAULT_CATEGORIES, CategoryCodes, CategoryTable, table_of
from bridge.errors import BridgeUsageError
from ehrgate.errors import UsageError
from ehrgate.witness_policy import DEFAULT_WAIT, WitnessPolicy, load_policy


class SmartClientSettings(BaseModel):
    """One registered SMART Backend Services client (a value of `..._SMART_CLIENTS`)."""

    model_config = ConfigDict(extra="forbid")

    jwks: dict[str, Any] | Path = Field(description="Its public JWKS, inline or a file path")
    identity: str = Field(min_length=1, description="The key-store identity the bridge acts as")
    scopes: tuple[str, ...] = Field(min_length=1, description="The scopes it may be granted")


class BridgeSettings(BaseSettings):
    """Where the gateway is, who the bridge is, where it keeps its keys and links."""

    model_config = SettingsConfigDict(env_prefix="EHRGATE_BRIDGE_", extra="forbid")

    gateway_url: str = Field(description="The shared gateway, e.g. https://ehr.example.org")
    hospital_id: str = Field(
        min_length=1, description="This hospital's id, as patients name it in link statements"
    )
    system_identity: str = Field(
        min_length=1, description="The key-store identity the bridge uploads as by default"
    )
    auditor_identity: str | None = Field(
        default=None, description="A key-store auditor identity, for GET /fhir/AuditEvent"
    )
    data_dir: Path = Field(
        default=Path(".ehrgate-bridge"), description="Links, published ids, pins"
    )
    keystore_dir: Path | None = Field(default=None, description="Default: DATA_DIR/keys")
    passphrase: SecretStr | None = Field(default=None, description="The key store's passphrase")
    passphrase_file: Path | None = Field(default=None, description="A file holding the passphrase")
    ledger_key: str | None = Field(default=None, description="The ledger key to trust (base64)")
    witnesses: tuple[str, ...] = Field(
        default=(),
        description="Witness cosignature vkeys (JSON list) of the gateway's log; with "
        "WITNESS_QUORUM, records are served only under tree heads that many cosigned",
    )
    witness_quorum: int | None = Field(
        default=None, ge=1, description="k: how many of WITNESSES must cosign (2k - n ≥ 1)"
    )
    witness_wait_seconds: float = Field(
        default=DEFAULT_WAIT,
        ge=0,
        le=3600,
        description="How long a read waits for the witnesses to cosign a new tree head",
    )
    witness_policy_file: Path | None = Field(
        default=None, description="A witness policy file (TOML, as the SDK's) instead"
    )
    mrn_system: str = Field(
        default="urn:ehrgate:mrn", description="The identifier system of this hospital's MRNs"
    )
    public_url: str | None = Field(
        default=None, description="The bridge's URL as clients see it (default: from each request)"
    )
    smart_clients: dict[str, SmartClientSettings] = Field(
        default_factory=dict, description="SMART clients by client id (JSON)"
    )
    token_url: str | None = Field(
        default=None, description="The token endpoint as clients reach it (default: PUBLIC_URL)"
    )
    replay_cache: Path | None = Field(default=None, description="Default: DATA_DIR/replay.sqlite3")
    token_key_file: Path | None = Field(default=None, description="Default: DATA_DIR/token-key.jwk")
    oidc_issuer: str | None = Field(default=None, description="The OpenID Connect issuer")
    oidc_jwks: Path | None = Field(default=None, description="The provider's JWKS file")
    oidc_audience: str | None = Field(default=None, description="The aud its tokens must name")
    oidc_algorithms: tuple[str, ...] = ("RS256", "ES256")
    oidc_identity_claim: str = "ehrgate_identity"
    oidc_identities: dict[str, str] | None = Field(
        default=None, description="Claim value → key-store identity (JSON); default: the value"
    )
    mllp_port: int | None = Field(default=None, ge=0, le=65535, description="HL7 v2 MLLP port")
    mllp_host: str = "127.0.0.1"
    mllp_assigning_authorities: tuple[str, ...] = ()
    mllp_identity: str | None = Field(
        default=None, description="The identity MDM documents are published as (default: SYSTEM)"
    )
    max_document_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    page_size: int = Field(default=20, ge=1, le=500)
    categories: tuple[CategoryCodes, ...] = DEFAULT_CATEGORIES
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    log_level: str = "info"

    @property
    def store_path(self) -> Path:
        """The bridge's own SQLite store: patient links and published unique ids."""
        return self.data_dir / "bridge.sqlite3"

    @property
    def keys_dir(self) -> Path:
        return self.keystore_dir or self.data_dir / "keys"

    @property
    def category_table(self) -> CategoryTable:
        return table_of(self.categories)

    def witness_policy(self) -> WitnessPolicy | None:
        """The witness policy the settings name (None: none); BridgeUsageError naming the
        setting when it is incomplete or wrong. Split views are saved in DATA_DIR/evidence
        unless the policy file says where."""
        if self.witness_policy_file is not None:
            if self.witnesses or self.witness_quorum is not None:
                raise BridgeUsageError(
                    "set either EHRGATE_BRIDGE_WITNESS_POLICY_FILE or EHRGATE_BRIDGE_WITNESSES "
                    "with EHRGATE_BRIDGE_WITNESS_QUORUM, not both"
                )
            try:
                return load_policy(self.witness_policy_file)
            except UsageError as exc:
                raise BridgeUsageError(f"EHRGATE_BRIDGE_WITNESS_POLICY_FILE: {exc}") from exc
        if not self.witnesses:
            if self.witness_quorum is not None:
                raise BridgeUsageError(
                    "EHRGATE_BRIDGE_WITNESS_QUORUM is set but EHRGATE_BRIDGE_WITNESSES names "
                    "no witness: give their vkeys (a JSON list)"
                )
            return None
        if self.witness_quorum is None:
            raise BridgeUsageError(
                "EHRGATE_BRIDGE_WITNESSES needs EHRGATE_BRIDGE_WITNESS_QUORUM: how many of "
                f"the {len(self.witnesses)} witnesses must cosign a tree head"
            )
        try:
            return WitnessPolicy.of(
                self.witnesses,
                self.witness_quorum,
                wait_seconds=self.witness_wait_seconds,
                evidence_dir=self.data_dir / "evidence",
            )
        except UsageError as exc:
            raise BridgeUsageError(f"EHRGATE_BRIDGE_WITNESSES: {exc}") from exc

    def read_passphrase(self) -> str:
        """The key store's passphrase; BridgeUsageError naming the settings if there is none."""
        if self.passphrase is not None and self.passphrase.get_secret_value():
            return self.passphrase.get_secret_value()
        if self.passphrase_file is not None:
            try:
                text = self.passphrase_file.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise BridgeUsageError(
                    f"cannot read the passphrase file {self.passphrase_file}: {exc.strerror}"
                ) from exc
            if text:
                return text
        raise BridgeUsageError(
            "the key store needs a passphrase: set EHRGATE_BRIDGE_PASSPHRASE or "
            "EHRGATE_BRIDGE_PASSPHRASE_FILE"
        )
