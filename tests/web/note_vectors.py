"""The signed-note, checkpoint and cosignature vectors both implementations are held to.

`tests/vectors/notes/notes.json` is made by the Python implementation (`ledger.wire`):
the C2SP spec's example note, the Go implementation's PeterNeumann note, a checkpoint
signed by a log and cosigned by witnesses (fixed seeds and times, so the bytes are fixed),
and cases that break each rule, each with the outcome `ledger.wire` gives. The web app's
unit tests (web/test/checkpoint.test.ts) must give the same outcome for every case;
`tests/web/test_note_vectors.py` checks that this file is what the Python side makes.

    ./dev python -m tests.web.note_vectors     # writes the file again
"""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path
from typing import Any

from envelope import SigningKey, b64decode, b64encode
from ledger.errors import InvalidNoteSignature, MalformedNote, UntrustedNote
from ledger.wire.checkpoints import MAX_TREE_SIZE, Checkpoint, open_checkpoint
from ledger.wire.cosignatures import CosignatureVerifier, Cosigner
from ledger.wire.notes import (
    Ed25519Signer,
    Ed25519Verifier,
    Note,
    NoteSignature,
    Verifiers,
    open_note,
)

PATH = Path(__file__).resolve().parents[1] / "vectors" / "notes" / "notes.json"

SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXpp"
    "zi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6"
    "KE6RyyBwJnAM=\n"
)
ORIGIN = "hospital-a.example/ehrgate"
ROOT = bytes(range(32))
TIMES = (1_700_000_000, 1_700_000_001, 1_700_000_002)


def _seed(label: str) -> SigningKey:
    return SigningKey(bytes([len(label)]) * 16 + label.encode().ljust(16, b".")[:16])


LOG = Ed25519Signer(ORIGIN, _seed("log"))
WITNESSES = [Cosigner(f"witness-{i}.example", _seed(f"witness-{i}")) for i in range(4)]
STRANGER = Ed25519Signer("stranger.example", _seed("stranger"))


def _outcome(note: bytes, vkeys: list[tuple[str, str]]) -> dict[str, Any]:
    verifiers = Verifiers(
        Ed25519Verifier.from_vkey(v) if kind == "ed25519" else CosignatureVerifier.from_vkey(v)
        for kind, v in vkeys
    )
    try:
        opened = open_note(note, verifiers)
    except MalformedNote:
        return {"expect": "malformed"}
    except InvalidNoteSignature:
        return {"expect": "invalid"}
    except UntrustedNote:
        return {"expect": "untrusted"}
    return {
        "expect": "ok",
        "text": opened.text,
        "verified": [s.name for s in opened.verified],
        "unverified": len(opened.unverified),
    }


def _case(name: str, note: bytes, vkeys: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "name": name,
        "note_b64": base64.b64encode(note).decode(),
        "verifiers": [{"kind": kind, "vkey": vkey} for kind, vkey in vkeys],
        **_outcome(note, vkeys),
    }


def _with_signature(signature: NoteSignature, raw: bytes) -> str:
    return f"— {signature.name} {b64encode(signature.key_id + raw)}\n"


def _cosigned() -> tuple[str, bytes, list[tuple[str, str]]]:
    text = Checkpoint(ORIGIN, 12, ROOT).text()
    lines = [LOG.sign(text)] + [
        w.cosign(text, t) for w, t in zip(WITNESSES[:3], TIMES, strict=True)
    ]
    note = Note(text, tuple(lines)).to_bytes()
    trusted = [("ed25519", LOG.verifier.vkey())] + [
        ("cosignature", w.verifier.vkey()) for w in WITNESSES
    ]
    return text, note, trusted


