"""The exception tree of the bridge.

BridgeError                         every error the bridge raises
├── BridgeUsageError                bad input or settings the sender can fix
│   ├── InvalidDocument             a document (FHIR or HL7 v2) that cannot be accepted
│   │   ├── UnacceptableMessage     an HL7 v2 message rejected outright (ACK AR)
│   │   └── InvalidMessageContent   an HL7 v2 message with wrong content (ACK AE)
│   ├── UnlinkedPatient             an MRN no patient-signed link names
│   └── InvalidLink                 a patient link statement that does not verify
├── AuthFailed                      a token or assertion that does not authenticate
│   └── TokenRequestRefused         an OAuth token request refused (RFC 6749 §5.2)
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


class UnacceptableMessage(InvalidDocument):
    """An HL7 v2 message the listener cannot accept at all (bad MSH, message type, version or
    processing id): acknowledged AR. *condition* is its HL7 table 0357 error code."""

    def __init__(self, message: str, condition: str = "200") -> None:
        super().__init__(message)
        self.condition = condition


class InvalidMessageContent(InvalidDocument):
    """An HL7 v2 message whose content is wrong (a missing segment or field, bad base64, not a
    PDF, an unknown document type): acknowledged AE. *condition* is its table 0357 code."""

    def __init__(self, message: str, condition: str = "101") -> None:
        super().__init__(message)
        self.condition = condition


class TokenRequestRefused(AuthFailed):
    """A refused OAuth 2.0 token request (RFC 6749 §5.2): *error* is the OAuth error code
    (`invalid_request`, `invalid_client`, `invalid_grant`, `invalid_scope`,
    `unsupported_grant_type`) and *status* the HTTP status it is answered with (400/401)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.status = status
