"""Reading one patient's records across hospitals: one gateway per hospital, each checked
against its own log's witnessed checkpoints.

Each hospital keeps its own log; there is no shared ledger to ask. A `FederatedClient`
holds one `Client` per gateway, each with that gateway's pinned keys and witness policy,
and asks each gateway for the records it holds. Every record it returns was proved on its
own hospital's log (the signed transaction, the inclusion proof, the tree head signed by
that ledger's key and, with a policy, covered by a checkpoint k of its witnesses
cosigned). A gateway that cannot answer, does not know the patient or denies the caller
is reported in `skipped` and the others are still read; a record that does not verify, or
a split view, stops the read (it is never skipped).

A federation file (TOML), `ehrgate records --federation FILE`:

    [[gateways]]
    name = "hospital-a"                        # a label for the output
    url = "https://ehr.hospital-a.example"
    ledger_key = "…"                           # optional: else pinned on first use
    checkpoint_key = "hospital-a.example/ehrgate+…"   # optional: else pinned on first use

    [gateways.witnesses]                       # this log's witness policy (optional)
    quorum = 2
    [[gateways.witnesses.keys]]
    vkey = "witness.hospital-b.example+…"
    [[gateways.witnesses.keys]]
    vkey = "witness.hospital-c.example+…"
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ehrgate.client import Client
from ehrgate.errors import Denied, NotFound, Unavailable, UsageError
from ehrgate.models import RecordProof
from ehrgate.trust import LedgerPins, normalise_url
from ehrgate.witness_policy import WitnessPolicy, policy_from_table, read_toml
from envelope import IdentityKeys, PatientKey, PatientKeys


@dataclass(frozen=True)
class GatewayConfig:
    """One hospital's gateway: its URL, the keys to trust (else pinned), its policy."""

    url: str
    name: str = ""
    ledger_key: str | None = None
    checkpoint_key: str | None = None
    witness_policy: WitnessPolicy | None = None

    @property
    def label(self) -> str:
        return self.name or normalise_url(self.url)


@dataclass(frozen=True)
class FederatedRecord:
    """A record and the hospital whose log proved it."""

    gateway: str
    proof: RecordProof

    def to_json(self) -> dict[str, Any]:
        return {"gateway": self.gateway, **self.proof.to_json()}


@dataclass
class FederatedRecords:
    """Every verified record found, and the gateways that gave none (and why)."""

    records: list[FederatedRecord] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "records": [found.to_json() for found in self.records],
            "skipped": dict(self.skipped),
        }


def load_federation(path: str | os.PathLike[str]) -> list[GatewayConfig]:
    """The gateways of a federation file."""
    file = Path(path)
    document = read_toml(file, "federation file")
    gateways = document.get("gateways")
    if not isinstance(gateways, list) or not gateways:
        raise UsageError(f"{file}: no [[gateways]] entries")
    return [_gateway(entry, file, i) for i, entry in enumerate(gateways)]


def _gateway(entry: Any, file: Path, index: int) -> GatewayConfig:
    where = f"{file}: gateway #{index + 1}"
    if not isinstance(entry, Mapping) or not isinstance(entry.get("url"), str):
        raise UsageError(f'{where} needs url = "https://…"')
    unknown = set(entry) - {"url", "name", "ledger_key", "checkpoint_key", "witnesses"}
    if unknown:
        raise UsageError(f"{where}: unknown setting(s) {sorted(unknown)}")
    for key in ("name", "ledger_key", "checkpoint_key"):
        if key in entry and not isinstance(entry[key], str):
            raise UsageError(f"{where}: {key} must be a string")
    policy = None
    if "witnesses" in entry:
        policy = policy_from_table(entry["witnesses"], file.parent, where)
        if policy.evidence_dir is None:
            policy = WitnessPolicy(
                policy.quorum, policy.witnesses, policy.wait_seconds, file.parent
            )
    return GatewayConfig(
        url=entry["url"],
        name=entry.get("name", ""),
        ledger_key=entry.get("ledger_key"),
        checkpoint_key=entry.get("checkpoint_key"),
        witness_policy=policy,
    )


class FederatedClient:
    """One identity reading across several hospitals' gateways."""

    def __init__(
        self,
        gateways: Sequence[GatewayConfig],
        identity: IdentityKeys | PatientKeys,
        *,
        patient_key: PatientKey | None = None,
        pins: LedgerPins | None = None,
        timeout: float = 30.0,
    ) -> None:
        if not gateways:
            raise UsageError("a federation needs at least one gateway")
        labels = [gateway.label for gateway in gateways]
        urls = [normalise_url(gateway.url) for gateway in gateways]
        if len(set(labels)) != len(labels) or len(set(urls)) != len(urls):
            raise UsageError("each gateway of a federation is named once, with its own URL")
        self.gateways = list(gateways)
        pins = pins if pins is not None else LedgerPins()
        for gateway in gateways:
            if gateway.checkpoint_key is not None:
                pins.check_or_pin_checkpoint_key(gateway.url, gateway.checkpoint_key)
        self.clients: dict[str, Client] = {
            gateway.label: Client(
                gateway.url,
                identity,
                patient_key=patient_key,
                ledger_key=gateway.ledger_key,
                pins=pins,
                witness_policy=gateway.witness_policy,
                timeout=timeout,
            )
            for gateway in gateways
        }

    def close(self) -> None:
        for client in self.clients.values():
            client.close()

    def __enter__(self) -> FederatedClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def client(self, gateway: str) -> Client:
        """The client of one gateway, by its name (or URL when it has none)."""
        try:
            return self.clients[gateway]
        except KeyError:
            raise UsageError(
                f"no gateway {gateway!r} in this federation ({', '.join(self.clients)})"
            ) from None

    def records(self, pseudonym: str, category: str | None = None) -> FederatedRecords:
        """The patient's records the caller may read, at every gateway, each proved on its
        own hospital's log (and witnessed, under that gateway's policy)."""
        found = FederatedRecords()
        for label, client in self.clients.items():
            try:
                listed = client.records(pseudonym, category)
                proved = [client.record(record.record_id) for record in listed]
            except (Unavailable, Denied, NotFound) as exc:
                found.skipped[label] = f"{type(exc).__name__}: {exc}"
                continue
            found.records.extend(FederatedRecord(label, proof) for proof in proved)
        return found
