"""Recovery shares: a patient key file split into SLIP-39 shares and restored from any k."""

from __future__ import annotations

import itertools
import os

import pytest
import shamir_mnemonic  # type: ignore[import-untyped]
from shamir_mnemonic.wordlist import WORDLIST  # type: ignore[import-untyped]

from envelope import HybridPrivateKey, IdentityKeys, PatientKey, PatientKeys, SigningKey
from envelope.backup import (
    backup_secret,
    combine_shares,
    keys_from_secret,
    share_lines,
    split_keys,
)
from envelope.errors import InvalidBackup
from envelope.keyfile import encode_key_file, parse_key_file
from tests.envelope.conftest import UII


@pytest.fixture(scope="module")
def patient() -> PatientKeys:
    return PatientKeys.generate(UII)


def _same(a: PatientKeys, b: PatientKeys) -> None:
    """Every secret and public value of two patient key sets is equal (the whole file)."""
    assert a.pseudonym == b.pseudonym
    assert a.patient_key == b.patient_key
    assert a.identity.id == b.identity.id
    assert a.identity.role == b.identity.role
    assert a.identity.signing_key.private_bytes() == b.identity.signing_key.private_bytes()
    assert a.identity.encryption_key.private_bytes() == b.identity.encryption_key.private_bytes()
    assert encode_key_file(a) == encode_key_file(b)


@pytest.mark.parametrize(("k", "n"), [(2, 2), (2, 3), (3, 5), (5, 9), (16, 16)])
def test_any_k_shares_restore_the_keys(patient: PatientKeys, k: int, n: int) -> None:
    shares = split_keys(patient, threshold=k, shares=n)
    assert shares.count == n
    assert len(set(shares.mnemonics)) == n
    # the first k, the last k, and k in reverse order
    for chosen in (shares.mnemonics[:k], shares.mnemonics[-k:], shares.mnemonics[::-1][:k]):
        _same(combine_shares(chosen), patient)


def test_every_combination_of_k_shares_restores_the_keys(patient: PatientKeys) -> None:
    shares = split_keys(patient, threshold=3, shares=5)
    for size in (3, 4, 5):
        for chosen in itertools.combinations(shares.mnemonics, size):
            _same(combine_shares(chosen), patient)


def test_fewer_than_k_shares_restore_nothing(patient: PatientKeys) -> None:
    shares = split_keys(patient, threshold=3, shares=5)
    for chosen in itertools.combinations(shares.mnemonics, 2):
        with pytest.raises(InvalidBackup, match="needs 3 different shares; 2 were given"):
            combine_shares(chosen)
    # the same share given twice is one share
    twice = [shares.mnemonics[0], shares.mnemonics[1], shares.mnemonics[0]]
    with pytest.raises(InvalidBackup, match="needs 3 different shares; 2 were given"):
        combine_shares(twice)
    with pytest.raises(InvalidBackup, match="no shares"):
        combine_shares([])


def test_shares_of_two_backups_do_not_mix(patient: PatientKeys) -> None:
    first = split_keys(patient, threshold=2, shares=3)
    second = split_keys(patient, threshold=2, shares=3)  # the same keys, another backup
    other = split_keys(PatientKeys.generate(UII), threshold=2, shares=3)
    for mixed in (
        [first.mnemonics[0], second.mnemonics[1]],
        [first.mnemonics[0], other.mnemonics[1]],
    ):
        with pytest.raises(InvalidBackup, match="belongs to another backup"):
            combine_shares(mixed, names=["share-1.txt", "share-2.txt"])


def _mistype(mnemonic: str, position: int) -> str:
    words = mnemonic.split()
    words[position] = next(w for w in WORDLIST if w != words[position])
    return " ".join(words)


@pytest.mark.parametrize("position", [0, 4, 30, -1])
def test_a_mistyped_word_is_caught_by_the_checksum(patient: PatientKeys, position: int) -> None:
    shares = split_keys(patient, threshold=2, shares=3)
    typo = _mistype(shares.mnemonics[1], position)
    with pytest.raises(InvalidBackup, match=r"share-b\.txt is not a valid share .*word by word"):
        combine_shares([shares.mnemonics[0], typo], names=["share-a.txt", "share-b.txt"])


def test_a_word_not_in_the_list_is_named(patient: PatientKeys) -> None:
    shares = split_keys(patient, threshold=2, shares=2)
    words = shares.mnemonics[0].split()
    words[3] = "zzzz"
    with pytest.raises(InvalidBackup, match="share 1 is not a valid share"):
        combine_shares([" ".join(words), shares.mnemonics[1]])


