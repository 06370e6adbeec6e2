"""Generate the envelope test vectors in this directory: `python -m tests.vectors.envelope.generate`.

The pseudonym, record-key (versions 1 and 2), X-Wing and body vectors are computed here
straight from the specification in docs/envelope.md and draft-connolly-cfrg-xwing-kem,
with hashlib and the `cryptography` primitives and a small JCS encoder of our own, not
through the `envelope` package, so that the tests that recompute them with `envelope`
cross-check two implementations. Capsules and key shares involve HPKE's random
encapsulation; those vectors are made with `envelope` and the tests check that the stored
ciphertexts still open with the stored private keys. The version 1 ones (capsule.json,
key_share.json, keyfiles/v1-*.key) were made with version 1 keys and are kept as they are
(never rewritten once present): they pin that old keys and files still open.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
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


def record_key_v2(k: bytes) -> dict[str, str]:
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"ehrgate/record-key/v2").derive(k)
    return {"patient_key": k.hex(), "seed": seed.hex(), **xwing_key(seed)}


def xwing_key(seed: bytes) -> dict[str, str]:
    """The X-Wing key pair of a 32-byte seed: SHAKE256(seed, 96) = d ‖ z ‖ X25519 secret."""
    expanded = hashlib.shake_256(seed).digest(96)
    mlkem_public = mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64]).public_key().public_bytes_raw()
    x_public = x25519.X25519PrivateKey.from_private_bytes(expanded[64:]).public_key().public_bytes_raw()
    return {
        "expanded": expanded.hex(),
        "mlkem768_seed": expanded[:64].hex(),
        "x25519_private": expanded[64:].hex(),
        "public_key": base64.b64encode(mlkem_public + x_public).decode(),
    }


XWING_LABEL = bytes.fromhex("5c2e2f2f5e5c")  # the six ASCII characters \./ /^\


def xwing_vector(seed: bytes) -> dict[str, str]:
    """Key pair plus one (random) encapsulation: ciphertext and shared secret."""
    key = xwing_key(seed)
    public = base64.b64decode(key["public_key"])
    ephemeral = x25519.X25519PrivateKey.generate()
    ct_x = ephemeral.public_key().public_bytes_raw()
    ss_x = ephemeral.exchange(x25519.X25519PublicKey.from_public_bytes(public[1184:]))
    ss_m, ct_m = mlkem.MLKEM768PublicKey.from_public_bytes(public[:1184]).encapsulate()
    shared = hashlib.sha3_256(ss_m + ss_x + ct_x + public[1184:] + XWING_LABEL).digest()
    return {"seed": seed.hex(), **key, "ciphertext": (ct_m + ct_x).hex(), "shared_secret": shared.hex()}


SCOPED_CATEGORIES = ["lab-results", "treatment-summary"]
SCOPED_PERIODS = ["2026-01", "2026-02", "2028-02", "2026-12", "9999-12"]
SHARE_SCOPE = [
    ("lab-results", "2026-01"),
    ("lab-results", "2026-02"),
    ("treatment-summary", "2026-02"),
]


def scoped_seed(k: bytes, category: str, period: str) -> bytes:
    info = b"ehrgate/scoped-key/v2/month" + b"\x00" + category.encode() + b"\x00" + period.encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(k)


def scoped_vectors() -> dict[str, Any]:
    """Month keys, a scoped share and a version 2 capsule sealed to a month key."""
    from envelope import IdentityKeys, PatientKey, SigningKey
    from envelope.body import DataKey
    from envelope.kem import HybridPrivateKey
    from envelope.sealer import _seal_with_parts

    keys = [
        {"patient_key": K1.hex(), "category": category, "period": period,
         "key_id": f"scoped-v2/{category}/{period}",
         "seed": scoped_seed(K1, category, period).hex(),
         "public_key": xwing_key(scoped_seed(K1, category, period))["public_key"]}
        for category in SCOPED_CATEGORIES
        for period in SCOPED_PERIODS
    ]  # fmt: skip
    patient_key = PatientKey(K1)
    the_pseudonym = patient_key.pseudonym({"mrn": "A-0001"})
    doctor = HybridPrivateKey(bytes(range(100, 132)))
    document = {  # JCS of ASCII text and small integers: sorted keys, no spaces
        "format": "ehrgate-scoped-seeds", "grantee_id": "dr-house", "pseudonym": the_pseudonym,
        "seeds": [{"category": c, "period": p, "seed": base64.b64encode(scoped_seed(K1, c, p)).decode()}
                  for c, p in SHARE_SCOPE],
        "version": 2,
    }  # fmt: skip
    plaintext = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    info = b"ehrgate/key-share/v2\x00" + the_pseudonym.encode() + b"\x00dr-house"
    share = {
        "pseudonym": the_pseudonym, "grantee_id": "dr-house", "scope": [list(x) for x in SHARE_SCOPE],
        "grantee_private_key": base64.b64encode(doctor.private_bytes()).decode(),
        "info": info.hex(), "plaintext": plaintext.decode(),
        "share": base64.b64encode(doctor.public_key().seal(plaintext, info=info)).decode(),
    }  # fmt: skip
    created_at = "2026-02-28T23:59:59Z"
    month_key = HybridPrivateKey(scoped_seed(K1, "lab-results", created_at[:7]))
    signer = IdentityKeys(
        "aria-export", "system", SigningKey(bytes(range(32, 64))), HybridPrivateKey(bytes(32))
    )
    result = _seal_with_parts(
        io.BytesIO(plaintext_of(1000)), io.BytesIO(), dek=DataKey(bytes(range(64, 96))),
        salt=bytes(range(16)), meta_nonce=bytes(range(12)),
        recipients=[(the_pseudonym, month_key.public_key()), ("dr-house", doctor.public_key())],
        filename="cbc.pdf", content_type="application/pdf", pseudonym=the_pseudonym,
        category="lab-results", created_at=created_at, uploader_id="aria-export", signer=signer,
        scoped=True,
    )  # fmt: skip
    capsule = {
        "pseudonym": the_pseudonym, "category": "lab-results", "created_at": created_at,
        "key_id": "scoped-v2/lab-results/2026-02", "plaintext_length": 1000,
        "doctor_private_key": base64.b64encode(doctor.private_bytes()).decode(),
        "capsule": result.capsule.decode(),
    }  # fmt: skip
    return {"keys": keys, "share": share, "capsule": capsule}


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


def doctor_key_bytes(version: int) -> bytes:
    if version == 1:  # 96 expanded bytes, as version 1 made every hybrid key
        return hashlib.sha512(b"ehrgate vector doctor").digest()[:64] + bytes(range(32, 64))
    return hashlib.sha256(b"ehrgate vector doctor seed").digest()


def capsule_and_share_vectors(version: int) -> tuple[dict[str, Any], dict[str, Any]]:
    # HPKE encapsulation is random: these are made through the package under test
    from envelope import IdentityKeys, PatientKey, SigningKey, seal_key_share
    from envelope.body import DataKey
    from envelope.kem import HybridPrivateKey
    from envelope.sealer import _seal_with_parts

    patient_key = PatientKey(K1, record_key_version=version)
    the_pseudonym = patient_key.pseudonym(BASE)
    doctor_key = HybridPrivateKey(doctor_key_bytes(version))
    signer = IdentityKeys(
        "aria-export",
        "system",
        SigningKey(hashlib.sha256(b"ehrgate vector signer").digest()),
        HybridPrivateKey(hashlib.sha256(b"ehrgate vector signer enc").digest()),
    )
    dek = hashlib.sha256(b"ehrgate vector capsule dek").digest()
    salt = bytes(range(16))
    meta_nonce = bytes(range(100, 112))
    plaintext = plaintext_of(70000)
    body = io.BytesIO()
    fields: dict[str, Any] = {
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
        "description": f"a 70,000-byte plaintext sealed to the patient's record key and dr-house (version {version} keys)",
        "key_version": version,
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
        "key_version": version,
        "record_public_key": base64.b64encode(patient_key.record_public_key().to_bytes()).decode(),
        "patient_key": K1.hex(),
        "pseudonym": the_pseudonym,
        "grantee_id": "dr-house",
        "grantee_private_key": base64.b64encode(doctor_key.private_bytes()).decode(),
        "info": (b"ehrgate/key-share/v1\x00" + the_pseudonym.encode() + b"\x00dr-house").hex(),
        "share": base64.b64encode(share).decode(),
    }
    return capsule, key_share


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


KEYFILE_SCRYPT_N = 2**10  # cheap, for tests; real files use 2**17
PASSPHRASE = "vector passphrase"


def v1_key_file(kind: str, public: dict[str, Any], secret: dict[str, str], protect: bool) -> bytes:
    """A key file exactly as version 1 wrote it (built here by hand, from the spec)."""
    document: dict[str, Any] = {"kind": kind, "version": 1, **public}
    if not protect:
        document["secret"] = secret
    else:
        from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

        salt, nonce = hashlib.sha256(b"vector salt " + kind.encode()).digest()[:16], bytes(12)
        key = Scrypt(salt=salt, length=32, n=KEYFILE_SCRYPT_N, r=8, p=1).derive(PASSPHRASE.encode())
        # the fields are ASCII strings and small integers, for which sorted compact JSON is JCS
        aad = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
        ciphertext = AESGCM(key).encrypt(nonce, jcs_string_map(secret), aad)
        document["encrypted"] = {"kdf": "scrypt", "n": KEYFILE_SCRYPT_N, "r": 8, "p": 1, "salt": b64(salt), "nonce": b64(nonce), "ciphertext": b64(ciphertext)}
    return json.dumps(document, indent=2, sort_keys=True).encode() + b"\n"


def write_key_files() -> None:
    """Version 1 key files (kept once made) and version 2 ones, from the vectors' keys."""
    folder = HERE / "keyfiles"
    folder.mkdir(exist_ok=True)
    doctor_signing = hashlib.sha256(b"ehrgate vector doctor signing").digest()
    patient_signing = hashlib.sha256(b"ehrgate vector patient signing").digest()
    patient_enc_v1 = hashlib.sha512(b"ehrgate vector patient enc").digest()[:64] + bytes(32)
    the_pseudonym = pseudonym(K1, BASE)
    doctor_public = {"id": "dr-house", "role": "clinician"}
    patient_public = {"id": the_pseudonym, "role": "patient", "pseudonym": the_pseudonym}
    v1_doctor = {"signing_key": b64(doctor_signing), "encryption_key": b64(doctor_key_bytes(1))}
    v1_patient = {"patient_key": b64(K1), "signing_key": b64(patient_signing), "encryption_key": b64(patient_enc_v1)}
    files = {
        "v1-identity.key": v1_key_file("ehrgate-identity-key", doctor_public, v1_doctor, False),
        "v1-identity-protected.key": v1_key_file("ehrgate-identity-key", doctor_public, v1_doctor, True),
        "v1-patient.key": v1_key_file("ehrgate-patient-key", patient_public, v1_patient, False),
        "v1-patient-protected.key": v1_key_file("ehrgate-patient-key", patient_public, v1_patient, True),
    }
    for name, data in files.items():
        if not (folder / name).exists():
            (folder / name).write_bytes(data)
    v2_doctor = {"signing_key": b64(doctor_signing), "encryption_key": b64(doctor_key_bytes(2))}
    patient_seed = hashlib.sha256(b"ehrgate vector patient enc seed").digest()
    v2_patient = {"patient_key": b64(K1), "signing_key": b64(patient_signing), "encryption_key": b64(patient_seed)}
    v2_files = {
        "v2-identity.key": ({"kind": "ehrgate-identity-key", "version": 2, **doctor_public}, v2_doctor),
        "v2-patient.key": (
            {"kind": "ehrgate-patient-key", "version": 2, **patient_public, "record_key_version": 2},
            v2_patient,
        ),
    }
    for name, (document, secret) in v2_files.items():
        (folder / name).write_bytes(json.dumps({**document, "secret": secret}, indent=2, sort_keys=True).encode() + b"\n")
    expected = {
        "passphrase": PASSPHRASE,
        "doctor_public_key_v1": xwing_public_of_expanded(doctor_key_bytes(1)),
        "doctor_public_key_v2": xwing_key(doctor_key_bytes(2))["public_key"],
        "patient_identity_public_key_v1": xwing_public_of_expanded(patient_enc_v1),
        "patient_identity_public_key_v2": xwing_key(patient_seed)["public_key"],
        "record_public_key_v1": record_key(K1)["public_key"],
        "record_public_key_v2": record_key_v2(K1)["public_key"],
        "pseudonym": the_pseudonym,
    }
    write("keyfiles/expected.json", expected)


