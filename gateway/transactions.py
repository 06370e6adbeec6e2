"""Forwarding client-signed transactions to the ledger, after the gateway's own checks.

The gateway never signs consent: a grant, revoke, key share, registration, enrollment,
suspension or record arrives signed by its actor and is passed on as is. The gateway checks
that the transaction is of the kind the route is for and, for authenticated routes, that
the caller is its signer; the ledger's rules check the signature and everything else.
"""

from __future__ import annotations

import hashlib
import logging

from starlette.concurrency import run_in_threadpool

from envelope import EnvelopeError, b64decode
from gateway.auth import Principal
from gateway.backends import Backends
from gateway.errors import Forbidden, GatewayError, ValidationFailed, from_backend_error
from gateway.metrics import GatewayMetrics
from gateway.models import SignedTransaction
from ledger.errors import LedgerError, RuleViolation
from ledger.wire.blocks import Receipt
from ledger.wire.transactions import Transaction

log = logging.getLogger("gateway.transactions")


def parse_signed(
    signed: SignedTransaction, *, expected_type: str, principal: Principal | None
) -> Transaction:
    """Check the route-level facts of *signed* and build the ledger's Transaction."""
    if signed.type != expected_type:
        raise ValidationFailed(
            f"this route takes a {expected_type} transaction, not {signed.type!r}"
        )
    if principal is not None and signed.signer != principal.id:
        raise Forbidden(
            f"the transaction is signed by {signed.signer!r}, but the caller is "
            f"{principal.id!r}: each actor submits its own signed transactions"
        )
    try:
        return Transaction.from_json(signed.model_dump())
    except RuleViolation as exc:
        raise from_backend_error(exc) from exc


def signed_capsule(tx: Transaction, capsule_text: str) -> bytes:
    """The capsule sent (base64) with *tx*: the one whose SHA-256 *tx* signs."""
    try:
        capsule = b64decode(capsule_text, what="capsule")
    except EnvelopeError as exc:
        raise ValidationFailed(str(exc)) from exc
    if hashlib.sha256(capsule).hexdigest() != tx.body.get("capsule_sha256"):
        raise ValidationFailed("the capsule's SHA-256 is not the transaction's capsule_sha256")
    return capsule


def _refused(metrics: GatewayMetrics, tx: Transaction, exc: LedgerError) -> GatewayError:
    """Count and log a refusal (refused transactions are not on the ledger; the log keeps
    the account), and give the gateway's error for it."""
    if isinstance(exc, RuleViolation):
        metrics.rejected_transactions.labels(tx.type, exc.code).inc()
        log.warning(
            "refused %s transaction %s signed by %s: %s (%s)",
            tx.type,
            tx.body.get("tx_id"),
            tx.signer,
            exc.code,
            exc.message,
        )
    return from_backend_error(exc)


async def precheck(backends: Backends, metrics: GatewayMetrics, tx: Transaction) -> None:
    """Refuse *tx* now if the ledger's rules would refuse it: before anything is stored."""
    try:
        await run_in_threadpool(backends.ledger.precheck, tx)
    except LedgerError as exc:
        raise _refused(metrics, tx, exc) from exc


async def submit(
    backends: Backends,
    metrics: GatewayMetrics,
    tx: Transaction,
    *,
    capsule: bytes | None = None,
) -> Receipt:
    """Append *tx* (group-committed) and return its receipt once durable."""
    try:
        receipt = await backends.ledger.submit_async(tx, capsule=capsule)
    except LedgerError as exc:
        raise _refused(metrics, tx, exc) from exc
    if backends.witnessing is not None:
        backends.witnessing.wake()  # its witnesses see the new checkpoint now
    return receipt
