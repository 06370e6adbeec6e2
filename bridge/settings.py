"""The bridge's settings: environment variables with the prefix `EHRGATE_BRIDGE_`.

`EHRGATE_BRIDGE_GATEWAY_URL`, `..._HOSPITAL_ID`, `..._SYSTEM_IDENTITY` and a passphrase
(`..._PASSPHRASE` or `..._PASSPHRASE_FILE`) are needed; the rest have defaults. Lists and
tables (`..._CATEGORIES`) are JSON.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from bridge.categories import DEFAULT_CATEGORIES, CategoryCodes, CategoryTable, table_of
from bridge.errors import BridgeUsageError


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
    mrn_system: str = Field(
        default="urn:ehrgate:mrn", description="The identifier system of this hospital's MRNs"
    )
    public_url: str | None = Field(
        default=None, description="The bridge's URL as clients see it (default: from each request)"
    )
    max_document_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    page_size: int = Field(default=20, ge=1, le=500)
    categories: tuple[CategoryCodes, ...] = DEFAULT_CATEGORIES
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    log_level: str = "info"

    @property
    def keys_dir(self) -> Path:
        return self.keystore_dir or self.data_dir / "keys"

    @property
    def category_table(self) -> CategoryTable:
        return table_of(self.categories)

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
