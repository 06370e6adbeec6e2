"""Signed ledger transactions: the `{type, body, signer, signature}` object and its JSON.

The signature is Ed25519 by the signer's identity key over the RFC 8785 canonical JSON of
``{"type", "body", "signer"}``. The Merkle leaf is the canonical JSON of the whole signed
object (signature as standard base64), so the log commits to the signature too.
"""

from __future__ import annotations

import json
from typing import Any

from envelope import EnvelopeError, InvalidSignature, VerifyKey, b64decode, b64encode
from ledger.errors import MalformedTransaction
from ledger.wire.encoding import canonical, parse_canonical
from ledger.wire.ids import ID_PATTERN
from ledger.wire.merkle import leaf_hash

TX_TYPES = (
    "genesis",
    "enroll",
    "suspend",
    "register_patient",
    "grant",
    "revoke",
    "key_share",
    "record",
    "access",
    "access_request",
    "rekey",
    "publish_keys",
    "erase",
    "reinstate",
    "rotate_keys",
    "answer_request",
    "break_glass_policy",
    "break_glass",
    "break_glass_review",
    "study_export",
)

_MAX_TX_BYTES = 256 * 1024


class Transaction:
    """One signed transaction. Treat it as immutable; build it with `ledger.wire.builders`."""

    __slots__ = ("_verified_key", "body", "encoded", "leaf_hash", "signature", "signer", "type")

    def __init__(self, type: str, body: dict[str, Any], signer: str, signature: bytes) -> None:
        self.type = type
        self.body = body
        self.signer = signer
        self.signature = signature
        self.encoded = canonical(self.to_json())
        self.leaf_hash = leaf_hash(self.encoded)
        self._verified_key: bytes | None = None

    @property
    def tx_id(self) -> str:
        return str(self.body["tx_id"])

    @property
    def tx_hash(self) -> str:
        """The RFC 9162 leaf hash of this transaction, as hex: its name on the log."""
        return self.leaf_hash.hex()

    def signed_payload(self) -> dict[str, Any]:
        return {"type": self.type, "body": self.body, "signer": self.signer}

    def signed_bytes(self) -> bytes:
        """The canonical JSON of the signed payload, cut out of the encoded transaction.

        The encoded form is ``{"body":…,"signature":"…","signer":…,"type":…}`` (keys
        sorted); the payload is the same text without the signature member. Its last
        occurrence is the top-level one: later members are strings, whose quotes are
        escaped. Equal to canonical(self.signed_payload()), without re-encoding the body.
        """
        marker = b',"signature":"'
        start = self.encoded.rfind(marker)
        end = self.encoded.index(b'"', start + len(marker)) + 1
        return self.encoded[:start] + self.encoded[end:]

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "body": self.body,
            "signer": self.signer,
            "signature": b64encode(self.signature),
        }

    @classmethod
    def _from_canonical(
        cls, type: str, body: dict[str, Any], signer: str, signature: bytes, encoded: bytes
    ) -> Transaction:
        """A transaction whose canonical bytes are known already: not encoded again."""
        tx = cls.__new__(cls)
        tx.type, tx.body, tx.signer, tx.signature = type, body, signer, signature
        tx.encoded = encoded
        tx.leaf_hash = leaf_hash(encoded)
        tx._verified_key = None
        return tx

    @classmethod
    def from_json(cls, data: Any) -> Transaction:
        """Check the envelope of a transaction (not its rules) and build it."""
        tx = cls(*_envelope(data))
        if len(tx.encoded) > _MAX_TX_BYTES:
            raise MalformedTransaction(f"a transaction may be at most {_MAX_TX_BYTES} bytes")
        return tx

    @classmethod
    def from_bytes(cls, encoded: bytes) -> Transaction:
        """Parse a transaction that must be in canonical JSON form (as signed and logged).

        Canonical bytes are checked by parsing and re-encoding them once with orjson
        (`parse_canonical`); anything that path does not accept goes through the reference
        encoder, which accepts or refuses exactly as before.
        """
        data = parse_canonical(encoded) if len(encoded) <= _MAX_TX_BYTES else None
        if data is not None:
            return cls._from_canonical(*_envelope(data), encoded)
        try:
            data = json.loads(encoded)
        except ValueError as exc:
            raise MalformedTransaction(f"the transaction is not JSON: {exc}") from exc
        tx = cls.from_json(data)
        if tx.encoded != encoded:
            raise MalformedTransaction("the stored transaction is not in canonical JSON form")
        return tx

    def verify_signature(self, signing_key: bytes) -> None:
        """Raise MalformedTransaction unless the signature verifies with *signing_key*.

        A successful check is remembered for that key, so that a transaction verified
        before it joins a batch is not verified again under the ledger's lock.
        """
        if self._verified_key == signing_key:
            return
        try:
            _verify_key(signing_key).verify_bytes(self.signed_bytes(), self.signature)
        except (InvalidSignature, EnvelopeError) as exc:
            raise MalformedTransaction(
                f"the signature does not verify with the key of signer {self.signer!r}",
                code="bad-signature",
            ) from exc
        self._verified_key = signing_key

    def is_verified_with(self, signing_key: bytes) -> bool:
        return self._verified_key == signing_key

    def _mark_verified(self, signing_key: bytes) -> None:
        """Record that the signature was checked with *signing_key* elsewhere (a worker)."""
        self._verified_key = signing_key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Transaction) and other.encoded == self.encoded

    def __hash__(self) -> int:
        return hash(self.encoded)

    def __repr__(self) -> str:
        return f"Transaction({self.type}, tx_id={self.body.get('tx_id')}, signer={self.signer})"


def _envelope(data: Any) -> tuple[str, dict[str, Any], str, bytes]:
    """(type, body, signer, signature) of a transaction's JSON, its envelope checked."""
    if not isinstance(data, dict):
        raise MalformedTransaction("a transaction is a JSON object")
    keys = set(data)
    if keys != {"type", "body", "signer", "signature"}:
        missing = {"type", "body", "signer", "signature"} - keys
        extra = keys - {"type", "body", "signer", "signature"}
        parts = []
        if missing:
            parts.append(f"lacks {', '.join(sorted(missing))}")
        if extra:
            parts.append(f"has unknown fields {', '.join(sorted(extra))}")
        raise MalformedTransaction(f"the transaction {' and '.join(parts)}")
    tx_type, body, signer = data["type"], data["body"], data["signer"]
    if tx_type not in TX_TYPES:
        raise MalformedTransaction(
            f"unknown transaction type {tx_type!r}; expected one of {', '.join(TX_TYPES)}"
        )
    if not isinstance(body, dict):
        raise MalformedTransaction("the transaction body is a JSON object")
    if not isinstance(signer, str) or not signer:
        raise MalformedTransaction("the transaction signer is a non-empty identity id")
    try:
        signature = b64decode(data["signature"], length=64, what="signature")
    except EnvelopeError as exc:
        raise MalformedTransaction(str(exc)) from exc
    tx_id = body.get("tx_id")
    if not isinstance(tx_id, str) or not ID_PATTERN.fullmatch(tx_id):
        raise MalformedTransaction(
            "body.tx_id must be 32 lowercase hex characters (128 random bits)"
        )
    return tx_type, body, signer, signature


_KEYS: dict[bytes, VerifyKey] = {}


def _verify_key(raw: bytes) -> VerifyKey:
    """A parsed Ed25519 key, cached: enrolled keys sign many transactions."""
    key = _KEYS.get(raw)
    if key is None:
        if len(_KEYS) > 10_000:
            _KEYS.clear()
        key = _KEYS[raw] = VerifyKey(raw)
    return key
