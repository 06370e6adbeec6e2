"""One MDM message in, one ACK out: parse, check, publish, acknowledge.

`MdmReceiver.handle` never raises: every failure becomes an ACK. AA when the publisher
committed (or had already published the same TXA-12: the publisher is idempotent on
`unique_id`); AE when the content is wrong, the patient is not linked, the ledger refuses,
or the bridge cannot reach the gateway or its key store now (MSA-3 then says "retry later":
the same message may be sent again); AR when the message is unacceptable as such.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from bridge.documents import IncomingDocument, Publisher
from bridge.errors import (
    BridgeError,
    BridgeUnavailable,
    BridgeUsageError,
    Forbidden,
    InvalidMessageContent,
    UnacceptableMessage,
    UnlinkedPatient,
)
from bridge.hl7v2.ack import Outcome, build_ack
from bridge.hl7v2.mdm import MdmRules, check_header, read_document
from bridge.hl7v2.message import Header, parse_message

log = logging.getLogger(__name__)


class MdmReceiver:
    """Turns MDM^T02/T10 messages into published documents, acting as key-store *actor*."""

    def __init__(
        self,
        publisher: Publisher,
        rules: MdmRules,
        *,
        actor: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._publisher = publisher
        self._rules = rules
        self._actor = actor
        self._clock = clock

    async def handle(self, data: bytes) -> bytes:
        """The ACK (unframed) to one message's bytes."""
        header: Header | None = None
        try:
            message, header = parse_message(data)
            check_header(header, self._rules)
            document = read_document(message, header, self._rules)
            outcome = await self._publish(document)
        except UnacceptableMessage as exc:
            outcome = Outcome("AR", str(exc), exc.condition)
        except InvalidMessageContent as exc:
            outcome = Outcome("AE", str(exc), exc.condition)
        except Exception:
            log.exception("HL7 v2 message %s failed", header.control_id if header else "?")
            outcome = Outcome("AE", "internal error in the bridge; retry later", "207")
        return self._ack(header, outcome)

    def reject_oversized(self, head: bytes, limit: int) -> bytes:
        """The AR to a message over *limit* bytes, mirroring its MSH when its head has one."""
        try:
            header: Header | None = parse_message(head)[1]
        except UnacceptableMessage:
            header = None
        text = f"the message is larger than {limit} bytes, the most this listener accepts"
        return self._ack(header, Outcome("AR", text, "207"))

    async def _publish(self, document: IncomingDocument) -> Outcome:
        try:
            published = await self._publisher.publish(document, actor=self._actor)
        except UnlinkedPatient as exc:
            return Outcome("AE", str(exc), "204")
        except BridgeUsageError as exc:
            return Outcome("AE", str(exc), "207")
        except Forbidden as exc:
            return Outcome("AE", f"refused: {exc}", "207")
        except BridgeUnavailable as exc:
            return Outcome("AE", f"retry later: {exc}", "207")
        except BridgeError as exc:
            return Outcome("AE", str(exc), "207")
        state = "published" if published.created else "already published"
        return Outcome("AA", f"{state} as record {published.record_id}")

    def _ack(self, header: Header | None, outcome: Outcome) -> bytes:
        return build_ack(header, outcome, self._clock(), self._rules.versions)
