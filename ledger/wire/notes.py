"""C2SP signed-note v1 (c2sp.org/signed-note): text signed by one or more keys.

A note is its text (UTF-8, ending in a newline, no control characters but newline), a
blank line, and one or more signature lines `— <key name> <base64(key ID ‖ signature)>`
(U+2014, a space, the name, a space, standard base64, a newline). The text is separated
from the signatures by the *last* blank line.

A key is known by its name and its 4-byte key ID, the first four bytes of
SHA-256(name ‖ 0x0A ‖ signature type ‖ public key). Verifier keys (vkeys) are written
`<name>+<hex key ID>+<base64(signature type ‖ public key)>`. Signature type 0x01 is
Ed25519 over the note text (here); 0x04 is the timestamped cosignature of
`ledger.wire.cosignatures`.

Opening a note: signatures from unknown keys are ignored (kept as `unverified`); one from
a known key is always verified and a failure rejects the whole note; at least one known
signature must verify. A note with more than `MAX_SIGNATURES` signature lines is refused
(the spec asks verifiers to accept at least 16). Base64 must be canonical (one text form
per value), so a parsed note formats back to the same bytes.

Private keys are written as Go's `golang.org/x/mod/sumdb/note` does:
`PRIVATE+KEY+<name>+<hex key ID>+<base64(signature type ‖ 32-byte seed)>`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, Self

from envelope import EnvelopeError, InvalidSignature, SigningKey, VerifyKey, b64decode, b64encode
from ledger.errors import InvalidNoteSignature, MalformedNote, UntrustedNote

ALG_ED25519 = 0x01
"""Signature type of plain Ed25519 note signatures."""
ALG_COSIGNATURE_V1 = 0x04
"""Signature type of timestamped Ed25519 checkpoint cosignatures (tlog-cosignature)."""

SIGNATURE_PREFIX = "\u2014 "
MAX_SIGNATURES = 100
"""Signature lines accepted on one note; more makes the note malformed."""
PRIVATE_KEY_PREFIX = "PRIVATE+KEY+"


def key_id(name: str, alg: int, public_key: bytes) -> bytes:
    """SHA-256(name ‖ 0x0A ‖ signature type ‖ public key)[:4]."""
    material = name.encode("utf-8") + b"\n" + bytes([alg]) + public_key
    return hashlib.sha256(material).digest()[:4]


# Scanned by the regular expression engine: notes are checked on every witness request.
# `\s` of a str pattern is exactly str.isspace (Unicode spaces, \x1c-\x1f included).
_SPACE = re.compile(r"\s")
_CONTROL = re.compile(r"[\x00-\x1f]")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f]")


def check_key_name(name: str) -> str:
    """*name* if it is a valid key name: non-empty, no Unicode space, no '+'."""
    if not name or "+" in name or _SPACE.search(name):
        raise MalformedNote(f"{name!r} is not a key name (non-empty, no spaces, no '+')")
    if _CONTROL.search(name):
        raise MalformedNote(f"{name!r} is not a key name (control characters)")
    return name


def check_note_text(text: str) -> str:
    """*text* if it can be a note's text: non-empty, ends in newline, no control characters."""
    if not text.endswith("\n"):
        raise MalformedNote("a note's text must end with a newline")
    if _CONTROL_BUT_NEWLINE.search(text):
        raise MalformedNote("a note may contain no control characters but newline")
    return text


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: key name, key ID and the signature bytes after the key ID."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        encoded = b64encode(self.key_id + self.signature)
        return f"{SIGNATURE_PREFIX}{self.name} {encoded}\n"

    @classmethod
    def from_line(cls, line: str) -> NoteSignature:
        """A signature line without its newline."""
        if not line.startswith(SIGNATURE_PREFIX):
            raise MalformedNote(f"{line[:40]!r} is not a signature line (— name base64)")
        name, space, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
        if not space:
            raise MalformedNote(f"{line[:40]!r} is not a signature line (— name base64)")
        check_key_name(name)
        try:
            raw = b64decode(encoded, what=f"the signature of {name}")
        except EnvelopeError as exc:
            raise MalformedNote(str(exc)) from exc
        if len(raw) < 5:
            raise MalformedNote(f"the signature of {name} is shorter than a key ID and a byte")
        return cls(name, raw[:4], raw[4:])


