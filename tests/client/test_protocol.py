"""The SDK checks tree heads and reads transactions with the one protocol layer,
`ledger.wire`; its proof checks are pinned by tests/ledger/test_merkle.py."""

from __future__ import annotations

import json

import pytest

from ehrgate.errors import VerificationFailed
from ehrgate.models import Record, TreeHead
from ehrgate.verification import check_tree_head, record_transaction
from envelope import IdentityKeys, SigningKey
from ledger.wire.blocks import Block
from tests.client.samples import T1, record_tx
from tests.public_surface import modules_loaded_by

UPLOADER = IdentityKeys.generate("hospital", "system")


def _signed_head(key: SigningKey, tree_size: int = 9) -> TreeHead:
    block = Block.signed(
        key, height=3, previous_hash=bytes(32), tree_size=tree_size, root=bytes(32), timestamp=T1
    )
    return TreeHead.from_json(block.to_json())


def test_a_tree_head_signed_by_the_trusted_key_is_believed() -> None:
    key = SigningKey.generate()
    check_tree_head(_signed_head(key), key.verify_key)


def test_a_tree_head_with_a_changed_field_is_refused() -> None:
    key = SigningKey.generate()
    head = _signed_head(key)
    changed = TreeHead.from_json({**head.to_json(), "tree_size": 10})
    with pytest.raises(VerificationFailed, match="not signed by the trusted ledger key"):
        check_tree_head(changed, key.verify_key)


def test_a_tree_head_signed_by_another_key_is_refused() -> None:
    head = _signed_head(SigningKey.generate())
    with pytest.raises(VerificationFailed, match="not signed by the trusted ledger key"):
        check_tree_head(head, SigningKey.generate().verify_key)


def test_a_tree_head_with_a_garbled_signature_is_refused() -> None:
    key = SigningKey.generate()
    garbled = TreeHead.from_json({**_signed_head(key).to_json(), "signature": "AAAA"})
    with pytest.raises(VerificationFailed, match="not signed by the trusted ledger key"):
        check_tree_head(garbled, key.verify_key)


def _record_tx() -> dict[str, object]:
    data: dict[str, object] = json.loads(json.dumps(record_tx(UPLOADER).to_json()))
    return data


def _record_of(data: dict[str, object]) -> Record:
    body = data["body"]
    assert isinstance(body, dict)
    return Record.from_json({**body, "uploader": data["signer"], "entry_index": 5})


def test_a_record_transaction_that_matches_its_record_is_read() -> None:
    data = _record_tx()
    tx = record_transaction(data, _record_of(data))
    assert tx.to_json() == data


def test_a_malformed_record_transaction_is_refused_with_the_reason() -> None:
    data = _record_tx()
    record = _record_of(data)
    with pytest.raises(VerificationFailed, match=r"malformed: .*unknown fields extra"):
        record_transaction({**data, "extra": 1}, record)
    with pytest.raises(VerificationFailed, match=r"malformed: .*signature"):
        record_transaction({**data, "signature": "AAAA"}, record)


def test_the_sdk_loads_of_the_ledger_only_its_protocol_layer() -> None:
    loaded = modules_loaded_by(
        "import ehrgate.client, ehrgate.models, ehrgate.verification, ehrgate.errors",
        ("ledger", "gateway", "storage", "sqlalchemy"),
    )
    assert loaded, "the probe saw nothing"
    assert all(
        name in ("ledger", "ledger.errors") or name.startswith("ledger.wire") for name in loaded
    ), loaded
