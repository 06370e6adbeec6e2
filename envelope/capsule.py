"""The capsule: a file's data key wrapped for each recipient, plus its encrypted metadata.

Serialised as RFC 8785 canonical JSON (anything else is refused, so a capsule has exactly
one byte form and one SHA-256):

    {"format": "ehrgate-capsule", "version": 1,
     "recipients": [{"id": ID, "wrapped_key": B64}, ...],   # 1..1000, ids unique
     "meta": B64, "mac": B64}

- wrapped_key = HPKE(MLKEM768_X25519, HKDF-SHA256, AES-256-GCM) seal of the 32-byte DEK to
  the recipient's public key, info = b"ehrgate/capsule-key/v1" ‖ 0x00 ‖ id (UTF-8). The
  patient's record key is the recipient whose id is the pseudonym.
- meta = nonce (12) ‖ AES-256-GCM(meta key, nonce, canonical JSON of the metadata,
  aad=b"ehrgate/capsule-meta/v1"), meta key = HKDF-SHA256(DEK, salt=None,
  info=b"ehrgate/capsule-meta/v1", L=32).
- metadata = {filename, content_type, plaintext_sha256, plaintext_size, body_sha256,
  body_size, uploader_id, signer_id, pseudonym, category, created_at, signature}, where
  signature is the signer's Ed25519 signature over the canonical JSON of
  {"context": "ehrgate/record-content/v1", plaintext_sha256, pseudonym, category, created_at}.
- mac = HMAC-SHA256(mac key, canonical JSON of the capsule without "mac"), mac key =
  HKDF-SHA256(DEK, salt=None, info=b"ehrgate/capsule-mac/v1", L=32): whoever opens the
  capsule also knows that no byte of it, not even another recipient's entry, was changed
  since someone holding the data key made it.

Version 2 (sealed to a scoped record key) is the same with one more member in each
recipient entry, ``"key"``: which of the recipient's keys the data key is wrapped to
(``scoped-v2/<category>/<YYYY-MM>`` for the patient's scoped key, ``identity`` for an
identity's encryption key), bound by the wrap's info = b"ehrgate/capsule-key/v2" ‖ 0x00 ‖
id ‖ 0x00 ‖ key. A reader learns which key to use before opening (`capsule_key_id`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from envelope.body import DEK_LEN, BodyOpener, DataKey
from envelope.canonical import b64decode, b64encode, canonical_json
from envelope.errors import EnvelopeError, InvalidEnvelope, InvalidSignature
from envelope.identity import VerifyKey
from envelope.kem import HybridPrivateKey, HybridPublicKey
from envelope.patient import is_pseudonym

CAPSULE_FORMAT = "ehrgate-capsule"
CAPSULE_VERSION = 1
SCOPED_CAPSULE_VERSION = 2
WRAP_DOMAIN = b"ehrgate/capsule-key/v1"
WRAP_DOMAIN_V2 = b"ehrgate/capsule-key/v2"
IDENTITY_KEY_ID = "identity"
META_INFO = b"ehrgate/capsule-meta/v1"
MAC_INFO = b"ehrgate/capsule-mac/v1"
SIGNED_CONTEXT = "ehrgate/record-content/v1"
META_NONCE_LEN = 12
WRAPPED_KEY_LEN = 1120 + DEK_LEN + 16
MAX_RECIPIENTS = 1000
MAX_CAPSULE_SIZE = 4 * 1024 * 1024
MAX_TEXT_LEN = 255

_SHA256_HEX = re.compile(r"[0-9a-f]{64}", re.ASCII)
_RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z", re.ASCII)
_META_FIELDS = {
    "filename": str,
    "content_type": str,
    "plaintext_sha256": str,
    "plaintext_size": int,
    "body_sha256": str,
    "body_size": int,
    "uploader_id": str,
    "signer_id": str,
    "pseudonym": str,
    "category": str,
    "created_at": str,
    "signature": str,
}

Recipient = tuple[str, HybridPublicKey]


def capsule_sha256(capsule: bytes) -> str:
    """The hex SHA-256 of a capsule's bytes, as recorded on the ledger."""
    return hashlib.sha256(capsule).hexdigest()


