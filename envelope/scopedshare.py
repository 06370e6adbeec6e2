"""Scoped key shares: the seeds of exactly the (category, month) keys a grant covers, sealed
to one grantee. A scoped share never carries K.

    plaintext = canonical JSON {"format": "ehrgate-scoped-seeds", "version": 2,
                "pseudonym": P, "grantee_id": G,
                "seeds": [{"category": C, "period": "YYYY-MM", "seed": b64(32)}, ...]}
                (seeds sorted by category then period, no pair twice, 1 to MAX_SHARE_SEEDS)
    info      = b"ehrgate/key-share/v2" ‖ 0x00 ‖ P (64 ASCII hex) ‖ 0x00 ‖ G (UTF-8)
    share     = HPKE(X-Wing, HKDF-SHA256, AES-256-GCM).seal(grantee public key, plaintext, info)

The grantee checks each seed it can against the public key the patient published for that
(category, month), so a share holding other bytes is caught; `ScopedSeeds` then opens the
capsules sealed to those keys and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from envelope.canonical import b64decode, b64encode, canonical_json
from envelope.capsule import OpenedCapsule, capsule_key_id, open_capsule
from envelope.errors import EnvelopeError, InvalidEnvelope
from envelope.kem import HybridPrivateKey, HybridPublicKey
from envelope.keyshare import key_share_info
from envelope.patient import PatientKey
from envelope.scoped import (
    ScopeItem,
    check_category,
    check_period,
    key_from_seeds,
    parse_key_id,
    record_period,
    scoped_private_key,
    scoped_seed,
)
from envelope.xwing import SEED_LEN

SCOPED_SHARE_FORMAT = "ehrgate-scoped-seeds"
SCOPED_SHARE_VERSION = 2
SCOPED_SHARE_DOMAIN = b"ehrgate/key-share/v2"
MAX_SHARE_SEEDS = 1000
"""At most this many (category, month) seeds in one share (4 categories x about 20 years);
the ledger takes no more in one key_share."""


def scoped_share_info(pseudonym: str, grantee_id: str) -> bytes:
    """The HPKE info that binds a scoped share to one patient and one grantee."""
    key_share_info(pseudonym, grantee_id)  # the same checks as a version 1 share
    return (
        SCOPED_SHARE_DOMAIN
        + b"\x00"
        + pseudonym.encode("ascii")
        + b"\x00"
        + grantee_id.encode("utf-8")
    )


def check_scope(scope: Iterable[ScopeItem]) -> list[ScopeItem]:
    """The (category, period) pairs of a share, checked, without repeats, in order."""
    items = sorted({(check_category(c), check_period(p)) for c, p in scope})
    if not items:
        raise EnvelopeError("a scoped share needs at least one (category, month)")
    if len(items) > MAX_SHARE_SEEDS:
        raise EnvelopeError(f"a scoped share carries at most {MAX_SHARE_SEEDS} seeds")
    return items


@dataclass(frozen=True, slots=True)
class ScopedSeeds:
    """What a grantee holds: seeds of some (category, month) keys of one patient."""

    pseudonym: str
    grantee_id: str
    seeds: Mapping[ScopeItem, bytes] = field(repr=False)

    @property
    def scope(self) -> list[ScopeItem]:
        return sorted(self.seeds)

    def key_for(self, category: str, created_at: str) -> HybridPrivateKey | None:
        """The key of records of *category* created at *created_at*, None if not held."""
        return key_from_seeds(self.seeds, category, created_at)

    def open_capsule(self, capsule: bytes) -> OpenedCapsule:
        """Open a capsule sealed to one of the held keys (InvalidEnvelope otherwise, and for
        a capsule whose metadata claims another category or month than its key)."""
        named = parse_key_id(capsule_key_id(capsule, self.pseudonym) or "")
        seed = self.seeds.get(named) if named is not None else None
        if named is None or seed is None:
            raise InvalidEnvelope()
        opened = open_capsule(capsule, HybridPrivateKey(seed), self.pseudonym)
        if (opened.category, record_period(opened.created_at)) != named:
            raise InvalidEnvelope()
        return opened


def seal_scoped_share(
    patient_key: PatientKey,
    *,
    pseudonym: str,
    grantee_id: str,
    grantee_key: HybridPublicKey,
    scope: Iterable[ScopeItem],
) -> bytes:
    """Seal the seeds of *scope*'s (category, month) keys, derived from K, to the grantee."""
    info = scoped_share_info(pseudonym, grantee_id)
    seeds = [
        {"category": c, "period": p, "seed": b64encode(scoped_seed(patient_key, c, p))}
        for c, p in check_scope(scope)
    ]
    document = {
        "format": SCOPED_SHARE_FORMAT,
        "version": SCOPED_SHARE_VERSION,
        "pseudonym": pseudonym,
        "grantee_id": grantee_id,
        "seeds": seeds,
    }
    return grantee_key.seal(canonical_json(document), info=info)


