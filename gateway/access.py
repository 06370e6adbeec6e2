"""Access enforcement: ONE dependency decides every read against the ledger and audits it.

`require(action)` gives a FastAPI dependency for a route that reads a patient's data. At
the moment of the request it

1. finds what is read: a record (path `record_id`) or a patient (path `pseudonym`, and for
   lists an optional `category` query), 404 if it does not exist; a record an `erase`
   entry erased is refused (audited as denied) with 410 to whoever could have read it;
2. asks the ledger's state whether the authenticated caller may read it *now*;
3. writes an `access` transaction (actor, action, pseudonym, record, category, decision,
   reason, time) signed by the gateway and group-committed with other requests;
4. raises AccessDenied (403, once the denial is durable) or returns an `Access` describing
   what may be served.

An allowed read waits until its `access` entry is durable before the route runs, so that no
read is ever served unaudited. The exceptions are the body route and the records list: their
dependency returns while the entry is being committed, so that fetching from the store (or
reading and encoding the list) overlaps with the commit, and the route awaits
`Access.confirmed()` before the last byte of the body (before any byte of the list) leaves.

The same dependency serves every such route, so there is exactly one place where a read
is allowed; `tests/gateway/test_authorization_matrix.py` checks every route against it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Path, Query

from gateway import emergency
from gateway.auth import Principal
from gateway.backends import Backends
from gateway.clock import Clock, checked_now
from gateway.deps import Caller, CallerDep, GatewayState
from gateway.errors import (
    AccessDenied,
    NotFound,
    RecordErased,
    ValidationFailed,
    from_backend_error,
)
from gateway.events import GatewayEvent
from gateway.metrics import GatewayMetrics
from gateway.models import Category, Pseudonym, RecordId
from ledger.ledger import Ledger
from ledger.results import Record
from ledger.wire import builders
from ledger.wire.shapes import ReadAction

RECORD_ACTIONS = frozenset({"record", "capsule", "body"})
_OWNER_ONLY = frozenset({"access_history", "access_requests"})
_MAX_REASON = 1000


@dataclass(frozen=True, slots=True)
class Access:
    """An allowed read: who reads what, decided at `at`, and its audit entry."""

    caller: Caller
    action: str
    pseudonym: str
    at: datetime
    reason: str
    owner: bool
    audit_entry: asyncio.Future[Any]
    record: Record | None = None
    category: str | None = None
    readable_categories: tuple[str, ...] = ()
    break_glass: str | None = None
    """The break-glass session the read was allowed under, if it was."""

    @property
    def principal(self) -> Principal:
        return self.caller.principal

    @property
    def backends(self) -> Backends:
        return self.caller.backends

    @property
    def state(self) -> GatewayState:
        return self.caller.state

    async def confirmed(self) -> None:
        """Return once the read's `access` entry is durable (ServiceUnavailable if not)."""
        await _durable(self.audit_entry)

    def still_allowed(self) -> bool:
        """Whether the caller's read right still holds now (re-checked while a body streams)."""
        if self.owner or self.category is None:
            return self.owner
        ledger = self.backends.ledger
        at = read_time(self.state.clock, ledger)
        if ledger.check(self.principal.id, "read", self.pseudonym, self.category, at).allowed:
            return True
        return (
            self.break_glass is not None
            and emergency.live_session(
                ledger, self.principal.id, self.action, self.pseudonym, self.category, at
            )
            is not None
        )


def read_time(clock: Clock, ledger: Ledger) -> datetime:
    """The moment a read is checked at: the gateway's clock, but never behind the ledger's
    time, so that a clock jumping backwards cannot make an expired right valid again."""
    return max(checked_now(clock), ledger.now())


async def _durable(entry: asyncio.Future[Any]) -> None:
    try:
        await asyncio.shield(entry)
    except Exception as exc:
        # Unaudited reads are not served: the ledger being down makes reads fail too.
        raise from_backend_error(exc) from exc


def submit_audit(
    backends: Backends,
    metrics: GatewayMetrics,
    *,
    actor: str,
    action: str,
    pseudonym: str | None,
    allowed: bool,
    reason: str,
    at: datetime,
    record_id: str | None = None,
    category: str | None = None,
) -> asyncio.Future[Any]:
    """Queue one `access` transaction for the next group commit; the future is its receipt."""
    decision = "allowed" if allowed else "denied"
    tx = builders.access(
        backends.signer,
        actor=actor,
        action=action,
        pseudonym=pseudonym,
        decision=decision,
        reason=reason[:_MAX_REASON] or decision,
        at=at,
        record_id=record_id,
        category=category,
        issued_at=at,
    )
    metrics.access_decisions.labels(action, decision).inc()
    return asyncio.wrap_future(backends.ledger.submit_future(tx))


async def audit(backends: Backends, metrics: GatewayMetrics, **event: Any) -> None:
    """Write one `access` transaction and wait until it is durable."""
    await _durable(submit_audit(backends, metrics, **event))


def _readable(ledger: Ledger, principal: Principal, pseudonym: str, at: datetime) -> list[str]:
    return [
        name
        for name in ledger.categories.names()
        if ledger.check(principal.id, "read", pseudonym, name, at).allowed
    ]


def _decide(
    ledger: Ledger,
    principal: Principal,
    action: str,
    pseudonym: str,
    category: str | None,
    at: datetime,
    owner: bool,
) -> tuple[bool, str, tuple[str, ...], str | None]:
    """(allowed, reason, readable categories, break-glass session) of one read."""
    allowed, reason, readable = _decide_by_rights(
        ledger, principal, action, pseudonym, category, at, owner
    )
    if allowed or owner or action in _OWNER_ONLY or action == "permissions":
        return allowed, reason, readable, None
    found = emergency.live_session(ledger, principal.id, action, pseudonym, category, at)
    if found is None:
        return allowed, reason, readable, None
    names = (category,) if category is not None else tuple(found.category_names(ledger))
    return True, found.audit_reason(), names, found.session_id


