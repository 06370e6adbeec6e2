"""A client's witness policy: which witnesses it trusts and how many must cosign (k of n).

A tree head is believed only under a checkpoint that at least *quorum* of the policy's
witnesses cosigned (C2SP tlog-cosignature/v1). Two quorums of k out of n witnesses share
at least 2k - n of them, so the policy needs 2k - n ≥ 1: then two forks can both reach a
quorum only if a witness in the overlap cosigned both. To survive f dishonest witnesses,
choose 2k - n ≥ f + 1 (3 of 4 survives one).

A policy file (TOML), `--witness-policy FILE` or `$EHRGATE_WITNESS_POLICY`:

    [witnesses]
    quorum = 3                  # k
    wait_seconds = 10           # how long a read waits for the witnesses to catch up
    evidence_dir = "evidence"   # where split views are saved (relative to this file)

    [[witnesses.keys]]
    vkey = "witness.hospital-b.example+1a2b3c4d+BCk…"   # from `ehrgate witness vkey`

    [[witnesses.keys]]
    vkey = "witness.hospital-c.example+…"
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ehrgate.errors import UsageError
from ledger.errors import NoteError
from ledger.wire.cosignatures import CosignatureVerifier

POLICY_ENV = "EHRGATE_WITNESS_POLICY"
DEFAULT_WAIT = 10.0


@dataclass(frozen=True)
class WitnessPolicy:
    """k of the *witnesses* must cosign a checkpoint before a tree head under it is
    believed; split views are saved under *evidence_dir* (None: next to the pins file)."""

    quorum: int
    witnesses: tuple[CosignatureVerifier, ...]
    wait_seconds: float = DEFAULT_WAIT
    evidence_dir: Path | None = None

    def __post_init__(self) -> None:
        count = len(self.witnesses)
        if count == 0:
            raise UsageError("a witness policy needs at least one witness key")
        keys = {(w.name, w.key_id) for w in self.witnesses}
        names = {w.name for w in self.witnesses}
        if len(keys) != count or len(names) != count:
            raise UsageError("a witness policy names each witness once")
        if not 1 <= self.quorum <= count:
            raise UsageError(f"the quorum must be between 1 and {count} (the witnesses given)")
        if 2 * self.quorum - count < 1:
            raise UsageError(
                f"a quorum of {self.quorum} of {count} witnesses lets two disjoint sets of "
                "witnesses cosign two forks: it needs 2k - n ≥ 1 (more than half)"
            )
        if not 0 <= self.wait_seconds <= 3600:
            raise UsageError("wait_seconds must be between 0 and 3600")

    @classmethod
    def of(
        cls,
        vkeys: Sequence[str],
        quorum: int,
        *,
        wait_seconds: float = DEFAULT_WAIT,
        evidence_dir: Path | None = None,
    ) -> WitnessPolicy:
        """A policy from witness vkeys (`ehrgate witness vkey` prints them)."""
        verifiers = []
        for vkey in vkeys:
            try:
                verifiers.append(CosignatureVerifier.from_vkey(vkey))
            except NoteError as exc:
                raise UsageError(f"not a witness vkey: {vkey!r} ({exc})") from exc
        return cls(quorum, tuple(verifiers), wait_seconds, evidence_dir)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(w.name for w in self.witnesses)

    def to_json(self) -> dict[str, Any]:
        return {
            "quorum": self.quorum,
            "witnesses": [w.vkey() for w in self.witnesses],
            "wait_seconds": self.wait_seconds,
        }


def policy_from_table(table: Any, base: Path, where: str) -> WitnessPolicy:
    """A policy from a `[witnesses]` TOML table; paths relative to *base*."""
    if not isinstance(table, Mapping):
        raise UsageError(f"{where}: [witnesses] must be a table")
    unknown = set(table) - {"quorum", "keys", "wait_seconds", "evidence_dir"}
    if unknown:
        raise UsageError(f"{where}: unknown [witnesses] setting(s) {sorted(unknown)}")
    quorum, keys = table.get("quorum"), table.get("keys")
    if not isinstance(quorum, int) or isinstance(quorum, bool):
        raise UsageError(f"{where}: [witnesses] needs quorum = <k>, a whole number")
    if not isinstance(keys, list) or not all(
        isinstance(key, Mapping) and isinstance(key.get("vkey"), str) for key in keys
    ):
        raise UsageError(f'{where}: [witnesses] needs [[witnesses.keys]] entries with vkey = "…"')
    wait = table.get("wait_seconds", DEFAULT_WAIT)
    if not isinstance(wait, int | float) or isinstance(wait, bool):
        raise UsageError(f"{where}: wait_seconds must be a number")
    evidence = table.get("evidence_dir")
    if evidence is not None and not isinstance(evidence, str):
        raise UsageError(f"{where}: evidence_dir must be a path")
    try:
        return WitnessPolicy.of(
            [key["vkey"] for key in keys],
            quorum,
            wait_seconds=float(wait),
            evidence_dir=base / evidence if evidence is not None else None,
        )
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from exc


def read_toml(path: Path, what: str) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UsageError(f"{path}: no such {what}") from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: not a readable {what} ({exc})") from exc


def load_policy(path: str | os.PathLike[str]) -> WitnessPolicy:
    """The policy of a TOML file (its `[witnesses]` table)."""
    file = Path(path)
    document = read_toml(file, "witness policy file")
    if "witnesses" not in document:
        raise UsageError(f"{file}: no [witnesses] table")
    policy = policy_from_table(document["witnesses"], file.parent, str(file))
    if policy.evidence_dir is None:
        return WitnessPolicy(policy.quorum, policy.witnesses, policy.wait_seconds, file.parent)
    return policy


def policy_from_environment() -> WitnessPolicy | None:
    """The policy named by `$EHRGATE_WITNESS_POLICY`, if set."""
    path = os.environ.get(POLICY_ENV)
    return load_policy(path) if path else None
