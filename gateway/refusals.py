"""Refused writes and logins of known identities, audited as denied `access` entries.

DESIGN §4: a refused act by a known identity is itself an `access` entry with decision
`denied`. Reads are audited by `gateway.access`; this module does it for the other acts
(`ledger.wire.shapes.RefusedAction`): committing a record, ingesting a document, uploading
a body, granting, revoking, depositing a key share, requesting access, publishing record
keys, an administrator's acts (enrolling, suspending, reinstating, rotating an identity's
keys), and logging in.

What counts as a refusal: an answer that says *this identity may not* (401 or 403, which
covers a missing right, the wrong role, another patient's pseudonym, a transaction signed
by someone other than the caller) or a transaction whose signature does not verify with the
caller's key (someone holding a token without the key). Malformed input, conflicts and
unknown patients or categories are answered as always and not audited: they say nothing
about what the identity may do.

An entry names the patient (pseudonym, and category if it is a known one) when the act named
a registered pseudonym, so that the patient sees the attempt in its `ehrgate audit`; a
pseudonym that is not registered names no patient, and the entry is written without one (the
identity is known, so the attempt is still on the ledger for auditors). A failed login names
the identity's own pseudonym when the identity is a patient. A login attempt for an id that
is not enrolled is counted in metrics only: anyone can make those up.

The reason is the gateway's own words (what was tried and why it was refused); never the
token, a signature, a challenge or a body. Each entry is submitted and awaited (for up to
`_WAIT_SECONDS`) before the refusal is answered; if the ledger cannot take it the refusal
is still answered with its 4xx, and the loss is logged and counted
(`ehrgate_refusals_unrecorded_total{why="ledger-unavailable"}`): nothing was changed, so
unlike a read there is nothing to withhold. How many are written is limited per identity
and act (`gateway.refusal_limits`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from types import TracebackType

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from gateway.access import read_time, submit_audit
from gateway.backends import Backends
from gateway.deps import Caller, CallerDep, GatewayState
from gateway.errors import (
    AuthenticationFailed,
    Forbidden,
    GatewayError,
    IdentitySuspended,
    InvalidChallenge,
    ServiceUnavailable,
)
from ledger.ledger import Ledger
from ledger.wire.shapes import RefusedAction

log = logging.getLogger("gateway.refusals")

_WAIT_SECONDS = 5.0
_MAX_DETAIL = 800
_HEX64 = re.compile(r"[0-9a-f]{64}")
# Rule codes that are refusals although the gateway answers them with 422.
_REFUSAL_CODES = frozenset({"bad-signature"})
UPLOADER_ROLES = ("clinician", "system")

_ACTS: dict[str, str] = {
    "commit_record": "record commit",
    "ingest_document": "document ingest",
    "upload_body": "body upload",
    "grant": "grant",
    "revoke": "revoke",
    "deposit_key_share": "key share deposit",
    "request_access": "access request",
    "publish_keys": "key publication",
    "erase": "erasure",
    "answer_request": "answer to an access request",
    "login": "login",
    "enroll": "enrollment",
    "suspend": "suspension",
    "reinstate": "reinstatement",
    "rotate_keys": "key rotation",
    "break_glass_policy": "break-glass policy",
    "break_glass": "break-glass",
    "break_glass_review": "break-glass review",
    "study_export": "study export",
    "upload_export_body": "study export body upload",
    "rekey": "rekey",
}

_LOGIN_REASONS: dict[type[GatewayError], str] = {
    InvalidChallenge: "the challenge was unknown, expired, already used or issued to another "
    "identity; ask for a new challenge and sign it before it expires",
    AuthenticationFailed: "the signature does not prove the identity's key; if this was not "
    "the identity's holder, someone tried to log in as it",
    IdentitySuspended: "the identity is suspended; an administrator suspended it",
}
LOGIN_REFUSALS = tuple(_LOGIN_REASONS)
"""The errors of `POST /v1/auth/token` that are audited (a rate-limited attempt is not)."""


def is_refusal(error: GatewayError) -> bool:
    """Whether *error* refuses the act for who the caller is (see the module doc)."""
    return error.status in (401, 403) or error.extensions.get("code") in _REFUSAL_CODES


def _patient_named(
    ledger: Ledger, pseudonym: object, category: object
) -> tuple[str | None, str | None]:
    """The registered pseudonym (and known category) an act named, else (None, None)."""
    if not isinstance(pseudonym, str) or not _HEX64.fullmatch(pseudonym):
        return None, None
    if ledger.patient(pseudonym) is None:
        return None, None
    if isinstance(category, str) and category in ledger.categories:
        return pseudonym, category
    return pseudonym, None


async def record_refusal(
    state: GatewayState,
    backends: Backends,
    *,
    actor: str,
    action: RefusedAction,
    why: str,
    pseudonym: object = None,
    category: object = None,
) -> None:
    """Write (rate limits allowing) a denied `access` entry for *actor*'s refused *action*
    and wait until it is durable; never raises (the refusal is answered either way)."""
    ledger = backends.ledger
    at = read_time(state.clock, ledger)
    try:
        if state.refusals.blocking:
            note = await run_in_threadpool(state.refusals.admit, actor, action, at)
        else:
            note = state.refusals.admit(actor, action, at)
    except ServiceUnavailable as exc:  # the shared limits cannot be read: nor the ledger
        state.metrics.refusals_unrecorded.labels(action, "ledger-unavailable").inc()
        log.warning("the refused %s by %s is not on the ledger: %r", action, actor, exc)
        return
    if note is None:
        return
    named, named_category = _patient_named(ledger, pseudonym, category)
    reason = f"{_ACTS[action]} refused: {why[:_MAX_DETAIL]}{note}"
    try:
        entry = submit_audit(
            backends,
            state.metrics,
            actor=actor,
            action=action,
            pseudonym=named,
            allowed=False,
            reason=reason,
            at=at,
            category=named_category,
        )
        await asyncio.wait_for(asyncio.shield(entry), _WAIT_SECONDS)
    except Exception as exc:  # the ledger is down or slow: the refusal stands regardless
        state.metrics.refusals_unrecorded.labels(action, "ledger-unavailable").inc()
        log.warning("the refused %s by %s is not on the ledger: %r", action, actor, exc)


class RefusalScope:
    """`async with audited(caller, action) as scope:` audits the refusal leaving the block.

    `scope.about(pseudonym, category)` says which patient the act names, once known.
    """

    def __init__(self, caller: Caller, action: RefusedAction) -> None:
        self.caller = caller
        self.action: RefusedAction = action
        self.pseudonym: object = None
        self.category: object = None

    def about(self, pseudonym: object, category: object = None) -> None:
        self.pseudonym, self.category = pseudonym, category

    async def __aenter__(self) -> RefusalScope:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if isinstance(exc, GatewayError) and is_refusal(exc):
            await record_refusal(
                self.caller.state,
                self.caller.backends,
                actor=self.caller.principal.id,
                action=self.action,
                why=exc.detail,
                pseudonym=self.pseudonym,
                category=self.category,
            )


def audited(caller: Caller, action: RefusedAction) -> RefusalScope:
    """The scope that audits *caller*'s refused *action* (see `RefusalScope`)."""
    return RefusalScope(caller, action)


