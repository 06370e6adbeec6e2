"""The patients' published (category, month) record keys, as the gateway finds them.

A published key is carried by a `publish_keys` entry signed by the patient; the state
keeps its SHA-256 and the entry's index. The gateway seals plaintext uploads to these keys
and shows the signed entry (with a receipt) to uploaders, who check it themselves.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from envelope import EnvelopeError, HybridPublicKey, b64decode
from envelope.scoped import record_period
from gateway.errors import Conflict, RuleViolation
from ledger import Ledger, PublishedKey
from ledger.wire.blocks import Entry


def no_published_key(pseudonym: str, category: str, period: str) -> str:
    return (
        f"patient {pseudonym} has published no record key for {category} in {period}: records"
        " are sealed to the patient's key of their category and month, so the patient must"
        " publish keys first (`ehrgate patient publish-keys`, or PatientClient.publish_keys)"
    )


@dataclass(frozen=True, slots=True)
class FoundKey:
    """A published key, the signed entry that carries it, and the key itself."""

    published: PublishedKey
    entry: Entry
    public_key: HybridPublicKey


def key_in_entry(entry: Entry, published: PublishedKey) -> HybridPublicKey:
    """The public key *published* names, from its publish_keys entry (hash checked)."""
    for item in entry.tx.body.get("keys", []):
        if (item.get("category"), item.get("period")) == (published.category, published.period):
            raw = b64decode(item["public_key"])
            if hashlib.sha256(raw).hexdigest() != published.public_key_sha256:
                break
            return HybridPublicKey(raw)
    raise EnvelopeError(
        f"entry {entry.index} does not carry the key the state names for "
        f"{published.category} in {published.period}"
    )


def find_key(ledger: Ledger, pseudonym: str, category: str, period: str) -> FoundKey | None:
    """The published key of (pseudonym, category, period), or None (blocking: a query)."""
    if category not in ledger.categories:
        raise RuleViolation(
            f"unknown category {category}; known: {', '.join(ledger.categories.names())}",
            extensions={"code": "unknown-category"},
        )
    published = ledger.published_key(pseudonym, category, period)
    if published is None:
        return None
    entry = ledger.entry(published.entry_index)
    return FoundKey(published, entry, key_in_entry(entry, published))


def recipient_for(
    ledger: Ledger, pseudonym: str, category: str, created_at: str
) -> HybridPublicKey:
    """The key a record of *category* created at *created_at* is sealed to; Conflict when
    the patient has not published it."""
    period = record_period(created_at)
    found = find_key(ledger, pseudonym, category, period)
    if found is None:
        raise Conflict(no_published_key(pseudonym, category, period))
    return found.public_key
