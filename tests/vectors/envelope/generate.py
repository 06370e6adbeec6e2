"""Generate the envelope test vectors in this directory: `python -m tests.vectors.envelope.generate`.

The pseudonym, record-key and body vectors are computed here straight from the
specification in docs/envelope.md, with hashlib and the `cryptography` primitives and a
small JCS encoder of our own, not through the `envelope` package, so that the tests
that recompute them with `envelope` cross-check two implementations. Capsules and key
shares involve HPKE's random encapsulation; those vectors are made with `envelope` once and
the tests check that the stored ciphertexts still open with the stored private keys.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import unicodedata
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

HERE = Path(__file__).parent
SEGMENT = 65536


def plaintext_of(length: int) -> bytes:
    """The vectors' plaintext rule: byte i is i mod 251."""
    return bytes(i % 251 for i in range(length))


def jcs_string(text: str) -> str:
    escapes = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r", '"': '\\"', "\\": "\\\\"}
    out = []
    for char in text:
        if char in escapes:
            out.append(escapes[char])
        elif ord(char) < 0x20:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def jcs_string_map(mapping: dict[str, str]) -> bytes:
    """RFC 8785 for an object of strings: keys in UTF-16 code unit order, no whitespace."""
    keys = sorted(mapping, key=lambda key: key.encode("utf-16-be"))
    members = ",".join(f"{jcs_string(key)}:{jcs_string(mapping[key])}" for key in keys)
    return ("{" + members + "}").encode("utf-8")


def canonical_uii(uii: dict[str, str]) -> bytes:
    return jcs_string_map(
        {key: " ".join(unicodedata.normalize("NFC", value).split()).casefold() for key, value in uii.items()}
    )


def pseudonym(k: bytes, uii: dict[str, str]) -> str:
    return hashlib.sha3_256(b"ehrgate/pseudonym/v1\x00" + k + canonical_uii(uii)).hexdigest()


K1 = bytes(range(32))
K2 = hashlib.sha256(b"ehrgate vector patient key 2").digest()
BASE = {"national_id": "756.1234.5678.97", "birth_date": "1961-04-12", "name": "Ana Müller"}

PSEUDONYM_CASES: list[tuple[str, bytes, dict[str, str]]] = [
    ("ascii and Latin-1 fields", K1, BASE),
    ("the same person under another K", K2, BASE),
    ("NFD name (u + combining diaeresis) equals NFC", K1, {**BASE, "name": "Ana Mu\u0308ller"}),
    ("upper case equals lower case", K1, {**BASE, "name": "ANA MÜLLER"}),
    ("tabs, newlines, repeated and edge spaces collapse", K1, {**BASE, "name": "  Ana \t\n  Müller \r\n"}),
    ("no-break space and ideographic space are whitespace", K1, {**BASE, "name": "Ana\u00a0\u3000Müller"}),
    ("keys in another order", K1, {"name": "Ana Müller", "birth_date": "1961-04-12", "national_id": "756.1234.5678.97"}),
    ("keys are not normalised: Name differs from name", K1, {"national_id": "756.1234.5678.97", "birth_date": "1961-04-12", "Name": "Ana Müller"}),
    ("sharp s case-folds to ss", K1, {"name": "Straße"}),
    ("STRASSE equals Straße", K1, {"name": "STRASSE"}),
    ("final sigma folds to sigma", K1, {"name": "Οδυσσεύς"}),
    ("Greek capitals", K1, {"name": "ΟΔΥΣΣΕΎΣ"}),
    ("Hangul jamo compose under NFC", K1, {"name": "\u1112\u1161\u11ab\u1100\u1173\u11af"}),
    ("precomposed Hangul", K1, {"name": "한글"}),
    ("zero-width space is not whitespace", K1, {"name": "Ana\u200bMüller"}),
    ("keys sort by UTF-16 code units (emoji before U+FB01)", K1, {"\ufb01eld": "a", "\U0001f600": "b", "z": "c"}),
    ("control character is escaped", K1, {"note": "a\x01b"}),
    ("quote and backslash are escaped", K1, {"note": 'say "hi" \\ bye'}),
    ("one field", K1, {"mrn": "A-0001"}),
    ("case folding output is not normalised again (U+01F0 folds to j + U+030C)", K1, {"name": "\u01f0"}),
    ("ligature fi case-folds to itself, NFC keeps it", K1, {"name": "\ufb01le"}),
]

INVALID_UII: list[tuple[str, Any]] = [
    ("empty mapping", {}),
    ("number value", {"mrn": 1}),
    ("null value", {"mrn": None}),
    ("value empty after whitespace collapse", {"mrn": " \t "}),
    ("empty field name", {"": "x"}),
    ("not a mapping", ["mrn", "A-0001"]),
]


def record_key(k: bytes) -> dict[str, str]:
    okm = HKDF(algorithm=hashes.SHA256(), length=96, salt=None, info=b"ehrgate/record-key/v1").derive(k)
    mlkem_public = mlkem.MLKEM768PrivateKey.from_seed_bytes(okm[:64]).public_key().public_bytes_raw()
    x_public = x25519.X25519PrivateKey.from_private_bytes(okm[64:]).public_key().public_bytes_raw()
    return {
        "patient_key": k.hex(),
        "okm": okm.hex(),
        "mlkem768_seed": okm[:64].hex(),
        "x25519_private": okm[64:].hex(),
        "public_key": base64.b64encode(mlkem_public + x_public).decode(),
    }


