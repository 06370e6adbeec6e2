"""Where authentication keeps its state: outstanding challenges, issued tokens, rate limits.

`MemoryAuthState` keeps them in this process (the embedded default: one process, nothing to
share). `SqlAuthState` keeps them in tables beside the ledger in the ledger's own database
(`gateway.schema`), so that every replica of the gateway sees the same ones: a token issued
by one replica works at the others, a challenge is spent once whichever replica redeems it,
and a rate limit counts the attempts made at all replicas.

Only the SHA-256 of a token is ever stored. A challenge is redeemed by deleting its row:
of two replicas redeeming the same challenge at once, the database gives the row to one.

The shared store also tells the ledger's size when it finds a token, in the same round trip:
the replica compares it with the size it knows and, if another replica appended entries
(a suspension, say), reads them before it checks the caller. That is what makes a suspension
at one replica effective at every replica on the next request, at no extra cost.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from gateway import schema
from gateway.errors import ServiceUnavailable
from ledger import database, schema as ledger_schema

MAX_OUTSTANDING = 100_000
"""Challenges (and tokens) one in-memory state keeps at most."""

_PURGE_EVERY = 512
"""A shared state removes expired rows once in this many writes."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PendingChallenge:
    identity_id: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class FoundToken:
    identity_id: str
    expires_at: float
    ledger_size: int | None
    """The ledger's size in the shared database when the token was looked up; None where
    the state is not shared (one process: its ledger view is always current)."""


class AuthState(Protocol):
    """Challenges and tokens of one gateway deployment (times: seconds since the epoch)."""

    shared: bool
    """True when other processes see the same state (its calls then cost a round trip)."""

    def add_challenge(
        self,
        challenge: str,
        identity_id: str,
        requester: str,
        *,
        now: float,
        expires_at: float,
        per_requester: int,
    ) -> None:
        """Keep *challenge*; beyond *per_requester* outstanding ones for the same identity
        and requester, the oldest are dropped."""
        ...

    def take_challenge(self, challenge: str) -> PendingChallenge | None:
        """Remove *challenge* and return what it was issued for (None if unknown)."""
        ...

    def add_token(
        self, digest: bytes, identity_id: str, *, now: float, expires_at: float
    ) -> None: ...

    def find_token(self, digest: bytes, *, now: float) -> FoundToken | None:
        """The unexpired token with this SHA-256 digest, or None."""
        ...

    def ledger_size(self) -> int | None:
        """The ledger's size in the shared database (None where the state is not shared)."""
        ...


