"""Rules of scoped record keys: `publish_keys`, and the scope a `key_share` claims.

A patient publishes, signed, the public halves of its (category, month) record keys; an
uploader seals each record to the key of its category and the month of its created_at. A
published key is never replaced: a second publication of the same (category, month) must
carry the same key (and changes nothing) or is refused. A scoped key share names the
(category, month) keys whose seeds it carries, and each must lie within a live read grant
of the grantee (its categories, from its not_before's month to its not_after's month), or
within a live break-glass policy naming the grantee as its emergency identity.

Re-keying: a patient that rotated K publishes the new generation's keys with
`"generation": g`, where g is its current generation or the next one (the first
publication of the next generation starts it, in `key_generations`). A key of an older
generation is replaced by the newer one; within one generation a key is never replaced.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from envelope import EnvelopeError, b64decode
from ledger.errors import MalformedTransaction
from ledger.rules import emergency
from ledger.rules.actors import owned_patient, signer_row
from ledger.rules.validators import check_fields, deny, hex64_field
from ledger.state import Changes, Row, StateView
from ledger.wire.scoped import MAX_KEYS_PER_TX, MAX_SCOPE, grant_months
from ledger.wire.transactions import Transaction

PUBLIC_KEY_LEN = 1216
_PERIOD = re.compile(r"(?!0000)\d{4}-(0[1-9]|1[0-2])", re.ASCII)


def check_period(value: object, what: str) -> str:
    if not isinstance(value, str) or not _PERIOD.fullmatch(value):
        raise MalformedTransaction(f"{what} must be a month written YYYY-MM, got {value!r}")
    return value


def _known_category(state: StateView, value: object, what: str) -> str:
    if not isinstance(value, str) or value not in state.categories:
        raise deny(
            "unknown-category",
            f"{what} {value!r} is not a category of this ledger; known: "
            f"{', '.join(state.categories.names())}",
        )
    return value


def _key_entries(state: StateView, value: Any) -> list[tuple[str, str, str]]:
    """(category, period, SHA-256 of the key) of each entry of body.keys, checked."""
    if not isinstance(value, list) or not 0 < len(value) <= MAX_KEYS_PER_TX:
        raise MalformedTransaction(
            f"body.keys must be a list of 1 to {MAX_KEYS_PER_TX} {{category, period, "
            "public_key}} (publish more in several transactions)"
        )
    out: list[tuple[str, str, str]] = []
    for entry in value:
        if not isinstance(entry, dict) or set(entry) != {"category", "period", "public_key"}:
            raise MalformedTransaction("each of body.keys is {category, period, public_key}")
        period = check_period(entry["period"], "body.keys[].period")
        category = _known_category(state, entry["category"], "body.keys[].category")
        try:
            raw = b64decode(entry["public_key"], length=PUBLIC_KEY_LEN, what="a public_key")
        except (EnvelopeError, TypeError) as exc:
            raise MalformedTransaction(
                f"body.keys[].public_key must be a base64 X-Wing public key "
                f"({PUBLIC_KEY_LEN} bytes): {exc}"
            ) from exc
        out.append((category, period, hashlib.sha256(raw).hexdigest()))
    pairs = [(c, p) for c, p, _ in out]
    if pairs != sorted(set(pairs)):
        raise MalformedTransaction(
            "body.keys must be sorted by category then period, each pair once"
        )
    return out


def current_generation(state: StateView, pseudonym: str) -> int:
    """The generation of the patient's K: 1 until it rotates K, then one more each time."""
    row = state.get("key_generations", pseudonym)
    return 1 if row is None else int(row["generation"])


def _generation(state: StateView, body: dict[str, Any], pseudonym: str) -> int:
    """The generation body.generation names (absent: 1), checked; starts the next one."""
    value = body.get("generation", 1)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value < 2**31:
        raise MalformedTransaction("body.generation must be a positive integer")
    current = current_generation(state, pseudonym)
    if value < current:
        raise deny(
            "stale-key-generation",
            f"these keys are of generation {value} of the patient's key, which was rotated: "
            f"the current generation is {current}; publish keys derived from the current key",
        )
    if value > current + 1:
        raise deny(
            "key-generation-skipped",
            f"generation {value} skips generations: the current one is {current}, the next "
            f"{current + 1}",
        )
    return value


def publish_keys(state: StateView, tx: Transaction, now: str, index: int, out: Changes) -> None:
    body = tx.body
    check_fields(body, {"pseudonym", "keys"}, frozenset({"generation"}))
    signer_row(state, tx)
    pseudonym = hex64_field(body, "pseudonym")
    owned_patient(state, tx, pseudonym)
    generation = _generation(state, body, pseudonym)
    for category, period, key_sha256 in _key_entries(state, body["keys"]):
        existing = state.get("published_keys", (pseudonym, category, period))
        if existing is not None and existing["generation"] >= generation:
            if existing["public_key_sha256"] != key_sha256:
                raise deny(
                    "key-already-published",
                    f"a different key for {category} in {period} was published in entry "
                    f"{existing['entry_index']}; a published key is never replaced but by "
                    "the keys of a rotated patient key (`ehrgate patient rotate-keys`)",
                )
            continue
        out.put(
            "published_keys",
            {
                "pseudonym": pseudonym,
                "category": category,
                "period": period,
                "public_key_sha256": key_sha256,
                "entry_index": index,
                "generation": generation,
            },
        )
    if generation > current_generation(state, pseudonym):
        out.put(
            "key_generations",
            {"pseudonym": pseudonym, "generation": generation, "entry_index": index},
        )


def _covers(grant: Row, category: str, period: str, now: str) -> bool:
    rights = str(grant["rights"]).split(",")
    categories = str(grant["categories"])
    first, last = grant_months(grant["not_before"], grant["not_after"])
    return (
        "read" in rights
        and (categories == "all" or category in categories.split(","))
        and first <= period <= last
        and grant["not_after"] > now
    )


def check_scope(
    state: StateView, body: dict[str, Any], pseudonym: str, grantee: str, now: str
) -> None:
    """body.scope of a scoped key share: "category/YYYY-MM" items, sorted and unique, each
    within a read grant of *grantee* on *pseudonym* that has not ended."""
    scope = body["scope"]
    if (
        not isinstance(scope, list)
        or not 0 < len(scope) <= MAX_SCOPE
        or not all(isinstance(item, str) for item in scope)
        or scope != sorted(set(scope))
    ):
        raise MalformedTransaction(
            f'body.scope must be a sorted list of 1 to {MAX_SCOPE} distinct "category/YYYY-MM"'
        )
    grants = state.live_grants(pseudonym, grantee)
    for item in scope:
        category, _, period = item.partition("/")
        check_period(period, "a body.scope month")
        _known_category(state, category, "body.scope category")
        if not any(_covers(grant, category, period, now) for grant in grants) and not (
            emergency.covers(state, pseudonym, grantee, category, period, now)
        ):
            raise deny(
                "share-outside-grant",
                f"{grantee!r} has no read permission (nor break-glass policy) on {pseudonym} "
                f"that covers {category} in {period} and has not ended: grant it first, or "
                "share fewer months",
            )