def test_a_dropped_word_is_caught(patient: PatientKeys) -> None:
    shares = split_keys(patient, threshold=2, shares=2)
    short = " ".join(shares.mnemonics[0].split()[:-1])
    with pytest.raises(InvalidBackup, match="not a valid share"):
        combine_shares([short, shares.mnemonics[1]])


def test_the_passphrase_is_needed_and_a_wrong_one_is_detected(patient: PatientKeys) -> None:
    shares = split_keys(patient, threshold=2, shares=3, passphrase="correct horse")
    _same(combine_shares(shares.mnemonics[:2], passphrase="correct horse"), patient)
    for wrong in (None, "correct hors", "Correct horse"):
        with pytest.raises(InvalidBackup, match="passphrase is probably wrong"):
            combine_shares(shares.mnemonics[:2], passphrase=wrong)


def test_bad_parameters_are_refused(patient: PatientKeys) -> None:
    for k, n in ((1, 3), (3, 2), (2, 17), (0, 0)):
        with pytest.raises(InvalidBackup, match="threshold"):
            split_keys(patient, threshold=k, shares=n)
    with pytest.raises(InvalidBackup, match="printable ASCII"):
        split_keys(patient, threshold=2, shares=2, passphrase="pässwort")
    with pytest.raises(InvalidBackup, match="empty"):
        split_keys(patient, threshold=2, shares=2, passphrase="")
    identity = IdentityKeys.generate("dr-house", "clinician")
    with pytest.raises(InvalidBackup, match="only a patient key file"):
        split_keys(identity, threshold=2, shares=2)  # type: ignore[arg-type]


def test_a_version_1_patient_is_restored_with_its_version_1_keys() -> None:
    k = PatientKey(os.urandom(32), record_key_version=1)
    pseudonym = k.pseudonym(UII)
    identity = IdentityKeys(
        pseudonym, "patient", SigningKey.generate(), HybridPrivateKey(os.urandom(96))
    )
    old = PatientKeys(k, pseudonym, identity)
    shares = split_keys(old, threshold=2, shares=3)
    restored = combine_shares(shares.mnemonics[1:])
    _same(restored, old)
    assert restored.patient_key.record_key_version == 1
    assert not restored.identity.encryption_key.is_seed
    assert len(backup_secret(old)) == 198


def test_the_secret_layout(patient: PatientKeys) -> None:
    secret = backup_secret(patient)
    assert len(secret) == 134
    assert secret[:2] == b"\x01\x00"
    assert secret[2:34] == patient.patient_key.to_bytes()
    assert secret[34:66].hex() == patient.pseudonym
    assert secret[66:98] == patient.identity.signing_key.private_bytes()
    assert secret[98:130] == patient.identity.encryption_key.private_bytes()
    _same(keys_from_secret(secret), patient)
    # A changed byte anywhere is refused by the check bytes.
    for at in (0, 1, 5, 40, 70, 100, 131):
        damaged = bytearray(secret)
        damaged[at] ^= 0x01
        with pytest.raises(InvalidBackup):
            keys_from_secret(bytes(damaged))


def test_shares_are_standard_slip39(patient: PatientKeys) -> None:
    """The reference library alone (no ehrgate code) recovers the same secret."""
    shares = split_keys(patient, threshold=2, shares=3, passphrase="TREZOR")
    secret = shamir_mnemonic.combine_mnemonics(shares.mnemonics[:2], b"TREZOR")
    assert secret == backup_secret(patient)
    # and shares made by the reference library alone restore with ehrgate
    groups = shamir_mnemonic.generate_mnemonics(1, [(2, 2)], backup_secret(patient))
    _same(combine_shares(groups[0]), patient)


def test_shares_are_read_from_text_lines(patient: PatientKeys) -> None:
    shares = split_keys(patient, threshold=2, shares=2)
    text = (
        "# share 1 of 2\n\n"
        + "  " + shares.mnemonics[0].upper().replace(" ", "   ") + "  \n"
        + "# share 2 of 2\n"
        + shares.mnemonics[1] + "\n"
    )  # fmt: skip
    lines = share_lines(text)
    assert lines == list(shares.mnemonics)
    _same(combine_shares(lines), patient)


def test_a_restored_key_file_round_trips(patient: PatientKeys) -> None:
    shares = split_keys(patient, threshold=2, shares=2)
    restored = combine_shares(shares.mnemonics)
    again = parse_key_file(encode_key_file(restored), None, "restored")
    assert isinstance(again, PatientKeys)
    _same(again, patient)