def xwing_public_of_expanded(expanded: bytes) -> str:
    mlkem_public = mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64]).public_key().public_bytes_raw()
    x_public = x25519.X25519PrivateKey.from_private_bytes(expanded[64:]).public_key().public_bytes_raw()
    return base64.b64encode(mlkem_public + x_public).decode()


def study_vector(k: bytes, study_id: str) -> dict[str, Any]:
    """A patient's study secret, pseudonym and day offset (docs/envelope.md, "Study
    pseudonyms"), with HKDF and HMAC only."""
    info = b"ehrgate/study/v1\x00" + study_id.encode("utf-8")
    secret = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(k)
    pseudonym = hmac.new(secret, b"ehrgate/study-pseudonym/v1", hashlib.sha256).hexdigest()
    shift = hmac.new(secret, b"ehrgate/study-date-shift/v1", hashlib.sha256).digest()
    d = int.from_bytes(shift[:8], "big") % 730
    return {
        "patient_key": b64(k),
        "study_id": study_id,
        "study_secret": b64(secret),
        "study_pseudonym": pseudonym,
        "day_offset": d - 365 if d < 365 else d - 364,
    }


def study_vectors() -> dict[str, Any]:
    """Study pseudonyms of two patients in three studies, and one study secret sealed to a
    grantee (HPKE is randomised: made with `envelope`, checked by opening)."""
    from envelope import HybridPrivateKey, StudySecret, seal_study_secret

    cases = [study_vector(k, s) for k in (K1, K2) for s in ("onco-2031", "cardio-7", "é-ü")]
    grantee = HybridPrivateKey(doctor_key_bytes(2))
    pseudonym = hashlib.sha3_256(b"ehrgate/pseudonym/v1\x00" + K1 + canonical_uii(BASE)).hexdigest()
    secret = StudySecret(cases[0]["study_id"], base64.b64decode(cases[0]["study_secret"]))
    sealed = seal_study_secret(
        secret, pseudonym=pseudonym, grantee_id="dr-yang", grantee_key=grantee.public_key()
    )
    return {
        "cases": cases,
        "sealed": {
            "pseudonym": pseudonym,
            "grantee_id": "dr-yang",
            "study_id": cases[0]["study_id"],
            "grantee_private_key": b64(doctor_key_bytes(2)),
            "sealed_secret": b64(sealed),
            "study_secret": cases[0]["study_secret"],
            "study_pseudonym": cases[0]["study_pseudonym"],
        },
    }


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
    write("record_key_v2.json", [record_key_v2(K1), record_key_v2(K2), record_key_v2(bytes(32))])
    seeds = [bytes(32), bytes(range(32)), hashlib.sha256(b"ehrgate vector x-wing seed").digest()]
    write("xwing.json", [xwing_vector(seed) for seed in seeds])
    write("scoped_key.json", scoped_vectors())
    if not (HERE / "study.json").exists():  # its sealed secret is randomised: kept once made
        write("study.json", study_vectors())
    write("body.json", {"plaintext_rule": "byte i is i mod 251", "cases": body_vectors()})
    if not (HERE / "capsule.json").exists() or not (HERE / "key_share.json").exists():
        capsule, key_share = capsule_and_share_vectors(1)
        write("capsule.json", capsule)
        write("key_share.json", key_share)
    capsule, key_share = capsule_and_share_vectors(2)
    write("capsule_v2.json", capsule)
    write("key_share_v2.json", key_share)
    write_key_files()


if __name__ == "__main__":
    main()
