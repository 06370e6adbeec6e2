"""ITI-105 published while the request arrives.

The body is split as it comes (`bridge.fhir.scan`): `content[0].attachment.data` is
base64-decoded piece by piece (strictly, as a whole would be), and the moment it begins,
if what precedes it already names the document (masterIdentifier, a linked subject, type
and category, and the date and title if any), the publisher starts sealing and uploading
the PDF (`bridge.staging`) while the rest arrives. Size (the limit) and the PDF signature
are checked as the bytes come; everything else (the metadata that follows the data,
`attachment.hash` and `size`) once the body is complete, before the record is committed.
Anything wrong, at any point, abandons the upload: no record, and nothing for the
bridge's bookkeeping (a stored body without a record is an orphan `ehrgate gc` removes).
A document whose metadata follows its data, or that turns out to say something else
than what was sealed, is published once it is whole, as before.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import Request

from bridge.base64data import strict_b64decode
from bridge.documents import IncomingDocument, Published, SealedFacts, attachment_hash
from bridge.errors import InvalidDocument
from bridge.fhir.common import body_chunks, require_fhir_json
from bridge.fhir.documents import (
    PDF_MAGIC,
    Limits,
    incoming_document,
    parse_time,
    sealed_facts,
)
from bridge.fhir.scan import AttachmentScanner
from bridge.publisher import GatewayPublisher
from bridge.staging import Staging

_NOT_BASE64 = "attachment.data is not valid base64"


class Base64Stream:
    """Strict base64 decoding of a text given in pieces: what `strict_b64decode` accepts
    of the whole, and nothing else. Whole quanta are decoded as they come; the last one,
    with whatever follows it, at the end (where strict decoding has its rules about
    padding). A large piece is decoded in place, not copied: the few characters held
    from the piece before, completed to whole quanta, are decoded apart."""

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, text: bytes) -> list[bytes]:
        """The bytes the whole quanta so far encode, in one or two pieces."""
        if not text:
            return []
        rest = self._rest
        whole = max(0, (len(rest) + len(text) - 1) // 4 * 4 - 4)  # characters decoded now
        if whole <= len(rest) + 4:
            joined = rest + text  # a short piece: join it to what was held
            self._rest = joined[whole:]
            if not whole:
                return []
            return [_quanta(joined[:whole], joined[whole - 4 : whole])]
        align = -len(rest) % 4
        head = rest + text[:align]  # what was held, completed to whole quanta
        end = whole - len(rest)  # text[:end] is decoded now; end - align is a multiple of 4
        self._rest = text[end:]
        if b"=" in head:
            raise InvalidDocument(_NOT_BASE64)  # padding, then more
        bulk = _quanta(memoryview(text)[align:end], text[end - 4 : end])
        return [_decoded(head), bulk] if head else [bulk]

    def end(self) -> bytes:
        """What the last piece held (InvalidDocument if it does not end the text right)."""
        rest, self._rest = self._rest, b""
        return _decoded(rest) if rest else b""


def _quanta(text: bytes | memoryview, last: bytes) -> bytes:
    """Decode whole quanta that more text follows (*last*: their last four characters)."""
    if b"=" in last:
        raise InvalidDocument(_NOT_BASE64)  # padding, then more
    return _decoded(text)


def _decoded(text: bytes | memoryview) -> bytes:
    try:
        return strict_b64decode(text)
    except ValueError as exc:
        raise InvalidDocument(_NOT_BASE64) from exc


@dataclass
class _Arrival:
    """One ITI-105 body as it arrives."""

    limits: Limits
    pieces: list[bytes] = field(default_factory=list)
    size: int = 0
    decoder: Base64Stream = field(default_factory=Base64Stream)
    facts: SealedFacts | None = None
    created: datetime | None = None
    started: bool = False  # the data began; `facts` says whether it can be staged
    tried: bool = False  # staging was asked for
    magic_checked: bool = False
    staging: Staging | None = None
    fed: int = 0  # how many of `pieces` the staging has
    sha1: hashlib._Hash = field(default_factory=lambda: hashlib.sha1(usedforsecurity=False))

    def data(self, text: bytes) -> None:
        for piece in self.decoder.feed(text):
            self.last(piece)

    def last(self, decoded: bytes) -> None:
        if not decoded:
            return
        self.size += len(decoded)
        if self.size > self.limits.max_bytes:
            raise InvalidDocument(
                f"the document is larger than {self.limits.max_bytes} bytes; this bridge "
                f"accepts at most {self.limits.max_bytes}"
            )
        self.pieces.append(decoded)
        if not self.magic_checked and self.size >= len(PDF_MAGIC):
            self.magic_checked = True
            if not b"".join(self.pieces).startswith(PDF_MAGIC):
                raise InvalidDocument(
                    "the attachment claims application/pdf but its data is not a PDF"
                )
        self.feed_staging()  # the sealing thread starts on it while the SHA-1 runs here
        self.sha1.update(decoded)

    def data_start(self, scanner: AttachmentScanner) -> None:
        """What precedes the data: if it names the document fully, it can be staged."""
        self.started = True
        try:
            facts = sealed_facts(scanner.partial(), self.limits)
            if facts.date is not None:
                self.created = parse_time(facts.date, "DocumentReference.date")
        except (InvalidDocument, ValueError):
            return  # incomplete or wrong so far: checked in full once it is whole
        self.facts = facts

    def feed_staging(self) -> None:
        if self.staging is not None:
            for piece in self.pieces[self.fed :]:
                self.staging.feed(piece)
            self.fed = len(self.pieces)


async def publish_arriving(
    request: Request, publisher: GatewayPublisher, limits: Limits, limit: int, actor: str
) -> tuple[dict[str, Any], IncomingDocument, Published]:
    """Read, check and publish one ITI-105 body: (the resource without its data, the
    document, the `Published`)."""
    require_fhir_json(request)
    arrival = _Arrival(limits)
    scanner = AttachmentScanner(lambda: arrival.data_start(scanner), arrival.data)
    try:
        async for chunk in body_chunks(request, limit):
            scanner.feed(chunk)
            if arrival.facts is not None and not arrival.tried:
                arrival.tried = True
                arrival.staging = await publisher.stage(
                    arrival.facts, actor=actor, created=arrival.created
                )
            arrival.feed_staging()
        scanner.end()
        arrival.last(arrival.decoder.end())
        arrival.feed_staging()
        if arrival.staging is not None:
            arrival.staging.end()
        try:
            resource = json.loads(scanner.skeleton)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidDocument(f"the body is not JSON: {exc}") from exc
        streamed = None
        if scanner.found_data:
            streamed = (b"".join(arrival.pieces), attachment_hash(arrival.sha1.digest()))
        document = incoming_document(resource, limits, streamed=streamed)
        if arrival.staging is None:
            return resource, document, await publisher.publish(document, actor=actor)
        same = sealed_facts(resource, limits) == arrival.facts
        staging, arrival.staging = arrival.staging, None
        published = await publisher.finish(staging, document, actor=actor, same=same)
        return resource, document, published
    finally:
        if arrival.staging is not None:
            publisher.drop(arrival.staging)
