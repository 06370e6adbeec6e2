"""The `Notifier`: the event sink of the webhook and e-mail channels, and its tasks.

`publish` (called by the event hub, on the event loop or a worker thread) only puts the
event in memory and wakes the notifier; three background tasks do the rest, never on a
request's path:

- *persist*: records each event with its deliveries in the database (`store`), once per
  event id, and keeps an event in memory while the database is down;
- *deliver*: claims due deliveries and attempts them (webhook POST, or e-mail), then marks
  each delivered, due again after a back-off, or dead after `webhook_max_attempts`;
- *expiry scan*: every `grant_expiry_scan_interval`, emits `grant_expiring` for each live
  grant ending within `grant_expiry_window` (its event id is derived from the grant and its
  end, so each grant is announced once, also across restarts and replicas).

Stopping persists what is still in memory and gives up the claims on deliveries in flight;
the queue itself is in the database, so a restart loses nothing and a delivery interrupted
mid-attempt is attempted again, with the same event id (after its lease, if the process
died without stopping).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import datetime

import httpx
from starlette.concurrency import run_in_threadpool

from envelope import SigningKey
from gateway.clock import Clock, checked_now
from gateway.events import EventHub, GatewayEvent
from gateway.metrics import GatewayMetrics
from gateway.notify import mail
from gateway.notify.contacts import ContactError, contact_key_from_text, open_email
from gateway.notify.payloads import PayloadRefused, concerned, event_payload
from gateway.notify.signing import signature_headers
from gateway.notify.store import EMAIL, WEBHOOK, Delivery, NotificationStore, payload_json
from gateway.settings import Settings
from ledger.ledger import Ledger
from ledger.wire.clock import format_time

log = logging.getLogger("gateway.notify")

_BATCH = 32
_CONCURRENCY = 16
_MIN_DELAY = 0.01


def grant_expiring_id(permission_id: str, not_after: str) -> str:
    """The event id of "permission *permission_id* ends at *not_after*"."""
    text = f"grant_expiring\0{permission_id}\0{not_after}"
    return hashlib.sha256(text.encode()).hexdigest()


class Notifier:
    """Delivers the gateway's events by webhook and e-mail (see the module doc)."""

    def __init__(
        self,
        settings: Settings,
        *,
        ledger: Ledger,
        signing_key: SigningKey,
        hub: EventHub,
        clock: Clock,
        metrics: GatewayMetrics | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.metrics = metrics
        self.settings = settings
        self.ledger = ledger
        self.store = NotificationStore(ledger.engine)
        self.signing_key = signing_key
        self.hub = hub
        self.clock = clock
        self.wall = wall
        self._inbox: queue.SimpleQueue[GatewayEvent] = queue.SimpleQueue()
        self._held: list[GatewayEvent] = []
        self._persist_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_persist = asyncio.Event()
        self._wake_deliver = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._claimed: set[str] = set()
        self._client: httpx.AsyncClient | None = None
        self._contact_key = (
            contact_key_from_text(settings.contact_key.get_secret_value())
            if settings.contact_key is not None
            else None
        )
        self._smtp = (
            mail.SmtpServer(
                settings.smtp_host,
                settings.smtp_port,
                settings.smtp_from,
                starttls=settings.smtp_starttls,
                username=settings.smtp_username,
                password=(
                    settings.smtp_password.get_secret_value() if settings.smtp_password else None
                ),
                timeout=settings.webhook_timeout,
            )
            if settings.smtp_host
            else None
        )

    @property
    def mails(self) -> bool:
        """Whether e-mail is configured (an SMTP server and a key for addresses)."""
        return self._smtp is not None and self._contact_key is not None

    # --- the sink ---------------------------------------------------------------------------

    def publish(self, event: GatewayEvent) -> None:
        self._inbox.put(event)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake_persist.set)

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._client = httpx.AsyncClient(
            timeout=self.settings.webhook_timeout, follow_redirects=False, trust_env=False
        )
        self._tasks = [
            asyncio.create_task(self._persist_loop(), name="notify-persist"),
            asyncio.create_task(self._deliver_loop(), name="notify-deliver"),
            asyncio.create_task(self._expiry_loop(), name="notify-expiry"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        try:
            await run_in_threadpool(self._persist_pending)
            await run_in_threadpool(self.store.release, sorted(self._claimed))
        except Exception:
            log.exception("notification events could not be saved at shutdown")
        self._claimed.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self._loop = None

    def wake(self) -> None:
        """Look at the queue now (after a dead letter was put back, say)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake_deliver.set)

    # --- persist ----------------------------------------------------------------------------

    async def _persist_loop(self) -> None:
        interval = self.settings.notify_poll_interval
        while True:
            await _wait(self._wake_persist, interval)
            try:
                queued = await run_in_threadpool(self._persist_pending)
            except Exception:
                log.exception("notification events could not be saved; retrying")
                continue
            if queued:
                self._wake_deliver.set()

    def _persist_pending(self) -> int:
        # One thread at a time: a save still running when the loop is cancelled at shutdown
        # finishes before the final one starts.
        with self._persist_lock:
            return self._persist_held()

    def _persist_held(self) -> int:
        while True:
            try:
                self._held.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        queued = 0
        while self._held:
            queued += self._persist(self._held[0])  # raises while the database is down
            self._held.pop(0)
        return queued

    def _persist(self, event: GatewayEvent) -> int:
        try:
            payload = event_payload(event, gateway_id=self.settings.gateway_id)
        except PayloadRefused as exc:
            log.error("event not delivered: %s", exc)
            return 0
        patient = self.ledger.patient(event.pseudonym)
        owner = patient.identity_id if patient is not None else None
        email_to = [owner] if owner is not None and self.mails and self.store.contact(owner) else []
        return self.store.record_event(
            event_id=event.event_id,
            kind=event.kind,
            pseudonym=event.pseudonym,
            payload=payload,
            recipients=concerned(event, owner),
            email_to=email_to,
            now=self.wall(),
        )

    # --- deliver ----------------------------------------------------------------------------

    async def _deliver_loop(self) -> None:
        interval = self.settings.notify_poll_interval
        lease = self.settings.webhook_timeout + 30.0
        limit = asyncio.Semaphore(_CONCURRENCY)

        async def attempt(delivery: Delivery) -> None:
            async with limit:
                await self._attempt(delivery)
            self._claimed.discard(delivery.delivery_id)

        # The first look waits a moment (or a wake-up): the gateway has just started.
        delay = interval
        while True:
            await _wait(self._wake_deliver, delay)
            delay = interval
            try:
                while True:
                    due = await run_in_threadpool(
                        lambda: self.store.claim_due(now=self.wall(), lease=lease, limit=_BATCH)
                    )
                    self._claimed.update(d.delivery_id for d in due)
                    if due:
                        await asyncio.gather(*(attempt(d) for d in due))
                    if len(due) < _BATCH:
                        break
                # Sleep until the next retry is due, if that is sooner than the next look.
                upcoming = await run_in_threadpool(self.store.next_due)
                if upcoming is not None:
                    delay = min(interval, max(upcoming - self.wall(), _MIN_DELAY))
            except Exception:
                log.exception("the delivery queue could not be read; retrying")

    async def _attempt(self, delivery: Delivery) -> None:
        try:
            if delivery.channel == WEBHOOK:
                error = await self._post(delivery)
            elif delivery.channel == EMAIL:
                error = await run_in_threadpool(self._mail, delivery)
            else:
                error = f"unknown channel {delivery.channel}"
        except Exception as exc:  # a delivery's failure is the delivery's, never the loop's
            error = f"{type(exc).__name__}"
        now = self.wall()
        if error is None:
            await run_in_threadpool(self.store.delivered, delivery.delivery_id, now=now)
            self._count(delivery.channel, "delivered")
            log.info("delivered %s %s by %s", delivery.kind, delivery.event_id, delivery.channel)
            return
        attempts = delivery.attempts + 1
        final = attempts >= self.settings.webhook_max_attempts or error.startswith("gone:")
        retry_at = None if final else now + self._backoff(attempts)
        await run_in_threadpool(
            lambda: self.store.failed(delivery.delivery_id, error=error, now=now, retry_at=retry_at)
        )
        self._count(delivery.channel, "dead" if final else "retry")
        if final:
            log.warning(
                "dead letter: %s %s by %s after %d attempts: %s",
                delivery.kind, delivery.event_id, delivery.channel, attempts, error,
            )  # fmt: skip
        else:
            log.info(
                "delivery of %s %s by %s failed (%s); attempt %d in %.1f s",
                delivery.kind, delivery.event_id, delivery.channel, error, attempts + 1,
                retry_at - now if retry_at else 0.0,
            )  # fmt: skip

    def _count(self, channel: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.notifications.labels(channel, outcome).inc()

    def _backoff(self, attempts: int) -> float:
        base = self.settings.webhook_retry_base * 2.0 ** (attempts - 1)
        return float(min(base, self.settings.webhook_retry_max))

    async def _post(self, delivery: Delivery) -> str | None:
        endpoint = await run_in_threadpool(self.store.endpoint, delivery.target)
        if endpoint is None:
            return "gone: the endpoint was removed"
        assert self._client is not None
        headers = signature_headers(
            self.signing_key,
            event_id=delivery.event_id,
            timestamp=int(self.wall()),
            body=delivery.payload,
        )
        headers["content-type"] = "application/json"
        headers["user-agent"] = "ehrgate-notify"
        try:
            response = await self._client.post(
                endpoint.url, content=delivery.payload, headers=headers
            )
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}"
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"

    def _mail(self, delivery: Delivery) -> str | None:
        if self._smtp is None or self._contact_key is None:
            return "gone: e-mail is not configured"
        sealed = self.store.contact(delivery.target)
        if sealed is None:
            return "gone: the address was removed"
        try:
            address = open_email(self._contact_key, delivery.target, sealed)
        except ContactError as exc:
            return f"gone: {exc}"
        message = mail.build_message(
            payload_json(delivery),
            sender=self._smtp.sender,
            to=address,
            gateway_id=self.settings.gateway_id,
        )
        try:
            mail.send(self._smtp, message)
        except mail.MailFailed as exc:
            return str(exc)
        return None

    # --- expiry scan ------------------------------------------------------------------------

    async def _expiry_loop(self) -> None:
        interval = self.settings.grant_expiry_scan_interval
        await asyncio.sleep(min(interval, self.settings.notify_poll_interval))
        while True:
            try:
                await run_in_threadpool(self.scan_expiring)
            except Exception:
                log.exception("the scan for grants ending soon failed; retrying")
            await asyncio.sleep(interval)

    def scan_expiring(self) -> int:
        """Emit `grant_expiring` for live grants ending within the window (each once)."""
        now: datetime = max(checked_now(self.clock), self.ledger.now())
        until = now + self.settings.grant_expiry_window
        emitted = 0
        for permission in self.ledger.permissions_ending(format_time(now), format_time(until)):
            event_id = grant_expiring_id(permission.permission_id, permission.not_after)
            if self.store.event_known(event_id):
                continue
            categories = permission.categories
            self.hub.emit(
                GatewayEvent(
                    kind="grant_expiring",
                    event_id=event_id,
                    pseudonym=permission.pseudonym,
                    at=format_time(now),
                    details={
                        "permission_id": permission.permission_id,
                        "grantee": permission.grantee,
                        "rights": list(permission.rights),
                        "categories": categories
                        if isinstance(categories, str)
                        else list(categories),
                        "not_after": permission.not_after,
                    },
                )
            )
            emitted += 1
        return emitted


async def _wait(event: asyncio.Event, timeout: float) -> None:
    # asyncio.timeout, not wait_for: on Python 3.11, wait_for returns normally when it is
    # cancelled just as the event is set, and the loops above would outlive `stop`.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
    event.clear()