def signed_content(
    *, plaintext_sha256: str, pseudonym: str, category: str, created_at: str
) -> dict[str, str]:
    """The object the signer signs: what a record is, for whom, in which category, when."""
    return {
        "context": SIGNED_CONTEXT,
        "plaintext_sha256": plaintext_sha256,
        "pseudonym": pseudonym,
        "category": category,
        "created_at": created_at,
    }


def check_created_at(value: str) -> None:
    """Refuse anything but an RFC 3339 UTC timestamp such as 2026-01-31T12:00:00Z."""
    if not isinstance(value, str) or not _RFC3339_UTC.fullmatch(value):
        raise EnvelopeError(
            f"created_at must be an RFC 3339 UTC time like 2026-01-31T12:00:00Z, got {value!r}"
        )
    try:
        datetime.fromisoformat(value[:19])
    except ValueError as exc:
        raise EnvelopeError(f"created_at is not a real date and time: {value!r}") from exc


def check_text(what: str, value: object, *, basename: bool = False) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT_LEN:
        raise EnvelopeError(f"{what} must be text of 1 to {MAX_TEXT_LEN} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise EnvelopeError(f"{what} must not contain control characters")
    if basename and ("/" in value or "\\" in value or value in {".", ".."}):
        raise EnvelopeError(f"{what} must be a plain file name without a directory, got {value!r}")
    return value


def check_recipients(recipients: Sequence[Recipient]) -> list[Recipient]:
    checked = list(recipients)
    if not checked:
        raise EnvelopeError("a capsule needs at least one recipient")
    if len(checked) > MAX_RECIPIENTS:
        raise EnvelopeError(f"a capsule has at most {MAX_RECIPIENTS} recipients")
    seen: set[str] = set()
    for recipient in checked:
        if not (isinstance(recipient, tuple) and len(recipient) == 2):
            raise EnvelopeError("each recipient is a pair (id, HybridPublicKey)")
        recipient_id, key = recipient
        if not isinstance(recipient_id, str) or not recipient_id:
            raise EnvelopeError("a recipient id must be non-empty text")
        if not isinstance(key, HybridPublicKey):
            raise EnvelopeError(f"recipient {recipient_id!r} needs a HybridPublicKey")
        if recipient_id in seen:
            raise EnvelopeError(f"recipient {recipient_id!r} is listed twice")
        seen.add(recipient_id)
    return checked


def _wrap_info(recipient_id: str, key_id: str | None = None) -> bytes:
    if key_id is None:
        return WRAP_DOMAIN + b"\x00" + recipient_id.encode("utf-8")
    return WRAP_DOMAIN_V2 + b"\x00" + recipient_id.encode("utf-8") + b"\x00" + key_id.encode()


def _check_key_ids(key_ids: Mapping[str, str], recipients: Sequence[Recipient]) -> None:
    ids = {recipient_id for recipient_id, _ in recipients}
    for recipient_id, key_id in key_ids.items():
        if recipient_id not in ids:
            raise EnvelopeError(f"a key id is given for {recipient_id!r}, not a recipient")
        check_text("a key id", key_id)
        if "\x00" in key_id:
            raise EnvelopeError("a key id must not contain NUL")


def _derive(dek: DataKey, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(dek.to_bytes())


def _meta_key(dek: DataKey) -> AESGCM:
    return AESGCM(_derive(dek, META_INFO))


def _capsule_mac(dek: DataKey, unsigned: bytes) -> bytes:
    return hmac.digest(_derive(dek, MAC_INFO), unsigned, "sha256")


@dataclass(frozen=True, slots=True)
class OpenedCapsule:
    """What a recipient learns from a capsule: the file's metadata and its data key."""

    filename: str
    content_type: str
    plaintext_sha256: str
    plaintext_size: int
    body_sha256: str
    body_size: int
    uploader_id: str
    signer_id: str
    pseudonym: str
    category: str
    created_at: str
    signature: bytes
    data_key: DataKey = field(repr=False)

    def body_opener(self) -> BodyOpener:
        """A streaming opener that also checks the plaintext's size and SHA-256 at the end."""
        return BodyOpener(
            self.data_key,
            expected_sha256=self.plaintext_sha256,
            expected_size=self.plaintext_size,
        )

    def signed_content(self) -> dict[str, str]:
        return signed_content(
            plaintext_sha256=self.plaintext_sha256,
            pseudonym=self.pseudonym,
            category=self.category,
            created_at=self.created_at,
        )

    def metadata(self) -> dict[str, Any]:
        """The metadata as JSON-ready values (the signature in base64, no data key)."""
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "plaintext_sha256": self.plaintext_sha256,
            "plaintext_size": self.plaintext_size,
            "body_sha256": self.body_sha256,
            "body_size": self.body_size,
            "uploader_id": self.uploader_id,
            "signer_id": self.signer_id,
            "pseudonym": self.pseudonym,
            "category": self.category,
            "created_at": self.created_at,
            "signature": b64encode(self.signature),
        }


def encrypt_metadata(dek: DataKey, metadata: dict[str, Any]) -> bytes:
    return _encrypt_metadata(dek, metadata, os.urandom(META_NONCE_LEN))


def _encrypt_metadata(dek: DataKey, metadata: dict[str, Any], nonce: bytes) -> bytes:
    """`encrypt_metadata` with the nonce given: for the sealer, which chose it."""
    return nonce + _meta_key(dek).encrypt(nonce, canonical_json(metadata), META_INFO)


def _entry(dek: DataKey, recipient_id: str, key: HybridPublicKey, key_id: str | None) -> Any:
    wrapped = b64encode(key.seal(dek.to_bytes(), info=_wrap_info(recipient_id, key_id)))
    if key_id is None:
        return {"id": recipient_id, "wrapped_key": wrapped}
    return {"id": recipient_id, "key": key_id, "wrapped_key": wrapped}


def build_capsule(
    dek: DataKey,
    recipients: Sequence[Recipient],
    meta: bytes,
    key_ids: Mapping[str, str] | None = None,
) -> bytes:
    """A capsule of version 1, or of version 2 when *key_ids* names the key of some
    recipients (by recipient id; the others' is "identity")."""
    checked = check_recipients(recipients)
    if key_ids is not None:
        _check_key_ids(key_ids, checked)
    entries = [
        _entry(
            dek,
            recipient_id,
            key,
            None if key_ids is None else key_ids.get(recipient_id, IDENTITY_KEY_ID),
        )
        for recipient_id, key in checked
    ]
    document: dict[str, Any] = {
        "format": CAPSULE_FORMAT,
        "version": CAPSULE_VERSION if key_ids is None else SCOPED_CAPSULE_VERSION,
        "recipients": entries,
        "meta": b64encode(meta),
    }
    document["mac"] = b64encode(_capsule_mac(dek, canonical_json(document)))
    return canonical_json(document)


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")
    return result


def _parse_json(data: bytes) -> Any:
    value = json.loads(data.decode("utf-8"), object_pairs_hook=_reject_duplicate_keys)
    if canonical_json(value) != data:
        raise ValueError("not canonical JSON")
    return value


@dataclass(frozen=True, slots=True)
class _ParsedCapsule:
    wrapped: dict[str, bytes]
    key_ids: dict[str, str] | None  # version 2: the key each recipient's entry names
    meta: bytes
    mac: bytes
    unsigned: bytes  # the canonical JSON the MAC covers


def _parse_capsule(capsule: bytes) -> _ParsedCapsule:
    """The parts of a well-formed capsule; ValueError if it is malformed."""
    if not isinstance(capsule, bytes) or len(capsule) > MAX_CAPSULE_SIZE:
        raise ValueError("not a capsule")
    value = _parse_json(capsule)
    if not isinstance(value, dict) or set(value) != {
        "format",
        "version",
        "recipients",
        "meta",
        "mac",
    }:
        raise ValueError("not a capsule")
    if value["format"] != CAPSULE_FORMAT or value["version"] not in (
        CAPSULE_VERSION,
        SCOPED_CAPSULE_VERSION,
    ):
        raise ValueError("unknown capsule format")
    wrapped, key_ids = _parse_entries(value["recipients"], value["version"])
    if not isinstance(value["meta"], str):
        raise ValueError("bad meta")
    meta = b64decode(value["meta"])
    if len(meta) < META_NONCE_LEN + 16:
        raise ValueError("bad meta")
    mac = b64decode(value.pop("mac"), length=32)
    return _ParsedCapsule(wrapped, key_ids, meta, mac, canonical_json(value))


def _parse_entries(entries: Any, version: int) -> tuple[dict[str, bytes], dict[str, str] | None]:
    if not isinstance(entries, list) or not 0 < len(entries) <= MAX_RECIPIENTS:
        raise ValueError("bad recipients")
    members = {"id", "wrapped_key"} if version == CAPSULE_VERSION else {"id", "key", "wrapped_key"}
    wrapped: dict[str, bytes] = {}
    key_ids: dict[str, str] = {}
    for entry in entries:
        if not isinstance(entry, dict) or set(entry) != members:
            raise ValueError("bad recipient")
        recipient_id = entry["id"]
        if not isinstance(recipient_id, str) or not recipient_id or recipient_id in wrapped:
            raise ValueError("bad recipient id")
        wrapped[recipient_id] = b64decode(entry["wrapped_key"], length=WRAPPED_KEY_LEN)
        if version != CAPSULE_VERSION:
            key_id = entry["key"]
            if not isinstance(key_id, str) or not key_id or "\x00" in key_id:
                raise ValueError("bad key id")
            key_ids[recipient_id] = key_id
    return wrapped, (key_ids if version != CAPSULE_VERSION else None)


def capsule_key_id(capsule: bytes, recipient_id: str) -> str | None:
    """Which key *recipient_id*'s entry is wrapped to: a version 2 capsule's ``key`` (e.g.
    "scoped-v2/lab-results/2026-01"), None for a version 1 capsule (the patient's single
    record key, or an identity's key). Read before opening, to choose the key; opening
    then proves it (the key id is bound into the wrap). InvalidEnvelope if the capsule is
    malformed or has no entry for *recipient_id*."""
    try:
        parsed = _parse_capsule(capsule)
    except (EnvelopeError, ValueError, UnicodeDecodeError) as exc:
        raise InvalidEnvelope() from exc
    if recipient_id not in parsed.wrapped:
        raise InvalidEnvelope()
    return None if parsed.key_ids is None else parsed.key_ids[recipient_id]


@dataclass(frozen=True, slots=True)
class CapsuleOutline:
    """What anyone can read of a capsule without a key: its version, each recipient's key
    id (version 2; None for version 1) and the encrypted metadata."""

    version: int
    recipients: dict[str, str | None]
    meta: bytes


def capsule_outline(capsule: bytes) -> CapsuleOutline:
    """The outline of a well-formed capsule (InvalidEnvelope if it is malformed). A rewrap
    keeps `meta` byte for byte, so a gateway can tell a rewrapped capsule of a record from
    a capsule of another one without opening either."""
    try:
        parsed = _parse_capsule(capsule)
    except (EnvelopeError, ValueError, UnicodeDecodeError) as exc:
        raise InvalidEnvelope() from exc
    ids = parsed.key_ids
    return CapsuleOutline(
        CAPSULE_VERSION if ids is None else SCOPED_CAPSULE_VERSION,
        {rid: (None if ids is None else ids[rid]) for rid in parsed.wrapped},
        parsed.meta,
    )


def _unwrap(
    capsule: bytes, key: HybridPrivateKey, recipient_id: str
) -> tuple[DataKey, _ParsedCapsule]:
    parsed = _parse_capsule(capsule)
    sealed_key = parsed.wrapped.get(recipient_id)
    if sealed_key is None:
        raise ValueError("not a recipient")
    key_id = None if parsed.key_ids is None else parsed.key_ids[recipient_id]
    dek = DataKey(key.open(sealed_key, info=_wrap_info(recipient_id, key_id)))
    if not hmac.compare_digest(_capsule_mac(dek, parsed.unsigned), parsed.mac):
        raise ValueError("the capsule was changed")
    return dek, parsed


def _decrypt_metadata(dek: DataKey, meta: bytes) -> OpenedCapsule:
    plaintext = _meta_key(dek).decrypt(meta[:META_NONCE_LEN], meta[META_NONCE_LEN:], META_INFO)
    value = _parse_json(plaintext)
    if not isinstance(value, dict) or set(value) != set(_META_FIELDS):
        raise ValueError("bad metadata")
    for name, kind in _META_FIELDS.items():
        if type(value[name]) is not kind:
            raise ValueError(f"bad metadata field {name}")
    for name in ("plaintext_sha256", "body_sha256"):
        if not _SHA256_HEX.fullmatch(value[name]):
            raise ValueError(f"bad metadata field {name}")
    if (
        value["plaintext_size"] < 0
        or value["body_size"] < 0
        or not is_pseudonym(value["pseudonym"])
    ):
        raise ValueError("bad metadata")
    # the same rules as when sealing, so a reader may use the file name as given
    check_text("filename", value["filename"], basename=True)
    for name in ("content_type", "category", "uploader_id", "signer_id"):
        check_text(name, value[name])
    check_created_at(value["created_at"])
    signature = b64decode(value["signature"], length=64)
    return OpenedCapsule(**{**value, "signature": signature, "data_key": dek})


def open_capsule(capsule: bytes, key: HybridPrivateKey, recipient_id: str) -> OpenedCapsule:
    """Unwrap the data key for *recipient_id* with *key* and decrypt the metadata.

    Every failure — malformed capsule, no entry for the recipient, the wrong key, a changed
    byte — raises the same InvalidEnvelope.
    """
    try:
        dek, parsed = _unwrap(capsule, key, recipient_id)
        return _decrypt_metadata(dek, parsed.meta)
    except (EnvelopeError, ValueError, InvalidTag, UnicodeDecodeError) as exc:
        raise InvalidEnvelope() from exc


def verify_capsule_signature(
    opened: OpenedCapsule,
    verify_key: VerifyKey,
    *,
    pseudonym: str,
    category: str,
    created_at: str,
) -> None:
    """Check that the signer signed this plaintext for this pseudonym, category and time.

    *pseudonym*, *category* and *created_at* come from the ledger's record, and
    *verify_key* from the signer's enrolled identity (`opened.signer_id`). Raises
    InvalidSignature when the capsule claims something else or the signature is wrong.
    """
    claimed = (opened.pseudonym, opened.category, opened.created_at)
    if claimed != (pseudonym, category, created_at):
        raise InvalidSignature("the capsule was signed for another pseudonym, category or time")
    verify_key.verify(opened.signed_content(), opened.signature)


def rewrap_capsule(
    capsule: bytes,
    key: HybridPrivateKey,
    recipient_id: str,
    new_recipients: Sequence[Recipient],
    key_ids: Mapping[str, str] | None = None,
) -> bytes:
    """A new capsule for *new_recipients* with the same data key and metadata.

    The body is untouched: re-keying and revoking a recipient only replace the capsule.
    A version 2 capsule stays version 2: recipients it had keep their key ids unless
    *key_ids* names others; given *key_ids*, the result is version 2.
    Raises InvalidEnvelope when the capsule does not open for *recipient_id* with *key*.
    """
    recipients = check_recipients(new_recipients)
    try:
        dek, parsed = _unwrap(capsule, key, recipient_id)
        _decrypt_metadata(dek, parsed.meta)  # never pass on a capsule whose metadata is damaged
    except (EnvelopeError, ValueError, InvalidTag, UnicodeDecodeError) as exc:
        raise InvalidEnvelope() from exc
    if parsed.key_ids is not None or key_ids is not None:
        ids = {recipient for recipient, _ in recipients}
        kept = {k: v for k, v in (parsed.key_ids or {}).items() if k in ids}
        key_ids = {**kept, **(key_ids or {})}
    return build_capsule(dek, recipients, parsed.meta, key_ids)