def _decide_by_rights(
    ledger: Ledger,
    principal: Principal,
    action: str,
    pseudonym: str,
    category: str | None,
    at: datetime,
    owner: bool,
) -> tuple[bool, str, tuple[str, ...]]:
    if action in _OWNER_ONLY:
        if owner:
            return True, "the patient itself", ()
        return False, f"only the patient may read its {action.replace('_', ' ')}", ()
    if action == "permissions":
        if owner:
            return True, "the patient itself", ()
        return True, "the caller's own permissions only", ()
    if category is not None:
        decision = ledger.check(principal.id, "read", pseudonym, category, at)
        return decision.allowed, decision.reason, (category,) if decision.allowed else ()
    # A list without a category, or a key share: any category readable now will do.
    readable = _readable(ledger, principal, pseudonym, at)
    if readable:
        reason = "the patient itself" if owner else f"read right on {', '.join(readable)}"
        return True, reason, tuple(readable)
    return False, "no read right valid now on any category", ()


async def _enforce(
    action: str,
    caller: Caller,
    *,
    wait: bool = True,
    record_id: str | None = None,
    pseudonym: str | None = None,
    category: str | None = None,
) -> Access:
    principal, backends, state = caller.principal, caller.backends, caller.state
    ledger = backends.ledger
    at = read_time(state.clock, ledger)
    record = None
    if record_id is not None:
        record = ledger.cached_record(record_id)
        if record is None:
            raise NotFound(f"there is no record {record_id}")
        pseudonym, category = record.pseudonym, record.category
    assert pseudonym is not None
    patient = ledger.patient(pseudonym)
    if patient is None:
        raise NotFound(f"pseudonym {pseudonym} is not registered")
    if category is not None and category not in ledger.categories:
        known = ", ".join(ledger.categories.names())
        raise ValidationFailed(f"unknown category {category!r}; known: {known}")
    owner = patient.identity_id == principal.id
    allowed, reason, readable, session_id = _decide(
        ledger, principal, action, pseudonym, category, at, owner
    )
    gone = None
    if allowed and record_id is not None:
        erasure = ledger.erasure(record_id)
        if erasure is not None:
            gone = f"record {record_id} was erased by ledger entry {erasure.entry_index}"
            allowed, reason = False, f"{gone}; nothing of it is served"
    entry = submit_audit(
        backends,
        state.metrics,
        actor=principal.id,
        action=action,
        pseudonym=pseudonym,
        allowed=allowed,
        reason=reason,
        at=at,
        record_id=record_id,
        category=category,
    )
    if wait or not allowed:
        await _durable(entry)
    if gone is not None:
        raise RecordErased(
            f"{gone}: its capsule and body were deleted and nothing can open it any more"
        )
    if not allowed:
        _tell_denied(state, entry, principal.id, action, pseudonym, record_id, category)
        raise AccessDenied(reason)
    return Access(
        caller=caller,
        action=action,
        pseudonym=pseudonym,
        at=at,
        reason=reason,
        owner=owner,
        audit_entry=entry,
        record=record,
        category=category,
        readable_categories=readable,
        break_glass=session_id,
    )


def _tell_denied(
    state: GatewayState,
    entry: asyncio.Future[Any],
    actor: str,
    action: str,
    pseudonym: str,
    record_id: str | None,
    category: str | None,
) -> None:
    """Tell the patient of a denied read (the event id is the denial's ledger entry hash)."""
    receipt = entry.result()
    details: dict[str, str] = {"actor": actor, "action": action}
    if record_id is not None:
        details["record_id"] = record_id
    if category is not None:
        details["category"] = category
    state.events.emit(
        GatewayEvent(
            kind="denied_read",
            event_id=receipt.tx_hash,
            pseudonym=pseudonym,
            at=receipt.tree_head.timestamp,
            details=details,
        )
    )


def require(action: ReadAction) -> Callable[..., Awaitable[Access]]:
    """The dependency that checks and audits a read of *action* (see the module doc)."""
    if action in RECORD_ACTIONS:

        async def enforce_record(
            record_id: Annotated[RecordId, Path()], caller: CallerDep
        ) -> Access:
            return await _enforce(action, caller, record_id=record_id, wait=action != "body")

        return enforce_record

    if action == "list":

        async def enforce_list(
            pseudonym: Annotated[Pseudonym, Path()],
            caller: CallerDep,
            category: Annotated[Category | None, Query(description="Only this category.")] = None,
        ) -> Access:
            # The route awaits `Access.confirmed()` before it answers (see the module doc).
            return await _enforce(
                action, caller, pseudonym=pseudonym, category=category, wait=False
            )

        return enforce_list

    async def enforce_patient(pseudonym: Annotated[Pseudonym, Path()], caller: CallerDep) -> Access:
        return await _enforce(action, caller, pseudonym=pseudonym)

    return enforce_patient


# The route-signature forms of `require`, one per action.
ListAccess = Annotated[Access, Depends(require("list"))]
RecordAccess = Annotated[Access, Depends(require("record"))]
CapsuleAccess = Annotated[Access, Depends(require("capsule"))]
BodyAccess = Annotated[Access, Depends(require("body"))]
KeyShareAccess = Annotated[Access, Depends(require("key_share"))]
HistoryAccess = Annotated[Access, Depends(require("access_history"))]
RequestsAccess = Annotated[Access, Depends(require("access_requests"))]
PermissionsAccess = Annotated[Access, Depends(require("permissions"))]
