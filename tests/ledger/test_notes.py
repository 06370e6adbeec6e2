"""C2SP signed-note v1: key IDs, vkeys, signing, and the parse and verify rules of the spec.

Test data: the verifier key and signed note of the spec's own example (c2sp.org/signed-note),
and the PeterNeumann key pair and signed note of golang.org/x/mod/sumdb/note's tests, a
second implementation whose output these bytes must match.
"""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given, settings, strategies as st

from envelope import SigningKey, b64decode, b64encode
from ledger.errors import InvalidNoteSignature, MalformedNote, NoteError, UntrustedNote
from ledger.wire.cosignatures import CosignatureVerifier
from ledger.wire.notes import (
    ALG_ED25519,
    MAX_SIGNATURES,
    Ed25519Signer,
    Ed25519Verifier,
    Note,
    NoteSignature,
    Verifiers,
    key_id,
    open_note,
    parse_note,
    sign_note,
)

SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXpp"
    "zi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
).encode()

PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6"
    "KE6RyyBwJnAM=\n"
)


def peter() -> Verifiers:
    return Verifiers([Ed25519Verifier.from_vkey(PETER_VKEY)])


def other_signer(name: str = "other.example/key") -> Ed25519Signer:
    return Ed25519Signer(name, SigningKey.generate())


# --- the spec's and the reference implementation's bytes ---------------------------------


def test_the_spec_example_note_verifies_with_its_vkey() -> None:
    opened = open_note(SPEC_NOTE, Verifiers([Ed25519Verifier.from_vkey(SPEC_VKEY)]))
    assert opened.text == "This is an example message.\n"
    assert [s.name for s in opened.verified] == ["example.com/foo"]
    assert opened.verified[0].key_id == bytes.fromhex("530d903a")


def test_signing_gives_the_reference_implementations_bytes() -> None:
    signer = Ed25519Signer.from_private_key(PETER_SKEY)
    assert sign_note(PETER_TEXT, signer) == (PETER_TEXT + "\n" + PETER_SIG).encode()
    assert signer.verifier.vkey() == PETER_VKEY
    assert signer.private_key() == PETER_SKEY


def test_key_id_is_sha256_of_name_newline_type_and_key() -> None:
    public = b64decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")[1:]
    expected = hashlib.sha256(b"PeterNeumann\n\x01" + public).digest()[:4]
    assert key_id("PeterNeumann", ALG_ED25519, public) == expected == bytes.fromhex("c74f20a3")


def test_a_vkey_round_trips() -> None:
    verifier = Ed25519Verifier.from_vkey(SPEC_VKEY)
    assert verifier.vkey() == SPEC_VKEY
    assert verifier.name == "example.com/foo"


# --- vkeys and private keys ---------------------------------------------------------------


def _mangled(text: str) -> list[str]:
    out = {text[:i] + text[i + 1 :] for i in range(len(text))}  # one character dropped
    out |= {text[:i] + chr(ord(c) + 1) + text[i + 1 :] for i, c in enumerate(text)}
    out |= {text[:cut] for cut in range(len(text))}
    out.discard(text)
    return sorted(out)


@pytest.mark.parametrize("mangled", _mangled(PETER_VKEY))
def test_a_mangled_vkey_is_refused(mangled: str) -> None:
    with pytest.raises(MalformedNote):
        Ed25519Verifier.from_vkey(mangled)


def test_a_vkey_of_another_signature_type_is_refused() -> None:
    signer = other_signer("w.example")
    cosigning_vkey = CosignatureVerifier("w.example", signer.key.verify_key).vkey()
    with pytest.raises(MalformedNote, match="signature type 0x04"):
        Ed25519Verifier.from_vkey(cosigning_vkey)
    with pytest.raises(MalformedNote, match="signature type 0x01"):
        CosignatureVerifier.from_vkey(signer.verifier.vkey())


@pytest.mark.parametrize("mangled", _mangled(PETER_SKEY)[::7])
def test_a_mangled_private_key_is_refused(mangled: str) -> None:
    with pytest.raises(MalformedNote):
        Ed25519Signer.from_private_key(mangled)


@pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\there", "nbsp\u00a0x", "line\nbreak"])
def test_a_key_name_has_no_spaces_or_plus(name: str) -> None:
    with pytest.raises(MalformedNote):
        Ed25519Signer(name, SigningKey.generate())


# --- opening notes ------------------------------------------------------------------------


def test_unknown_signatures_are_ignored_and_kept_apart() -> None:
    stranger = other_signer()
    note = (PETER_TEXT + "\n" + stranger.sign(PETER_TEXT).line() + PETER_SIG).encode()
    opened = open_note(note, peter())
    assert [s.name for s in opened.verified] == ["PeterNeumann"]
    assert [s.name for s in opened.unverified] == [stranger.name]


def test_a_same_name_other_key_id_signature_is_unknown_not_a_failure() -> None:
    # The spec: a signature that shares the name (or the ID) of a known key but not both
    # is from an unknown key, and is ignored.
    impostor = Ed25519Signer("PeterNeumann", SigningKey.generate())
    note = (PETER_TEXT + "\n" + impostor.sign(PETER_TEXT).line() + PETER_SIG).encode()
    assert len(open_note(note, peter()).unverified) == 1


def test_a_note_without_a_trusted_signature_is_refused() -> None:
    note = sign_note(PETER_TEXT, other_signer())
    with pytest.raises(UntrustedNote, match=re.escape("other.example/key")):
        open_note(note, peter())
    with pytest.raises(UntrustedNote):
        open_note((PETER_TEXT + "\n" + PETER_SIG).encode(), Verifiers([]))


