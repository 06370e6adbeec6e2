"""Scoped record keys: one key pair per (category, UTC day), derived from K through month
seeds, so that a grant's seeds open exactly its categories and days."""

from __future__ import annotations

import base64
import random
from datetime import date, timedelta
from typing import Any

import pytest

from envelope import EnvelopeError, PatientKey, open_capsule
from envelope.scoped import (
    cover,
    day_seed,
    day_seed_from_month,
    grant_seeds,
    key_from_seeds,
    month_seed,
    record_day,
    scoped_record_key,
)
from tests.envelope.conftest import load_vector

VECTORS = load_vector("scoped_key.json")
PATIENT = PatientKey(bytes(range(32)))


@pytest.mark.parametrize(
    "case", VECTORS["keys"], ids=[f"{c['category']}-{c['day']}" for c in VECTORS["keys"]]
)
def test_scoped_key_vector(case: dict[str, str]) -> None:
    patient_key = PatientKey(bytes.fromhex(case["patient_key"]))
    category, day = case["category"], case["day"]
    assert month_seed(patient_key, category, day[:7]).hex() == case["month_seed"]
    assert day_seed(patient_key, category, day).hex() == case["day_seed"]
    month = bytes.fromhex(case["month_seed"])
    assert day_seed_from_month(month, category, day).hex() == case["day_seed"]
    key = scoped_record_key(patient_key, category, f"{day}T23:59:59.5Z")
    assert key.is_seed
    assert key.public_key().to_bytes() == base64.b64decode(case["public_key"])


@pytest.mark.parametrize(
    "case", VECTORS["cover"], ids=[f"{c['first_day']}..{c['last_day']}" for c in VECTORS["cover"]]
)
def test_cover_vector(case: dict[str, Any]) -> None:
    assert cover(case["first_day"], case["last_day"]) == case["periods"]


def days_of(periods: list[str]) -> list[date]:
    out: list[date] = []
    for period in periods:
        if len(period) == 10:
            out.append(date.fromisoformat(period))
            continue
        current = date.fromisoformat(period + "-01")
        while current.strftime("%Y-%m") == period:
            out.append(current)
            current += timedelta(days=1)
    return out


def test_cover_is_exact_and_small_for_random_spans() -> None:
    chooser = random.Random(20260131)
    for _ in range(300):
        first = date(2024, 1, 1) + timedelta(days=chooser.randrange(1500))
        last = first + timedelta(days=chooser.randrange(800))
        periods = cover(first.isoformat(), last.isoformat())
        days = days_of(periods)
        assert days == [first + timedelta(days=n) for n in range((last - first).days + 1)]
        assert sum(len(p) == 10 for p in periods) <= 62


def test_a_grantee_opens_exactly_what_its_seeds_cover() -> None:
    seeds = grant_seeds(PATIENT, ["lab-results"], "2026-01-15", "2026-03-10")
    assert ("lab-results", "2026-02") in seeds
    assert ("lab-results", "2026-01-15") in seeds
    inside = ["2026-01-15T00:00:00Z", "2026-02-20T12:00:00Z", "2026-03-10T23:59:59Z"]
    for created_at in inside:
        key = key_from_seeds(seeds, "lab-results", created_at)
        assert key is not None
        expected = scoped_record_key(PATIENT, "lab-results", created_at)
        assert key.public_key() == expected.public_key()
    for category, created_at in [
        ("lab-results", "2026-01-14T23:59:59Z"),
        ("lab-results", "2026-03-11T00:00:00Z"),
        ("treatment-summary", "2026-02-20T12:00:00Z"),
    ]:
        assert key_from_seeds(seeds, category, created_at) is None


def test_keys_differ_across_categories_days_and_patients() -> None:
    other = PatientKey(bytes(32))
    base = scoped_record_key(PATIENT, "lab-results", "2026-02-20T12:00:00Z").public_key()
    assert base == scoped_record_key(PATIENT, "lab-results", "2026-02-20T00:00:00Z").public_key()
    for key in (
        scoped_record_key(PATIENT, "lab-results", "2026-02-21T12:00:00Z"),
        scoped_record_key(PATIENT, "treatment-summary", "2026-02-20T12:00:00Z"),
        scoped_record_key(other, "lab-results", "2026-02-20T12:00:00Z"),
    ):
        assert key.public_key() != base
    assert base != PATIENT.record_public_key()


def test_a_record_sealed_to_its_scoped_key_opens_with_granted_seeds(sealed_to: Any) -> None:
    created_at = "2026-02-20T12:00:00Z"
    public = scoped_record_key(PATIENT, "lab-results", created_at).public_key()
    capsule = sealed_to(public, created_at)
    seeds = grant_seeds(PATIENT, ["lab-results"], "2026-02-01", "2026-02-28")
    key = key_from_seeds(seeds, "lab-results", created_at)
    assert key is not None
    assert open_capsule(capsule, key, "scoped").category == "lab-results"


@pytest.fixture
def sealed_to() -> Any:
    import io

    from envelope import IdentityKeys, seal

    signer = IdentityKeys.generate("aria-export", "system")

    def make(public: Any, created_at: str) -> bytes:
        result = seal(
            io.BytesIO(b"report"),
            io.BytesIO(),
            recipients=[("scoped", public), ("a" * 64, PATIENT.record_public_key())],
            filename="r.pdf",
            content_type="application/pdf",
            pseudonym="a" * 64,
            category="lab-results",
            created_at=created_at,
            uploader_id="aria-export",
            signer=signer,
        )
        return result.capsule

    return make


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: month_seed(PATIENT, "Lab", "2026-01"), "category"),
        (lambda: month_seed(PATIENT, "lab\x00x", "2026-01"), "category"),
        (lambda: month_seed(PATIENT, "lab", "2026-13"), "month"),
        (lambda: day_seed(PATIENT, "lab", "2026-02-30"), "not a real day"),
        (lambda: day_seed(PATIENT, "lab", "2026-2-3"), "YYYY-MM-DD"),
        (lambda: day_seed_from_month(bytes(31), "lab", "2026-02-03"), "32 bytes"),
        (lambda: record_day("2026-02-03T10:00:00+01:00"), "RFC 3339 UTC"),
        (lambda: cover("2026-03-01", "2026-02-28"), "before it starts"),
        (lambda: cover("9999-12-01", "9999-12-31"), "9999"),
    ],
)
def test_bad_input_is_refused_clearly(call: Any, message: str) -> None:
    with pytest.raises(EnvelopeError, match=message):
        call()
