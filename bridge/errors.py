"""The exception tree of the bridge.

BridgeError                         every error the bridge raises
├── BridgeUsageError                bad input or settings the sender can fix
│   ├── InvalidDocument             a document (FHIR or HL7 v2) that cannot be accepted
│   ├── UnlinkedPatient             an MRN no patient-signed link names
│   └── InvalidLink                 a patient link statement that does not verify
├── AuthFailed                      a token or assertion that does not authenticate
├── Forbidden                       authenticated, but the scope or the ledger says no
├── DocumentGone                    the record was erased
└── BridgeUnavailable               the gateway or the key store cannot serve now

Each error carries a message in words the sending system's operator can act on. The FHIR
routes answer them as OperationOutcome resources and the HL7 v2 listener as ACK AE/AR.
"""

from __future__ import annotations


class BridgeError(Exception):
    """Root of every error the bridge raises."""


class BridgeUsageError(BridgeError):
    """Bad input or settings: the sender can fix it."""


class InvalidDocument(BridgeUsageError):
    """A document, FHIR resource or HL7 v2 message that cannot be accepted."""


class UnlinkedPatient(BridgeUsageError):
    """An MRN that no patient-signed link names."""


class InvalidLink(BridgeUsageError):
    """A patient link statement that does not verify."""


class AuthFailed(BridgeError):
    """A bearer token, client assertion or OpenID Connect token that does not authenticate."""


class Forbidden(BridgeError):
    """Authenticated, but the token's scope or the patient's grants on the ledger say no."""


class DocumentGone(BridgeError):
    """The document's record was erased."""


class BridgeUnavailable(BridgeError):
    """The gateway or the key store cannot serve now."""
