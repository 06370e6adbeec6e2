"""The records list is read while its `access` entry commits, and sent only once it is durable.

The list's dependency no longer waits for the commit before the route runs (so the query
overlaps with the group commit); these tests prove the list still never leaves unaudited.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any

import pytest

from ledger.errors import LedgerUnavailable
from tests.gateway import scenario
from tests.gateway.helpers import World

UNAVAILABLE = "urn:ehrgate:problem:service-unavailable"


@pytest.fixture
def story(world: World) -> tuple[scenario.Cast, dict[str, Any]]:
    cast = scenario.set_up(world)
    world.grant(cast.patient, cast.doctor, ["read"], ["lab-results"])
    world.grant(cast.patient, cast.system, ["write"], ["lab-results"])
    record = world.ingest_pdf(cast.system, cast.patient, "lab-results", scenario.PDF)
    return cast, record


def test_the_list_is_not_served_when_its_access_entry_does_not_commit(
    world: World, story: tuple[scenario.Cast, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    cast, record = story
    ledger = world.client.app.state.gateway.backends.ledger
    headers = world.headers(cast.doctor)
    real_submit: Callable[..., concurrent.futures.Future[Any]] = ledger.submit_future

    def failing_access(tx: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        if getattr(tx, "type", None) != "access":
            return real_submit(tx, **kwargs)
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        future.set_exception(LedgerUnavailable("the commit failed"))
        return future

    monkeypatch.setattr(ledger, "submit_future", failing_access)
    response = world.client.get(f"/v1/patients/{cast.patient.pseudonym}/records", headers=headers)
    assert response.status_code == 503
    assert response.json()["type"] == UNAVAILABLE
    assert record["record_id"] not in response.text


def test_the_list_waits_for_its_access_entry_and_names_the_records(
    world: World, story: tuple[scenario.Cast, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    cast, record = story
    ledger = world.client.app.state.gateway.backends.ledger
    headers = world.headers(cast.doctor)
    real_submit: Callable[..., concurrent.futures.Future[Any]] = ledger.submit_future
    release = threading.Event()
    held: list[concurrent.futures.Future[Any]] = []

    def held_access(tx: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        inner = real_submit(tx, **kwargs)
        if getattr(tx, "type", None) != "access":
            return inner
        outer: concurrent.futures.Future[Any] = concurrent.futures.Future()
        held.append(outer)

        def pass_on() -> None:
            release.wait(30)
            outer.set_result(inner.result())

        threading.Thread(target=pass_on, daemon=True).start()
        return outer

    monkeypatch.setattr(ledger, "submit_future", held_access)
    answers: list[Any] = []
    reader = threading.Thread(
        target=lambda: answers.append(
            world.client.get(f"/v1/patients/{cast.patient.pseudonym}/records", headers=headers)
        )
    )
    reader.start()
    reader.join(timeout=2)
    assert reader.is_alive(), "the list was answered before its access entry committed"
    assert not answers
    release.set()
    reader.join(timeout=30)
    assert answers[0].status_code == 200
    assert [r["record_id"] for r in answers[0].json()["records"]] == [record["record_id"]]
    assert len(held) == 1
