"""The SDK opens a record in one audited request, and falls back to the old routes on a
gateway that has no open route; it checks the same things either way."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from ehrgate import Client, NoQuorum, NotFound, SplitView, VerificationFailed, WitnessPolicy
from ehrgate.trust import LedgerPins
from ledger.wire.cosignatures import Cosigner
from tests.client.live import Cast
from tests.client.test_tamper import LARGE, flip
from tests.client.witnessed import witnessed_cast

Answer = Callable[[httpx.Request], httpx.Response | None]


class Recording(httpx.BaseTransport):
    """Forwards to the real gateway and records each request's path; *answer* may answer
    a request itself (an older gateway) and *rewrite* may change a real answer's body."""

    def __init__(
        self,
        answer: Answer | None = None,
        rewrite: Callable[[httpx.Request, bytes], bytes | None] | None = None,
    ) -> None:
        self._real = httpx.HTTPTransport()
        self._answer = answer
        self._rewrite = rewrite
        self.paths: list[str] = []
        self.queries: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        self.queries.append(request.url.query.decode())
        if self._answer is not None and (own := self._answer(request)) is not None:
            return own
        response = self._real.handle_request(request)
        if self._rewrite is None:
            return response
        response.read()
        replaced = self._rewrite(request, response.content)
        if replaced is None:
            return response
        headers = [
            (name, value)
            for name, value in response.headers.multi_items()
            if name.lower() not in ("content-length", "content-encoding", "transfer-encoding")
        ]
        return httpx.Response(response.status_code, headers=headers, content=replaced)

    def close(self) -> None:
        self._real.close()

    def reads_of(self, record_id: str) -> list[str]:
        """The paths asked about *record_id* or its patient's key share, in order."""
        return [p for p in self.paths if record_id in p or p.endswith("/key-share")]


def older_gateway(request: httpx.Request) -> httpx.Response | None:
    """What a gateway from before the open route answers for it."""
    if request.url.path.endswith(("/open", "/open/body")):
        return httpx.Response(
            404,
            json={
                "type": "urn:ehrgate:problem:not-found",
                "title": "Not found",
                "status": 404,
                "detail": f"there is no resource at {request.url.path}",
            },
            headers={"Content-Type": "application/problem+json"},
        )
    return None


@pytest.fixture(scope="module")
def record_id(cast: Cast) -> str:
    with cast.client(cast.system) as system:
        return system.upload(
            io.BytesIO(LARGE), pseudonym=cast.pseudonym, category="lab-results", filename="r.pdf"
        ).record.record_id


def entries_of(cast: Cast, record_id: str) -> list[tuple[str, str, int]]:
    with cast.client(cast.patient) as patient:
        return [
            (e.action, e.decision, e.entry_index)
            for e in patient.audit()
            if e.actor == cast.doctor.id and e.record_id == record_id
        ]


def test_a_fetch_is_one_request_and_one_access_entry(cast: Cast, record_id: str) -> None:
    before = entries_of(cast, record_id)
    transport = Recording()
    with cast.client(cast.doctor, transport=transport) as doctor:
        fetched, plaintext = doctor.fetch_bytes(record_id)
    assert plaintext == LARGE
    assert transport.reads_of(record_id) == [
        f"/v1/records/{record_id}/open",
        f"/v1/records/{record_id}/open/body",
    ], "the key share came with the open; no capsule or record request"
    new = entries_of(cast, record_id)[len(before) :]
    assert new == [("body", "allowed", fetched.access_entry)]


def test_a_gateway_without_the_open_route_is_read_through_the_old_routes(
    cast: Cast, record_id: str, tmp_path: Path
) -> None:
    before = entries_of(cast, record_id)
    transport = Recording(answer=older_gateway)
    with cast.client(cast.doctor, transport=transport) as doctor:
        fetched = doctor.fetch(record_id, tmp_path / "out.pdf")
        assert fetched.path.read_bytes() == LARGE
        assert fetched.access_entry is None
        assert transport.reads_of(record_id) == [
            f"/v1/records/{record_id}/open",
            f"/v1/records/{record_id}",
            f"/v1/patients/{cast.pseudonym}/key-share",
            f"/v1/records/{record_id}/capsule",
            f"/v1/records/{record_id}/body",
        ]
        # the route is not asked for again
        transport.paths.clear()
        doctor.fetch_bytes(record_id)
        assert transport.reads_of(record_id) == [
            f"/v1/records/{record_id}",
            f"/v1/records/{record_id}/capsule",
            f"/v1/records/{record_id}/body",
        ]
    actions = sorted(action for action, _, _ in entries_of(cast, record_id)[len(before) :])
    assert actions == ["body", "body", "capsule", "capsule", "record", "record"]


def test_an_unknown_record_is_not_found_by_either_path(cast: Cast) -> None:
    for transport, older in ((Recording(), False), (Recording(answer=older_gateway), True)):
        with cast.client(cast.doctor, transport=transport) as doctor:
            with pytest.raises(NotFound, match="no record no-such-record"):
                doctor.fetch_bytes("no-such-record")
            # an unknown record does not make the client believe the route is missing
            assert doctor._fetcher._no_open_route is older


def _old_and_changed(path_suffix: str, change: Callable[[bytes], bytes]) -> Recording:
    def rewrite(request: httpx.Request, content: bytes) -> bytes | None:
        return change(content) if request.url.path.endswith(path_suffix) else None

    return Recording(answer=older_gateway, rewrite=rewrite)


