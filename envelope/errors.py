"""The envelope's exception tree.

EnvelopeError
├── InvalidUII        a patient's identifying fields are unusable (empty, not text)
├── InvalidEnvelope   every failure to open a sealed body, capsule or key share (one
│                     opaque error, so that a failure says nothing about why)
├── InvalidSignature  a signature does not verify for the given key and object
├── InvalidKeyFile    a key file is unreadable, malformed or of the wrong kind
│   └── WrongPassphrase
└── InvalidBackup     recovery shares cannot be made or combined (too few, mixed, mistyped,
                      a wrong passphrase)
"""

from __future__ import annotations


class EnvelopeError(Exception):
    """Root of every error raised by the envelope package."""


class InvalidUII(EnvelopeError, ValueError):
    """The identifying fields (UII) given for a pseudonym are not a usable mapping of text."""


class InvalidEnvelope(EnvelopeError):
    """A sealed body, capsule or key share could not be opened or failed verification."""

    def __init__(self, message: str = "the envelope could not be opened") -> None:
        super().__init__(message)


class InvalidSignature(EnvelopeError):
    """A signature does not verify."""


class InvalidKeyFile(EnvelopeError):
    """A key file is unreadable, malformed or not the kind of key expected."""


class WrongPassphrase(InvalidKeyFile):
    """The passphrase does not open the key file."""


class InvalidBackup(EnvelopeError):
    """Recovery shares cannot be made or combined; the message says what to do."""
