"""DocumentReference in (ITI-105, ITI-65) and out (ITI-67, ITI-68 URLs).

A submitted DocumentReference must have `status` current, a `masterIdentifier`, a
`subject` naming the patient's MRN (`identifier`, or a `Patient?identifier=` reference),
a LOINC `type` the category table maps, a `category` (class code) that agrees with it, and
one `content.attachment` with `contentType` application/pdf and the PDF (inline `data`,
or a Binary of the same transaction). `attachment.hash` (base64 SHA-1, FHIR R4) and
`size`, when given, must match the bytes; the bytes must be a PDF (`%PDF-`) no larger
than the configured limit. A `relatesTo` with code `replaces` names the document it
replaces (by reference or by its masterIdentifier); the replaced one is then served with
status `superseded`. Anything else is refused before anything is published.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bridge.base64data import strict_b64decode
from bridge.categories import LOINC, CategoryTable
from bridge.documents import REFERENCE_PREFIX, IncomingDocument, SealedFacts, sha1_b64
from bridge.errors import InvalidDocument
from bridge.fhir.scan import PLACEHOLDER
from bridge.store import BridgeStore, PublishedRow
from ehrgate.models import Record

PDF = "application/pdf"
PDF_MAGIC = b"%PDF-"
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?")


@dataclass(frozen=True)
class Limits:
    mrn_system: str
    max_bytes: int
    categories: CategoryTable


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidDocument(f"{where} is missing or not a JSON object")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidDocument(f"{where} is missing or not a non-empty string")
    return value


def expect_type(resource: Any, name: str, where: str = "the body") -> dict[str, Any]:
    found = _obj(resource, where)
    if found.get("resourceType") != name:
        raise InvalidDocument(
            f"{where} must be a {name}, got resourceType {found.get('resourceType')!r}"
        )
    return found


def parse_time(text: str, where: str) -> datetime:
    if not _INSTANT.fullmatch(text):
        raise InvalidDocument(f"{where} {text!r} is not a FHIR dateTime")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidDocument(f"{where} {text!r} is not a valid time") from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def mrn_of_subject(subject: Any, mrn_system: str) -> str:
    """The MRN a `subject` (or Consent/List patient) reference names."""
    reference = _obj(subject, "DocumentReference.subject")
    identifier = reference.get("identifier")
    if isinstance(identifier, dict):
        system = identifier.get("system")
        if system is not None and system != mrn_system:
            raise InvalidDocument(
                f"subject.identifier.system {system!r} is not this hospital's MRN system "
                f"{mrn_system!r}"
            )
        return _str(identifier.get("value"), "subject.identifier.value")
    text = reference.get("reference")
    if isinstance(text, str) and text.startswith("Patient?identifier="):
        return mrn_of_token(text.removeprefix("Patient?identifier="), mrn_system)
    raise InvalidDocument(
        "subject must name the patient's MRN: {'identifier': {'system': "
        f"{mrn_system!r}, 'value': MRN}} or 'Patient?identifier=SYSTEM|MRN'"
    )


def mrn_of_token(token: str, mrn_system: str) -> str:
    system, bar, value = token.partition("|")
    if not bar:
        return _str(system, "the patient identifier")
    if system and system != mrn_system:
        raise InvalidDocument(f"identifier system {system!r} is not {mrn_system!r}")
    return _str(value, "the patient identifier's value")


def _category(document: dict[str, Any], table: CategoryTable) -> str:
    codings = _obj(document.get("type"), "DocumentReference.type").get("coding")
    loinc = [c for c in codings or [] if isinstance(c, dict) and c.get("system") == LOINC]
    if not loinc:
        raise InvalidDocument(f"DocumentReference.type needs a coding with system {LOINC}")
    category = table.for_loinc(_str(loinc[0].get("code"), "type.coding.code"))
    classes = document.get("category")
    if not isinstance(classes, list) or not classes:
        raise InvalidDocument("DocumentReference.category (the class code) is missing")
    codes = table.codes_for(category)
    for concept in classes:
        for coding in _obj(concept, "category").get("coding") or []:
            if isinstance(coding, dict) and coding.get("code") == codes.class_code:
                return category
    raise InvalidDocument(
        f"DocumentReference.category must carry class code {codes.class_code} "
        f"({codes.class_display}) for type {codes.loinc}"
    )


def _decode(data: Any, where: str) -> bytes:
    if not isinstance(data, str) or not data:
        raise InvalidDocument(f"{where} is missing or not a non-empty string")
    try:
        return strict_b64decode(data)
    except ValueError as exc:
        raise InvalidDocument(f"{where} is not valid base64") from exc


def check_content(attachment: dict[str, Any], content: bytes, sha1: str, limits: Limits) -> None:
    """Size limit, PDF magic, and the attachment's own hash (*sha1*, `sha1_b64` of the
    content) and size."""
    if len(content) > limits.max_bytes:
        raise InvalidDocument(
            f"the document is {len(content)} bytes; this bridge accepts at most {limits.max_bytes}"
        )
    if not content.startswith(PDF_MAGIC):
        raise InvalidDocument("the attachment claims application/pdf but its data is not a PDF")
    if "hash" in attachment and attachment["hash"] != sha1:
        raise InvalidDocument(
            "attachment.hash does not match the data (it must be the base64 SHA-1 of the bytes)"
        )
    if "size" in attachment and attachment["size"] != len(content):
        raise InvalidDocument(
            f"attachment.size is {attachment['size']!r} but the data has {len(content)} bytes"
        )


def sealed_facts(resource: Any, limits: Limits) -> SealedFacts:
    """The facts a publish seals, checked as `incoming_document` checks them."""
    document = expect_type(resource, "DocumentReference")
    master = _obj(document.get("masterIdentifier"), "DocumentReference.masterIdentifier")
    date = document.get("date")
    if date is not None:
        parse_time(_str(date, "DocumentReference.date"), "DocumentReference.date")
    return SealedFacts(
        unique_id=_str(master.get("value"), "masterIdentifier.value"),
        mrn=mrn_of_subject(document.get("subject"), limits.mrn_system),
        category=_category(document, limits.categories),
        date=date,
        title=_title(_attachment(document)),
    )


def _attachment(document: dict[str, Any]) -> dict[str, Any]:
    contents = document.get("content")
    if not isinstance(contents, list) or len(contents) != 1:
        raise InvalidDocument("DocumentReference.content must have exactly one entry")
    return _obj(_obj(contents[0], "content[0]").get("attachment"), "content.attachment")


def _title(attachment: dict[str, Any]) -> str | None:
    return attachment.get("title") if isinstance(attachment.get("title"), str) else None


def incoming_document(
    resource: Any,
    limits: Limits,
    binary_for: Callable[[str], tuple[str, bytes]] | None = None,
    streamed: tuple[bytes, str] | None = None,
) -> IncomingDocument:
    """An IncomingDocument from a DocumentReference; InvalidDocument naming what is wrong.

    *binary_for* resolves an attachment URL to a Binary of the same transaction (ITI-65);
    *streamed* is the attachment's data decoded as the body arrived, with its `sha1_b64`
    (`bridge.fhir.scan`: the resource then holds the placeholder in its place)."""
    document = expect_type(resource, "DocumentReference")
    if document.get("status") != "current":
        raise InvalidDocument(
            f"DocumentReference.status must be 'current', got {document.get('status')!r}"
        )
    master = _obj(document.get("masterIdentifier"), "DocumentReference.masterIdentifier")
    unique_id = _str(master.get("value"), "masterIdentifier.value")
    mrn = mrn_of_subject(document.get("subject"), limits.mrn_system)
    category = _category(document, limits.categories)
    attachment = _attachment(document)
    if attachment.get("contentType") != PDF:
        raise InvalidDocument(
            f"attachment.contentType must be {PDF}, got {attachment.get('contentType')!r}"
        )
    sha1: str | None = None
    if streamed is not None:
        if attachment.get("data") != PLACEHOLDER:
            raise InvalidDocument(
                "the body names content, attachment or data more than once; send each once"
            )
        content, sha1 = streamed
        if not content:
            raise InvalidDocument("attachment.data is missing or not a non-empty string")
    elif "data" in attachment:
        content = _decode(attachment["data"], "attachment.data")
    elif binary_for is not None and isinstance(attachment.get("url"), str):
        content_type, content = binary_for(attachment["url"])
        if content_type != PDF:
            raise InvalidDocument(f"the Binary at {attachment['url']} is not {PDF}")
    else:
        raise InvalidDocument("attachment.data (the PDF, base64) is missing")
    if sha1 is None:
        sha1 = sha1_b64(content)
    check_content(attachment, content, sha1, limits)
    date = document.get("date")
    created = parse_time(date, "DocumentReference.date") if date else datetime.now(UTC)
    title = _title(attachment)
    return IncomingDocument(
        replaces=_replaced(document),
        mrn=mrn,
        category=category,
        unique_id=unique_id,
        created=created,
        content=content,
        content_type=PDF,
        title=title,
        sha1=sha1,
    )


def _replaced(document: dict[str, Any]) -> str | None:
    """The document a `relatesTo` with code `replaces` names: its unique id (a target
    identifier) or `DocumentReference/<id>` (a target reference); None without one."""
    relations = document.get("relatesTo")
    if relations is None:
        return None
    if not isinstance(relations, list):
        raise InvalidDocument("DocumentReference.relatesTo must be a list")
    named: list[str] = []
    for index, relation in enumerate(relations):
        where = f"DocumentReference.relatesTo[{index}]"
        entry = _obj(relation, where)
        if entry.get("code") != "replaces":
            raise InvalidDocument(
                f"{where}.code {entry.get('code')!r} is not supported: this bridge takes "
                "'replaces' (a new version of a document) only"
            )
        target = _obj(entry.get("target"), f"{where}.target")
        reference, identifier = target.get("reference"), target.get("identifier")
        if isinstance(reference, str) and reference:
            kind, _, resource_id = reference.rstrip("/").rpartition("/")
            if not kind.endswith("DocumentReference") or not resource_id:
                raise InvalidDocument(
                    f"{where}.target.reference must name a DocumentReference, got {reference!r}"
                )
            named.append(REFERENCE_PREFIX + resource_id)
        elif isinstance(identifier, dict):
            named.append(_str(identifier.get("value"), f"{where}.target.identifier.value"))
        else:
            raise InvalidDocument(
                f"{where}.target needs a reference (DocumentReference/id) or the replaced "
                "document's masterIdentifier as identifier"
            )
    if len(named) > 1:
        raise InvalidDocument("a DocumentReference can replace one document only")
    return named[0] if named else None


@dataclass(frozen=True, slots=True)
class Lineage:
    """Where a published document stands among its versions."""

    status: str = "current"
    """`current`, or `superseded` once a later document replaced it."""
    replaces: str | None = None
    """The record id of the document this one replaced."""


def lineage_of(store: BridgeStore, row: PublishedRow | None) -> Lineage:
    if row is None:
        return Lineage()
    superseded = store.replacement_of(row.unique_id) is not None
    replaced = store.published(row.replaces) if row.replaces else None
    return Lineage(
        status="superseded" if superseded else "current",
        replaces=replaced.record_id if replaced else None,
    )


def document_reference(
    record: Record,
    row: PublishedRow | None,
    mrn: str | None,
    base: str,
    limits: Limits,
    lineage: Lineage | None = None,
) -> dict[str, Any]:
    """A ledger record as an MHD DocumentReference (its attachment URL is ITI-68)."""
    lineage = lineage if lineage is not None else Lineage()
    codes = limits.categories.codes_for(record.category)
    attachment: dict[str, Any] = {
        "contentType": record.content_type,
        "url": f"{base}/Binary/{record.record_id}",
    }
    if row is not None:
        attachment.update(size=row.size, hash=row.sha1)
        if row.title:
            attachment["title"] = row.title
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": record.record_id,
        "masterIdentifier": _master(row.unique_id if row else f"urn:ehrgate:{record.record_id}"),
        "identifier": [{"system": "urn:ehrgate:record", "value": record.record_id}],
        "status": lineage.status,
        "type": {"coding": [{"system": LOINC, "code": codes.loinc, "display": codes.display}]},
        "category": [
            {
                "coding": [
                    {
                        "system": codes.class_system,
                        "code": codes.class_code,
                        "display": codes.class_display,
                    }
                ]
            }
        ],
        "date": fhir_instant(record.created_at),
        "content": [{"attachment": attachment}],
    }
    if mrn is not None:
        resource["subject"] = {"identifier": {"system": limits.mrn_system, "value": mrn}}
    if lineage.replaces is not None:
        resource["relatesTo"] = [
            {"code": "replaces", "target": {"reference": f"DocumentReference/{lineage.replaces}"}}
        ]
    return resource


def fhir_instant(text: str) -> str:
    """A ledger time as a FHIR instant (UTC, Z)."""
    moment = datetime.fromisoformat(text).astimezone(UTC)
    return moment.isoformat().replace("+00:00", "Z")


def _master(unique_id: str) -> dict[str, str]:
    if unique_id.startswith(("urn:", "http:", "https:")):
        return {"system": "urn:ietf:rfc:3986", "value": unique_id}
    return {"value": unique_id}
