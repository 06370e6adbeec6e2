"""Who may erase, what a patient-wide erasure does, the `erasure_done` event, and an
erasure while a store is down (finished later by `ehrgate gc`), on a live gateway."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from ehrgate.cli import cli
from ehrgate.errors import Denied, RecordErased, RuleViolation, UsageError
from envelope import PatientKeys, write_key_file
from gateway import Settings, create_app
from gateway.bootstrap import ensure_first_start
from gateway.events import GatewayEvent
from ledger.wire import builders
from ledger.wire.problems import RECORD_ERASED
from storage import open_store
from tests.client.live import TEST_SETTINGS, Cast, build_cast, new_patient
from tests.faults.proxy import Blackhole, FaultProxy
from tests.gateway.conftest import first_admin
from tests.gateway.helpers import login
from tests.gateway.live import serve_in_thread
from tests.seaweedfs import SeaweedFS


@dataclass
class Sink:
    events: list[GatewayEvent] = field(default_factory=list)

    def publish(self, event: GatewayEvent) -> None:
        self.events.append(event)


@dataclass
class Live:
    cast: Cast
    settings: Settings
    sink: Sink

    def rows(self, sql: str, **params: Any) -> list[Any]:
        engine = sa.create_engine(self.settings.resolved_database_url)
        try:
            with engine.connect() as conn:
                return list(conn.execute(sa.text(sql), params))
        finally:
            engine.dispose()


def _serve(stack: ExitStack, tmp_path: Path, **values: Any) -> Live:
    settings = Settings(data_dir=tmp_path / "gateway", **{**TEST_SETTINGS, **values})
    ensure_first_start(settings)
    app = create_app(settings)
    sink = Sink()
    app.state.gateway.events.subscribe(sink)
    url = stack.enter_context(serve_in_thread(app))
    cast = build_cast(url, settings.data_dir, first_admin(settings), tmp_path / "keys")
    return Live(cast, settings, sink)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    with ExitStack() as stack:
        yield _serve(stack, tmp_path)


def _upload(cast: Cast, text: bytes, pseudonym: str | None = None) -> str:
    with cast.client(cast.system) as system:
        done = system.upload(io.BytesIO(text), pseudonym=pseudonym or cast.pseudonym,
                             category="lab-results", filename="lab.pdf")  # fmt: skip
    return done.record.record_id


def _other_patient(cast: Cast) -> PatientKeys:
    other = new_patient("Bo Lind")
    with cast.client(other) as client:
        client.register_patient()
    return other


def _still_there(live: Live, record_id: str) -> None:
    """The record is untouched: the doctor reads it, its capsule row is stored."""
    with live.cast.client(live.cast.doctor) as doctor:
        assert doctor.fetch_bytes(record_id)[1].startswith(b"%PDF")
    assert live.rows("SELECT count(*) FROM state_erasures") == [(0,)]


def test_who_may_erase(live: Live) -> None:
    cast = live.cast
    record_id = _upload(cast, b"%PDF-1.4 to be erased by the right people only")
    # Another patient, with its own valid key, may not erase this patient's record.
    other = _other_patient(cast)
    with cast.client(other) as client, pytest.raises(Denied) as caught:
        client.erase(record_id, pseudonym=cast.pseudonym)
    assert caught.value.code == "not-owner"
    # A clinician is refused, with or without a reason (only an admin may give one).
    with cast.client(cast.doctor) as doctor, pytest.raises(Denied) as caught:
        doctor.erase(record_id, pseudonym=cast.pseudonym, reason="the patient asked me")
    assert caught.value.code == "not-owner"
    # An admin without a reason is refused with words saying what to give.
    with cast.client(cast.admin) as admin:
        with pytest.raises(RuleViolation, match="legal reason") as no_reason:
            admin.erase(record_id, pseudonym=cast.pseudonym)
        assert no_reason.value.code == "reason-required"
        with pytest.raises(UsageError, match="non-blank"):
            admin.erase(record_id, pseudonym=cast.pseudonym, reason="   ")
    _still_there(live, record_id)
    assert live.sink.events == []
    # The refused attempts are on the ledger, in the patient's audit.
    with cast.client(cast.patient) as patient:
        refused = [e for e in patient.audit() if e.action == "erase"]
    assert {e.actor for e in refused} == {other.identity.id, cast.doctor.id}
    assert all(e.decision == "denied" for e in refused)

    # An admin with the legal reason erases it; the reason is on the ledger.
    reason = "court order 2026-118, GDPR art. 17"
    with cast.client(cast.admin) as admin:
        erased = admin.erase(record_id, pseudonym=cast.pseudonym, reason=reason)
        tx = next(admin.ledger_entries(erased.receipt.index))["tx"]
    assert erased.record_ids == (record_id,)
    assert tx["type"] == "erase"
    assert (tx["signer"], tx["body"]["reason"]) == (cast.admin.id, reason)
    [event] = live.sink.events
    assert (event.kind, event.event_id, event.pseudonym) == (
        "erasure_done", erased.receipt.tx_hash, cast.pseudonym)  # fmt: skip
    assert event.details["record_ids"] == [record_id]
    assert event.details["complete"] == "yes"


def test_a_route_takes_only_the_erase_it_names(live: Live) -> None:
    cast = live.cast
    first, second = _upload(cast, b"%PDF-1.4 one"), _upload(cast, b"%PDF-1.4 two")
    tx = builders.erase(cast.patient.identity, pseudonym=cast.pseudonym, record_id=second)
    with httpx.Client(base_url=cast.url, timeout=30) as http:
        headers = {"Authorization": f"Bearer {login(http, cast.patient.identity)}"}
        answer = http.post(f"/v1/records/{first}/erase", json=tx.to_json(), headers=headers)
        assert answer.status_code == 422, answer.text
        assert "another record" in answer.json()["detail"]
        answer = http.post(f"/v1/patients/{cast.pseudonym}/erase", json=tx.to_json(),
                           headers=headers)  # fmt: skip
        assert answer.status_code == 422, answer.text
    assert live.rows("SELECT count(*) FROM state_erasures") == [(0,)]


def test_the_right_to_be_forgotten_erases_every_record_and_withholds_key_shares(
    live: Live,
) -> None:
    cast = live.cast
    ids = {_upload(cast, f"%PDF-1.4 record {n}".encode()) for n in range(3)}
    other = _other_patient(cast)
    with cast.client(other) as client:
        client.grant(cast.system.id, rights=["write"], categories="all",
                     not_after=datetime.now(UTC) + timedelta(days=1))  # fmt: skip
    others = _upload(cast, b"%PDF-1.4 another patient's", pseudonym=other.pseudonym)
    # From the command line: --all, as the patient.
    result = CliRunner().invoke(
        cli, ["--gateway", cast.url, "--as", str(cast.key_file("patient")), "erase", "--all"]
    )
    assert result.exit_code == 0, result.output
    assert f"erased 3 record(s) of {cast.pseudonym}" in result.output
    erased = {r for (r,) in live.rows("SELECT record_id FROM state_erasures")}
    assert erased == ids
    assert live.rows("SELECT scope FROM state_erasures GROUP BY scope") == [("patient",)]
    with cast.client(cast.doctor) as doctor:
        assert doctor.records(cast.pseudonym) == []
        for record_id in ids:
            with pytest.raises(RecordErased):
                doctor.record(record_id)
    with httpx.Client(base_url=cast.url, timeout=30) as http:
        headers = {"Authorization": f"Bearer {login(http, cast.doctor)}"}
        answer = http.get(f"/v1/patients/{cast.pseudonym}/key-share", headers=headers)
        assert answer.status_code == 410, answer.text
        assert answer.json()["type"] == RECORD_ERASED.uri
    # The other patient's record is untouched.
    assert live.rows("SELECT count(*) FROM state_erasures WHERE record_id = :r", r=others) == [(0,)]
    [event] = live.sink.events
    assert event.details["scope"] == "patient"
    assert sorted(event.details["record_ids"]) == sorted(ids)
    # Nothing is left to erase: the command says so and exits 2.
    again = CliRunner().invoke(
        cli, ["--gateway", cast.url, "--as", str(cast.key_file("patient")), "erase", "--all"]
    )
    assert again.exit_code == 2, again.output
    assert "already erased" in again.output


def test_the_command_needs_one_record_or_all(live: Live) -> None:
    cast = live.cast
    for args in ([], ["abc", "--all"]):
        result = CliRunner().invoke(
            cli, ["--gateway", cast.url, "--as", str(cast.key_file("patient")), "erase", *args]
        )
        assert result.exit_code == 2, result.output
        assert "RECORD_ID" in result.output


@pytest.mark.seaweedfs
def test_an_erasure_while_a_store_is_down_is_recorded_and_gc_finishes_it(
    tmp_path: Path, seaweedfs: SeaweedFS, seaweedfs_bucket: str
) -> None:
    endpoint = urlsplit(seaweedfs.endpoint_url)
    assert endpoint.hostname == "127.0.0.1"
    assert endpoint.port is not None
    with ExitStack() as stack:
        proxy = stack.enter_context(FaultProxy(("127.0.0.1", endpoint.port)))
        weed = seaweedfs.store_url(seaweedfs_bucket, name="weed", read_timeout="1",
                                   connect_timeout="1", max_attempts="1")  # fmt: skip
        weed = weed.replace(seaweedfs.endpoint_url, proxy.url)
        local = f"file://{tmp_path / 'blobs'}?name=disk"
        live = _serve(stack, tmp_path, store_urls=[local, weed], write_quorum=2)
        cast = live.cast
        record_id = _upload(cast, b"%PDF-1.4 erased while S3 is down")
        [(body_sha, capsule_sha)] = live.rows(
            "SELECT body_sha256, capsule_sha256 FROM state_records WHERE record_id = :r",
            r=record_id,
        )

        proxy.fault = Blackhole()
        with cast.client(cast.patient) as patient:
            erased = patient.erase(record_id)
        # The act is on the ledger and the reachable copies are gone; the rest is named.
        assert erased.record_ids == (record_id,)
        assert not erased.complete
        pending = {p.locator for p in erased.pending}
        assert pending
        assert all(loc.startswith("s3://weed/") for loc in pending)
        assert live.rows("SELECT count(*) FROM ledger_capsules WHERE sha256 = :s",
                         s=capsule_sha) == [(0,)]  # fmt: skip
        with cast.client(cast.doctor) as doctor, pytest.raises(RecordErased):
            doctor.fetch_bytes(record_id)
        assert live.sink.events[-1].details["complete"] == "no"

        proxy.fault = None
        direct = open_store(seaweedfs.store_url(seaweedfs_bucket, name="weed"))
        try:
            assert {body_sha, capsule_sha} <= {i.sha256 for i in direct.list()}
            url = live.settings.resolved_database_url
            result = CliRunner().invoke(
                cli, ["gc", "--db", url, "--store", local, "--store", weed, "--grace", "1h"]
            )
            assert result.exit_code == 0, result.output
            assert not {body_sha, capsule_sha} & {i.sha256 for i in direct.list()}
        finally:
            direct.close()


def test_a_patient_key_file_erases_from_the_command_line_with_json(
    live: Live, tmp_path: Path
) -> None:
    cast = live.cast
    record_id = _upload(cast, b"%PDF-1.4 erased from the command line")
    key = tmp_path / "p.key"
    write_key_file(key, cast.patient)
    result = CliRunner().invoke(
        cli, ["--gateway", cast.url, "--as", str(key), "erase", record_id, "--json"]
    )
    assert result.exit_code == 0, result.output
    assert f'"{record_id}"' in result.output
    assert '"complete": true' in result.output