class NoteVerifier(Protocol):
    """A key a note may be signed with: name, key ID and how its signatures verify."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def verify(self, text: bytes, signature: bytes) -> bool: ...

    def vkey(self) -> str: ...


def encode_vkey(name: str, alg: int, public_key: bytes) -> str:
    check_key_name(name)
    return f"{name}+{key_id(name, alg, public_key).hex()}+{b64encode(bytes([alg]) + public_key)}"


def decode_vkey(text: str, alg: int, key_length: int = 32) -> tuple[str, bytes]:
    """(name, public key) of a vkey of signature type *alg*; MalformedNote otherwise."""
    parts = text.strip().split("+", 2)  # base64 may contain '+'
    if len(parts) != 3:
        raise MalformedNote(f"{text[:60]!r} is not a verifier key (name+keyid+base64)")
    name, hex_id, encoded = parts
    check_key_name(name)
    if len(hex_id) != 8 or hex_id != hex_id.lower():
        raise MalformedNote(f"the key ID of verifier key {name} is not 8 lowercase hex digits")
    try:
        raw = b64decode(encoded, length=key_length + 1, what=f"verifier key {name}")
        claimed = bytes.fromhex(hex_id)
    except (EnvelopeError, ValueError) as exc:
        raise MalformedNote(str(exc)) from exc
    if raw[0] != alg:
        raise MalformedNote(
            f"verifier key {name} has signature type 0x{raw[0]:02x}, expected 0x{alg:02x}"
        )
    if key_id(name, alg, raw[1:]) != claimed:
        raise MalformedNote(f"the key ID of verifier key {name} does not match its key")
    return name, raw[1:]


def encode_private_key(name: str, alg: int, key: SigningKey) -> str:
    public = key.verify_key.to_bytes()
    hex_id = key_id(check_key_name(name), alg, public).hex()
    return f"{PRIVATE_KEY_PREFIX}{name}+{hex_id}+{b64encode(bytes([alg]) + key.private_bytes())}"


def decode_private_key(text: str, alg: int) -> tuple[str, SigningKey]:
    """(name, signing key) of a private key text of signature type *alg*."""
    text = text.strip()
    if not text.startswith(PRIVATE_KEY_PREFIX):
        raise MalformedNote(f"not a private note key (it starts with {PRIVATE_KEY_PREFIX})")
    parts = text.removeprefix(PRIVATE_KEY_PREFIX).split("+", 2)
    if len(parts) != 3:
        raise MalformedNote("a private note key is PRIVATE+KEY+name+keyid+base64")
    name, hex_id, encoded = parts
    check_key_name(name)
    try:
        raw = b64decode(encoded, length=33, what=f"private key {name}")
        key = SigningKey(raw[1:])
    except EnvelopeError as exc:
        raise MalformedNote(str(exc)) from exc
    if raw[0] != alg:
        raise MalformedNote(
            f"private key {name} has signature type 0x{raw[0]:02x}, expected 0x{alg:02x}"
        )
    if key_id(name, alg, key.verify_key.to_bytes()).hex() != hex_id:
        raise MalformedNote(f"the key ID of private key {name} does not match its key")
    return name, key


class NoteKeyVerifier:
    """A named Ed25519 public key of one signature type; subclasses set `alg` and `verify`."""

    alg: int

    def __init__(self, name: str, public_key: VerifyKey) -> None:
        self._name = check_key_name(name)
        self.public_key = public_key
        self._key_id = key_id(name, self.alg, public_key.to_bytes())

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> bytes:
        return self._key_id

    @classmethod
    def from_vkey(cls, text: str) -> Self:
        name, public = decode_vkey(text, cls.alg)
        try:
            return cls(name, VerifyKey(public))
        except EnvelopeError as exc:
            raise MalformedNote(f"verifier key {name}: {exc}") from exc

    def vkey(self) -> str:
        return encode_vkey(self.name, self.alg, self.public_key.to_bytes())


class Ed25519Verifier(NoteKeyVerifier):
    """Verifies signature type 0x01: Ed25519 over the note text."""

    alg = ALG_ED25519

    def verify(self, text: bytes, signature: bytes) -> bool:
        if len(signature) != 64:
            return False
        try:
            self.public_key.verify_bytes(text, signature)
        except InvalidSignature:
            return False
        return True


class Ed25519Signer:
    """Signs note texts with signature type 0x01 under a key name."""

    def __init__(self, name: str, key: SigningKey) -> None:
        self.key = key
        self.verifier = Ed25519Verifier(name, key.verify_key)

    @property
    def name(self) -> str:
        return self.verifier.name

    @classmethod
    def from_private_key(cls, text: str) -> Ed25519Signer:
        return cls(*decode_private_key(text, ALG_ED25519))

    def private_key(self) -> str:
        return encode_private_key(self.name, ALG_ED25519, self.key)

    def sign(self, text: str) -> NoteSignature:
        signature = self.key.sign_bytes(check_note_text(text).encode("utf-8"))
        return NoteSignature(self.name, self.verifier.key_id, signature)


class Verifiers:
    """The keys a reader trusts, looked up by (name, key ID); no two may share both."""

    def __init__(self, verifiers: Iterable[NoteVerifier]) -> None:
        self._by_id: dict[tuple[str, bytes], NoteVerifier] = {}
        for verifier in verifiers:
            slot = (verifier.name, verifier.key_id)
            if slot in self._by_id:
                raise MalformedNote(
                    f"two trusted keys share the name {verifier.name} and key ID "
                    f"{verifier.key_id.hex()}: a note could not say which one signed it"
                )
            self._by_id[slot] = verifier

    def find(self, name: str, key_id: bytes) -> NoteVerifier | None:
        return self._by_id.get((name, key_id))

    def __len__(self) -> int:
        return len(self._by_id)


@dataclass(frozen=True, slots=True)
class Note:
    """A note's text and its signature lines, unverified."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def to_bytes(self) -> bytes:
        check_note_text(self.text)
        if not self.signatures:
            raise MalformedNote("a note has at least one signature")
        lines = "".join(signature.line() for signature in self.signatures)
        return (self.text + "\n" + lines).encode("utf-8")


