"""Ledger time: one fixed RFC 3339 UTC text form, and the injectable clock.

Every time on the ledger is written as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (always six
fractional digits, always ``Z``), so that the text form is unique for an instant and two
times compare correctly as strings.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from ledger.errors import MalformedTransaction

Clock = Callable[[], datetime]

_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def system_clock() -> datetime:
    """Now, in UTC: the default clock (tests pass their own)."""
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """The ledger's text form of an aware datetime."""
    if moment.tzinfo is None:
        raise ValueError("ledger times must be timezone-aware (use datetime.now(UTC))")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: object, what: str = "time") -> datetime:
    """Parse the ledger's time form; anything else is a MalformedTransaction."""
    if not isinstance(text, str) or not _PATTERN.fullmatch(text):
        raise MalformedTransaction(
            f"{what} must be an RFC 3339 UTC time like 2026-01-31T12:00:00.000000Z, got {text!r}"
        )
    try:
        # Slicing the fixed layout is ~20x faster than strptime, which matters per entry.
        return datetime(
            int(text[0:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]),
            int(text[14:16]), int(text[17:19]), int(text[20:26]), tzinfo=UTC,
        )  # fmt: skip
    except ValueError as exc:
        raise MalformedTransaction(f"{what} is not a real date and time: {text!r}") from exc


def check_time(text: object, what: str = "time") -> str:
    """Return *text* if it is a valid ledger time, else raise as `parse_time` does.

    Times differ per entry but dates rarely do: the time of day is range-checked by the
    pattern and the date (the only part that needs a calendar) is remembered once valid.
    """
    if isinstance(text, str):
        match = _STRICT.fullmatch(text)
        if match is not None and match[1] in _VALID_DATES:
            return text
    parse_time(text, what)
    assert isinstance(text, str)
    if len(_VALID_DATES) > 4096:
        _VALID_DATES.clear()
    _VALID_DATES.add(text[:10])
    return text


# Hours 00-23, minutes and seconds 00-59: exactly what datetime() accepts for those fields.
_STRICT = re.compile(r"(\d{4}-\d{2}-\d{2})T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{6}Z")
_VALID_DATES: set[str] = set()


def to_micros(moment: datetime | str) -> int:
    """Microseconds since the Unix epoch, for fast comparisons in the permission index."""
    if isinstance(moment, str):
        moment = parse_time(moment)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def coerce_time(moment: datetime | str | None, clock: Clock = system_clock) -> str:
    """A ledger time string from a datetime, an already formatted string, or now."""
    if moment is None:
        return format_time(clock())
    if isinstance(moment, str):
        parse_time(moment)
        return moment
    return format_time(moment)
