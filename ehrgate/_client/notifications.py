"""Notification settings: the caller's webhooks and e-mail address, and (admins) the dead
letters. Verifying a delivery needs no client: see `ehrgate.webhooks`."""

from __future__ import annotations

from collections.abc import Iterable

from ehrgate._client.session import Session, items
from ehrgate.errors import MalformedAnswer
from ehrgate.models import Delivery, Webhook


class Notifications:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add_webhook(self, url: str, *, kinds: Iterable[str] | None = None) -> Webhook:
        """Register an https endpoint for the caller's events (all kinds by default)."""
        body: dict[str, object] = {"url": url}
        if kinds is not None:
            body["kinds"] = list(kinds)
        return Webhook.from_json(self._session.post("/v1/notifications/webhooks", body))

    def webhooks(self) -> list[Webhook]:
        answer = self._session.get("/v1/notifications/webhooks")
        return [Webhook.from_json(item) for item in items(answer, "webhooks")]

    def remove_webhook(self, endpoint_id: str) -> None:
        self._session.delete(f"/v1/notifications/webhooks/{endpoint_id}")

    def set_email(self, address: str) -> str:
        """Give the patient's e-mail address (kept encrypted by the gateway)."""
        answer = self._session.put("/v1/notifications/contact", {"email": address})
        email = answer.get("email") if isinstance(answer, dict) else None
        if not isinstance(email, str):
            raise MalformedAnswer("the gateway's answer has no e-mail address")
        return email

    def remove_email(self) -> None:
        self._session.delete("/v1/notifications/contact")

    def webhook_key(self) -> str:
        """The base64 Ed25519 key webhook signatures verify with."""
        answer = self._session.get("/v1/notifications/signing-key", authenticated=False)
        key = answer.get("public_key") if isinstance(answer, dict) else None
        if not isinstance(key, str):
            raise MalformedAnswer("the gateway's answer has no public_key")
        return key

    def dead_letters(self) -> list[Delivery]:
        """Deliveries that failed every attempt (admins)."""
        answer = self._session.get("/v1/notifications/dead-letters")
        return [Delivery.from_json(item) for item in items(answer, "deliveries")]

    def retry_dead_letter(self, delivery_id: str) -> Delivery:
        """Queue a dead letter again (admins)."""
        answer = self._session.post(f"/v1/notifications/dead-letters/{delivery_id}/retry", {})
        return Delivery.from_json(answer)
