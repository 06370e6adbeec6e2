"""Events, webhook endpoints, the delivery queue and contact addresses, in the database.

Everything here is synchronous SQLAlchemy Core against the ledger's engine (call it from a
worker thread). The queue is durable: an event is recorded with one delivery row per
endpoint and address that should hear it, in one transaction, and a delivery leaves the
queue only as `delivered` or `dead`. Several gateway processes may share the database: a
worker claims a delivery with a conditional update (a lease), so one attempt runs at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from gateway import schema
from ledger.wire.ids import new_id

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
WEBHOOK, EMAIL = "webhook", "email"


@dataclass(frozen=True, slots=True)
class Endpoint:
    endpoint_id: str
    owner: str
    url: str
    kinds: tuple[str, ...]
    created_at: float


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery as a worker or an admin sees it."""

    delivery_id: str
    event_id: str
    kind: str
    channel: str
    target: str
    status: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    updated_at: float
    payload: bytes


def _endpoint(row: Any) -> Endpoint:
    kinds = tuple(k for k in row.kinds.split(",") if k)
    return Endpoint(row.endpoint_id, row.owner, row.url, kinds, row.created_at)


class NotificationStore:
    """The notification tables of one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction that takes SQLite's write lock at BEGIN (as the ledger's
        writers do), so that it waits for a busy database instead of failing."""
        with self.engine.connect() as conn:
            conn.execution_options(ledger_write=True)
            with conn.begin():
                yield conn

    # --- endpoints --------------------------------------------------------------------------

    def add_endpoint(
        self, owner: str, url: str, kinds: Sequence[str], *, now: float, limit: int
    ) -> Endpoint | None:
        """A new endpoint of *owner*, or None if it has *limit* endpoints already."""
        t = schema.notify_endpoints
        endpoint = Endpoint(new_id(), owner, url, tuple(kinds), now)
        with self._writing() as conn:
            count = conn.execute(
                sa.select(sa.func.count()).select_from(t).where(t.c.owner == owner)
            ).scalar_one()
            if count >= limit:
                return None
            conn.execute(
                t.insert().values(
                    endpoint_id=endpoint.endpoint_id,
                    owner=owner,
                    url=url,
                    kinds=",".join(kinds),
                    created_at=now,
                )
            )
        return endpoint

    def endpoints_of(self, owner: str) -> list[Endpoint]:
        t = schema.notify_endpoints
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t).where(t.c.owner == owner).order_by(t.c.created_at))
            return [_endpoint(r) for r in rows]

    def remove_endpoint(self, owner: str, endpoint_id: str) -> bool:
        t = schema.notify_endpoints
        with self._writing() as conn:
            done = conn.execute(
                t.delete().where(t.c.endpoint_id == endpoint_id, t.c.owner == owner)
            )
        return done.rowcount == 1

    # --- contact addresses ------------------------------------------------------------------

    def set_contact(self, identity_id: str, sealed: bytes, *, now: float) -> None:
        t = schema.notify_contacts
        with self._writing() as conn:
            conn.execute(t.delete().where(t.c.identity_id == identity_id))
            conn.execute(
                t.insert().values(identity_id=identity_id, sealed_email=sealed, updated_at=now)
            )

    def contact(self, identity_id: str) -> bytes | None:
        t = schema.notify_contacts
        with self.engine.connect() as conn:
            value = conn.execute(
                sa.select(t.c.sealed_email).where(t.c.identity_id == identity_id)
            ).scalar_one_or_none()
        return bytes(value) if value is not None else None

    def remove_contact(self, identity_id: str) -> bool:
        t = schema.notify_contacts
        with self._writing() as conn:
            done = conn.execute(t.delete().where(t.c.identity_id == identity_id))
        return done.rowcount == 1

    # --- events and the queue ---------------------------------------------------------------

    def record_event(
        self,
        *,
        event_id: str,
        kind: str,
        pseudonym: str,
        payload: bytes,
        recipients: Sequence[str],
        email_to: Sequence[str],
        now: float,
    ) -> int:
        """Record an event and queue its deliveries; the number queued (0 for an event
        already recorded: each event is queued once, whoever emits it again)."""
        try:
            with self._writing() as conn:
                if self._known_event(conn, event_id):
                    return 0
                conn.execute(
                    schema.notify_events.insert().values(
                        event_id=event_id,
                        kind=kind,
                        pseudonym=pseudonym,
                        payload=payload.decode(),
                        created_at=now,
                    )
                )
                targets = [
                    (WEBHOOK, e.endpoint_id) for e in self._endpoints_for(conn, recipients, kind)
                ]
                targets += [(EMAIL, identity) for identity in email_to]
                if targets:
                    conn.execute(
                        schema.notify_deliveries.insert(),
                        [
                            {
                                "delivery_id": new_id(),
                                "event_id": event_id,
                                "channel": channel,
                                "target": target,
                                "status": PENDING,
                                "attempts": 0,
                                "next_attempt_at": now,
                                "lease_until": None,
                                "last_error": None,
                                "updated_at": now,
                            }
                            for channel, target in targets
                        ],
                    )
                return len(targets)
        except IntegrityError:
            return 0  # another gateway process recorded the same event at the same moment

    def event_known(self, event_id: str) -> bool:
        with self.engine.connect() as conn:
            return self._known_event(conn, event_id)

    @staticmethod
    def _known_event(conn: Connection, event_id: str) -> bool:
        t = schema.notify_events
        found = conn.execute(sa.select(t.c.event_id).where(t.c.event_id == event_id)).first()
        return found is not None

    @staticmethod
    def _endpoints_for(conn: Connection, owners: Sequence[str], kind: str) -> list[Endpoint]:
        if not owners:
            return []
        t = schema.notify_endpoints
        rows = conn.execute(sa.select(t).where(t.c.owner.in_(list(owners))))
        return [e for e in map(_endpoint, rows) if kind in e.kinds]

    def claim_due(self, *, now: float, lease: float, limit: int) -> list[Delivery]:
        """Pending deliveries due by *now*, each leased to the caller until now + *lease*."""
        d = schema.notify_deliveries
        free = sa.or_(d.c.lease_until.is_(None), d.c.lease_until < now)
        with self.engine.connect() as conn:
            due = (
                conn.execute(
                    sa.select(d.c.delivery_id)
                    .where(d.c.status == PENDING, d.c.next_attempt_at <= now, free)
                    .order_by(d.c.next_attempt_at)
                    .limit(limit)
                )
                .scalars()
                .all()
            )
        claimed: list[str] = []
        for delivery_id in due:
            with self._writing() as conn:
                done = conn.execute(
                    d.update()
                    .where(d.c.delivery_id == delivery_id, d.c.status == PENDING, free)
                    .values(lease_until=now + lease)
                )
            if done.rowcount == 1:
                claimed.append(delivery_id)
        return self.deliveries(claimed)

    def next_due(self) -> float | None:
        """When the earliest pending delivery may next be attempted (its lease included)."""
        d = schema.notify_deliveries
        ready = sa.case(
            (d.c.lease_until > d.c.next_attempt_at, d.c.lease_until), else_=d.c.next_attempt_at
        )
        with self.engine.connect() as conn:
            value = conn.execute(
                sa.select(sa.func.min(ready)).where(d.c.status == PENDING)
            ).scalar_one_or_none()
        return float(value) if value is not None else None

    def release(self, ids: Sequence[str]) -> None:
        """Give up the leases of deliveries a stopping worker had claimed, so that the
        next worker attempts them at once."""
        if not ids:
            return
        d = schema.notify_deliveries
        with self._writing() as conn:
            conn.execute(
                d.update()
                .where(d.c.delivery_id.in_(list(ids)), d.c.status == PENDING)
                .values(lease_until=None)
            )

    def deliveries(self, ids: Sequence[str]) -> list[Delivery]:
        if not ids:
            return []
        return self._deliveries(schema.notify_deliveries.c.delivery_id.in_(list(ids)))

    def _deliveries(self, *where: Any, limit: int | None = None) -> list[Delivery]:
        d, e = schema.notify_deliveries, schema.notify_events
        query = (
            sa.select(d, e.c.kind, e.c.payload)
            .join(e, e.c.event_id == d.c.event_id)
            .where(*where)
            .order_by(d.c.updated_at, d.c.delivery_id)
        )
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            Delivery(
                r.delivery_id, r.event_id, r.kind, r.channel, r.target, r.status, r.attempts,
                r.next_attempt_at, r.last_error, r.updated_at, r.payload.encode(),
            )
            for r in rows
        ]  # fmt: skip

    def endpoint(self, endpoint_id: str) -> Endpoint | None:
        t = schema.notify_endpoints
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t).where(t.c.endpoint_id == endpoint_id)).first()
        return _endpoint(row) if row is not None else None

    def delivered(self, delivery_id: str, *, now: float) -> None:
        self._finish(delivery_id, now=now, status=DELIVERED, error=None)

    def failed(self, delivery_id: str, *, error: str, now: float, retry_at: float | None) -> None:
        """An attempt failed: retry at *retry_at*, or (None) make it a dead letter."""
        if retry_at is None:
            self._finish(delivery_id, now=now, status=DEAD, error=error)
            return
        d = schema.notify_deliveries
        with self._writing() as conn:
            conn.execute(
                d.update()
                .where(d.c.delivery_id == delivery_id)
                .values(
                    attempts=d.c.attempts + 1,
                    next_attempt_at=retry_at,
                    lease_until=None,
                    last_error=error[:1000],
                    updated_at=now,
                )
            )

    def _finish(self, delivery_id: str, *, now: float, status: str, error: str | None) -> None:
        d = schema.notify_deliveries
        with self._writing() as conn:
            conn.execute(
                d.update()
                .where(d.c.delivery_id == delivery_id)
                .values(
                    status=status,
                    attempts=d.c.attempts + 1,
                    lease_until=None,
                    last_error=error[:1000] if error else None,
                    updated_at=now,
                )
            )

    def dead_letters(self, limit: int = 1000) -> list[Delivery]:
        return self._deliveries(schema.notify_deliveries.c.status == DEAD, limit=limit)

    def retry_dead_letter(self, delivery_id: str, *, now: float) -> bool:
        """Put a dead letter back in the queue for a fresh round of attempts."""
        d = schema.notify_deliveries
        with self._writing() as conn:
            done = conn.execute(
                d.update()
                .where(d.c.delivery_id == delivery_id, d.c.status == DEAD)
                .values(status=PENDING, attempts=0, next_attempt_at=now, lease_until=None,
                        updated_at=now)
            )  # fmt: skip
        return done.rowcount == 1

    def counts(self) -> dict[str, int]:
        """Deliveries by status (for metrics and tests)."""
        d = schema.notify_deliveries
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(d.c.status, sa.func.count()).group_by(d.c.status))
            return {status: int(n) for status, n in rows}


def payload_json(delivery: Delivery) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(delivery.payload)
    return value
