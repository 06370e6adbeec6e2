"""Key files: a patient's or an identity's private keys as JSON, optionally passphrase-protected.

Identity key file (``"kind": "ehrgate-identity-key"``), version 2::

    {"kind", "version": 2, "id", "role", "secret": {"signing_key": B64 (32),
     "encryption_key": B64 (32, an X-Wing seed)}}

Patient key file (``"kind": "ehrgate-patient-key"``); the patient's identity id is the
pseudonym, and the UII is never written::

    {"kind", "version": 2, "id": PSEUDONYM, "role": "patient", "pseudonym",
     "record_key_version": 2, "secret": {"patient_key": B64 of K, "signing_key": B64,
     "encryption_key": B64}}

A hybrid key made before version 2 (96 expanded bytes, from which no seed can be recovered)
is kept as ``"encryption_key_v1"`` instead of ``"encryption_key"``; a patient registered
with a version 1 record key has ``"record_key_version": 1``. Version 1 files (96-byte
``"encryption_key"``, record key version 1, no ``record_key_version`` field) still load;
`envelope.keyupgrade` rewrites them as version 2.

With a passphrase, "secret" is replaced by ``"encrypted": {"kdf": "scrypt", "n", "r", "p",
"salt": B64 (16), "nonce": B64 (12), "ciphertext": B64}``: AES-256-GCM under the scrypt key,
of the canonical JSON of the secret object, with the canonical JSON of the other top-level
fields as associated data (so id, role, pseudonym or record key version cannot be swapped).

Files are created with mode 0600 through a temporary file in the same directory and a
hard link, so a key file is never seen half-written and never silently replaced.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from envelope.canonical import b64decode, b64encode, canonical_json
from envelope.errors import EnvelopeError, InvalidKeyFile, WrongPassphrase
from envelope.identity import ROLES, IdentityKeys, PublicIdentity, SigningKey
from envelope.kem import V1_PRIVATE_LEN, HybridPrivateKey, HybridPublicKey
from envelope.patient import PATIENT_KEY_LEN, RECORD_KEY_VERSIONS, PatientKey, is_pseudonym
from envelope.xwing import PUBLIC_LEN, SEED_LEN

IDENTITY_KIND = "ehrgate-identity-key"
PATIENT_KIND = "ehrgate-patient-key"
PATIENT_PUBLIC_KIND = "ehrgate-patient-public"
KEY_FILE_VERSION = 2
READABLE_VERSIONS = (1, 2)
PATIENT_PUBLIC_VERSION = 1
# scrypt cost: 128 * r * n bytes = 128 MiB and about half a second per unlock
SCRYPT_N = 2**17
SCRYPT_R = 8
SCRYPT_P = 1
# a key file must not make its reader spend more than 1 GiB or a minute on scrypt
_MAX_SCRYPT_MEMORY = 1024**3
_MAX_SCRYPT_P = 16
_MAX_KEY_FILE_SIZE = 64 * 1024


@dataclass(frozen=True, slots=True)
class PatientKeys:
    """What a patient keeps: K, the pseudonym it makes with the UII, and identity keys.

    *key_generation* counts K's rotations (1: never rotated); while a rotation runs,
    *previous_key* is the K it replaces, which still opens the capsules not yet rewrapped.
    After a rotation the pseudonym is no longer H(K‖UII) of the current K: it stays the
    patient's name on the ledger (envelope.rotation).
    """

    patient_key: PatientKey
    pseudonym: str
    identity: IdentityKeys
    key_generation: int = 1
    previous_key: PatientKey | None = None

    @classmethod
    def generate(cls, uii: dict[str, str]) -> PatientKeys:
        """A new K, its pseudonym for *uii*, and fresh identity keys named by the pseudonym."""
        patient_key = PatientKey.generate()
        pseudonym = patient_key.pseudonym(uii)
        return cls(patient_key, pseudonym, IdentityKeys.generate(pseudonym, "patient"))

    def public(self) -> PatientPublic:
        return PatientPublic(
            self.pseudonym, self.patient_key.record_public_key(), self.identity.public()
        )


@dataclass(frozen=True, slots=True)
class PatientPublic:
    """What others may know of a patient: pseudonym, record public key, public identity.

    JSON form (as `ehrgate keys public` prints it)::

        {"kind": "ehrgate-patient-public", "version": 1, "pseudonym",
         "record_public_key": B64 (1,216 bytes), "identity": PublicIdentity JSON}
    """

    pseudonym: str
    record_public_key: HybridPublicKey
    identity: PublicIdentity

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": PATIENT_PUBLIC_KIND,
            "version": PATIENT_PUBLIC_VERSION,
            "pseudonym": self.pseudonym,
            "record_public_key": b64encode(self.record_public_key.to_bytes()),
            "identity": self.identity.to_json(),
        }

    @classmethod
    def from_json(cls, data: Any) -> PatientPublic:
        if not isinstance(data, dict) or data.get("kind") != PATIENT_PUBLIC_KIND:
            raise EnvelopeError("not a patient's public keys")
        pseudonym = data.get("pseudonym")
        if not is_pseudonym(pseudonym):
            raise EnvelopeError("the pseudonym is not 64 lowercase hexadecimal characters")
        record_key = data.get("record_public_key")
        if not isinstance(record_key, str):
            raise EnvelopeError("record_public_key must be base64 text")
        raw = b64decode(record_key, length=PUBLIC_LEN, what="record_public_key")
        identity = PublicIdentity.from_json(data.get("identity"))
        if identity.id != pseudonym or identity.role != "patient":
            raise EnvelopeError("a patient's identity is named by its pseudonym, role patient")
        return cls(pseudonym, HybridPublicKey(raw), identity)


KeyFileContent = IdentityKeys | PatientKeys


def _public_fields(keys: KeyFileContent) -> dict[str, Any]:
    if isinstance(keys, PatientKeys):
        return {
            "kind": PATIENT_KIND,
            "version": KEY_FILE_VERSION,
            "id": keys.identity.id,
            "role": keys.identity.role,
            "pseudonym": keys.pseudonym,
            "record_key_version": keys.patient_key.record_key_version,
            **_generation_fields(keys),
        }
    return {"kind": IDENTITY_KIND, "version": KEY_FILE_VERSION, "id": keys.id, "role": keys.role}


def _generation_fields(keys: PatientKeys) -> dict[str, int]:
    """Written only once K was rotated (or is being rotated), so other files stay as they were."""
    fields: dict[str, int] = {}
    if keys.key_generation != 1:
        fields["key_generation"] = keys.key_generation
    if keys.previous_key is not None:
        fields["previous_record_key_version"] = keys.previous_key.record_key_version
    return fields


def _secret_fields(keys: KeyFileContent) -> dict[str, str]:
    identity = keys.identity if isinstance(keys, PatientKeys) else keys
    encryption = identity.encryption_key
    secret = {
        "signing_key": b64encode(identity.signing_key.private_bytes()),
        "encryption_key" if encryption.is_seed else "encryption_key_v1": b64encode(
            encryption.private_bytes()
        ),
    }
    if isinstance(keys, PatientKeys):
        secret["patient_key"] = b64encode(keys.patient_key.to_bytes())
        if keys.previous_key is not None:
            secret["previous_patient_key"] = b64encode(keys.previous_key.to_bytes())
    return secret


def _scrypt_key(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def encode_key_file(
    keys: KeyFileContent, *, passphrase: str | None = None, _scrypt_n: int = SCRYPT_N
) -> bytes:
    """The key file's bytes (JSON with a trailing newline)."""
    document: dict[str, Any] = _public_fields(keys)
    secret = _secret_fields(keys)
    if passphrase is None:
        document["secret"] = secret
    else:
        if not passphrase:
            raise EnvelopeError("an empty passphrase protects nothing")
        salt, nonce = os.urandom(16), os.urandom(12)
        key = _scrypt_key(passphrase, salt, _scrypt_n, SCRYPT_R, SCRYPT_P)
        ciphertext = AESGCM(key).encrypt(nonce, canonical_json(secret), canonical_json(document))
        document["encrypted"] = {
            "kdf": "scrypt",
            "n": _scrypt_n,
            "r": SCRYPT_R,
            "p": SCRYPT_P,
            "salt": b64encode(salt),
            "nonce": b64encode(nonce),
            "ciphertext": b64encode(ciphertext),
        }
    return json.dumps(document, indent=2, sort_keys=True).encode("utf-8") + b"\n"


