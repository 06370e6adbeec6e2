"""Wire facts of scoped record keys shared by the rules and the clients: how many keys one
`publish_keys` and one scoped `key_share` may carry, how a share's scope is written, and
which months a grant covers."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from ledger.wire.clock import parse_time

MAX_KEYS_PER_TX = 128
"""Keys one publish_keys may carry (about 1.7 KB each in the transaction)."""
MAX_SCOPE = 1000
"""(category, month) pairs one scoped key share may carry."""
DEFAULT_MONTHS_AHEAD = 24
"""Besides the current month, how many coming months a patient publishes keys for."""
MAX_MONTHS_AHEAD = 120
"""The most months after the first that one publication call covers."""


def scope_items(scope: Iterable[tuple[str, str]]) -> list[str]:
    """A share's scope as body.scope writes it: sorted, distinct "category/YYYY-MM"."""
    return sorted({f"{category}/{period}" for category, period in scope})


def grant_months(not_before: str, not_after: str) -> tuple[str, str]:
    """(first, last) month (YYYY-MM) a grant covers: not_before's month to the month of the
    last instant before not_after (not_after itself is excluded)."""
    last = parse_time(not_after, "not_after") - timedelta(microseconds=1)
    return parse_time(not_before, "not_before").strftime("%Y-%m"), last.strftime("%Y-%m")


MAX_REKEY_BATCH = 200
"""Rekeys in one request to the gateway (about 4 KB each, so a full batch stays within the
JSON body limit): what the SDK sends per request during a key rotation, at most."""
