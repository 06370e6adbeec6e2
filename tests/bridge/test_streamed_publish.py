"""ITI-105 published while the body arrives: any order of data and metadata, and every bad
body found in the middle or only at the end leaves no record (and no bookkeeping: the same
masterIdentifier then publishes)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from tests.bridge.conftest import Http
from tests.bridge.live import LiveBridge
from tests.bridge.samples import document_reference, pdf, sha1
from tests.bridge.test_fhir_bad_input import records
from tests.client.live import Cast

_JSON = {"Content-Type": "application/fhir+json"}


def _post(client: httpx.Client, live: LiveBridge, body: bytes | Iterator[bytes]) -> httpx.Response:
    return client.post(f"{live.fhir}/DocumentReference", content=body, headers=_JSON)


def _pieces(body: bytes, size: int = 16 * 1024) -> Iterator[bytes]:
    """The body sent in chunks (chunked transfer coding: no length announced)."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _data_first(doc: dict[str, Any]) -> dict[str, Any]:
    return {"content": doc["content"]} | {k: v for k, v in doc.items() if k != "content"}


def _retrieved(http: Http, live: LiveBridge, answer: httpx.Response) -> bytes:
    record_id = answer.headers["location"].rsplit("/", 1)[1]
    got = http("doctor").get(
        f"{live.fhir}/Binary/{record_id}", headers={"Accept": "application/pdf"}
    )
    assert got.status_code == 200, got.text
    return got.content


def _refused(answer: httpx.Response, words: str, status: int = 400) -> None:
    assert answer.status_code == status, answer.text
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert words in outcome["issue"][0]["diagnostics"]


def test_data_before_or_after_the_metadata_publishes_the_same(
    live: LiveBridge, cast: Cast, http: Http
) -> None:
    client = http("system")
    for arrange in (lambda d: d, _data_first):
        content = pdf(200 * 1024)
        doc = arrange(document_reference(content))
        before = records(cast)
        answer = _post(client, live, _pieces(json.dumps(doc, indent=1).encode()))
        assert answer.status_code == 201, answer.text
        assert "data" not in answer.json()["content"][0]["attachment"]
        assert _retrieved(http, live, answer) == content
        assert records(cast) == before + 1
        again = _post(client, live, json.dumps(doc).encode())
        assert again.status_code == 200, again.text
        assert records(cast) == before + 1


def test_a_hash_mismatch_found_at_the_end_commits_nothing(
    live: LiveBridge, cast: Cast, http: Http
) -> None:
    client = http("system")
    content = pdf(200 * 1024)
    doc = document_reference(content)
    good = json.dumps(doc).encode()
    doc["content"][0]["attachment"]["hash"] = sha1(b"other bytes")
    bad = json.dumps(doc).encode()
    assert bad.index(b'"hash"') > bad.index(b'"data"')
    before = records(cast)
    _refused(_post(client, live, _pieces(bad)), "attachment.hash")
    assert records(cast) == before
    answer = _post(client, live, _pieces(good))  # the same masterIdentifier, now right
    assert answer.status_code == 201, answer.text
    assert _retrieved(http, live, answer) == content


def test_truncated_bodies_commit_nothing(live: LiveBridge, cast: Cast, http: Http) -> None:
    client = http("system")
    body = json.dumps(document_reference(pdf(100 * 1024))).encode()
    before = records(cast)
    for end, words in (
        (len(body) // 2, "ends inside attachment.data"),
        (len(body) - 3, "not JSON"),
    ):
        _refused(_post(client, live, _pieces(body[:end])), words)
    assert records(cast) == before


def test_oversized_and_not_pdf_are_found_while_streaming(
    live: LiveBridge, cast: Cast, http: Http
) -> None:
    client = http("system")
    before = records(cast)
    large = json.dumps(document_reference(pdf(300 * 1024))).encode()  # the limit is 256 KiB
    _refused(_post(client, live, _pieces(large)), "at most")
    fake = document_reference(b"MZ" + bytes(100 * 1024))
    _refused(_post(client, live, _pieces(json.dumps(fake).encode())), "not a PDF")
    assert records(cast) == before


def test_metadata_after_the_data_is_checked_before_commit(
    live: LiveBridge, cast: Cast, http: Http
) -> None:
    client = http("system")
    content = pdf(64 * 1024)
    doc = document_reference(content)
    text = json.dumps(doc)
    # The same key again after the data: JSON keeps the last, so the patient is another
    # (unlinked) one than the one the upload began for.
    other = {"identifier": {"system": doc["subject"]["identifier"]["system"], "value": "MRN-X"}}
    changed = text[:-1] + ', "subject": ' + json.dumps(other) + "}"
    before = records(cast)
    _refused(_post(client, live, changed.encode()), "link", status=422)
    bad_status = text[:-1] + ', "status": "entered-in-error"}'
    _refused(_post(client, live, bad_status.encode()), "status")
    assert records(cast) == before


def test_a_title_after_the_data_is_sealed_too(live: LiveBridge, cast: Cast, http: Http) -> None:
    content = pdf(64 * 1024)
    doc = document_reference(content)
    attachment = doc["content"][0]["attachment"]
    title = attachment.pop("title")
    attachment["title"] = title  # after data, hash and size
    body = json.dumps(doc).encode()
    assert body.index(b'"title"') > body.index(b'"data"')
    before = records(cast)
    answer = _post(http("system"), live, _pieces(body))
    assert answer.status_code == 201, answer.text
    assert answer.json()["content"][0]["attachment"]["title"] == title
    assert records(cast) == before + 1
    with cast.client(cast.doctor) as doctor:
        record_id = answer.headers["location"].rsplit("/", 1)[1]
        fetched = doctor.fetch_bytes(record_id)
    assert fetched[1] == content
    assert fetched[0].filename == title


def test_escaped_data_and_duplicate_data(live: LiveBridge, cast: Cast, http: Http) -> None:
    client = http("system")
    content = pdf(8 * 1024)
    doc = document_reference(content)
    doc["masterIdentifier"]["value"] = f"urn:uuid:{uuid.uuid4()}"
    escaped = json.dumps(doc).replace("/", "\\/")  # JSON may escape every solidus
    answer = _post(client, live, escaped.encode())
    assert answer.status_code == 201, answer.text
    assert _retrieved(http, live, answer) == content
    data = base64.b64encode(content).decode()
    twice = json.dumps(document_reference(content)).replace(
        '"data": ', '"data": "' + data + '", "data": ', 1
    )
    before = records(cast)
    _refused(_post(client, live, twice.encode()), "more than once")
    assert records(cast) == before


def test_when_staged_uploads_are_all_busy_the_whole_body_is_awaited(
    live: LiveBridge, cast: Cast, http: Http, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slow senders hold at most `STAGED_AT_ONCE` threads; past that a document is
    published once its body is whole (a staging here would fail on the stand-in)."""
    monkeypatch.setattr(
        live.service.publisher, "_staging_threads", SimpleNamespace(available_tokens=0)
    )
    content = pdf(64 * 1024)
    before = records(cast)
    answer = _post(http("system"), live, _pieces(json.dumps(document_reference(content)).encode()))
    assert answer.status_code == 201, answer.text
    assert _retrieved(http, live, answer) == content
    assert records(cast) == before + 1
