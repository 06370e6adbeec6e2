"""Both authentication states keep the same promises; the shared one on both databases."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway import schema
from gateway.authstate import AuthState, MemoryAuthState, SqlAuthState
from gateway.ratelimit import Buckets, MemoryBuckets
from ledger.migrate import upgrade
from tests.postgres import scratch_database

T = 1_800_000_000.0


KINDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@contextmanager
def _opened(kind: str, tmp_path: Path) -> Iterator[SqlAuthState]:
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
        upgrade(url)
        state = SqlAuthState.open(url)
        yield state
        state.close()
        return
    with scratch_database() as url:
        upgrade(url)
        state = SqlAuthState.open(url)
        yield state
        state.close()


@pytest.fixture(params=KINDS)
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AuthState]:
    if request.param == "memory":
        yield MemoryAuthState()
        return
    with _opened(request.param, tmp_path) as opened:
        yield opened


@pytest.fixture(params=KINDS)
def buckets(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Buckets]:
    if request.param == "memory":
        yield MemoryBuckets()
        return
    with _opened(request.param, tmp_path) as opened:
        yield opened


@pytest.fixture(params=KINDS[1:])
def sql_state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlAuthState]:
    with _opened(request.param, tmp_path) as opened:
        yield opened


def _add(state: AuthState, challenge: str, requester: str = "198.51.100.1", at: float = T) -> None:
    state.add_challenge(challenge, "dr-a", requester, now=at, expires_at=at + 60, per_requester=2)


def test_a_challenge_is_taken_once(state: AuthState) -> None:
    _add(state, "c1")
    found = state.take_challenge("c1")
    assert found is not None
    assert (found.identity_id, found.expires_at) == ("dr-a", T + 60)
    assert state.take_challenge("c1") is None
    assert state.take_challenge("never-issued") is None


def test_beyond_the_bound_the_oldest_of_the_same_requester_goes(state: AuthState) -> None:
    _add(state, "c1", at=T)
    _add(state, "other", requester="198.51.100.2", at=T + 0.5)
    _add(state, "c2", at=T + 1)
    _add(state, "c3", at=T + 2)
    assert state.take_challenge("c1") is None
    assert state.take_challenge("c2") is not None
    assert state.take_challenge("c3") is not None
    assert state.take_challenge("other") is not None  # another requester's stays


def test_tokens_are_found_by_digest_until_they_expire(state: AuthState) -> None:
    digest = hashlib.sha256(b"egt_x").digest()
    state.add_token(digest, "dr-a", now=T, expires_at=T + 900)
    found = state.find_token(digest, now=T + 899)
    assert found is not None
    assert (found.identity_id, found.expires_at) == ("dr-a", T + 900)
    assert state.find_token(digest, now=T + 900) is None
    assert state.find_token(hashlib.sha256(b"egt_y").digest(), now=T) is None


def test_the_shared_state_reports_the_ledger_size_with_each_token(
    sql_state: SqlAuthState,
) -> None:
    digest = hashlib.sha256(b"egt_z").digest()
    sql_state.add_token(digest, "dr-a", now=T, expires_at=T + 900)
    found = sql_state.find_token(digest, now=T)
    assert found is not None
    assert found.ledger_size == 0 == sql_state.ledger_size()
    assert MemoryAuthState().ledger_size() is None


def test_a_bucket_spends_its_burst_then_refills_at_its_rate(buckets: Buckets) -> None:
    # capacity 3, one token a second
    assert [buckets.take("k", 3.0, 1.0, T) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("k", 3.0, 1.0, T) == pytest.approx(1.0)
    assert buckets.take("k", 3.0, 1.0, T + 0.25) == pytest.approx(0.75)
    assert buckets.take("k", 3.0, 1.0, T + 1.0) == 0.0
    assert buckets.take("other", 3.0, 1.0, T) == 0.0  # keys are apart
    # Never more than the capacity, however long the wait; time never runs backwards.
    assert [buckets.take("k", 3.0, 1.0, T + 100) for _ in range(4)][-1] > 0
    assert buckets.take("k", 3.0, 1.0, T + 50) > 0


@pytest.mark.postgres
def test_concurrent_takes_never_spend_more_than_the_bucket(fresh_postgres_url: str) -> None:
    upgrade(fresh_postgres_url)
    states = [SqlAuthState.open(fresh_postgres_url) for _ in range(3)]
    try:
        key = "race"
        with ThreadPoolExecutor(12) as pool:
            results = list(pool.map(lambda n: states[n % 3].take(key, 20.0, 1e-6, T), range(60)))
    finally:
        for s in states:
            s.close()
    assert results.count(0.0) == 20


def test_expired_rows_are_purged_as_the_state_is_written(sql_state: SqlAuthState) -> None:
    for n in range(600):
        sql_state.add_token(bytes([n % 256, n // 256]) * 16, "dr-a", now=T + n, expires_at=T + n)
    with sql_state.engine.connect() as conn:
        left = conn.execute(sa.select(sa.func.count()).select_from(schema.auth_tokens)).scalar()
    assert left is not None
    assert left < 600 - 400
