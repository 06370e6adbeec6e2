"""The gateway's notion of now: an injectable callable returning an aware UTC datetime."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The real time, in UTC."""
    return datetime.now(UTC)


def checked_now(clock: Clock) -> datetime:
    """Call *clock* and insist on an aware datetime, so that comparisons are never naive."""
    now = clock()
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("the gateway clock must return timezone-aware datetimes")
    return now