def seal_body(dek: bytes, salt: bytes, plaintext: bytes) -> tuple[bytes, bytes, bytes]:
    header = b"EHRGBODY" + b"\x01" + salt + SEGMENT.to_bytes(4, "big")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"ehrgate/body/v1").derive(dek)
    aad = hashlib.sha256(header).digest()
    aead = AESGCM(key)
    pieces = [plaintext[i : i + SEGMENT] for i in range(0, len(plaintext), SEGMENT)] or [b""]
    body = [header]
    for counter, piece in enumerate(pieces):
        last = counter == len(pieces) - 1
        nonce = counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")
        body.append(aead.encrypt(nonce, piece, aad))
    return b"".join(body), header, key


BODY_SIZES = [0, 1, 31, SEGMENT - 1, SEGMENT, SEGMENT + 1, 2 * SEGMENT, 2 * SEGMENT + 1, 3 * SEGMENT + 4097]
BODY_INLINE_LIMIT = 64  # bodies of short plaintexts are stored whole; longer ones by SHA-256


def body_vectors() -> list[dict[str, Any]]:
    cases = []
    for index, size in enumerate(BODY_SIZES):
        dek = hashlib.sha256(b"ehrgate vector dek %d" % index).digest()
        salt = hashlib.sha256(b"ehrgate vector salt %d" % index).digest()[:16]
        plaintext = plaintext_of(size)
        body, header, key = seal_body(dek, salt, plaintext)
        case: dict[str, Any] = {
            "plaintext_length": size,
            "dek": dek.hex(),
            "salt": salt.hex(),
            "header": header.hex(),
            "segment_key": key.hex(),
            "aad": hashlib.sha256(header).hexdigest(),
            "plaintext_sha256": hashlib.sha256(plaintext).hexdigest(),
            "body_size": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
        }
        if size <= BODY_INLINE_LIMIT:
            case["body"] = body.hex()
        cases.append(case)
    return cases


def capsule_and_share_vectors() -> tuple[dict[str, Any], dict[str, Any]]:
    # HPKE encapsulation is random: these are made once through the package under test
    from envelope import IdentityKeys, PatientKey, SigningKey, seal_key_share
    from envelope.body import DataKey
    from envelope.kem import HybridPrivateKey
    from envelope.sealer import _seal_with_parts

    patient_key = PatientKey(K1)
    the_pseudonym = patient_key.pseudonym(BASE)
    doctor_key = HybridPrivateKey(hashlib.sha512(b"ehrgate vector doctor").digest()[:64] + bytes(range(32, 64)))
    signer = IdentityKeys(
        "aria-export",
        "system",
        SigningKey(hashlib.sha256(b"ehrgate vector signer").digest()),
        HybridPrivateKey(hashlib.sha512(b"ehrgate vector signer enc").digest()[:64] + bytes(32)),
    )
    dek = hashlib.sha256(b"ehrgate vector capsule dek").digest()
    salt = bytes(range(16))
    meta_nonce = bytes(range(100, 112))
    plaintext = plaintext_of(70000)
    body = io.BytesIO()
    fields = {
        "filename": "treatment-summary.pdf",
        "content_type": "application/pdf",
        "pseudonym": the_pseudonym,
        "category": "radiotherapy",
        "created_at": "2026-01-31T12:00:00Z",
        "uploader_id": "aria-export",
    }
    result = _seal_with_parts(
        io.BytesIO(plaintext),
        body,
        dek=DataKey(dek),
        salt=salt,
        meta_nonce=meta_nonce,
        recipients=[
            (the_pseudonym, patient_key.record_public_key()),
            ("dr-house", doctor_key.public_key()),
        ],
        signer=signer,
        **fields,
    )
    capsule = {
        "description": "a 70,000-byte plaintext sealed to the patient's record key and dr-house",
        "plaintext_length": len(plaintext),
        "patient_key": K1.hex(),
        "doctor_private_key": base64.b64encode(doctor_key.private_bytes()).decode(),
        "signer_signing_key": signer.signing_key.private_bytes().hex(),
        "signer_verify_key": signer.signing_key.verify_key.to_bytes().hex(),
        "dek": dek.hex(),
        "salt": salt.hex(),
        "meta_nonce": meta_nonce.hex(),
        "fields": fields,
        "signer_id": "aria-export",
        "plaintext_sha256": result.plaintext_sha256,
        "body_sha256": result.body_sha256,
        "body_size": result.body_size,
        "capsule": result.capsule.decode("utf-8"),
    }
    share = seal_key_share(
        patient_key, pseudonym=the_pseudonym, grantee_id="dr-house", grantee_key=doctor_key.public_key()
    )
    key_share = {
        "patient_key": K1.hex(),
        "pseudonym": the_pseudonym,
        "grantee_id": "dr-house",
        "grantee_private_key": base64.b64encode(doctor_key.private_bytes()).decode(),
        "info": (b"ehrgate/key-share/v1\x00" + the_pseudonym.encode() + b"\x00dr-house").hex(),
        "share": base64.b64encode(share).decode(),
    }
    return capsule, key_share


def write(name: str, content: Any) -> None:
    (HERE / name).write_text(json.dumps(content, indent=1, ensure_ascii=True) + "\n", encoding="utf-8")


def main() -> None:
    write(
        "pseudonym.json",
        {
            "valid": [
                {
                    "description": description,
                    "patient_key": k.hex(),
                    "uii": uii,
                    "canonical_uii": canonical_uii(uii).decode("utf-8"),
                    "pseudonym": pseudonym(k, uii),
                }
                for description, k, uii in PSEUDONYM_CASES
            ],
            "invalid": [{"description": description, "uii": uii} for description, uii in INVALID_UII],
        },
    )
    write("record_key.json", [record_key(K1), record_key(K2), record_key(bytes(32))])
    write("body.json", {"plaintext_rule": "byte i is i mod 251", "cases": body_vectors()})
    capsule, key_share = capsule_and_share_vectors()
    write("capsule.json", capsule)
    write("key_share.json", key_share)


if __name__ == "__main__":
    main()