def write_private_file(path: Path, data: bytes, *, overwrite: bool = False) -> None:
    """Write *data* to *path* with mode 0600, atomically; refuse to replace unless asked."""
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} already exists")
    temporary = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)  # fails if path appeared meanwhile: never clobbers
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def write_key_file(
    path: str | os.PathLike[str],
    keys: KeyFileContent,
    *,
    passphrase: str | None = None,
    overwrite: bool = False,
) -> None:
    """Write a key file (mode 0600); FileExistsError if *path* exists and not *overwrite*."""
    write_private_file(
        Path(path), encode_key_file(keys, passphrase=passphrase), overwrite=overwrite
    )


def _field(document: dict[str, Any], name: str, where: str = "the key file") -> Any:
    if name not in document:
        raise InvalidKeyFile(f"{where} has no {name!r} field")
    return document[name]


def _decrypt_secret(document: dict[str, Any], passphrase: str | None, path: str) -> Any:
    if "secret" in document:
        return document.pop("secret")
    encrypted = _field(document, "encrypted")
    document.pop("encrypted")
    if passphrase is None:
        raise InvalidKeyFile(f"{path} is protected by a passphrase; give the passphrase")
    if not isinstance(encrypted, dict) or encrypted.get("kdf") != "scrypt":
        raise InvalidKeyFile(f"{path}: unknown key protection")
    n, r, p = (_field(encrypted, name, "the protection") for name in ("n", "r", "p"))
    if (
        not all(type(v) is int and v > 0 for v in (n, r, p))
        or 128 * n * r > _MAX_SCRYPT_MEMORY
        or p > _MAX_SCRYPT_P
    ):
        raise InvalidKeyFile(f"{path}: scrypt parameters out of range")
    try:
        salt = b64decode(_field(encrypted, "salt"), what="salt")
        nonce = b64decode(_field(encrypted, "nonce"), length=12, what="nonce")
        ciphertext = b64decode(_field(encrypted, "ciphertext"), what="ciphertext")
        key = _scrypt_key(passphrase, salt, n, r, p)
    except (EnvelopeError, ValueError) as exc:
        raise InvalidKeyFile(f"{path}: {exc}") from exc
    try:
        plaintext = AESGCM(key).decrypt(nonce, ciphertext, canonical_json(document))
    except InvalidTag as exc:
        raise WrongPassphrase(
            f"the passphrase does not open {path} (or the file was changed)"
        ) from exc
    return json.loads(plaintext)