def note_cases() -> list[dict[str, Any]]:
    text, cosigned, trusted = _cosigned()
    witnesses = [v for v in trusted if v[0] == "cosignature"]
    log = trusted[:1]
    peter = [("ed25519", PETER_VKEY)]
    spec = [("ed25519", SPEC_VKEY)]
    peter_note = (PETER_TEXT + "\n" + PETER_SIG).encode()
    stranger_line = STRANGER.sign(PETER_TEXT).line()
    raw = b64decode(PETER_SIG.split(" ")[2].strip())
    flipped = f"— PeterNeumann {b64encode(raw[:10] + bytes([raw[10] ^ 1]) + raw[11:])}\n"
    w0 = WITNESSES[0]
    late = w0.cosign(text, 1)
    too_late = NoteSignature(
        late.name, late.key_id, (2**63).to_bytes(8, "big") + late.signature[8:]
    )
    short = NoteSignature(late.name, late.key_id, late.signature[:-1])
    bom_text = "\ufeffbyte order mark\n"
    cases = [
        _case("the spec's example note", SPEC_NOTE.encode(), spec),
        _case("the Go implementation's note", peter_note, peter),
        _case("a checkpoint's log signature", cosigned, log),
        _case("a checkpoint's cosignatures, three of four trusted", cosigned, witnesses),
        _case("log and witnesses together", cosigned, trusted),
        _case(
            "witness keys read as Ed25519 keys are unknown keys",
            cosigned,
            [("ed25519", Ed25519Verifier(w.name, w.key.verify_key).vkey()) for w in WITNESSES],
        ),
        _case(
            "an unknown signature is ignored",
            (PETER_TEXT + "\n" + stranger_line + PETER_SIG).encode(),
            peter,
        ),
        _case("only unknown signatures", (PETER_TEXT + "\n" + stranger_line).encode(), peter),
        _case(
            "a failing known signature rejects",
            (PETER_TEXT + "\n" + PETER_SIG + flipped).encode(),
            peter,
        ),
        _case(
            "a changed text",
            (PETER_TEXT.replace("answer", "answers") + "\n" + PETER_SIG).encode(),
            peter,
        ),
        _case("a repeated line counts once", (PETER_TEXT + "\n" + PETER_SIG * 3).encode(), peter),
        _case(
            "100 signature lines",
            (PETER_TEXT + "\n" + stranger_line * 99 + PETER_SIG).encode(),
            peter,
        ),
        _case(
            "101 signature lines",
            (PETER_TEXT + "\n" + stranger_line * 100 + PETER_SIG).encode(),
            peter,
        ),
        _case(
            "a hyphen for the em dash",
            (PETER_TEXT + "\n" + PETER_SIG.replace("—", "-")).encode(),
            peter,
        ),
        _case(
            "an en dash for the em dash",
            (PETER_TEXT + "\n" + PETER_SIG.replace("—", "\u2013")).encode(),
            peter,
        ),
        _case(
            "two spaces after the dash",
            (PETER_TEXT + "\n" + PETER_SIG.replace("— ", "—  ")).encode(),
            peter,
        ),
        _case(
            "base64 without padding",
            (PETER_TEXT + "\n" + PETER_SIG.replace("=\n", "\n")).encode(),
            peter,
        ),
        _case(
            "base64 with non-zero unused bits",
            (PETER_TEXT + "\n" + PETER_SIG.replace("AM=", "AN=")).encode(),
            peter,
        ),
        _case("no blank line", (PETER_TEXT + PETER_SIG).encode(), peter),
        _case(
            "no newline after the signature", (PETER_TEXT + "\n" + PETER_SIG[:-1]).encode(), peter
        ),
        _case("an empty signature block", (PETER_TEXT + "\n").encode(), peter),
        _case(
            "a carriage return",
            (PETER_TEXT.replace("\n", "\r\n", 1) + "\n" + PETER_SIG).encode(),
            peter,
        ),
        _case("a tab", (PETER_TEXT.replace(" ", "\t", 1) + "\n" + PETER_SIG).encode(), peter),
        _case("invalid UTF-8", b"\xff" + (PETER_TEXT + "\n" + PETER_SIG).encode(), peter),
        _case(
            "a byte order mark is part of the text",
            Note(bom_text, (STRANGER.sign(bom_text),)).to_bytes(),
            [("ed25519", STRANGER.verifier.vkey())],
        ),
        _case(
            "a key name with a plus",
            (
                PETER_TEXT + "\n" + stranger_line.replace("stranger.example", "a+b") + PETER_SIG
            ).encode(),
            peter,
        ),
        _case(
            "a key name with a no-break space",
            (
                PETER_TEXT
                + "\n"
                + stranger_line.replace("stranger.example", "a\u00a0b")
                + PETER_SIG
            ).encode(),
            peter,
        ),
        _case(
            "a signature of four bytes",
            (PETER_TEXT + "\n— PeterNeumann x08gow==\n").encode(),
            peter,
        ),
        _case(
            "a cosignature timestamp of 2^63",
            Note(text, (LOG.sign(text), too_late)).to_bytes(),
            [*log, witnesses[0]],
        ),
        _case(
            "a cosignature one byte short",
            Note(text, (LOG.sign(text), short)).to_bytes(),
            [*log, witnesses[0]],
        ),
        _case(
            "a cosignature made at time 1", Note(text, (LOG.sign(text), late)).to_bytes(), witnesses
        ),
        _case(
            "a cosignature over another time",
            Note(
                text,
                (
                    NoteSignature(
                        late.name, late.key_id, (2).to_bytes(8, "big") + late.signature[8:]
                    ),
                ),
            ).to_bytes(),
            witnesses,
        ),
        _case(
            "the same name under another key ID is an unknown key",
            (
                PETER_TEXT
                + "\n"
                + Ed25519Signer("PeterNeumann", _seed("impostor")).sign(PETER_TEXT).line()
                + PETER_SIG
            ).encode(),
            peter,
        ),
    ]
    rng = random.Random(17)
    for index in sorted(rng.sample(range(len(cosigned)), 60)):
        for value in (cosigned[index] ^ (1 << rng.randrange(8)), rng.randrange(256)):
            mutated = cosigned[:index] + bytes([value]) + cosigned[index + 1 :]
            if mutated != cosigned:
                cases.append(
                    _case(
                        f"byte {index} of the cosigned checkpoint set to {value}", mutated, trusted
                    )
                )
    return cases