def _parse(plaintext: bytes, pseudonym: str, grantee_id: str) -> dict[ScopeItem, bytes]:
    document = json.loads(plaintext.decode("utf-8"))
    if canonical_json(document) != plaintext or not isinstance(document, dict):
        raise ValueError("not canonical")
    expected = {
        "format": SCOPED_SHARE_FORMAT,
        "version": SCOPED_SHARE_VERSION,
        "pseudonym": pseudonym,
        "grantee_id": grantee_id,
    }
    entries = document.pop("seeds", None)
    if document != expected or not isinstance(entries, list):
        raise ValueError("not a scoped share for this patient and grantee")
    seeds: dict[ScopeItem, bytes] = {}
    for entry in entries:
        if not isinstance(entry, dict) or set(entry) != {"category", "period", "seed"}:
            raise ValueError("bad seed entry")
        item = (check_category(entry["category"]), check_period(entry["period"]))
        seeds[item] = b64decode(entry["seed"], length=SEED_LEN)
    if check_scope(seeds) != [(e["category"], e["period"]) for e in entries]:
        raise ValueError("seeds out of order or repeated")
    return seeds


def open_scoped_share(
    share: bytes,
    key: HybridPrivateKey,
    *,
    pseudonym: str,
    grantee_id: str,
    published: Mapping[ScopeItem, HybridPublicKey] | None = None,
) -> ScopedSeeds:
    """The seeds in a scoped share sealed to *key*; every failure raises InvalidEnvelope.

    With *published* (the patient's published public keys by (category, month)), each
    seed whose pair was published must derive that very public key.
    """
    try:
        info = scoped_share_info(pseudonym, grantee_id)
        seeds = _parse(key.open(bytes(share), info=info), pseudonym, grantee_id)
    except (EnvelopeError, ValueError, UnicodeDecodeError, TypeError) as exc:
        raise InvalidEnvelope() from exc
    for item, seed in seeds.items():
        public = (published or {}).get(item)
        if public is not None and HybridPrivateKey(seed).public_key() != public:
            raise InvalidEnvelope()
    return ScopedSeeds(pseudonym, grantee_id, seeds)


def open_with_patient_key(capsule: bytes, patient_key: PatientKey, pseudonym: str) -> OpenedCapsule:
    """Open a record's capsule with K: with the scoped key its entry names (version 2), or
    with the patient's single record key (version 1 capsules, sealed before scoped keys).
    Every failure raises InvalidEnvelope."""
    named = capsule_key_id(capsule, pseudonym)
    if named is None:
        return open_capsule(capsule, patient_key.record_private_key(), pseudonym)
    scope = parse_key_id(named)
    if scope is None:
        raise InvalidEnvelope()
    opened = open_capsule(capsule, scoped_private_key(patient_key, *scope), pseudonym)
    if (opened.category, record_period(opened.created_at)) != scope:
        raise InvalidEnvelope()
    return opened