def _encryption_key(secret: dict[str, Any], version: int) -> HybridPrivateKey:
    """Version 1: "encryption_key" of 96 bytes. Version 2: "encryption_key", a 32-byte seed,
    or "encryption_key_v1", a key kept from version 1; exactly one of them."""
    if version == 1:
        name, length = "encryption_key", V1_PRIVATE_LEN
    elif ("encryption_key" in secret) == ("encryption_key_v1" in secret):
        raise InvalidKeyFile("the key file needs exactly one of encryption_key, encryption_key_v1")
    elif "encryption_key" in secret:
        name, length = "encryption_key", SEED_LEN
    else:
        name, length = "encryption_key_v1", V1_PRIVATE_LEN
    return HybridPrivateKey(b64decode(_field(secret, name), length=length, what=name))


def _identity(document: dict[str, Any], secret: dict[str, Any], version: int) -> IdentityKeys:
    ident, role = _field(document, "id"), _field(document, "role")
    if not isinstance(ident, str) or not ident or role not in ROLES:
        raise InvalidKeyFile("the key file's id or role is invalid")
    signing = b64decode(_field(secret, "signing_key"), length=32, what="signing_key")
    return IdentityKeys(ident, role, SigningKey(signing), _encryption_key(secret, version))


def _record_key_version(document: dict[str, Any], version: int) -> int:
    if version == 1:
        return 1
    value = _field(document, "record_key_version")
    if type(value) is not int or value not in RECORD_KEY_VERSIONS:
        raise InvalidKeyFile("record_key_version must be 1 or 2")
    return value


