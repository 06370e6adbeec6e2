"""Parsers fed arbitrary bytes fail only with InvalidEnvelope, never with anything else."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from hypothesis import given, settings, strategies as st

from envelope import (
    HybridPrivateKey,
    InvalidEnvelope,
    canonical_json,
    open_capsule,
    open_key_share,
)
from envelope.body import HEADER_LEN, BodyOpener, DataKey, encode_header
from envelope.keyshare import KEY_SHARE_LEN

KEY = HybridPrivateKey(hashlib.sha512(b"fuzz").digest()[:64] + bytes(32))
DEK = DataKey(bytes(32))
PSEUDONYM = "a" * 64

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


def refuses_capsule(capsule: bytes) -> None:
    try:
        open_capsule(capsule, KEY, "dr-house")
    except InvalidEnvelope:
        return
    raise AssertionError("a random capsule opened")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4000))
def test_random_capsule_bytes(capsule: bytes) -> None:
    refuses_capsule(capsule)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_random_json_capsules(value: object) -> None:
    refuses_capsule(json.dumps(value).encode())


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {"id": st.text(max_size=12), "wrapped_key": st.binary(max_size=1200)}
        ),
        max_size=3,
    ),
    st.binary(max_size=200),
    st.binary(max_size=40),
)
def test_capsule_shaped_garbage(entries: list[dict[str, Any]], meta: bytes, mac: bytes) -> None:
    document = {
        "format": "ehrgate-capsule",
        "version": 1,
        "recipients": [
            {"id": entry["id"], "wrapped_key": base64.b64encode(entry["wrapped_key"]).decode()}
            for entry in entries
        ]
        + [{"id": "dr-house", "wrapped_key": base64.b64encode(bytes(1168)).decode()}],
        "meta": base64.b64encode(meta).decode(),
        "mac": base64.b64encode(mac).decode(),
    }
    refuses_capsule(canonical_json(document))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=KEY_SHARE_LEN + 10))
def test_random_key_shares(share: bytes) -> None:
    try:
        open_key_share(share, KEY, pseudonym=PSEUDONYM, grantee_id="dr-house")
    except InvalidEnvelope:
        return
    raise AssertionError("a random key share opened")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), st.booleans())
def test_random_bodies(tail: bytes, with_header: bool) -> None:
    body = (encode_header(bytes(16)) + tail) if with_header else tail
    opener = BodyOpener(DEK)
    try:
        opener.update(body)
        opener.finalize()
    except InvalidEnvelope:
        return
    raise AssertionError(f"a random body of {len(body)} bytes (header {HEADER_LEN}) opened")