def checkpoint_cases() -> list[dict[str, Any]]:
    texts = [
        f"{ORIGIN}\n12\n{b64encode(ROOT)}\n",
        f"{ORIGIN}\n0\n{b64encode(ROOT)}\n",
        f"{ORIGIN}\n{MAX_TREE_SIZE}\n{b64encode(ROOT)}\n",
        f"{ORIGIN}\n{MAX_TREE_SIZE + 1}\n{b64encode(ROOT)}\n",
        f"{ORIGIN}\n012\n{b64encode(ROOT)}\n",
        f"{ORIGIN}\n+12\n{b64encode(ROOT)}\n",
        f"{ORIGIN}\n1 2\n{b64encode(ROOT)}\n",
        f"{ORIGIN}\n12\n{b64encode(ROOT[:31])}\n",
        f"{ORIGIN}\n12\n{b64encode(ROOT)[:-1]}\n",
        f"{ORIGIN}\n12\n{b64encode(ROOT)}\nextension one\nextension two\n",
        f"{ORIGIN}\n12\n{b64encode(ROOT)}\n\nextension\n",
        f"{ORIGIN}\n12\n{b64encode(ROOT)}",
        f"{ORIGIN}\n12\n",
        f"\n12\n{b64encode(ROOT)}\n",
        f"{ORIGIN}\n\u0661\u0662\n{b64encode(ROOT)}\n",
    ]
    out: list[dict[str, Any]] = []
    for text in texts:
        try:
            checkpoint = Checkpoint.from_text(text)
        except MalformedNote:
            out.append({"text": text, "expect": "malformed"})
            continue
        out.append(
            {
                "text": text,
                "expect": "ok",
                "origin": checkpoint.origin,
                "size": str(checkpoint.size),
                "root_hex": checkpoint.root.hex(),
                "extensions": list(checkpoint.extensions),
                "formatted": checkpoint.text(),
            }
        )
    return out


def vkey_cases() -> list[dict[str, Any]]:
    good = [("ed25519", PETER_VKEY), ("ed25519", SPEC_VKEY), ("ed25519", LOG.verifier.vkey())]
    good += [("cosignature", w.verifier.vkey()) for w in WITNESSES]
    out = []
    for kind, vkey in good:
        mangled = {vkey[:i] + vkey[i + 1 :] for i in range(0, len(vkey), 3)}
        mangled |= {
            vkey[:i] + chr(ord(c) + 1) + vkey[i + 1 :] for i, c in enumerate(vkey) if i % 3 == 1
        }
        mangled.add(f"  {vkey}\n")
        for text in [vkey, *sorted(mangled)]:
            cls = Ed25519Verifier if kind == "ed25519" else CosignatureVerifier
            try:
                verifier = cls.from_vkey(text)
            except MalformedNote:
                out.append({"kind": kind, "vkey": text, "expect": "malformed"})
                continue
            out.append(
                {
                    "kind": kind,
                    "vkey": text,
                    "expect": "ok",
                    "name": verifier.name,
                    "key_id": verifier.key_id.hex(),
                    "formatted": verifier.vkey(),
                }
            )
    return out


def cosigned_checkpoint() -> dict[str, Any]:
    text, note, _trusted = _cosigned()
    opened = open_checkpoint(note, Verifiers([LOG.verifier]))
    assert opened[0].size == 12
    return {
        "note": note.decode(),
        "log_vkey": LOG.verifier.vkey(),
        "witness_vkeys": [w.verifier.vkey() for w in WITNESSES],
        "cosigned_by": [w.name for w in WITNESSES[:3]],
        "times": list(TIMES),
        "cosigned_message_of_first": base64.b64encode(
            b"cosignature/v1\ntime %d\n" % TIMES[0] + text.encode()
        ).decode(),
    }


def build() -> dict[str, Any]:
    return {
        "about": "made by tests/web/note_vectors.py from ledger.wire; outcomes are ledger.wire's",
        "cosigned_checkpoint": cosigned_checkpoint(),
        "notes": note_cases(),
        "checkpoints": checkpoint_cases(),
        "vkeys": vkey_cases(),
    }


def render() -> str:
    return json.dumps(build(), indent=1, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    PATH.parent.mkdir(parents=True, exist_ok=True)
    PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {PATH}")
