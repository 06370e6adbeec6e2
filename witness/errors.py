"""The witness's exception tree.

WitnessError
├── WitnessConfigError     the configuration or key file cannot be used (message says why)
├── WitnessStateError      the state database cannot be opened or is not a witness's
└── Refused                an add-checkpoint request is refused: `status` is the HTTP status
                           the tlog-witness protocol names, `body` and `content_type` the
                           answer (409 carries the size the witness knows)
"""

from __future__ import annotations


class WitnessError(Exception):
    """Root of every error raised by the witness package."""


class WitnessConfigError(WitnessError):
    """The witness configuration or its key file cannot be used."""


class WitnessStateError(WitnessError):
    """The witness's state database cannot be used."""


class Refused(WitnessError):
    """A request the witness refuses, with the status the protocol prescribes."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        body: bytes | None = None,
        content_type: str = "text/plain; charset=utf-8",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.body = body if body is not None else (message + "\n").encode("utf-8")
        self.content_type = content_type
