"""S3 timestamps are parsed by the standard library, with botocore's meaning."""

from __future__ import annotations

import pytest
from botocore.utils import parse_timestamp

from storage.s3 import _parse_timestamp


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-30T04:00:00.000Z",  # XML bodies (ListObjectsV2, multipart listings)
        "2026-11-30T04:00:00.123456+00:00",
        "Mon, 30 Nov 2026 04:00:00 GMT",  # headers (GetObject, HeadObject)
        "1700000000",  # epoch seconds: left to botocore
    ],
)
def test_a_timestamp_means_what_botocore_makes_of_it(value: str) -> None:
    ours, theirs = _parse_timestamp(value), parse_timestamp(value)
    assert ours == theirs
    assert ours.utcoffset() == theirs.utcoffset()


def test_a_timestamp_that_is_not_one_is_refused() -> None:
    with pytest.raises(ValueError):
        _parse_timestamp("yesterday-ish")
