"""Reading an HL7 v2 message with the `hl7` library: its header and typed field access.

`parse_message` turns the bytes of one MLLP frame into a parsed message and its `Header`
(MSH), raising `UnacceptableMessage` (ACK AR) when there is no usable MSH.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo

import hl7

from bridge.errors import InvalidMessageContent, UnacceptableMessage

_SEGMENT_ENDS = re.compile(r"\r\n|\n")
_TS = re.compile(
    r"(?P<y>\d{4})(?P<mo>\d{2})?(?P<d>\d{2})?(?P<h>\d{2})?(?P<mi>\d{2})?(?P<s>\d{2})?"
    r"(?:\.(?P<frac>\d{1,4}))?(?P<tz>[+-]\d{4})?"
)


@dataclass(frozen=True, slots=True)
class Header:
    """What the listener needs of MSH, also to mirror it in the ACK."""

    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    message_code: str
    trigger_event: str
    control_id: str
    processing_id: str
    version: str


def decode_text(data: bytes) -> str:
    """The message text: UTF-8 (and so ASCII), else ISO 8859-1, which decodes any byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def parse_message(data: bytes) -> tuple[hl7.Message, Header]:
    """Parse one message; raises `UnacceptableMessage` when its MSH is missing or broken."""
    text = _SEGMENT_ENDS.sub("\r", decode_text(data)).strip("\r\n\x00 ")
    if not text.startswith("MSH") or len(text) < 8:
        raise UnacceptableMessage("the message does not start with an MSH segment", "100")
    if text[3] != "|" or text[4:8] != "^~\\&":
        raise UnacceptableMessage(
            f"MSH-1/MSH-2 must be the standard delimiters |^~\\& (got {text[3:8]!r})",
            "102",
        )
    try:
        message = hl7.parse(text)
    except Exception as exc:  # the hl7 library raises assorted errors on broken text
        raise UnacceptableMessage(f"the message cannot be parsed as HL7 v2: {exc}", "102") from exc
    header = Header(
        sending_application=field(message, "MSH.F3"),
        sending_facility=field(message, "MSH.F4"),
        receiving_application=field(message, "MSH.F5"),
        receiving_facility=field(message, "MSH.F6"),
        message_code=field(message, "MSH.F9.R1.C1"),
        trigger_event=field(message, "MSH.F9.R1.C2"),
        control_id=field(message, "MSH.F10"),
        processing_id=field(message, "MSH.F11.R1.C1"),
        version=field(message, "MSH.F12.R1.C1"),
    )
    if not header.control_id:
        raise UnacceptableMessage("MSH-10 (message control id) is empty", "101")
    return message, header


def field(message: hl7.Message, key: str) -> str:
    """The value at accessor *key* (e.g. `PID.F3.R1.C4`), unescaped; "" when absent."""
    try:
        value = message[key]
    except (KeyError, IndexError):
        return ""
    return value if isinstance(value, str) else str(value)


def repetitions(message: hl7.Message, segment: str, field_num: int) -> int:
    """How many repetitions field *field_num* of the first *segment* has (0 when empty)."""
    try:
        seg = message.segment(segment)
    except KeyError:
        return 0
    if field_num >= len(seg):
        return 0
    value = seg(field_num)
    return len(value) if any(str(rep) for rep in value) else 0


def parse_timestamp(value: str, default_tz: tzinfo, what: str) -> datetime:
    """An HL7 TS/DTM value as an aware datetime; without an offset it is in *default_tz*."""
    match = _TS.fullmatch(value.strip())
    if match is None:
        raise InvalidMessageContent(
            f"{what} is not an HL7 date/time (YYYYMMDDHHMMSS[+ZZZZ]): {value!r}", "102"
        )
    parts = match.groupdict()
    tz = default_tz
    if parts["tz"]:
        sign = -1 if parts["tz"][0] == "-" else 1
        minutes = int(parts["tz"][1:3]) * 60 + int(parts["tz"][3:5])
        tz = timezone(sign * timedelta(minutes=minutes))
    frac = (parts["frac"] or "").ljust(6, "0")
    try:
        return datetime(
            int(parts["y"]),
            int(parts["mo"] or 1),
            int(parts["d"] or 1),
            int(parts["h"] or 0),
            int(parts["mi"] or 0),
            int(parts["s"] or 0),
            int(frac),
            tzinfo=tz,
        )
    except ValueError as exc:
        raise InvalidMessageContent(
            f"{what} is not a valid date/time: {value!r} ({exc})", "102"
        ) from exc
