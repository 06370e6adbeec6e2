"""MDM^T02 (original document with content) and MDM^T10 (replacement) to `IncomingDocument`.

PID-3 gives the MRN (the repetition whose assigning authority is one of the configured ones,
else the first); TXA-2 the document type, mapped to an ehrgate category by the injected
mapping; TXA-4 (activity) or else TXA-6 (origination) the time; TXA-12 the unique document
id; for T10, TXA-13 (parent document number) the id of the document replaced, as HL7 v2.5
§9.4.10 has it. The PDF is the one OBX whose OBX-2 is ED: OBX-5 is
`^Application^PDF^Base64^<data>` (type of data `Application` or `AP`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

import hl7

from bridge.base64data import b64encode_text, strict_b64decode
from bridge.documents import IncomingDocument
from bridge.errors import (
    BridgeUsageError,
    InvalidMessageContent,
    UnacceptableMessage,
)
from bridge.hl7v2.message import Header, field as get, parse_timestamp, repetitions

SUPPORTED_VERSIONS = frozenset({"2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6"})
DOCUMENT_EVENTS = frozenset({"T02", "T10"})


@dataclass(frozen=True, slots=True)
class MdmRules:
    """How MDM messages are read: the TXA-2 mapping and what is accepted."""

    category_for_type: Callable[[str], str]
    """TXA-2 document type → ehrgate category; raises `BridgeUsageError` or `LookupError`
    for a type it does not know."""
    assigning_authorities: tuple[str, ...] = ()
    """PID-3 assigning authorities (HD namespace id or universal id) whose identifier is the
    MRN; when none matches (or none is configured) the first identifier is used."""
    versions: frozenset[str] = field(default=SUPPORTED_VERSIONS)
    processing_ids: frozenset[str] = field(default=frozenset({"P"}))
    default_tz: tzinfo = UTC
    """The time zone of TXA times written without an offset."""


def check_header(header: Header, rules: MdmRules) -> None:
    """Raise `UnacceptableMessage` (ACK AR) unless MSH names a message this listener takes."""
    if header.message_code != "MDM":
        raise UnacceptableMessage(
            f"message type {header.message_code or '(empty)'} is not accepted: "
            "this listener takes MDM^T02 and MDM^T10",
            "200",
        )
    if header.trigger_event not in DOCUMENT_EVENTS:
        raise UnacceptableMessage(
            f"event MDM^{header.trigger_event or '(empty)'} is not accepted: "
            "this listener takes MDM^T02 and MDM^T10",
            "201",
        )
    if header.version not in rules.versions:
        raise UnacceptableMessage(
            f"HL7 version {header.version or '(empty)'} is not supported "
            f"(supported: {', '.join(sorted(rules.versions))})",
            "203",
        )
    if header.processing_id not in rules.processing_ids:
        raise UnacceptableMessage(
            f"processing id {header.processing_id or '(empty)'} is not accepted here "
            f"(accepted: {', '.join(sorted(rules.processing_ids))})",
            "202",
        )


def read_document(message: hl7.Message, header: Header, rules: MdmRules) -> IncomingDocument:
    """The document an accepted MDM message carries; raises `InvalidMessageContent` (AE)."""
    for segment in ("PID", "TXA"):
        _require_segment(message, segment)
    unique_id = get(message, "TXA.F12.R1.C1")
    if not unique_id:
        raise InvalidMessageContent("TXA-12 (unique document number) is empty")
    replaces = None
    if header.trigger_event == "T10":
        replaces = get(message, "TXA.F13.R1.C1")
        if not replaces:
            raise InvalidMessageContent(
                "an MDM^T10 replacement needs TXA-13 (parent document number): "
                "the unique document number of the document it replaces"
            )
    content, title = _pdf(message)
    return IncomingDocument(
        mrn=_mrn(message, rules.assigning_authorities),
        category=_category(get(message, "TXA.F2.R1.C1"), rules),
        unique_id=unique_id,
        created=_created(message, rules.default_tz),
        content=content,
        title=title,
        replaces=replaces,
    )


def _require_segment(message: hl7.Message, name: str) -> None:
    try:
        message.segment(name)
    except KeyError:
        raise InvalidMessageContent(f"the message has no {name} segment", "100") from None


def _mrn(message: hl7.Message, authorities: tuple[str, ...]) -> str:
    count = repetitions(message, "PID", 3)
    ids: list[tuple[str, set[str]]] = []
    for rep in range(1, count + 1):
        value = get(message, f"PID.F3.R{rep}.C1")
        authority = {get(message, f"PID.F3.R{rep}.C4.S{sub}") for sub in (1, 2)} - {""}
        if value:
            ids.append((value, authority))
    if not ids:
        raise InvalidMessageContent("PID-3 (patient identifier list) has no identifier")
    for value, authority in ids:
        if authority & set(authorities):
            return value
    return ids[0][0]


def _category(document_type: str, rules: MdmRules) -> str:
    if not document_type:
        raise InvalidMessageContent("TXA-2 (document type) is empty")
    try:
        return rules.category_for_type(document_type)
    except (BridgeUsageError, LookupError) as exc:
        raise InvalidMessageContent(
            f"TXA-2 document type {document_type!r} is not mapped to a category: {exc}", "103"
        ) from exc


def _created(message: hl7.Message, default_tz: tzinfo) -> datetime:
    for key, what in (
        ("TXA.F4.R1.C1", "TXA-4 (activity date/time)"),
        ("TXA.F6.R1.C1", "TXA-6 (origination date/time)"),
    ):
        value = get(message, key)
        if value:
            return parse_timestamp(value, default_tz, what)
    raise InvalidMessageContent("TXA-4 (activity date/time) and TXA-6 (origination) are empty")


def _pdf(message: hl7.Message) -> tuple[bytes, str | None]:
    try:
        observations = message.segments("OBX")
    except KeyError:
        raise InvalidMessageContent("the message has no OBX segment with the PDF", "100") from None
    documents = _ed_indexes(observations)
    if len(documents) != 1:
        raise InvalidMessageContent(
            f"expected exactly one OBX with value type ED (the PDF), found {len(documents)}",
            "100" if not documents else "102",
        )
    segment = observations[documents[0] - 1]
    kind, subtype, encoding, data = (_component(segment, 5, c) for c in (2, 3, 4, 5))
    if kind.upper() not in ("APPLICATION", "AP") or subtype.upper() != "PDF":
        raise InvalidMessageContent(
            f"OBX-5 must be ^Application^PDF^Base64^…, got type {kind!r} subtype {subtype!r}",
            "102",
        )
    if encoding.upper() != "BASE64":
        raise InvalidMessageContent(f"OBX-5.4 encoding must be Base64, got {encoding!r}", "102")
    content = _base64(data)
    if not content.startswith(b"%PDF-"):
        raise InvalidMessageContent("OBX-5 data is not a PDF (it does not start with %PDF-)", "102")
    return content, _component(segment, 3, 2) or None


def _ed_indexes(observations: list[hl7.Segment]) -> list[int]:
    return [
        n for n in range(1, len(observations) + 1) if _component(observations[n - 1], 2, 1) == "ED"
    ]


def _component(segment: hl7.Segment, field_num: int, component: int) -> str:
    try:
        value = segment.extract_field(1, field_num, 1, component, 1)
    except IndexError:
        return ""
    return value if isinstance(value, str) else str(value)


def _base64(data: str) -> bytes:
    if not data:
        raise InvalidMessageContent("OBX-5.5 (the base64 PDF) is empty", "101")
    try:
        content = strict_b64decode(data)
    except ValueError as exc:
        raise InvalidMessageContent(f"OBX-5.5 is not valid base64: {exc}", "102") from exc
    if b64encode_text(content) != data:
        # Strict: exactly the canonical encoding (padding to a multiple of 4, no extra "=").
        raise InvalidMessageContent("OBX-5.5 is not valid base64: wrong padding", "102")
    return content
