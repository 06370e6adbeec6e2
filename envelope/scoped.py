"""Scoped record keys (key format version 2): one X-Wing key pair per (category, day), from K.

A grantee must be able to open exactly the records its grant covers: its categories, up to
its end. So records are sealed not to one record key but to the key of their category and
of the UTC day of their ``created_at``, and K derives those keys through a two-level tree:

    month seed = HKDF-SHA256(ikm=K, salt=None, L=32, info="ehrgate/scoped-key/v2/month"
                             ‖ 0x00 ‖ category ‖ 0x00 ‖ "YYYY-MM")
    day seed   = HKDF-SHA256(ikm=month seed, salt=None, L=32, info="ehrgate/scoped-key/v2/day"
                             ‖ 0x00 ‖ category ‖ 0x00 ‖ "YYYY-MM-DD")
    record key = the X-Wing key pair whose private key is the day seed

A month seed opens every day of that month in that category and nothing else; a day seed
opens one day. A grant over a span of days is covered by the month seeds of its whole
months plus the day seeds of its partial first and last months (`cover`), at most 62 day
seeds plus one per whole month. HKDF cannot be run backwards, so no set of seeds yields
K, another category, or a day outside the span.

Category names are those the ledger accepts (lowercase ASCII letters, digits and '-',
starting with a letter, at most 63), so the info strings are unambiguous.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date, timedelta

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from envelope.capsule import check_created_at
from envelope.errors import EnvelopeError
from envelope.kem import HybridPrivateKey
from envelope.patient import PatientKey
from envelope.xwing import SEED_LEN

MONTH_INFO = b"ehrgate/scoped-key/v2/month"
DAY_INFO = b"ehrgate/scoped-key/v2/day"

_CATEGORY = re.compile(r"[a-z][a-z0-9-]{0,62}", re.ASCII)
_MONTH = re.compile(r"\d{4}-\d\d", re.ASCII)
_DAY = re.compile(r"\d{4}-\d\d-\d\d", re.ASCII)


def check_category(category: object) -> str:
    if not isinstance(category, str) or not _CATEGORY.fullmatch(category):
        raise EnvelopeError(
            f"a category is lowercase letters, digits and '-', starting with a letter, "
            f"at most 63 characters; got {category!r}"
        )
    return category


def _day(value: object) -> date:
    if not isinstance(value, str) or not _DAY.fullmatch(value):
        raise EnvelopeError(f"a day is written YYYY-MM-DD, got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise EnvelopeError(f"{value!r} is not a real day") from exc


def _month(value: object) -> str:
    if not isinstance(value, str) or not _MONTH.fullmatch(value) or not 1 <= int(value[5:]) <= 12:
        raise EnvelopeError(f"a month is written YYYY-MM, got {value!r}")
    return value


def record_day(created_at: str) -> str:
    """The period of a record: the UTC day (YYYY-MM-DD) of its RFC 3339 UTC created_at."""
    check_created_at(created_at)
    return created_at[:10]


def _hkdf(key: bytes, label: bytes, category: str, period: str) -> bytes:
    info = label + b"\x00" + category.encode("ascii") + b"\x00" + period.encode("ascii")
    return HKDF(algorithm=hashes.SHA256(), length=SEED_LEN, salt=None, info=info).derive(key)


def month_seed(patient_key: PatientKey, category: str, month: str) -> bytes:
    """The seed from which every day key of *category* in *month* (YYYY-MM) derives."""
    return _hkdf(patient_key.to_bytes(), MONTH_INFO, check_category(category), _month(month))


def day_seed_from_month(month_seed_: bytes, category: str, day: str) -> bytes:
    """The day's seed, from its month's seed (what a grantee holding the month does)."""
    if len(month_seed_) != SEED_LEN:
        raise EnvelopeError(f"a month seed is {SEED_LEN} bytes")
    return _hkdf(month_seed_, DAY_INFO, check_category(category), _day(day).isoformat())


def day_seed(patient_key: PatientKey, category: str, day: str) -> bytes:
    """The X-Wing seed of the record key for *category* on *day* (YYYY-MM-DD, UTC)."""
    _day(day)
    return day_seed_from_month(month_seed(patient_key, category, day[:7]), category, day)


def scoped_record_key(patient_key: PatientKey, category: str, created_at: str) -> HybridPrivateKey:
    """The private key a record of *category* created at *created_at* is sealed to."""
    return HybridPrivateKey(day_seed(patient_key, category, record_day(created_at)))


def cover(first_day: str, last_day: str) -> list[str]:
    """The fewest periods (whole months as YYYY-MM, other days as YYYY-MM-DD) that cover
    exactly the days from *first_day* to *last_day*, both included, in order."""
    first, last = _day(first_day), _day(last_day)
    if last.year >= 9999:
        raise EnvelopeError("a span must end before the year 9999")
    if last < first:
        raise EnvelopeError(f"the span ends ({last_day}) before it starts ({first_day})")
    periods: list[str] = []
    current = first
    while current <= last:
        month_start = current.replace(day=1)
        next_month = (month_start + timedelta(days=32)).replace(day=1)
        if current == month_start and next_month - timedelta(days=1) <= last:
            periods.append(current.isoformat()[:7])
            current = next_month
        else:
            periods.append(current.isoformat())
            current += timedelta(days=1)
    return periods


def grant_seeds(
    patient_key: PatientKey, categories: Iterable[str], first_day: str, last_day: str
) -> dict[tuple[str, str], bytes]:
    """Exactly the seeds a grant of *categories* over the days first..last needs."""
    periods = cover(first_day, last_day)
    seeds: dict[tuple[str, str], bytes] = {}
    for category in categories:
        for period in periods:
            if len(period) == 7:
                seeds[(category, period)] = month_seed(patient_key, category, period)
            else:
                seeds[(category, period)] = day_seed(patient_key, category, period)
    return seeds


def key_from_seeds(
    seeds: Mapping[tuple[str, str], bytes], category: str, created_at: str
) -> HybridPrivateKey | None:
    """The record key for (category, created_at) from granted seeds, or None if they do not
    cover it (a grantee's side: it holds seeds, never K)."""
    day = record_day(created_at)
    held = seeds.get((category, day))
    if held is not None:
        return HybridPrivateKey(held)
    month = seeds.get((category, day[:7]))
    if month is not None:
        return HybridPrivateKey(day_seed_from_month(month, category, day))
    return None
