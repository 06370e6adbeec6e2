"""C2SP tlog-checkpoint v1, tlog-cosignature v1 (Ed25519) and the tlog-witness request body.

Test data: the checkpoint, cosignature line and add-checkpoint request of the C2SP specs'
own examples (c2sp.org/tlog-checkpoint, tlog-cosignature, tlog-witness).
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings, strategies as st

from envelope import SigningKey, b64decode
from ledger.errors import InvalidNoteSignature, MalformedNote, NoteError, UntrustedNote
from ledger.wire.blocks import Block
from ledger.wire.checkpoints import (
    Checkpoint,
    checkpoint_of,
    open_checkpoint,
    parse_size,
    sign_checkpoint,
)
from ledger.wire.cosignatures import (
    CosignatureVerifier,
    Cosigner,
    cosignature_timestamp,
    cosigned_message,
)
from ledger.wire.merkle import EMPTY_ROOT
from ledger.wire.notes import (
    ALG_COSIGNATURE_V1,
    Ed25519Signer,
    Ed25519Verifier,
    Note,
    NoteSignature,
    Verifiers,
    key_id,
    open_note,
    parse_note,
)
from ledger.wire.tlog_witness import (
    format_add_checkpoint,
    parse_add_checkpoint,
    parse_known_size,
)

SPEC_TEXT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SPEC_COSIGNATURE = (
    "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2"
    "oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA=="
)
SPEC_PROOF = [
    "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=",
    "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=",
    "5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=",
    "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=",
]
SPEC_LOG_SIGNATURE = (
    "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/"
    "Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)


def log_signer(origin: str = "hospital.example/ehrgate") -> Ed25519Signer:
    return Ed25519Signer(origin, SigningKey.generate())


# --- checkpoints --------------------------------------------------------------------------


def test_the_spec_checkpoint_parses_and_formats_byte_for_byte() -> None:
    checkpoint = Checkpoint.from_text(SPEC_TEXT)
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.size == 20852163
    assert checkpoint.root == b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert checkpoint.extensions == ()
    assert checkpoint.text() == SPEC_TEXT


def test_extension_lines_are_kept_in_order() -> None:
    text = SPEC_TEXT + "ext one\nanother\n"
    checkpoint = Checkpoint.from_text(text)
    assert checkpoint.extensions == ("ext one", "another")
    assert checkpoint.text() == text


BAD_TEXTS = {
    "two lines": "origin\n20\n",
    "no final newline": SPEC_TEXT[:-1],
    "empty origin": "\n" + SPEC_TEXT.split("\n", 1)[1],
    "leading zero": SPEC_TEXT.replace("20852163", "020852163"),
    "plus sign": SPEC_TEXT.replace("20852163", "+20852163"),
    "negative": SPEC_TEXT.replace("20852163", "-1"),
    "spaces": SPEC_TEXT.replace("20852163", " 20852163"),
    "hex size": SPEC_TEXT.replace("20852163", "0x10"),
    "unicode digits": SPEC_TEXT.replace("20852163", "\uff12\uff10"),
    "too large": SPEC_TEXT.replace("20852163", str(2**63)),
    "short root": SPEC_TEXT.replace("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=", "AAAA"),
    "urlsafe root": SPEC_TEXT.replace("/Xajj", "_Xajj"),
    "unpadded root": SPEC_TEXT.replace("2I=\n", "2I\n"),
    "empty extension": SPEC_TEXT + "\n",
    "empty extension between": SPEC_TEXT + "ext\n\nmore\n",
}


@pytest.mark.parametrize("case", sorted(BAD_TEXTS))
def test_malformed_checkpoints_are_refused(case: str) -> None:
    with pytest.raises(MalformedNote):
        Checkpoint.from_text(BAD_TEXTS[case])


def test_size_zero_is_written_0() -> None:
    assert parse_size("0") == 0
    assert Checkpoint("o", 0, EMPTY_ROOT).text().split("\n")[1] == "0"
    with pytest.raises(MalformedNote):
        parse_size("00")


def test_a_block_is_a_checkpoint_under_the_logs_origin() -> None:
    key = SigningKey.generate()
    root = hashlib.sha256(b"root").digest()
    block = Block.signed(
        key, height=3, previous_hash=bytes(32), tree_size=17, root=root, timestamp="t"
    )
    checkpoint = checkpoint_of(block, "hospital.example/ehrgate")
    assert (checkpoint.origin, checkpoint.size, checkpoint.root) == (
        "hospital.example/ehrgate",
        17,
        root,
    )
    assert checkpoint_of(None, "x/y").is_empty_tree


def test_a_signed_checkpoint_opens_with_the_logs_vkey_only() -> None:
    signer = log_signer()
    checkpoint = Checkpoint(signer.name, 5, hashlib.sha256(b"r").digest())
    note = sign_checkpoint(checkpoint, signer)
    vkey = signer.verifier.vkey()
    opened_checkpoint, opened = open_checkpoint(note, Verifiers([Ed25519Verifier.from_vkey(vkey)]))
    assert opened_checkpoint == checkpoint
    assert opened.text.encode() == checkpoint.body()
    with pytest.raises(UntrustedNote):
        open_checkpoint(note, Verifiers([log_signer().verifier]))


@settings(max_examples=200, deadline=None)
@given(
    st.from_regex(r"[a-z0-9./-]{1,40}", fullmatch=True),
    st.integers(0, 2**63 - 1),
    st.binary(min_size=32, max_size=32),
    st.lists(st.from_regex(r"[ -~]{1,30}", fullmatch=True), max_size=3),
)
def test_checkpoints_round_trip(origin: str, size: int, root: bytes, ext: list[str]) -> None:
    checkpoint = Checkpoint(origin, size, root, tuple(ext))
    assert Checkpoint.from_text(checkpoint.text()) == checkpoint


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_arbitrary_texts_parse_or_are_refused_cleanly(text: str) -> None:
    try:
        checkpoint = Checkpoint.from_text(text)
    except MalformedNote:
        return
    assert checkpoint.text() == text  # whatever parses is byte-exact


# --- cosignatures -------------------------------------------------------------------------


def test_the_spec_cosignature_line_carries_its_timestamp() -> None:
    signature = NoteSignature.from_line(SPEC_COSIGNATURE)
    assert signature.name == "witness.example.com/w1"
    assert len(signature.signature) == 8 + 64
    # The spec's example signed message says "time 1679315147".
    assert cosignature_timestamp(signature) == 1679315147


def test_the_cosigned_message_is_the_specs() -> None:
    expected = (
        b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n"
        b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )
    assert cosigned_message(SPEC_TEXT.encode(), 1679315147) == expected


def test_a_cosignature_is_timestamp_and_ed25519_over_the_message() -> None:
    key = SigningKey.generate()
    cosigner = Cosigner("witness.example/w1", key)
    signature = cosigner.cosign(SPEC_TEXT, 1700000000)
    assert signature.key_id == key_id(
        "witness.example/w1", ALG_COSIGNATURE_V1, key.verify_key.to_bytes()
    )
    assert signature.signature[:8] == (1700000000).to_bytes(8, "big")
    key.verify_key.verify_bytes(
        cosigned_message(SPEC_TEXT.encode(), 1700000000), signature.signature[8:]
    )
    assert cosigner.verifier.verify(SPEC_TEXT.encode(), signature.signature)


def test_a_cosignature_added_to_the_checkpoint_opens_with_the_witness_vkey() -> None:
    log, cosigner = log_signer(), Cosigner.generate("witness.example/w1")
    text = Checkpoint(log.name, 9, bytes(range(32))).text()
    note = Note(text, (log.sign(text), cosigner.cosign(text, 1700000001))).to_bytes()
    witness = CosignatureVerifier.from_vkey(cosigner.verifier.vkey())
    opened = open_note(note, Verifiers([witness]))
    assert [s.name for s in opened.verified] == ["witness.example/w1"]
    assert [s.name for s in opened.unverified] == [log.name]


def test_a_changed_timestamp_or_text_breaks_the_cosignature() -> None:
    cosigner = Cosigner.generate("w.example")
    signature = cosigner.cosign(SPEC_TEXT, 1700000000)
    later = (1700000001).to_bytes(8, "big") + signature.signature[8:]
    assert not cosigner.verifier.verify(SPEC_TEXT.encode(), later)
    assert not cosigner.verifier.verify(
        SPEC_TEXT.replace("63\n", "64\n").encode(), signature.signature
    )
    with pytest.raises(InvalidNoteSignature):
        open_note(
            Note(SPEC_TEXT, (NoteSignature("w.example", signature.key_id, later),)).to_bytes(),
            Verifiers([cosigner.verifier]),
        )


def test_a_cosigners_plain_ed25519_signature_is_not_a_cosignature() -> None:
    key = SigningKey.generate()
    plain = Ed25519Signer("w.example", key).sign(SPEC_TEXT)
    cosigning = CosignatureVerifier("w.example", key.verify_key)
    assert plain.key_id != cosigning.key_id  # type 0x01 and 0x04 differ
    with pytest.raises(UntrustedNote):
        open_note(Note(SPEC_TEXT, (plain,)).to_bytes(), Verifiers([cosigning]))


def test_timestamps_beyond_2_63_do_not_verify() -> None:
    cosigner = Cosigner.generate("w.example")
    signature = cosigner.cosign(SPEC_TEXT, 5)
    huge = (2**63).to_bytes(8, "big") + signature.signature[8:]
    assert not cosigner.verifier.verify(SPEC_TEXT.encode(), huge)
    with pytest.raises(MalformedNote):
        cosigned_message(b"x\n", 2**63)
    with pytest.raises(MalformedNote):
        cosigner.cosign(SPEC_TEXT, 0)


def test_a_witness_key_round_trips_as_a_private_note_key() -> None:
    cosigner = Cosigner.generate("witness.example/w1")
    again = Cosigner.from_private_key(cosigner.private_key())
    assert again.verifier.vkey() == cosigner.verifier.vkey()
    with pytest.raises(MalformedNote, match="signature type"):
        Ed25519Signer.from_private_key(cosigner.private_key())


# --- the add-checkpoint request body ------------------------------------------------------


def test_the_spec_request_body_parses() -> None:
    note = SPEC_TEXT + "\n" + SPEC_LOG_SIGNATURE
    body = ("old 20852014\n" + "".join(p + "\n" for p in SPEC_PROOF) + "\n" + note).encode()
    request = parse_add_checkpoint(body)
    assert request.old_size == 20852014
    assert request.proof == tuple(b64decode(p) for p in SPEC_PROOF)
    assert request.note == note.encode()
    assert parse_note(request.note).text == SPEC_TEXT
    assert format_add_checkpoint(request.old_size, request.proof, request.note) == body


BAD_BODIES = {
    "no old line": b"\n" + SPEC_TEXT.encode(),
    "old without size": b"old \n\n",
    "old leading zero": b"old 01\n\n",
    "Old capitalised": b"Old 1\n\n",
    "two spaces": b"old  1\n\n",
    "short proof hash": b"old 1\nAAAA\n\n",
    "proof not base64": b"old 1\n" + b"!" * 44 + b"\n\n",
    "no blank line": b"old 1\n",
    "64 proof lines": b"old 1\n" + (SPEC_PROOF[0] + "\n").encode() * 64 + b"\n",
    "non-ascii": "old \uff11\n\n".encode(),
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_malformed_request_bodies_are_refused(case: str) -> None:
    with pytest.raises(MalformedNote):
        parse_add_checkpoint(BAD_BODIES[case])


def test_63_proof_lines_are_allowed() -> None:
    body = b"old 1\n" + (SPEC_PROOF[0] + "\n").encode() * 63 + b"\n"
    assert len(parse_add_checkpoint(body).proof) == 63


def test_the_409_size_answer() -> None:
    assert parse_known_size(b"20852014\n") == 20852014
    for bad in (b"12", b"012\n", b"-1\n", b"1 \n"):
        with pytest.raises(MalformedNote):
            parse_known_size(bad)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_request_bodies_parse_or_are_refused_cleanly(body: bytes) -> None:
    try:
        request = parse_add_checkpoint(body)
    except NoteError:
        return
    assert format_add_checkpoint(request.old_size, request.proof, request.note) == body