@pytest.mark.parametrize(
    ("suffix", "change", "match"),
    [
        ("/capsule", lambda capsule: flip(capsule, 40), "capsule"),
        ("/body", lambda body: flip(body, len(body) // 2), "segment"),
        ("/body", lambda body: body[:-100], "SHA-256 or size"),
    ],
)
def test_the_old_routes_are_checked_as_before(
    cast: Cast,
    record_id: str,
    tmp_path: Path,
    suffix: str,
    change: Callable[[bytes], bytes],
    match: str,
) -> None:
    with (
        cast.client(cast.doctor, transport=_old_and_changed(suffix, change)) as doctor,
        pytest.raises(VerificationFailed, match=match),
    ):
        doctor.fetch(record_id, tmp_path / "out.pdf")
    assert list(tmp_path.iterdir()) == []


def _open_json(change: Callable[[dict[str, object]], None]) -> Recording:
    def rewrite(request: httpx.Request, content: bytes) -> bytes | None:
        if not request.url.path.endswith("/open"):
            return None
        document = json.loads(content)
        change(document)
        return json.dumps(document).encode()

    return Recording(rewrite=rewrite)


def test_an_open_answer_naming_another_record_is_refused(cast: Cast, record_id: str) -> None:
    def other(document: dict[str, object]) -> None:
        record = document["record"]
        assert isinstance(record, dict)
        record["record_id"] = "someone-else"

    with (
        cast.client(cast.doctor, transport=_open_json(other)) as doctor,
        pytest.raises(VerificationFailed, match="asked for record"),
    ):
        doctor.fetch_bytes(record_id)


def test_a_body_hash_differing_from_the_open_is_refused(cast: Cast, record_id: str) -> None:
    """The body read with the ticket is held to the ledger's hash like any other."""

    def rewrite(request: httpx.Request, content: bytes) -> bytes | None:
        return content + b"\x00" if request.url.path.endswith("/open/body") else None

    with (
        cast.client(cast.doctor, transport=Recording(rewrite=rewrite)) as doctor,
        pytest.raises(VerificationFailed, match="longer"),
    ):
        doctor.fetch_bytes(record_id)


def test_a_patient_opens_its_own_record_without_a_share(cast: Cast, record_id: str) -> None:
    transport = Recording()
    with cast.client(cast.patient, transport=transport) as patient:
        _, plaintext = patient.fetch_bytes(record_id)
    assert plaintext == LARGE
    assert not any(p.endswith("/key-share") for p in transport.paths)


# --- with witnesses ----------------------------------------------------------------------

ORIGIN = "open.example/ehrgate"


@pytest.fixture(scope="module")
def witnessed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cast, str]]:
    """A gateway whose checkpoints one real witness cosigns, and the witness's vkey."""
    root = tmp_path_factory.mktemp("witnessed")
    with witnessed_cast(root, ORIGIN, "witness.open.example") as found:
        yield found


def test_a_witness_policy_is_checked_on_an_open(witnessed: tuple[Cast, str]) -> None:
    cast, vkey = witnessed
    with cast.client(cast.system) as system:
        uploaded = system.upload(
            io.BytesIO(b"%PDF-1.4 witnessed"), pseudonym=cast.pseudonym, category="lab-results"
        )
    record_id = uploaded.record.record_id
    transport = Recording()
    policy = WitnessPolicy.of([vkey], 1, wait_seconds=10)
    client = Client(
        cast.url, cast.doctor, pins=LedgerPins(), witness_policy=policy, transport=transport
    )
    with client as doctor:
        _, plaintext = doctor.fetch_bytes(record_id)
    assert plaintext == b"%PDF-1.4 witnessed"
    opened = transport.paths.index(f"/v1/records/{record_id}/open")
    assert transport.queries[opened] == "cosignatures=1"
    # a policy the gateway's witnesses cannot meet is refused, as before
    stranger = Cosigner.generate("witness.stranger.example").verifier.vkey()
    unmet = WitnessPolicy.of([stranger], 1, wait_seconds=0.2)
    with (
        Client(cast.url, cast.doctor, pins=LedgerPins(), witness_policy=unmet) as doctor,
        pytest.raises(NoQuorum),
    ):
        doctor.fetch_bytes(record_id)


def test_the_open_carries_the_consistency_proof(cast: Cast, record_id: str) -> None:
    transport = Recording()
    with cast.client(cast.doctor, pins=LedgerPins(), transport=transport) as doctor:
        doctor.fetch_bytes(record_id)  # pins a head
        transport.paths.clear()
        transport.queries.clear()
        doctor.fetch_bytes(record_id)  # its own access entry grew the log since
    assert "/v1/ledger/consistency" not in transport.paths
    opened = transport.paths.index(f"/v1/records/{record_id}/open")
    assert transport.queries[opened].startswith("known_size=")


def test_a_wrong_consistency_proof_in_an_open_is_a_split_view(cast: Cast, record_id: str) -> None:
    pins = LedgerPins()
    with cast.client(cast.doctor, pins=pins) as doctor:
        doctor.fetch_bytes(record_id)
    # another reader's open is on the log before the next open starts, so that open's tree
    # head is past the pinned one whichever way its own entry's commit races its read
    with cast.client(cast.doctor, pins=LedgerPins()) as other:
        other.fetch_bytes(record_id)

    def corrupt(document: dict[str, object]) -> None:
        consistency = document["consistency"]
        assert isinstance(consistency, dict), "the open carried no proof"
        first = consistency["proof"][0]
        consistency["proof"][0] = ("1" if first[0] == "0" else "0") + first[1:]

    with (
        cast.client(cast.doctor, pins=pins, transport=_open_json(corrupt)) as doctor,
        pytest.raises(SplitView),
    ):
        doctor.fetch_bytes(record_id)
