"""Recovery shares: a patient key file split into SLIP-39 mnemonic shares, k of n.

What is split (the *backup secret*) is everything a patient key file holds, because each
part is needed and none can be found again from the others:

- K, which opens the patient's records and derives its record and scoped keys;
- the pseudonym, which is H(K‖UII): without it, restoring would need the exact
  identifying fields and their field names the file was made with;
- the identity keys (Ed25519 signing and hybrid encryption), which are random, never
  derived from K: without them the restored patient could open records but could not
  log in, grant or revoke, since the ledger knows the patient by these keys.

The secret is bytes, laid out as::

    format (1 byte, 1) ‖ flags (1 byte) ‖ K (32) ‖ pseudonym (32) ‖ signing key (32) ‖
    encryption key (32, an X-Wing seed; or 96, a key kept from version 1) ‖
    check (4: the first bytes of SHA-256("ehrgate/backup/v1" ‖ 0x00 ‖ all before))

Flags: bit 0, the record key is derived the version 1 way; bit 1, the encryption key is a
96-byte version 1 key. Both lengths (134 or 198 bytes) are even, as SLIP-39 requires.

The shares are made and combined by the `shamir-mnemonic` library (the SLIP-0039 reference
implementation): one group, member threshold k of n members, 2 ≤ k ≤ n ≤ 16. A SLIP-39
passphrase, if given, encrypts the secret inside the shares. SLIP-39 itself cannot tell a
wrong passphrase from a right one (any passphrase yields some secret); the check bytes can,
so a wrong passphrase is reported, not turned into a key file of random keys.

A restored file has the same pseudonym, K and identity keys as the one backed up. A backup
made before the patient's identity keys were rotated restores the keys of that time: make
a new backup after a rotation.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import shamir_mnemonic  # type: ignore[import-untyped]
from shamir_mnemonic.share import Share  # type: ignore[import-untyped]

from envelope.errors import InvalidBackup
from envelope.identity import IdentityKeys, SigningKey
from envelope.kem import V1_PRIVATE_LEN, HybridPrivateKey
from envelope.keyfile import PatientKeys
from envelope.patient import PATIENT_KEY_LEN, PatientKey
from envelope.xwing import SEED_LEN

BACKUP_FORMAT = 1
MAX_SHARES = 16
_FLAG_RECORD_KEY_V1 = 0x01
_FLAG_ENCRYPTION_KEY_V1 = 0x02
_CHECK_DOMAIN = b"ehrgate/backup/v1"
_CHECK_LEN = 4
_PSEUDONYM_LEN = 32
_SIGNING_LEN = 32


@dataclass(frozen=True, slots=True)
class BackupShares:
    """The mnemonic shares of one backup: any *threshold* of them restore the key file."""

    threshold: int
    mnemonics: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.mnemonics)


def _check(data: bytes) -> bytes:
    return hashlib.sha256(_CHECK_DOMAIN + b"\x00" + data).digest()[:_CHECK_LEN]


def backup_secret(keys: PatientKeys) -> bytes:
    """The bytes a backup splits: K, pseudonym, identity keys, flags and a check."""
    encryption = keys.identity.encryption_key
    flags = 0
    if keys.patient_key.record_key_version == 1:
        flags |= _FLAG_RECORD_KEY_V1
    if not encryption.is_seed:
        flags |= _FLAG_ENCRYPTION_KEY_V1
    data = (
        bytes([BACKUP_FORMAT, flags])
        + keys.patient_key.to_bytes()
        + bytes.fromhex(keys.pseudonym)
        + keys.identity.signing_key.private_bytes()
        + encryption.private_bytes()
    )
    return data + _check(data)


def keys_from_secret(secret: bytes) -> PatientKeys:
    """The patient keys a backup secret holds (InvalidBackup if it is not one)."""
    if len(secret) < 2 or secret[0] != BACKUP_FORMAT:
        raise InvalidBackup(
            "the shares combine to something that is not an ehrgate patient key backup; "
            "the SLIP-39 passphrase is probably wrong"
        )
    flags = secret[1]
    encryption_len = V1_PRIVATE_LEN if flags & _FLAG_ENCRYPTION_KEY_V1 else SEED_LEN
    expected = 2 + PATIENT_KEY_LEN + _PSEUDONYM_LEN + _SIGNING_LEN + encryption_len + _CHECK_LEN
    body, check = secret[:-_CHECK_LEN], secret[-_CHECK_LEN:]
    if (
        flags & ~(_FLAG_RECORD_KEY_V1 | _FLAG_ENCRYPTION_KEY_V1)
        or len(secret) != expected
        or not hmac.compare_digest(check, _check(body))
    ):
        raise InvalidBackup(
            "the shares combine to something that is not an ehrgate patient key backup; "
            "the SLIP-39 passphrase is probably wrong"
        )
    at = 2
    parts = []
    for length in (PATIENT_KEY_LEN, _PSEUDONYM_LEN, _SIGNING_LEN, encryption_len):
        parts.append(body[at : at + length])
        at += length
    raw_k, raw_pseudonym, signing, encryption = parts
    pseudonym = raw_pseudonym.hex()
    record_key_version = 1 if flags & _FLAG_RECORD_KEY_V1 else 2
    identity = IdentityKeys(pseudonym, "patient", SigningKey(signing), HybridPrivateKey(encryption))
    return PatientKeys(
        PatientKey(raw_k, record_key_version=record_key_version), pseudonym, identity
    )


def _passphrase_bytes(passphrase: str | None) -> bytes:
    if passphrase is None:
        return b""
    if not passphrase:
        raise InvalidBackup("an empty SLIP-39 passphrase protects nothing; give none instead")
    if any(not 32 <= ord(c) <= 126 for c in passphrase):
        raise InvalidBackup("a SLIP-39 passphrase is printable ASCII (space to ~) only")
    return passphrase.encode("ascii")


def split_keys(
    keys: PatientKeys, *, threshold: int, shares: int, passphrase: str | None = None
) -> BackupShares:
    """Split *keys* into *shares* SLIP-39 mnemonics, any *threshold* of which restore them."""
    if not isinstance(keys, PatientKeys):
        raise InvalidBackup(
            "only a patient key file is backed up in shares; an identity key file is "
            "replaced by enrolling new keys"
        )
    if not 2 <= threshold <= shares <= MAX_SHARES:
        raise InvalidBackup(
            f"need 2 ≤ threshold ≤ shares ≤ {MAX_SHARES}, got threshold {threshold} and "
            f"{shares} shares (a threshold of 1 would make every share a full copy)"
        )
    try:
        groups = shamir_mnemonic.generate_mnemonics(
            1, [(threshold, shares)], backup_secret(keys), _passphrase_bytes(passphrase)
        )
    except (shamir_mnemonic.MnemonicError, ValueError) as exc:
        raise InvalidBackup(f"cannot make the shares: {exc}") from exc
    return BackupShares(threshold, tuple(str(m) for m in groups[0]))


def normalise_share(text: str) -> str:
    """A share as typed: words separated by any whitespace, in any case."""
    return " ".join(text.lower().split())


def share_lines(text: str) -> list[str]:
    """The shares in *text*: one per line; blank lines and lines starting with # skipped."""
    found = []
    for line in text.splitlines():
        clean = line.strip()
        if clean and not clean.startswith("#"):
            found.append(normalise_share(clean))
    return found


