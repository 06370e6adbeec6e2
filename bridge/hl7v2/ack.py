"""HL7 v2 general acknowledgements (ACK) in original acknowledgement mode.

MSA-1 is AA (committed), AE (the content is wrong: the sender's operator can fix and resend)
or AR (the message is unacceptable: wrong type, version, processing id or a broken MSH).
MSA-2 echoes the message's control id, MSA-3 says why in words, and an ERR segment carries
the HL7 table 0357 condition code and the same words (ERR-3/ERR-8 from v2.5 on, ERR-1 before).
MSH mirrors the message's: its receiver is the ACK's sender and the other way round.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from bridge.hl7v2.message import Header

AckCode = Literal["AA", "AE", "AR"]
_ESCAPES = {"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "&": "\\T\\", "~": "\\R\\"}
_CONDITIONS = {
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "202": "Unsupported processing id",
    "203": "Unsupported version id",
    "204": "Unknown key identifier",
    "206": "Application record locked",
    "207": "Application internal error",
}
_OLD_ERR = frozenset({"2.3", "2.3.1", "2.4"})
ACK_VERSION = "2.5"
"""The version of an ACK to a message whose own version is unknown or unsupported."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the listener answers one message."""

    code: AckCode
    text: str
    condition: str | None = None
    """The table 0357 error code, for AE and AR."""


def escape(text: str) -> str:
    """*text* with the HL7 delimiters escaped and line breaks replaced by spaces."""
    out = "".join(_ESCAPES.get(ch, ch) for ch in text)
    return out.replace("\r", " ").replace("\n", " ")


def build_ack(
    header: Header | None, outcome: Outcome, now: datetime, versions: frozenset[str]
) -> bytes:
    """The ACK to a message of *header* (None when its MSH could not be read)."""
    h = header or Header("", "", "", "", "", "", "", "P", "")
    version = h.version if h.version in versions else ACK_VERSION
    msh = "|".join(
        [
            "MSH",
            "^~\\&",
            escape(h.receiving_application),
            escape(h.receiving_facility),
            escape(h.sending_application),
            escape(h.sending_facility),
            now.strftime("%Y%m%d%H%M%S%z"),
            "",
            f"ACK^{escape(h.trigger_event)}" + ("" if version == "2.3" else "^ACK"),
            f"ACK{secrets.token_hex(8).upper()}",
            escape(h.processing_id) or "P",
            version,
        ]
    )
    segments = [msh, f"MSA|{outcome.code}|{escape(h.control_id)}|{escape(outcome.text)}"]
    if outcome.condition is not None:
        segments.append(_err(outcome, version))
    return ("\r".join(segments) + "\r").encode("utf-8")


def _err(outcome: Outcome, version: str) -> str:
    condition = outcome.condition or "207"
    name = _CONDITIONS.get(condition, "")
    text = escape(outcome.text)
    if version in _OLD_ERR:
        # ERR-1 (ELD): segment^sequence^field^code&text&HL70357
        return f"ERR|^^^{condition}&{escape(name)}&HL70357"
    return f"ERR|||{condition}^{escape(name)}^HL70357|E||||{text}"
