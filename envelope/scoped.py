"""Scoped record keys (key format version 2): one X-Wing key pair per (category, month), from K.

A grantee must be able to open exactly the records its grant covers: its categories, up to
its end. So records are sealed not to one record key but to the key of their category and
of the UTC calendar month of their ``created_at``:

    seed       = HKDF-SHA256(ikm=K, salt=None, L=32, info="ehrgate/scoped-key/v2/month"
                             ‖ 0x00 ‖ category ‖ 0x00 ‖ "YYYY-MM")
    record key = the X-Wing key pair whose private key is that seed

A seed opens the records of one category sealed in one month and nothing else; HKDF cannot
be run backwards, so no set of seeds yields K, another category or another month. A grant
is covered by its categories x every month from its start's month to its end's month.

The period is a month (not a day) because the patient publishes the public half of every
(category, month) on the append-only ledger: an X-Wing public key is 1,216 bytes, about
15 KB per category and year by months and 444 KB by days.

Category names are those the ledger accepts (lowercase ASCII letters, digits and '-',
starting with a letter, at most 63), so the info strings are unambiguous.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from envelope.capsule import check_created_at
from envelope.errors import EnvelopeError
from envelope.kem import HybridPrivateKey
from envelope.patient import PatientKey
from envelope.xwing import SEED_LEN

PERIOD_INFO = b"ehrgate/scoped-key/v2/month"
KEY_ID_PREFIX = "scoped-v2"
MAX_MONTHS = 1200
"""The most months one span may cover (a hundred years): a bound on what is derived."""

_CATEGORY = re.compile(r"[a-z][a-z0-9-]{0,62}", re.ASCII)
_MONTH = re.compile(r"\d{4}-\d\d", re.ASCII)

ScopeItem = tuple[str, str]
"""(category, period "YYYY-MM")."""


def check_category(category: object) -> str:
    if not isinstance(category, str) or not _CATEGORY.fullmatch(category):
        raise EnvelopeError(
            f"a category is lowercase letters, digits and '-', starting with a letter, "
            f"at most 63 characters; got {category!r}"
        )
    return category


def check_period(value: object) -> str:
    """A period: a UTC calendar month written YYYY-MM (0001-01 to 9999-12)."""
    if (
        not isinstance(value, str)
        or not _MONTH.fullmatch(value)
        or not 1 <= int(value[5:]) <= 12
        or value[:4] == "0000"
    ):
        raise EnvelopeError(f"a period is a month written YYYY-MM, got {value!r}")
    return value


def record_period(created_at: str) -> str:
    """The period of a record: the UTC month (YYYY-MM) of its RFC 3339 UTC created_at."""
    check_created_at(created_at)
    return created_at[:7]


def _index(period: str) -> int:
    return int(period[:4]) * 12 + int(period[5:]) - 1


def _period(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def next_period(period: str, months: int = 1) -> str:
    """The period *months* after *period* (before it when negative)."""
    index = _index(check_period(period)) + months
    if not _index("0001-01") <= index <= _index("9999-12"):
        raise EnvelopeError(f"{months} months from {period} is outside the years 1 to 9999")
    return _period(index)


def months(first: str, last: str) -> list[str]:
    """Every period from *first* to *last*, both included, in order."""
    start, end = _index(check_period(first)), _index(check_period(last))
    if end < start:
        raise EnvelopeError(f"the span ends ({last}) before it starts ({first})")
    if end - start >= MAX_MONTHS:
        raise EnvelopeError(f"a span covers at most {MAX_MONTHS} months")
    return [_period(index) for index in range(start, end + 1)]


def scoped_seed(patient_key: PatientKey, category: str, period: str) -> bytes:
    """The X-Wing seed of the record key for *category* in *period* (YYYY-MM, UTC)."""
    info = (
        PERIOD_INFO
        + b"\x00"
        + check_category(category).encode("ascii")
        + b"\x00"
        + check_period(period).encode("ascii")
    )
    return HKDF(algorithm=hashes.SHA256(), length=SEED_LEN, salt=None, info=info).derive(
        patient_key.to_bytes()
    )


def scoped_private_key(patient_key: PatientKey, category: str, period: str) -> HybridPrivateKey:
    """The private key records of *category* sealed in *period* are sealed to."""
    return HybridPrivateKey(scoped_seed(patient_key, category, period))


def scoped_record_key(patient_key: PatientKey, category: str, created_at: str) -> HybridPrivateKey:
    """The private key a record of *category* created at *created_at* is sealed to."""
    return scoped_private_key(patient_key, category, record_period(created_at))


def grant_seeds(
    patient_key: PatientKey, categories: Iterable[str], first: str, last: str
) -> dict[ScopeItem, bytes]:
    """Exactly the seeds a grant of *categories* over the months first..last needs."""
    periods = months(first, last)
    return {
        (category, period): scoped_seed(patient_key, category, period)
        for category in categories
        for period in periods
    }


def key_from_seeds(
    seeds: Mapping[ScopeItem, bytes], category: str, created_at: str
) -> HybridPrivateKey | None:
    """The record key for (category, created_at) from granted seeds, or None if they do not
    cover it (a grantee's side: it holds seeds, never K)."""
    held = seeds.get((category, record_period(created_at)))
    return HybridPrivateKey(held) if held is not None else None


def key_id(category: str, period: str) -> str:
    """How a capsule names the scoped key it is sealed to: "scoped-v2/<category>/<YYYY-MM>"."""
    return f"{KEY_ID_PREFIX}/{check_category(category)}/{check_period(period)}"


def parse_key_id(value: str) -> ScopeItem | None:
    """(category, period) of a scoped key id, or None if *value* names no scoped key."""
    parts = value.split("/") if isinstance(value, str) else []
    if len(parts) != 3 or parts[0] != KEY_ID_PREFIX:
        return None
    try:
        return check_category(parts[1]), check_period(parts[2])
    except EnvelopeError:
        return None
