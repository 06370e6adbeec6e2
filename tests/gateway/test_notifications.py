"""Notifications over real HTTP: a live gateway (uvicorn) posts signed events to a real
webhook receiver and sends e-mail to a real SMTP server (aiosmtpd), both on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature

from ehrgate.webhooks import WebhookRejected, verify_webhook
from envelope import IdentityKeys, PatientKeys, b64encode
from gateway import Settings, create_app, schema
from gateway.backends import open_backends
from gateway.events import EVENT_KINDS, EventHub, GatewayEvent
from gateway.notify.worker import Notifier
from ledger.wire import builders
from ledger.wire.transactions import Transaction
from tests.gateway.conftest import first_admin
from tests.gateway.helpers import ManualClock, World, metrics_text, tx_json
from tests.gateway.live import live_world, serve_in_thread
from tests.gateway.receivers import (
    Delivery,
    smtp_server,
    verify_signature,
    wait_until,
    webhook_receiver,
)

CONTACT_KEY = b64encode(bytes(range(32)))
REASON = "suspected relapse of the condition named in the referral letter"


def notify_settings(data_dir: Path, **more: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "webhook_allow_loopback": True,
        "webhook_retry_base": 0.05,
        "webhook_retry_max": 0.2,
        "webhook_max_attempts": 3,
        "notify_poll_interval": 0.05,
        "webhook_timeout": 5,
        **more,
    }
    return Settings(**values)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def live(tmp_path: Path, clock: ManualClock) -> Iterator[tuple[str, World]]:
    with live_world(notify_settings(tmp_path / "data"), clock) as pair:
        yield pair


def add_webhook(world: World, who: IdentityKeys, url: str, **body: Any) -> Any:
    return world.client.post(
        "/v1/notifications/webhooks", json={"url": url, **body}, headers=world.headers(who)
    )


def request_access(world: World, clinician: IdentityKeys, patient: PatientKeys) -> str:
    tx = builders.access_request(
        clinician,
        pseudonym=patient.pseudonym,
        rights=["read"],
        categories=["lab-results"],
        reason=REASON,
        issued_at=world.clock(),
    )
    response = world.client.post(
        "/v1/access-requests", json=tx_json(tx), headers=world.headers(clinician)
    )
    assert response.status_code == 201, response.text
    return tx.tx_id


def signing_key(world: World) -> str:
    response = world.client.get("/v1/notifications/signing-key")
    assert response.status_code == 200, response.text
    key: str = response.json()["public_key"]
    return key


def test_an_access_request_reaches_the_patients_webhook_signed(live: tuple[str, World]) -> None:
    _, world = live
    patient = world.register_patient("Jane Doe")
    other = world.register_patient("John Roe")
    dr = world.enroll("dr-who", "clinician")
    bystander = world.enroll("dr-else", "clinician")
    with webhook_receiver(200) as receiver, webhook_receiver(200) as elsewhere:
        response = add_webhook(world, patient.identity, receiver.url)
        assert response.status_code == 201, response.text
        # endpoints of identities the event does not concern hear nothing of it
        for who in (other.identity, bystander):
            assert add_webhook(world, who, elsewhere.url).status_code == 201
        request_id = request_access(world, dr, patient)
        (delivery,) = receiver.wait_for(1)
        time.sleep(0.3)
        assert elsewhere.deliveries() == []
    verify_signature(signing_key(world), delivery)
    # The key is the one the ledger's heads are signed with, published there too.
    head = world.client.get("/v1/ledger/head").json()
    assert head["ledger_public_key"] == signing_key(world)
    payload = delivery.json()
    assert payload["type"] == "access_request"
    assert payload["id"] == delivery.event_id
    assert payload["data"]["request_id"] == request_id
    assert payload["data"]["requester"] == dr.id
    assert payload["data"]["categories"] == ["lab-results"]
    assert payload["data"]["pseudonym"] == patient.pseudonym
    # ids and categories only: the clinician's free-text reason stays on the ledger
    assert "relapse" not in delivery.body.decode()
    assert delivery.headers["content-type"] == "application/json"


def test_a_tampered_delivery_does_not_verify(live: tuple[str, World]) -> None:
    _, world = live
    patient = world.register_patient()
    dr = world.enroll("dr-who", "clinician")
    with webhook_receiver(200) as receiver:
        add_webhook(world, patient.identity, receiver.url)
        request_access(world, dr, patient)
        (delivery,) = receiver.wait_for(1)
    key = signing_key(world)
    # the SDK's receiver-side check agrees with the independent one
    assert verify_webhook(key, delivery.headers, delivery.body)["id"] == delivery.event_id
    edited = Delivery(delivery.headers, delivery.body.replace(b"lab-results", b"lab-resultz"))
    with pytest.raises(WebhookRejected, match="no v1a signature"):
        verify_webhook(key, edited.headers, edited.body)
    with pytest.raises(WebhookRejected, match="too far"):
        verify_webhook(key, delivery.headers, delivery.body, now=time.time() + 3600)
    with pytest.raises(InvalidSignature):
        verify_signature(key, edited)
    other_id = Delivery({**delivery.headers, "webhook-id": "0" * 64}, delivery.body)
    with pytest.raises(InvalidSignature):
        verify_signature(key, other_id)
    other_key = b64encode(IdentityKeys.generate("x", "clinician").public().verify_key.to_bytes())
    with pytest.raises(InvalidSignature):
        verify_signature(other_key, delivery)


def test_failed_deliveries_are_retried_with_the_same_id_and_never_duplicated(
    live: tuple[str, World],
) -> None:
    _, world = live
    patient = world.register_patient()
    dr = world.enroll("dr-who", "clinician")
    with webhook_receiver(500, 503, 200) as receiver:
        add_webhook(world, patient.identity, receiver.url)
        request_access(world, dr, patient)
        first, second, third = receiver.wait_for(3)
        time.sleep(0.6)  # several poll intervals and back-offs: nothing more arrives
        assert len(receiver.deliveries()) == 3
        page = metrics_text(world.client)
    assert 'ehrgate_notification_attempts_total{channel="webhook",outcome="retry"} 2.0' in page
    assert 'ehrgate_notification_attempts_total{channel="webhook",outcome="delivered"} 1.0' in page
    assert first.event_id == second.event_id == third.event_id
    assert first.body == second.body == third.body
    key = signing_key(world)
    for delivery in (first, second, third):
        verify_signature(key, delivery)


def test_a_retry_is_attempted_when_due_not_at_the_next_poll(
    tmp_path: Path, clock: ManualClock
) -> None:
    settings = notify_settings(tmp_path / "data", notify_poll_interval=60.0, webhook_retry_base=0.3)
    with webhook_receiver(500, 200) as receiver, live_world(settings, clock) as (_, world):
        patient = world.register_patient()
        add_webhook(world, patient.identity, receiver.url)
        request_access(world, world.enroll("dr-who", "clinician"), patient)
        first, second = receiver.wait_for(2, timeout=10)
    assert first.event_id == second.event_id


def test_a_delivery_that_always_fails_becomes_a_dead_letter_an_admin_can_retry(
    live: tuple[str, World],
) -> None:
    _, world = live
    patient = world.register_patient()
    dr = world.enroll("dr-who", "clinician")
    with webhook_receiver(500) as receiver:
        add_webhook(world, patient.identity, receiver.url)
        request_access(world, dr, patient)
        receiver.wait_for(3)

        def dead() -> list[dict[str, Any]]:
            answer = world.client.get(
                "/v1/notifications/dead-letters", headers=world.headers(world.admin)
            )
            assert answer.status_code == 200, answer.text
            found: list[dict[str, Any]] = answer.json()["deliveries"]
            return found

        (letter,) = wait_until(lambda: len(dead()) == 1, 10, dead)
        time.sleep(0.4)
        assert len(receiver.deliveries()) == 3  # the limit: 3 attempts, then no more
        assert letter["kind"] == "access_request"
        assert letter["attempts"] == 3
        assert letter["last_error"] == "HTTP 500"
        # only admins see or retry dead letters
        for path, method in (
            ("/v1/notifications/dead-letters", "GET"),
            (f"/v1/notifications/dead-letters/{letter['delivery_id']}/retry", "POST"),
        ):
            answer = world.client.request(method, path, headers=world.headers(patient.identity))
            assert answer.status_code == 403, answer.text
        receiver.set_statuses(200)
        answer = world.client.post(
            f"/v1/notifications/dead-letters/{letter['delivery_id']}/retry",
            headers=world.headers(world.admin),
        )
        assert answer.status_code == 200, answer.text
        fourth = receiver.wait_for(4)[3]
        assert fourth.event_id == letter["event_id"]
        wait_until(lambda: dead() == [], 10, dead)
        missing = world.client.post(
            "/v1/notifications/dead-letters/nope/retry", headers=world.headers(world.admin)
        )
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"


def test_a_restart_mid_queue_loses_nothing(
    tmp_path: Path, clock: ManualClock, database_url: str
) -> None:
    # Long back-off: the second attempt is due only after the first gateway has stopped.
    settings = notify_settings(
        tmp_path / "data",
        database_url=database_url,
        webhook_retry_base=1.0,
        webhook_max_attempts=5,
    )
    with webhook_receiver(500) as receiver:
        with live_world(settings, clock) as (_, world):
            patient = world.register_patient()
            dr = world.enroll("dr-who", "clinician")
            add_webhook(world, patient.identity, receiver.url)
            request_access(world, dr, patient)
            (first,) = receiver.wait_for(1)
        receiver.set_statuses(200)
        time.sleep(1.2)
        assert len(receiver.deliveries()) == 1  # nobody delivers while the gateway is down
        with live_world(settings, clock) as (_, world):
            second = receiver.wait_for(2)[1]
            time.sleep(0.5)
            assert len(receiver.deliveries()) == 2
    assert second.event_id == first.event_id
    assert second.body == first.body


def test_a_delivery_cut_short_by_a_stop_is_attempted_at_once_after_the_restart(
    tmp_path: Path, clock: ManualClock
) -> None:
    # The lease of an attempt is webhook_timeout + 30 s; a stopping gateway gives it up.
    settings = notify_settings(tmp_path / "data", webhook_timeout=20)
    with webhook_receiver(200) as receiver:
        receiver.delays = [3.0]  # the first attempt hangs while the gateway stops
        with live_world(settings, clock) as (_, world):
            patient = world.register_patient()
            add_webhook(world, patient.identity, receiver.url)
            request_access(world, world.enroll("dr-who", "clinician"), patient)
            (first,) = receiver.wait_for(1)
        started = time.monotonic()
        with live_world(settings, clock):
            second = receiver.wait_for(2, timeout=15)[1]
        assert time.monotonic() - started < 15
    assert second.event_id == first.event_id


def test_events_still_in_memory_are_saved_when_the_gateway_stops(
    tmp_path: Path, clock: ManualClock
) -> None:
    """An event emitted but not yet saved when the notifier stops is saved by the stop, and
    a gateway started later delivers it."""
    settings = notify_settings(tmp_path / "data")
    with webhook_receiver(200) as receiver:
        with live_world(settings, clock) as (_, world):
            patient = world.register_patient()
            add_webhook(world, patient.identity, receiver.url)
        backends = open_backends(settings, clock=clock)
        try:
            notifier = Notifier(
                settings,
                ledger=backends.ledger,
                signing_key=backends.signer.signing_key,
                hub=EventHub(),
                clock=clock,
            )
            event = GatewayEvent(
                "erasure_done", "e" * 64, patient.pseudonym, "2030-01-01T12:00:00Z"
            )
            notifier.publish(event)  # not started: the event waits in memory
            assert notifier.store.counts() == {}
            asyncio.run(notifier.stop())
            assert notifier.store.counts() == {"pending": 1}
        finally:
            backends.close()
        assert receiver.deliveries() == []
        with live_world(settings, clock):
            (delivery,) = receiver.wait_for(1)
    assert delivery.event_id == "e" * 64
    assert delivery.json()["type"] == "erasure_done"


def test_every_event_kind_is_delivered_once_per_event_id(
    tmp_path: Path, clock: ManualClock
) -> None:
    settings = notify_settings(tmp_path / "data")
    app = create_app(settings, clock=clock)
    with (
        webhook_receiver(200) as receiver,
        serve_in_thread(app) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        world = World(client, clock, first_admin(settings))
        patient = world.register_patient()
        add_webhook(world, patient.identity, receiver.url)
        hub = app.state.gateway.events
        for n, kind in enumerate(EVENT_KINDS):
            event = GatewayEvent(
                kind, f"{n:064x}", patient.pseudonym, "2030-01-01T12:00:00Z",
                {"record_id": "r1", "categories": ["lab-results"], "reason": "free text"},
            )  # fmt: skip
            hub.emit(event)
            hub.emit(event)  # the same event again: not a new delivery
        found = receiver.wait_for(len(EVENT_KINDS))
        time.sleep(0.4)
        found = receiver.deliveries()
    assert sorted(d.json()["type"] for d in found) == sorted(EVENT_KINDS)
    assert len({d.event_id for d in found}) == len(found) == len(EVENT_KINDS)
    for delivery in found:
        assert "free text" not in delivery.body.decode()
        assert delivery.json()["data"]["categories"] == ["lab-results"]


def test_a_denied_read_is_told_to_the_patient(live: tuple[str, World]) -> None:
    _, world = live
    patient = world.register_patient()
    snoop = world.enroll("dr-snoop", "clinician")
    with webhook_receiver(200) as receiver:
        add_webhook(world, patient.identity, receiver.url, kinds=["denied_read"])
        answer = world.client.get(
            f"/v1/patients/{patient.pseudonym}/records", headers=world.headers(snoop)
        )
        assert answer.status_code == 403
        (delivery,) = receiver.wait_for(1)
    payload = delivery.json()
    assert payload["type"] == "denied_read"
    assert payload["data"]["actor"] == snoop.id
    assert payload["data"]["action"] == "list"
    # the event id is the hash of the denial's entry on the ledger
    audit = world.client.get(
        f"/v1/patients/{patient.pseudonym}/audit", headers=world.headers(patient.identity)
    ).json()["events"]
    denial = next(e for e in audit if e["actor"] == snoop.id)
    page = world.client.get(
        "/v1/ledger/entries",
        params={"start": denial["entry_index"], "limit": 1},
        headers=world.headers(world.admin),
    ).json()
    assert Transaction.from_json(page["entries"][0]["tx"]).tx_hash == delivery.event_id


def test_an_endpoint_gets_only_the_kinds_it_asked_for(live: tuple[str, World]) -> None:
    _, world = live
    patient = world.register_patient()
    dr = world.enroll("dr-who", "clinician")
    with webhook_receiver(200) as receiver:
        add_webhook(world, patient.identity, receiver.url, kinds=["break_glass"])
        request_access(world, dr, patient)
        time.sleep(0.5)
        assert receiver.deliveries() == []


def test_grants_ending_soon_are_announced_once_to_patient_and_grantee(
    tmp_path: Path, clock: ManualClock
) -> None:
    settings = notify_settings(
        tmp_path / "data",
        grant_expiry_scan_interval=0.1,
        grant_expiry_window=timedelta(days=2),
    )
    with (
        webhook_receiver(200) as patient_hook,
        webhook_receiver(200) as clinic_hook,
        live_world(settings, clock) as (_, world),
    ):
        patient = world.register_patient()
        dr = world.enroll("dr-who", "clinician")
        add_webhook(world, patient.identity, patient_hook.url)
        add_webhook(world, dr, clinic_hook.url)
        soon = world.grant(
            patient, dr, ["read"], ["lab-results"], not_after=clock() + timedelta(days=1)
        )
        world.grant(
            patient, dr, ["read"], ["radiation-dose"], not_after=clock() + timedelta(days=30)
        )
        (told,) = patient_hook.wait_for(1)
        (also,) = clinic_hook.wait_for(1)
        time.sleep(0.6)  # several scans: still one event
        assert len(patient_hook.deliveries()) == 1
        assert len(clinic_hook.deliveries()) == 1
        clock.advance(timedelta(days=29))  # now the second grant ends within the window
        patient_hook.wait_for(2)
    assert told.json()["type"] == "grant_expiring"
    assert told.json()["data"]["permission_id"] == soon
    assert told.json()["data"]["categories"] == ["lab-results"]
    assert also.event_id == told.event_id
    assert patient_hook.deliveries()[1].json()["data"]["categories"] == ["radiation-dose"]


# --- bad input -----------------------------------------------------------------------------


def _no_webhooks(world: World, who: IdentityKeys) -> None:
    answer = world.client.get("/v1/notifications/webhooks", headers=world.headers(who))
    assert answer.status_code == 200
    assert answer.json()["webhooks"] == []


def _problem(answer: Any, status: int, words: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert words in answer.json()["detail"], answer.json()


def test_webhook_urls_are_checked(tmp_path: Path, clock: ManualClock) -> None:
    settings = Settings(data_dir=tmp_path / "data", public_url="https://gateway.example.org")
    with live_world(settings, clock) as (url, world):
        patient = world.register_patient()
        who = patient.identity
        _problem(add_webhook(world, who, "http://hooks.example.org/x"), 422, "https://")
        _problem(add_webhook(world, who, "ftp://hooks.example.org/x"), 422, "https://")
        _problem(add_webhook(world, who, "https://127.0.0.1:9/x"), 422, "local address")
        _problem(add_webhook(world, who, "https://localhost/x"), 422, "local address")
        _problem(add_webhook(world, who, url + "/x"), 422, "https://")
        _problem(add_webhook(world, who, "https://gateway.example.org/hook"), 422, "gateway itself")
        _problem(add_webhook(world, who, "https://GATEWAY.example.org:443/"), 422, "gateway itself")
        _problem(add_webhook(world, who, "https://u:p@hooks.example.org/"), 422, "password")
        _problem(add_webhook(world, who, "https:///nohost"), 422, "no host")
        _problem(add_webhook(world, who, "https://[::1/x"), 422, "not a URL")
        _problem(add_webhook(world, who, "https://hooks.example.org:99999/"), 422, "port")
        long_url = "https://hooks.example.org/" + "a" * 2100
        assert add_webhook(world, who, long_url).status_code == 422
        _problem(
            add_webhook(world, who, "https://hooks.example.org/x", kinds=["coffee_ready"]),
            422,
            "unknown event kind",
        )
        _problem(add_webhook(world, who, "https://hooks.example.org/x", kinds=[]), 422, "at least")
        big = world.client.post(
            "/v1/notifications/webhooks",
            content=b'{"url": "https://hooks.example.org/' + b"a" * 2_000_000 + b'"}',
            headers={**world.headers(who), "content-type": "application/json"},
        )
        assert big.status_code == 413, big.text
        _no_webhooks(world, who)
        # a good one is accepted, listed, and removed by its owner only
        good = add_webhook(world, who, "https://hooks.example.org/x", kinds=["denied_read"])
        assert good.status_code == 201, good.text
        endpoint_id = good.json()["endpoint_id"]
        other = world.enroll("dr-who", "clinician")
        gone = world.client.delete(
            f"/v1/notifications/webhooks/{endpoint_id}", headers=world.headers(other)
        )
        _problem(gone, 404, "no webhook")
        listed = world.client.get("/v1/notifications/webhooks", headers=world.headers(who))
        assert [w["endpoint_id"] for w in listed.json()["webhooks"]] == [endpoint_id]
        assert listed.json()["webhooks"][0]["kinds"] == ["denied_read"]
        removed = world.client.delete(
            f"/v1/notifications/webhooks/{endpoint_id}", headers=world.headers(who)
        )
        assert removed.status_code == 200
        assert removed.json() == {"removed": endpoint_id}
        _no_webhooks(world, who)
        unauthenticated = world.client.post(
            "/v1/notifications/webhooks", json={"url": "https://hooks.example.org/x"}
        )
        assert unauthenticated.status_code == 401


def test_a_loopback_webhook_at_the_gateway_itself_is_refused(live: tuple[str, World]) -> None:
    url, world = live
    patient = world.register_patient()
    _problem(add_webhook(world, patient.identity, url + "/v1/healthz"), 422, "gateway itself")
    _no_webhooks(world, patient.identity)


def test_the_number_of_webhooks_is_bounded(tmp_path: Path, clock: ManualClock) -> None:
    settings = Settings(data_dir=tmp_path / "data", webhooks_per_identity=2)
    with live_world(settings, clock) as (_, world):
        patient = world.register_patient()
        for n in range(2):
            answer = add_webhook(world, patient.identity, f"https://hooks.example.org/{n}")
            assert answer.status_code == 201
        _problem(
            add_webhook(world, patient.identity, "https://hooks.example.org/3"), 409, "at most 2"
        )


# --- e-mail --------------------------------------------------------------------------------


def test_an_email_reaches_the_patient_with_ids_only(tmp_path: Path, clock: ManualClock) -> None:
    address = "jane.doe@mail.example.org"
    with smtp_server() as (port, mailbox):
        settings = notify_settings(
            tmp_path / "data",
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_from="gateway@hospital.example.org",
            contact_key=CONTACT_KEY,
        )
        with live_world(settings, clock) as (_, world):
            patient = world.register_patient("Jane Doe")
            dr = world.enroll("dr-who", "clinician")
            answer = world.client.put(
                "/v1/notifications/contact",
                json={"email": address},
                headers=world.headers(patient.identity),
            )
            assert answer.status_code == 200, answer.text
            mine = world.client.get(
                "/v1/notifications/contact", headers=world.headers(patient.identity)
            )
            assert mine.json() == {"email": address}
            request_id = request_access(world, dr, patient)
            (message,) = mailbox.wait_for(1)
            time.sleep(0.3)
            assert len(mailbox.messages) == 1
            bad = world.client.put(
                "/v1/notifications/contact",
                json={"email": "not an address"},
                headers=world.headers(patient.identity),
            )
            _problem(bad, 422, "e-mail address")
    assert mailbox.envelopes[0] == ("gateway@hospital.example.org", [address])
    assert message["To"] == address
    assert "access" in message["Subject"]
    raw = message.get_payload(decode=True)
    assert isinstance(raw, bytes)
    text = raw.decode()
    assert request_id in text
    assert dr.id in text
    assert "lab-results" in text
    assert "relapse" not in text  # the reason is not sent
    assert "Jane" not in text
    # the address is kept encrypted: not in the database file, not in the ledger
    database = (tmp_path / "data" / "ledger.db").read_bytes()
    for suffix in ("", "-wal"):
        path = tmp_path / "data" / f"ledger.db{suffix}"
        if path.exists():
            assert address.encode() not in path.read_bytes()
    assert address.encode() not in database
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'ledger.db'}")
    try:
        with engine.connect() as conn:
            sealed = conn.execute(sa.select(schema.notify_contacts.c.sealed_email)).scalar_one()
    finally:
        engine.dispose()
    assert address.encode() not in sealed
    assert len(sealed) > len(address)


def test_contact_addresses_need_a_configured_key(live: tuple[str, World]) -> None:
    _, world = live
    patient = world.register_patient()
    answer = world.client.put(
        "/v1/notifications/contact",
        json={"email": "jane@mail.example.org"},
        headers=world.headers(patient.identity),
    )
    _problem(answer, 503, "contact_key")