def _parse(mnemonic: str, name: str) -> Share:
    try:
        share: Share = Share.from_mnemonic(mnemonic)
        return share
    except shamir_mnemonic.MnemonicError as exc:
        reason = str(exc).rstrip(".")
        raise InvalidBackup(
            f"{name} is not a valid share ({reason}); check it word by word"
        ) from exc


def combine_shares(
    mnemonics: Sequence[str] | Iterable[str],
    *,
    passphrase: str | None = None,
    names: Sequence[str] | None = None,
) -> PatientKeys:
    """The patient keys restored from SLIP-39 *mnemonics* (at least the threshold of one
    backup). *names* says in errors where each share came from (a file, a line)."""
    given = [normalise_share(m) for m in mnemonics]
    labels = list(names) if names is not None else [f"share {i + 1}" for i in range(len(given))]
    if len(labels) != len(given):
        raise ValueError("give one name per share")
    if not given:
        raise InvalidBackup("no shares were given")
    parsed: list[Share] = []
    chosen: dict[int, tuple[str, str]] = {}  # member index -> (mnemonic, label)
    for mnemonic, label in zip(given, labels, strict=True):
        share = _parse(mnemonic, label)
        if parsed and (
            share.identifier != parsed[0].identifier
            or share.common_parameters() != parsed[0].common_parameters()
            or share.member_threshold != parsed[0].member_threshold
        ):
            raise InvalidBackup(
                f"{label} belongs to another backup than {labels[0]}; give shares of one backup"
            )
        if share.group_count != 1:
            raise InvalidBackup(f"{label} is from a multi-group SLIP-39 backup, not from ehrgate")
        known = chosen.get(share.index)
        if known is not None:
            if known[0] != mnemonic:
                raise InvalidBackup(
                    f"{label} and {known[1]} are different shares with the same member "
                    "number; one of them is wrong"
                )
            continue  # the same share twice counts once
        chosen[share.index] = (mnemonic, label)
        parsed.append(share)
    threshold = parsed[0].member_threshold
    if len(parsed) < threshold:
        raise InvalidBackup(
            f"this backup needs {threshold} different shares; {len(parsed)} "
            f"{'was' if len(parsed) == 1 else 'were'} given"
        )
    try:
        secret: bytes = shamir_mnemonic.combine_mnemonics(
            [mnemonic for mnemonic, _ in list(chosen.values())[:threshold]],
            _passphrase_bytes(passphrase),
        )
    except shamir_mnemonic.MnemonicError as exc:
        raise InvalidBackup(f"the shares do not combine: {exc}") from exc
    return keys_from_secret(secret)