def require_uploader(action: RefusedAction) -> Callable[..., Awaitable[Caller]]:
    """A dependency that admits only clinicians and systems, auditing any other caller's
    attempt as a refused *action* on the patient and category named in the query."""

    async def check(request: Request, caller: CallerDep) -> Caller:
        async with audited(caller, action) as scope:
            query = request.query_params
            scope.about(query.get("pseudonym"), query.get("category"))
            if caller.principal.role not in UPLOADER_ROLES:
                raise Forbidden(f"this route is for {' or '.join(UPLOADER_ROLES)} identities")
        return caller

    return check


def require_admin(action: RefusedAction) -> Callable[..., Awaitable[Caller]]:
    """A dependency that admits only admins, auditing any other caller's attempt at
    *action* (an administrator's act) as refused."""

    async def check(caller: CallerDep) -> Caller:
        async with audited(caller, action):
            if caller.principal.role != "admin":
                raise Forbidden("this route is for admin identities")
        return caller

    return check


async def login_refused(
    state: GatewayState, backends: Backends, identity_id: str, error: GatewayError
) -> None:
    """Audit a refused login as *identity_id*, if it is enrolled (metrics only if not)."""
    identity = backends.directory.identity(identity_id)
    if identity is None:
        state.metrics.refusals_unrecorded.labels("login", "unknown-identity").inc()
        return
    pseudonym = None
    if identity.role == "patient":
        owned = backends.ledger.patients_of(identity_id)
        pseudonym = owned[0].pseudonym if owned else None
    why = _LOGIN_REASONS.get(type(error), error.detail)
    await record_refusal(
        state, backends, actor=identity_id, action="login", why=why, pseudonym=pseudonym
    )