def test_a_failing_signature_of_a_known_key_rejects_the_whole_note() -> None:
    raw = b64decode(PETER_SIG.split(" ")[2].strip())
    broken = raw[:10] + bytes([raw[10] ^ 1]) + raw[11:]
    line = f"— PeterNeumann {b64encode(broken)}\n"
    with pytest.raises(InvalidNoteSignature, match="PeterNeumann"):
        open_note((PETER_TEXT + "\n" + PETER_SIG + line).encode(), peter())


def test_a_changed_text_does_not_verify() -> None:
    changed = PETER_TEXT.replace("answer", "answers")
    with pytest.raises(InvalidNoteSignature):
        open_note((changed + "\n" + PETER_SIG).encode(), peter())


def test_repeated_signatures_count_once() -> None:
    opened = open_note((PETER_TEXT + "\n" + PETER_SIG * 3).encode(), peter())
    assert len(opened.verified) == 1


def test_the_text_ends_at_the_last_blank_line() -> None:
    text = "first\n\nsecond paragraph\n"
    signer = other_signer()
    opened = open_note(sign_note(text, signer), Verifiers([signer.verifier]))
    assert opened.text == text


def test_at_most_max_signatures_lines() -> None:
    signer = other_signer()
    line = signer.sign(PETER_TEXT).line()
    trusted = Verifiers([signer.verifier])
    assert open_note((PETER_TEXT + "\n" + line * MAX_SIGNATURES).encode(), trusted)
    with pytest.raises(MalformedNote, match="at most"):
        open_note((PETER_TEXT + "\n" + line * (MAX_SIGNATURES + 1)).encode(), trusted)


def test_at_least_sixteen_distinct_signatures_are_accepted() -> None:
    signers = [other_signer(f"k{i}.example") for i in range(16)]
    note = Note(PETER_TEXT, tuple(s.sign(PETER_TEXT) for s in signers)).to_bytes()
    opened = open_note(note, Verifiers(s.verifier for s in signers))
    assert len(opened.verified) == 16


def test_two_trusted_keys_with_one_name_and_id_are_ambiguous() -> None:
    verifier = Ed25519Verifier.from_vkey(PETER_VKEY)
    with pytest.raises(MalformedNote, match="share the name"):
        Verifiers([verifier, Ed25519Verifier.from_vkey(PETER_VKEY)])


MALFORMED = {
    "no signatures": PETER_TEXT,
    "no signature lines": PETER_TEXT + "\n",
    "last line without newline": PETER_TEXT + "\n" + PETER_SIG[:-1],
    "control character": "\x01" + PETER_TEXT + "\n" + PETER_SIG,
    "carriage return": PETER_TEXT.replace("\n", "\r\n", 1) + "\n" + PETER_SIG,
    "bad name": PETER_TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Peter Neumann"),
    "plus in name": PETER_TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Peter+Neumann"),
    "trailing line": PETER_TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
    "hyphen not em dash": PETER_TEXT + "\n" + PETER_SIG.replace("—", "-"),
    "no space after dash": PETER_TEXT + "\n" + PETER_SIG.replace("— ", "—"),
    "no signature": PETER_TEXT + "\n— PeterNeumann\n",
    "empty signature": PETER_TEXT + "\n— PeterNeumann \n",
    "short signature": PETER_TEXT + "\n— PeterNeumann AAAAAA==\n",
    "not base64": PETER_TEXT + "\n" + PETER_SIG.replace("x08go", "x08g!"),
    "non-canonical base64": PETER_TEXT + "\n" + PETER_SIG.replace("AM=\n", "AN=\n"),
}


def test_a_blank_line_among_signatures_moves_them_into_the_text() -> None:
    # The text ends at the last blank line: the first signature line becomes text, which
    # the second signature does not sign.
    with pytest.raises(InvalidNoteSignature):
        open_note((PETER_TEXT + "\n" + PETER_SIG + "\n" + PETER_SIG).encode(), peter())


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_notes_are_refused(case: str) -> None:
    with pytest.raises(MalformedNote):
        open_note(MALFORMED[case].encode(), peter())


def test_invalid_utf8_is_refused() -> None:
    with pytest.raises(MalformedNote, match="UTF-8"):
        open_note(b"\xff" + (PETER_TEXT + "\n" + PETER_SIG).encode(), peter())


@pytest.mark.parametrize("text", ["", "no newline", "tab\there\n"])
def test_signing_refuses_a_text_that_is_not_a_note_text(text: str) -> None:
    with pytest.raises(MalformedNote):
        sign_note(text, other_signer())


def test_a_parsed_note_formats_back_to_its_bytes() -> None:
    data = (PETER_TEXT + "\n" + PETER_SIG).encode()
    assert parse_note(data).to_bytes() == data


def test_signature_line_round_trip() -> None:
    line = PETER_SIG[:-1]
    assert NoteSignature.from_line(line).line() == PETER_SIG


# --- fuzzing ------------------------------------------------------------------------------

VALID = (PETER_TEXT + "\n" + PETER_SIG).encode()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_are_refused_cleanly(data: bytes) -> None:
    with pytest.raises(NoteError):
        open_note(data, peter())


@settings(max_examples=400, deadline=None)
@given(st.integers(0, len(VALID) - 1), st.integers(1, 255))
def test_a_changed_byte_never_verifies(position: int, flip: int) -> None:
    changed = bytearray(VALID)
    changed[position] ^= flip
    with pytest.raises(NoteError):
        open_note(bytes(changed), peter())


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", min_codepoint=0x0A), max_size=200))
def test_any_note_text_signs_and_opens_to_itself(body: str) -> None:
    text = body + "\n"
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        return
    signer = Ed25519Signer("fuzz.example", SigningKey(bytes(32)))
    opened = open_note(sign_note(text, signer), Verifiers([signer.verifier]))
    assert opened.text == text