def parse_note(data: bytes) -> Note:
    """The text and signature lines of *data*; MalformedNote unless it is a note."""
    try:
        message = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedNote("a note must be valid UTF-8") from exc
    if _CONTROL_BUT_NEWLINE.search(message):
        raise MalformedNote("a note may contain no control characters but newline")
    split = message.rfind("\n\n")
    if split < 0:
        raise MalformedNote("a note has its text, a blank line and signature lines")
    text, block = message[: split + 1], message[split + 2 :]
    if not block or not block.endswith("\n"):
        raise MalformedNote("a note's signature lines must each end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNote(f"a note may carry at most {MAX_SIGNATURES} signatures")
    return Note(text, tuple(NoteSignature.from_line(line) for line in lines))


@dataclass(frozen=True, slots=True)
class OpenedNote:
    """A note whose known signatures all verified (at least one)."""

    text: str
    verified: tuple[NoteSignature, ...]
    unverified: tuple[NoteSignature, ...]


def open_note(data: bytes, verifiers: Verifiers) -> OpenedNote:
    """Parse *data* and verify it against *verifiers*.

    Raises MalformedNote, InvalidNoteSignature (a known key's signature fails) or
    UntrustedNote (no known key signed it).
    """
    note = parse_note(data)
    text = note.text.encode("utf-8")
    verified: dict[tuple[str, bytes], NoteSignature] = {}
    unverified: dict[NoteSignature, None] = {}
    for signature in note.signatures:
        verifier = verifiers.find(signature.name, signature.key_id)
        if verifier is None:
            unverified.setdefault(signature, None)
            continue
        slot = (signature.name, signature.key_id)
        if verified.get(slot) == signature:
            continue  # the same line again
        # Every signature of a known key is checked, a second one of the same key too.
        if not verifier.verify(text, signature.signature):
            raise InvalidNoteSignature(
                f"the signature of {signature.name} (key {signature.key_id.hex()}) on this "
                "note does not verify"
            )
        verified.setdefault(slot, signature)
    if not verified:
        names = ", ".join(sorted({s.name for s in note.signatures}))
        raise UntrustedNote(f"no trusted key signed this note (it is signed by {names})")
    return OpenedNote(note.text, tuple(verified.values()), tuple(unverified))


def sign_note(text: str, *signers: Ed25519Signer) -> bytes:
    """The signed note of *text* with one signature line per signer."""
    return Note(check_note_text(text), tuple(s.sign(text) for s in signers)).to_bytes()
