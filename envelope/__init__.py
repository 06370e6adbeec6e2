"""Keys, pseudonyms, signatures, canonical JSON and the sealed-file format.

Pure cryptography over bytes and streams (plus reading and writing key files): this
package imports nothing else of ehrgate. See docs/envelope.md for every byte format.
"""

from envelope.backup import BackupShares, combine_shares, split_keys
from envelope.body import BodyOpener, DataKey
from envelope.canonical import b64decode, b64encode, canonical_json
from envelope.capsule import (
    OpenedCapsule,
    capsule_key_id,
    capsule_sha256,
    open_capsule,
    rewrap_capsule,
    signed_content,
    verify_capsule_signature,
)
from envelope.errors import (
    EnvelopeError,
    InvalidBackup,
    InvalidEnvelope,
    InvalidKeyFile,
    InvalidSignature,
    InvalidUII,
    WrongPassphrase,
)
from envelope.identity import ROLES, IdentityKeys, PublicIdentity, SigningKey, VerifyKey
from envelope.kem import HybridPrivateKey, HybridPublicKey
from envelope.keyfile import PatientKeys, PatientPublic, load_key_file, write_key_file
from envelope.keyshare import open_key_share, seal_key_share
from envelope.keyupgrade import KeyFileUpgrade, upgrade_key_file
from envelope.patient import PatientKey, canonical_uii, is_pseudonym
from envelope.research import StudySecret, open_study_secret, seal_study_secret
from envelope.scopedshare import (
    ScopedSeeds,
    open_scoped_share,
    open_with_patient_key,
    seal_scoped_share,
)
from envelope.sealer import Sealer, SealResult, open_body, read_chunks, seal

__all__ = [
    "ROLES",
    "BackupShares",
    "BodyOpener",
    "DataKey",
    "EnvelopeError",
    "HybridPrivateKey",
    "HybridPublicKey",
    "IdentityKeys",
    "InvalidBackup",
    "InvalidEnvelope",
    "InvalidKeyFile",
    "InvalidSignature",
    "InvalidUII",
    "KeyFileUpgrade",
    "OpenedCapsule",
    "PatientKey",
    "PatientKeys",
    "PatientPublic",
    "PublicIdentity",
    "ScopedSeeds",
    "SealResult",
    "Sealer",
    "SigningKey",
    "StudySecret",
    "VerifyKey",
    "WrongPassphrase",
    "b64decode",
    "b64encode",
    "canonical_json",
    "canonical_uii",
    "capsule_key_id",
    "capsule_sha256",
    "combine_shares",
    "is_pseudonym",
    "load_key_file",
    "open_body",
    "open_capsule",
    "open_key_share",
    "open_scoped_share",
    "open_study_secret",
    "open_with_patient_key",
    "read_chunks",
    "rewrap_capsule",
    "seal",
    "seal_key_share",
    "seal_scoped_share",
    "seal_study_secret",
    "signed_content",
    "split_keys",
    "upgrade_key_file",
    "verify_capsule_signature",
    "write_key_file",
]
