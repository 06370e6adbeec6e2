"""Garbage collection details beyond the conformance suite."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage import BlobInfo, collect_garbage
from storage.local import LocalStore


class StaleListing(LocalStore):
    """A store whose listing is older than the truth, as when an equal body is uploaded
    again between the collector's listing and its removal."""

    def list(self) -> Iterator[BlobInfo]:
        for info in super().list():
            yield dataclasses.replace(info, modified=datetime(2000, 1, 1, tzinfo=UTC))


def test_a_body_written_again_since_the_listing_is_kept(tmp_path: Path) -> None:
    store = StaleListing(tmp_path, name="disk")
    blob = store.put(io.BytesIO(b"re-uploaded while the collector ran"))
    report = collect_garbage(store, set(), grace=timedelta(hours=1))
    assert report.deleted == ()
    assert report.kept_young == 1
    assert [info.sha256 for info in store.list()] == [blob.sha256]


def test_stale_partial_uploads_are_swept(tmp_path: Path) -> None:
    store = LocalStore(tmp_path, name="disk")
    store.check()
    leftover = tmp_path / "incoming" / "put-crashed"
    leftover.write_bytes(b"half a body")
    collect_garbage(store, set(), grace=timedelta(hours=1))
    assert leftover.exists()
    collect_garbage(store, set(), grace=timedelta(hours=1), now=datetime.now(UTC) + timedelta(1))
    assert not leftover.exists()


def test_negative_grace_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="grace"):
        collect_garbage(LocalStore(tmp_path), set(), grace=timedelta(seconds=-1))
