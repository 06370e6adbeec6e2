"""Notification settings of the caller: webhook endpoints and an e-mail address; the
signing key receivers verify with; and, for admins, the dead letters.

A webhook endpoint belongs to the identity that registered it and receives the events that
concern that identity (a patient: everything about its pseudonyms; a clinician or system:
the requests it made and the grants it holds). See docs/notifications.md.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from envelope import b64encode
from gateway.deps import Caller, CallerDep, GatewayState, StateDep, get_backends, require_role
from gateway.errors import Conflict, NotFound, ServiceUnavailable, ValidationFailed
from gateway.events import EVENT_KINDS
from gateway.models import StrictModel, problem_responses
from gateway.notify.contacts import (
    ContactError,
    check_email,
    contact_key_from_text,
    open_email,
    seal_email,
)
from gateway.notify.signing import SIGNATURE_VERSION
from gateway.notify.store import Delivery, Endpoint, NotificationStore
from gateway.notify.urls import (
    MAX_URL_LENGTH,
    Origin,
    WebhookUrlRefused,
    check_webhook_url,
    origin_of,
)

AdminDep = Annotated[Caller, Depends(require_role("admin"))]
PatientDep = Annotated[Caller, Depends(require_role("patient"))]

router = APIRouter(
    prefix="/v1/notifications", tags=["notifications"], responses=problem_responses(401, 403)
)

EventKindName = Annotated[str, Field(min_length=1, max_length=32)]


class WebhookIn(StrictModel):
    url: str = Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="https:// URL the gateway POSTs signed events to.",
    )
    kinds: list[EventKindName] | None = Field(
        default=None,
        max_length=len(EVENT_KINDS),
        description=f"Event kinds to receive ({', '.join(EVENT_KINDS)}); default: all.",
    )


class WebhookOut(StrictModel):
    endpoint_id: str
    url: str
    kinds: list[str]
    created_at: float = Field(description="Unix seconds.")


class WebhookList(StrictModel):
    webhooks: list[WebhookOut]


class Removed(StrictModel):
    removed: str = Field(description="What was removed: the webhook id, or 'email'.")


class ContactIn(StrictModel):
    email: str = Field(min_length=3, max_length=254, description="Where to send e-mails.")


class ContactOut(StrictModel):
    email: str


class SigningKeyOut(StrictModel):
    algorithm: str = Field(description="Always 'ed25519'.")
    public_key: str = Field(description="The gateway's ledger public key, base64.")
    signature_version: str = Field(description="The prefix of webhook-signature: 'v1a'.")


class DeliveryOut(StrictModel):
    delivery_id: str
    event_id: str
    kind: str
    channel: str = Field(description="'webhook' or 'email'.")
    target: str = Field(description="The endpoint id, or the identity an e-mail is for.")
    status: str
    attempts: int
    last_error: str | None
    updated_at: float = Field(description="Unix seconds.")


class DeliveryList(StrictModel):
    deliveries: list[DeliveryOut]


def _webhook_out(endpoint: Endpoint) -> WebhookOut:
    return WebhookOut(
        endpoint_id=endpoint.endpoint_id,
        url=endpoint.url,
        kinds=list(endpoint.kinds),
        created_at=endpoint.created_at,
    )


def _delivery_out(delivery: Delivery) -> DeliveryOut:
    return DeliveryOut(
        delivery_id=delivery.delivery_id,
        event_id=delivery.event_id,
        kind=delivery.kind,
        channel=delivery.channel,
        target=delivery.target,
        status=delivery.status,
        attempts=delivery.attempts,
        last_error=delivery.last_error,
        updated_at=delivery.updated_at,
    )


def _store(caller: Caller) -> NotificationStore:
    return NotificationStore(caller.backends.ledger.engine)


def _gateway_origins(state: GatewayState, request: Request) -> list[Origin]:
    urls = [str(request.base_url)]
    if state.settings.public_url:
        urls.append(state.settings.public_url)
    if request.headers.get("host"):
        urls.append(f"{request.url.scheme}://{request.headers['host']}/")
    return [o for o in map(origin_of, urls) if o is not None]


def _kinds(asked: list[str] | None) -> list[str]:
    if asked is None:
        return list(EVENT_KINDS)
    unknown = sorted(set(asked) - set(EVENT_KINDS))
    if unknown:
        raise ValidationFailed(
            f"unknown event kind(s) {', '.join(unknown)}; known: {', '.join(EVENT_KINDS)}"
        )
    if not asked:
        raise ValidationFailed("name at least one event kind, or leave kinds out for all")
    return [kind for kind in EVENT_KINDS if kind in asked]


@router.get("/signing-key", response_model=SigningKeyOut)
async def signing_key(request: Request) -> SigningKeyOut:
    """The key webhook signatures verify with (the gateway's ledger key)."""
    backends = await get_backends(request)
    return SigningKeyOut(
        algorithm="ed25519",
        public_key=b64encode(backends.ledger.verify_key.to_bytes()),
        signature_version=SIGNATURE_VERSION,
    )


@router.post("/webhooks", response_model=WebhookOut, status_code=201)
async def add_webhook(body: WebhookIn, caller: CallerDep, request: Request) -> WebhookOut:
    """Register an endpoint that receives the caller's events, signed (docs/notifications.md)."""
    kinds = _kinds(body.kinds)
    settings = caller.state.settings
    try:
        url = check_webhook_url(
            body.url,
            gateway=_gateway_origins(caller.state, request),
            allow_loopback=settings.webhook_allow_loopback,
        )
    except WebhookUrlRefused as exc:
        raise ValidationFailed(str(exc), extensions={"code": "webhook-url-refused"}) from exc
    store = _store(caller)
    endpoint = await run_in_threadpool(
        lambda: store.add_endpoint(
            caller.principal.id,
            url,
            kinds,
            now=time.time(),
            limit=settings.webhooks_per_identity,
        )
    )
    if endpoint is None:
        raise Conflict(
            f"an identity may register at most {settings.webhooks_per_identity} webhooks;"
            " remove one first",
            extensions={"code": "too-many-webhooks"},
        )
    return _webhook_out(endpoint)


@router.get("/webhooks", response_model=WebhookList)
async def list_webhooks(caller: CallerDep) -> WebhookList:
    """The caller's webhook endpoints."""
    found = await run_in_threadpool(_store(caller).endpoints_of, caller.principal.id)
    return WebhookList(webhooks=[_webhook_out(e) for e in found])


@router.delete("/webhooks/{endpoint_id}", response_model=Removed, responses=problem_responses(404))
async def remove_webhook(
    endpoint_id: Annotated[str, Path(min_length=1, max_length=32)], caller: CallerDep
) -> Removed:
    """Remove one of the caller's endpoints (deliveries still queued for it are dropped)."""
    removed = await run_in_threadpool(
        _store(caller).remove_endpoint, caller.principal.id, endpoint_id
    )
    if not removed:
        raise NotFound(f"the caller has no webhook {endpoint_id}")
    return Removed(removed=endpoint_id)


def _contact_key(state: GatewayState) -> bytes:
    if state.settings.contact_key is None:
        raise ServiceUnavailable(
            "this gateway sends no e-mail (no contact_key is configured); use a webhook"
        )
    return contact_key_from_text(state.settings.contact_key.get_secret_value())


@router.put("/contact", response_model=ContactOut)
async def set_contact(body: ContactIn, caller: PatientDep) -> ContactOut:
    """Give or change the patient's e-mail address (kept encrypted, never on the ledger)."""
    key = _contact_key(caller.state)
    try:
        address = check_email(body.email)
    except ContactError as exc:
        raise ValidationFailed(str(exc)) from exc
    sealed = seal_email(key, caller.principal.id, address)
    await run_in_threadpool(
        lambda: _store(caller).set_contact(caller.principal.id, sealed, now=time.time())
    )
    return ContactOut(email=address)


@router.get("/contact", response_model=ContactOut, responses=problem_responses(404))
async def get_contact(caller: PatientDep) -> ContactOut:
    """The caller's own e-mail address, as the gateway keeps it."""
    key = _contact_key(caller.state)
    sealed = await run_in_threadpool(_store(caller).contact, caller.principal.id)
    if sealed is None:
        raise NotFound("the caller has given no e-mail address")
    try:
        return ContactOut(email=open_email(key, caller.principal.id, sealed))
    except ContactError as exc:
        raise ServiceUnavailable(str(exc)) from exc


@router.delete("/contact", response_model=Removed, responses=problem_responses(404))
async def remove_contact(caller: PatientDep) -> Removed:
    """Forget the caller's e-mail address."""
    if not await run_in_threadpool(_store(caller).remove_contact, caller.principal.id):
        raise NotFound("the caller has given no e-mail address")
    return Removed(removed="email")


@router.get("/dead-letters", response_model=DeliveryList)
async def dead_letters(caller: AdminDep) -> DeliveryList:
    """Deliveries that failed every attempt (admins only)."""
    found = await run_in_threadpool(_store(caller).dead_letters)
    return DeliveryList(deliveries=[_delivery_out(d) for d in found])


@router.post(
    "/dead-letters/{delivery_id}/retry",
    response_model=DeliveryOut,
    responses=problem_responses(404),
)
async def retry_dead_letter(
    delivery_id: Annotated[str, Path(min_length=1, max_length=32)],
    caller: AdminDep,
    state: StateDep,
) -> DeliveryOut:
    """Queue a dead letter again for a fresh round of attempts (admins only)."""
    store = _store(caller)
    if not await run_in_threadpool(lambda: store.retry_dead_letter(delivery_id, now=time.time())):
        raise NotFound(f"there is no dead letter {delivery_id}")
    if state.notifier is not None:
        state.notifier.wake()
    (delivery,) = await run_in_threadpool(store.deliveries, [delivery_id])
    return _delivery_out(delivery)