def _generation(document: dict[str, Any], secret: dict[str, Any]) -> tuple[int, PatientKey | None]:
    """key_generation (absent: 1) and the previous K of a rotation under way, if any."""
    generation = document.get("key_generation", 1)
    if type(generation) is not int or not 1 <= generation < 2**31:
        raise InvalidKeyFile("key_generation must be a positive integer")
    if "previous_patient_key" not in secret:
        if "previous_record_key_version" in document:
            raise InvalidKeyFile("previous_record_key_version without a previous_patient_key")
        return generation, None
    version = document.get("previous_record_key_version")
    if type(version) is not int or version not in RECORD_KEY_VERSIONS or generation < 2:
        raise InvalidKeyFile("a previous_patient_key needs previous_record_key_version 1 or 2")
    raw = b64decode(
        secret["previous_patient_key"], length=PATIENT_KEY_LEN, what="previous_patient_key"
    )
    return generation, PatientKey(raw, record_key_version=version)


def read_key_file_bytes(path: str | os.PathLike[str]) -> bytes:
    """The bytes of the key file at *path* (InvalidKeyFile if missing, unreadable, too big)."""
    where = os.fspath(path)
    try:
        with open(where, "rb") as handle:
            raw = handle.read(_MAX_KEY_FILE_SIZE + 1)
    except FileNotFoundError as exc:
        raise InvalidKeyFile(f"no key file at {where}") from exc
    except OSError as exc:
        raise InvalidKeyFile(f"cannot read {where}: {exc.strerror}") from exc
    if len(raw) > _MAX_KEY_FILE_SIZE:
        raise InvalidKeyFile(f"{where} is too large to be a key file")
    return raw


def key_file_header(raw: bytes, where: str) -> dict[str, Any]:
    """The parsed key file document, after checking its kind and version."""
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidKeyFile(f"{where} is not JSON, so not an ehrgate key file") from exc
    if not isinstance(document, dict) or document.get("kind") not in (IDENTITY_KIND, PATIENT_KIND):
        raise InvalidKeyFile(
            f"{where} is not an ehrgate key file (public keys cannot open anything)"
        )
    version = document.get("version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        raise InvalidKeyFile(f"{where} has an unsupported key file version")
    return document


def load_key_file(path: str | os.PathLike[str], passphrase: str | None = None) -> KeyFileContent:
    """Read a key file; InvalidKeyFile (or WrongPassphrase) with the reason if it cannot."""
    return parse_key_file(read_key_file_bytes(path), passphrase, os.fspath(path))


def parse_key_file(raw: bytes, passphrase: str | None, where: str) -> KeyFileContent:
    """The keys in a key file's bytes (version 1 or 2); *where* names it in errors."""
    document = key_file_header(raw, where)
    version = document["version"]
    secret = _decrypt_secret(document, passphrase, where)
    if not isinstance(secret, dict):
        raise InvalidKeyFile(f"{where}: the secret part is malformed")
    try:
        identity = _identity(document, secret, version)
        if document["kind"] == IDENTITY_KIND:
            return identity
        pseudonym = _field(document, "pseudonym")
        if not is_pseudonym(pseudonym) or identity.role != "patient":
            raise InvalidKeyFile("the patient key file's pseudonym or role is invalid")
        patient_key = PatientKey(
            b64decode(_field(secret, "patient_key"), length=PATIENT_KEY_LEN, what="patient_key"),
            record_key_version=_record_key_version(document, version),
        )
        generation, previous = _generation(document, secret)
        return PatientKeys(patient_key, pseudonym, identity, generation, previous)
    except InvalidKeyFile as exc:
        raise InvalidKeyFile(f"{where}: {exc}") from exc
    except EnvelopeError as exc:
        raise InvalidKeyFile(f"{where}: {exc}") from exc
