"""The pure parts of notifications: payloads, webhook URL checks, sealed addresses."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from gateway.events import GatewayEvent
from gateway.notify.contacts import ContactError, check_email, open_email, seal_email
from gateway.notify.payloads import MAX_PAYLOAD_BYTES, PayloadRefused, concerned, event_payload
from gateway.notify.urls import Origin, WebhookUrlRefused, check_webhook_url
from gateway.notify.worker import _wait as worker_wait

AT = "2030-01-01T12:00:00Z"


def test_a_payload_keeps_ids_and_categories_and_drops_free_text() -> None:
    event = GatewayEvent(
        "access_request", "ab" * 32, "cd" * 32, AT,
        {"request_id": "r1", "categories": ["lab-results"], "reason": "suspected relapse",
         "filename": "jane-doe.pdf", "Odd Key": "x"},
    )  # fmt: skip
    payload = json.loads(event_payload(event, gateway_id="gw"))
    assert payload == {
        "type": "access_request",
        "id": "ab" * 32,
        "timestamp": AT,
        "gateway": "gw",
        "data": {"pseudonym": "cd" * 32, "request_id": "r1", "categories": ["lab-results"]},
    }


def test_unknown_kinds_and_oversized_payloads_are_refused() -> None:
    odd = GatewayEvent("coffee_ready", "ab" * 32, "cd" * 32, AT)  # type: ignore[arg-type]
    with pytest.raises(PayloadRefused, match="unknown event kind"):
        event_payload(odd, gateway_id="gw")
    huge = GatewayEvent("export_done", "ab" * 32, "cd" * 32, AT, {"record_ids": ["r" * 64] * 400})
    with pytest.raises(PayloadRefused, match=str(MAX_PAYLOAD_BYTES)):
        event_payload(huge, gateway_id="gw")


def test_the_patient_and_the_named_identities_hear_an_event() -> None:
    event = GatewayEvent(
        "grant_expiring", "ab" * 32, "cd" * 32, AT, {"grantee": "dr-who", "actor": "x"}
    )
    assert concerned(event, "patient-id") == ["patient-id", "dr-who"]
    assert concerned(event, None) == ["dr-who"]


GATEWAY = [Origin("gateway.example.org", 443)]


@pytest.mark.parametrize(
    ("url", "allow_loopback", "words"),
    [
        ("http://hooks.example.org/", False, "https://"),
        ("http://hooks.example.org/", True, "https://"),
        ("https://127.0.0.1/", False, "local address"),
        ("https://[::1]:8443/", False, "local address"),
        ("https://169.254.169.254/latest", False, "local address"),
        ("https://localhost:8443/", False, "local address"),
        ("https://gateway.example.org/x", False, "gateway itself"),
        ("https://gateway.example.org./x", False, "gateway itself"),
        ("https://hooks.example.org/#frag", False, "fragment"),
        ("https://hooks.example.org/ x", False, "spaces"),
        ("https://hooks.example.org:0x/", False, "port"),
    ],
)
def test_refused_webhook_urls(url: str, allow_loopback: bool, words: str) -> None:
    with pytest.raises(WebhookUrlRefused, match=words):
        check_webhook_url(url, gateway=GATEWAY, allow_loopback=allow_loopback)


@pytest.mark.parametrize(
    ("url", "allow_loopback"),
    [
        ("https://hooks.example.org/ehr?x=1", False),
        ("https://gateway.example.org:8443/x", False),  # another port: another service
        ("http://127.0.0.1:9000/hook", True),
        ("https://[::1]:9000/hook", True),
    ],
)
def test_accepted_webhook_urls(url: str, allow_loopback: bool) -> None:
    assert check_webhook_url(url, gateway=GATEWAY, allow_loopback=allow_loopback) == url


def test_a_sealed_address_opens_only_for_its_identity_and_key() -> None:
    key = os.urandom(32)
    sealed = seal_email(key, "patient-a", "jane@mail.example.org")
    assert b"jane" not in sealed
    assert open_email(key, "patient-a", sealed) == "jane@mail.example.org"
    with pytest.raises(ContactError):
        open_email(key, "patient-b", sealed)
    with pytest.raises(ContactError):
        open_email(os.urandom(32), "patient-a", sealed)
    assert seal_email(key, "patient-a", "jane@mail.example.org") != sealed  # fresh nonce


@pytest.mark.parametrize(
    "address", ["jane", "jane@", "@example.org", "jane@localhost", "a b@example.org",
                "<jane@example.org>", "x" * 250 + "@example.org"],
)  # fmt: skip
def test_bad_addresses_are_refused(address: str) -> None:
    with pytest.raises(ContactError):
        check_email(address)


@pytest.mark.parametrize("turns", [0, 1, 2])
def test_a_delivery_loop_stops_when_cancelled_just_as_it_is_woken(turns: int) -> None:
    """Shutdown cancels the loops; a wake that lands just before must not swallow it."""

    async def scenario() -> bool:
        event = asyncio.Event()

        async def loop() -> None:
            while True:
                await worker_wait(event, 60)

        task = asyncio.create_task(loop())
        await asyncio.sleep(0)  # the loop is waiting
        event.set()
        for _ in range(turns):
            await asyncio.sleep(0)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=2)
        return task in done

    assert asyncio.run(scenario())
