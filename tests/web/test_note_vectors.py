"""tests/vectors/notes/notes.json is what `ledger.wire` makes and says: the file is rebuilt
from the Python implementation and must be byte for byte the one the web app's unit tests
read (web/test/checkpoint.test.ts), and each case's recorded outcome is Python's."""

from __future__ import annotations

import base64
import json

from ledger.wire.checkpoints import Checkpoint
from ledger.wire.cosignatures import CosignatureVerifier
from ledger.wire.notes import Ed25519Verifier, Verifiers, open_note
from tests.web import note_vectors


def test_the_vector_file_is_what_ledger_wire_makes() -> None:
    assert note_vectors.PATH.read_text(encoding="utf-8") == note_vectors.render(), (
        "run ./dev python -m tests.web.note_vectors"
    )


def test_the_vectors_cover_every_outcome() -> None:
    document = json.loads(note_vectors.PATH.read_text(encoding="utf-8"))
    outcomes = {case["expect"] for case in document["notes"]}
    assert outcomes == {"ok", "malformed", "invalid", "untrusted"}
    assert {case["expect"] for case in document["checkpoints"]} == {"ok", "malformed"}
    assert {case["expect"] for case in document["vkeys"]} == {"ok", "malformed"}


def test_the_spec_and_go_notes_open_as_recorded() -> None:
    document = json.loads(note_vectors.PATH.read_text(encoding="utf-8"))
    first, second = document["notes"][:2]
    for case in (first, second):
        verifiers = Verifiers(Ed25519Verifier.from_vkey(v["vkey"]) for v in case["verifiers"])
        opened = open_note(base64.b64decode(case["note_b64"]), verifiers)
        assert opened.text == case["text"]
    cosigned = document["cosigned_checkpoint"]
    witnesses = Verifiers(CosignatureVerifier.from_vkey(v) for v in cosigned["witness_vkeys"])
    opened = open_note(cosigned["note"].encode(), witnesses)
    assert [s.name for s in opened.verified] == cosigned["cosigned_by"]
    assert Checkpoint.from_text(opened.text).size == 12
