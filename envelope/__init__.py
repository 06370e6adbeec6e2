"""Keys, pseudonyms, signatures, canonical JSON and the sealed-file format.

Pure cryptography over bytes and streams: this package does no other I/O and imports
nothing else of ehrgate.
"""

from envelope.canonical import b64decode, b64encode, canonical_json
from envelope.errors import (
    EnvelopeError,
    InvalidEnvelope,
    InvalidKeyFile,
    InvalidSignature,
    WrongPassphrase,
)
from envelope.identity import ROLES, IdentityKeys, PublicIdentity, SigningKey, VerifyKey
from envelope.kem import HybridPrivateKey, HybridPublicKey

__all__ = [
    "ROLES",
    "EnvelopeError",
    "HybridPrivateKey",
    "HybridPublicKey",
    "IdentityKeys",
    "InvalidEnvelope",
    "InvalidKeyFile",
    "InvalidSignature",
    "PublicIdentity",
    "SigningKey",
    "VerifyKey",
    "WrongPassphrase",
    "b64decode",
    "b64encode",
    "canonical_json",
]