class MemoryAuthState:
    """Challenges and tokens in this process's memory, bounded in number."""

    shared = False

    def __init__(self, max_outstanding: int = MAX_OUTSTANDING) -> None:
        self.max_outstanding = max_outstanding
        self._challenges: dict[str, tuple[PendingChallenge, tuple[str, str]]] = {}
        self._by_requester: dict[tuple[str, str], deque[str]] = {}
        self._tokens: dict[bytes, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def add_challenge(
        self,
        challenge: str,
        identity_id: str,
        requester: str,
        *,
        now: float,
        expires_at: float,
        per_requester: int,
    ) -> None:
        pair = (identity_id, requester)
        with self._lock:
            if len(self._challenges) >= self.max_outstanding:
                for key in [k for k, (p, _) in self._challenges.items() if p.expires_at <= now]:
                    self._forget(key)
            while len(self._challenges) >= self.max_outstanding:
                self._forget(next(iter(self._challenges)))
            pending = self._by_requester.setdefault(pair, deque())
            while len(pending) >= per_requester:
                self._challenges.pop(pending.popleft(), None)
            self._challenges[challenge] = (PendingChallenge(identity_id, expires_at), pair)
            pending.append(challenge)

    def take_challenge(self, challenge: str) -> PendingChallenge | None:
        with self._lock:
            return self._forget(challenge)

    def _forget(self, challenge: str) -> PendingChallenge | None:
        """Drop *challenge* from both tables (the lock is held); return what it was."""
        entry = self._challenges.pop(challenge, None)
        if entry is None:
            return None
        found, pair = entry
        pending = self._by_requester.get(pair)
        if pending is not None:
            pending.remove(challenge)
            if not pending:
                del self._by_requester[pair]
        return found

    def add_token(self, digest: bytes, identity_id: str, *, now: float, expires_at: float) -> None:
        with self._lock:
            if len(self._tokens) >= self.max_outstanding:
                for key in [k for k, (_, exp) in self._tokens.items() if exp <= now]:
                    del self._tokens[key]
            self._tokens[digest] = (identity_id, expires_at)

    def find_token(self, digest: bytes, *, now: float) -> FoundToken | None:
        with self._lock:
            entry = self._tokens.get(digest)
            if entry is not None and entry[1] <= now:
                del self._tokens[digest]
                entry = None
        return None if entry is None else FoundToken(entry[0], entry[1], None)

    def ledger_size(self) -> int | None:
        return None


def _find_token_statement() -> sa.Select[tuple[str, float, int]]:
    """The hot path, built once: the token's row and the ledger's size, in one statement."""
    t, h = schema.auth_tokens, ledger_schema.head
    size = sa.select(h.c.tree_size).where(h.c.id == 1).scalar_subquery()
    return sa.select(t.c.identity_id, t.c.expires_at, size.label("size")).where(
        t.c.digest == sa.bindparam("digest"), t.c.expires_at > sa.bindparam("now")
    )


_FIND_TOKEN = _find_token_statement()
_FIND_TOKEN_SQL = (
    "SELECT identity_id, expires_at, (SELECT tree_size FROM ledger_head WHERE id = 1)"
    " FROM gateway_auth_tokens WHERE digest = %s AND expires_at > %s"
)
_UNREACHABLE = "the gateway cannot reach its shared authentication state; try again"


def _is_database_error(exc: BaseException) -> bool:
    """An error of SQLAlchemy or of the driver underneath (psycopg raises its own)."""
    return isinstance(exc, sa.exc.DBAPIError) or type(exc).__module__.startswith("psycopg")


class SqlAuthState:
    """Challenges, tokens and rate-limit buckets in the ledger's database, for all replicas.

    Also a `gateway.ratelimit.Buckets`: each take is one atomic upsert, so concurrent
    replicas never both spend the last token of a bucket.
    """

    shared = True

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._writes = 0
        self._lock = threading.Lock()
        dialect = engine.dialect.name
        if dialect == "postgresql":
            self._insert: Callable[[sa.Table], Any] = postgresql.insert
        elif dialect == "sqlite":
            self._insert = sqlite.insert
        else:
            raise ValueError(f"shared authentication state needs PostgreSQL, not {dialect}")

    @classmethod
    def open(cls, url: str, *, pool_size: int = 8) -> SqlAuthState:
        """A state on its own small connection pool to the ledger database at *url*."""
        kwargs: dict[str, Any] = {}
        if not url.startswith("sqlite"):
            # Every call is one statement, atomic on its own (the challenge bound's trim
            # after an insert needs no atomicity with it): autocommit saves the BEGIN and
            # COMMIT round trips, leaving one per call.
            kwargs = {
                "pool_size": pool_size,
                "max_overflow": pool_size,
                "isolation_level": "AUTOCOMMIT",
            }
        return cls(database.create_engine(url, **kwargs))

    def close(self) -> None:
        self.engine.dispose()

    def check(self) -> None:
        """Raise if the tables cannot be read (for /readyz)."""
        with self.engine.connect() as conn:
            conn.execute(sa.select(sa.func.count()).select_from(schema.auth_tokens).limit(1))

    def _run(self, work: Callable[[sa.Connection], T]) -> T:
        try:
            with self.engine.connect() as conn:
                result = work(conn)
                conn.commit()  # a no-op in autocommit
                return result
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            raise ServiceUnavailable(_UNREACHABLE) from exc

    def _due_purge(self) -> bool:
        with self._lock:
            self._writes += 1
            return self._writes % _PURGE_EVERY == 0

    def _purge(self, conn: sa.Connection, now: float) -> None:
        c, t, b = schema.auth_challenges, schema.auth_tokens, schema.rate_buckets
        conn.execute(c.delete().where(c.c.expires_at <= now))
        conn.execute(t.delete().where(t.c.expires_at <= now))
        conn.execute(b.delete().where(b.c.full_at <= now))

    def add_challenge(
        self,
        challenge: str,
        identity_id: str,
        requester: str,
        *,
        now: float,
        expires_at: float,
        per_requester: int,
    ) -> None:
        c = schema.auth_challenges
        purge = self._due_purge()
        same = sa.and_(c.c.identity_id == identity_id, c.c.requester == requester)
        keep = (
            sa.select(c.c.challenge)
            .where(same)
            .order_by(c.c.issued_at.desc(), c.c.challenge)
            .limit(per_requester)
        )

        def work(conn: sa.Connection) -> None:
            conn.execute(
                c.insert().values(
                    challenge=challenge,
                    identity_id=identity_id,
                    requester=requester,
                    issued_at=now,
                    expires_at=expires_at,
                )
            )
            conn.execute(c.delete().where(same, c.c.challenge.not_in(keep.scalar_subquery())))
            if purge:
                self._purge(conn, now)

        self._run(work)

    def take_challenge(self, challenge: str) -> PendingChallenge | None:
        c = schema.auth_challenges
        statement = (
            c.delete().where(c.c.challenge == challenge).returning(c.c.identity_id, c.c.expires_at)
        )
        row = self._run(lambda conn: conn.execute(statement).one_or_none())
        return None if row is None else PendingChallenge(row.identity_id, float(row.expires_at))

    def add_token(self, digest: bytes, identity_id: str, *, now: float, expires_at: float) -> None:
        t = schema.auth_tokens
        purge = self._due_purge()

        def work(conn: sa.Connection) -> None:
            conn.execute(
                t.insert().values(digest=digest, identity_id=identity_id, expires_at=expires_at)
            )
            if purge:
                self._purge(conn, now)

        self._run(work)

    def find_token(self, digest: bytes, *, now: float) -> FoundToken | None:
        if self.engine.dialect.name == "postgresql":
            found = self._find_token_fast(digest, now)
            return None if found is None else FoundToken(found[0], float(found[1]), int(found[2]))
        values = {"digest": digest, "now": now}
        row = self._run(lambda conn: conn.execute(_FIND_TOKEN, values).one_or_none())
        if row is None:
            return None
        return FoundToken(row.identity_id, float(row.expires_at), int(row.size))

    def _find_token_fast(self, digest: bytes, now: float) -> tuple[Any, ...] | None:
        """`find_token` straight on the driver: on every authenticated request, the
        statement layers cost more than the round trip itself (bench/auth_state.py)."""
        try:
            raw = self.engine.raw_connection()
        except Exception as exc:
            if _is_database_error(exc):
                raise ServiceUnavailable(_UNREACHABLE) from exc
            raise
        try:
            cursor = raw.cursor()
            try:
                cursor.execute(_FIND_TOKEN_SQL, (digest, now))
                row: tuple[Any, ...] | None = cursor.fetchone()
            finally:
                cursor.close()
        except Exception as exc:
            raw.invalidate()  # the connection may be broken: never reuse it
            if _is_database_error(exc):
                raise ServiceUnavailable(_UNREACHABLE) from exc
            raise
        finally:
            raw.close()
        return row

    def ledger_size(self) -> int | None:
        h = ledger_schema.head
        statement = sa.select(h.c.tree_size).where(h.c.id == 1)
        return int(self._run(lambda conn: conn.execute(statement).scalar_one()))

    def take(self, key: str, capacity: float, rate: float, now: float) -> float:
        b = schema.rate_buckets
        now_: sa.ColumnElement[float] = sa.literal(now, sa.Double())
        elapsed = sa.case((now_ > b.c.updated, now_ - b.c.updated), else_=0.0)
        filled = b.c.tokens + elapsed * rate
        refilled = sa.case((filled > capacity, capacity), else_=filled)
        granted = refilled >= 1.0
        left = sa.case((granted, refilled - 1.0), else_=refilled)
        statement = (
            self._insert(b)
            .values(
                key=key,
                tokens=capacity - 1.0,
                updated=now,
                granted=True,
                full_at=now + 1.0 / rate,
            )
            .on_conflict_do_update(
                index_elements=[b.c.key],
                set_={
                    "tokens": left,
                    "updated": sa.case((now_ > b.c.updated, now_), else_=b.c.updated),
                    "granted": granted,
                    "full_at": now_ + (capacity - left) / rate,
                },
            )
            .returning(b.c.granted, b.c.tokens)
        )
        row = self._run(lambda conn: conn.execute(statement).one())
        return 0.0 if row.granted else 1.0 - float(row.tokens)
