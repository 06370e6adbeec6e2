"""The publisher: an incoming document sealed, signed and uploaded through the SDK.

The MRN is mapped to the linked pseudonym; the PDF is sealed to the patient's record key
and signed by the acting key-store identity (`ehrgate.Client.upload`). Idempotent on the
sender's unique id: the record id is derived from the hospital and the unique id, so a
retry (or a concurrent duplicate, or a retry after a crash between commit and
bookkeeping) commits nothing twice: the ledger refuses a second record with that id, and
the bridge's table remembers unique id → record id. The same unique id with other bytes is
refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import io
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime

from anyio import CapacityLimiter, to_thread

from bridge.documents import REFERENCE_PREFIX, IncomingDocument, Published, SealedFacts
from bridge.errors import BridgeError, BridgeUnavailable, Forbidden, InvalidDocument
from bridge.keystore import Identities
from bridge.links import PatientLinks
from bridge.staging import Outcome, Staging, Target
from bridge.store import BridgeStore, PublishedRow
from ehrgate.errors import Denied, EhrgateError, RecordExists, Unavailable, UsageError

STAGED_AT_ONCE = 8
"""How many ITI-105 uploads may run while their bodies arrive; more wait for the whole body."""


def record_id_for(hospital: str, unique_id: str) -> str:
    """The ledger record id of a sender's unique id (32 hex, as the ledger's ids)."""
    material = f"ehrgate-bridge-record/v1\n{hospital}\n{unique_id}".encode()
    return hashlib.sha256(material).hexdigest()[:32]


class GatewayPublisher:
    """Implements `bridge.documents.Publisher` with the SDK."""

    def __init__(self, store: BridgeStore, links: PatientLinks, identities: Identities) -> None:
        self._store = store
        self._links = links
        self._identities = identities
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        # A staged upload holds a thread until its request's body has all arrived: a few
        # of them at a time, so that slow senders never take the threads reads need.
        self._staging_threads = CapacityLimiter(STAGED_AT_ONCE)

    async def publish(self, document: IncomingDocument, *, actor: str) -> Published:
        pseudonym = self._links.pseudonym_for(document.mrn)
        async with self._locks[document.unique_id]:
            known = self._store.published(document.unique_id)
            if known is not None:
                return self._repeat(known, document)
            if document.replaces is not None:
                document = self._replacing(document, pseudonym)
            record_id = record_id_for(self._links.hospital, document.unique_id)
            created = await to_thread.run_sync(self._upload, document, pseudonym, record_id, actor)
            self._store.put_published(self._row(document, pseudonym, record_id))
        self._locks.pop(document.unique_id, None)
        return Published(record_id=record_id, pseudonym=pseudonym, created=created)

    @staticmethod
    def _row(document: IncomingDocument, pseudonym: str, record_id: str) -> PublishedRow:
        return PublishedRow(
            unique_id=document.unique_id,
            record_id=record_id,
            pseudonym=pseudonym,
            mrn=document.mrn,
            category=document.category,
            sha1=document.content_sha1(),
            size=len(document.content),
            title=document.title,
            replaces=document.replaces,
            published_at=datetime.now(UTC).isoformat(),
        )

    def _replacing(self, document: IncomingDocument, pseudonym: str) -> IncomingDocument:
        """*document* with `replaces` as the replaced document's unique id, once checked:
        it was published here, for the same patient, and is not replaced already."""
        named = document.replaces or ""
        if named.startswith(REFERENCE_PREFIX):
            replaced = self._store.published_record(named.removeprefix(REFERENCE_PREFIX))
        else:
            replaced = self._store.published(named)
        if replaced is None:
            raise InvalidDocument(
                f"the document it replaces ({named}) was not published through this bridge; "
                "send the replaced document first, or publish this one as a new document"
            )
        if replaced.pseudonym != pseudonym:
            raise InvalidDocument(f"the document it replaces ({named}) belongs to another patient")
        later = self._store.replacement_of(replaced.unique_id)
        if later is not None and later.unique_id != document.unique_id:
            raise InvalidDocument(
                f"the document {replaced.unique_id} was already replaced by {later.unique_id};"
                " replace that one instead"
            )
        return dataclasses.replace(document, replaces=replaced.unique_id)

    @staticmethod
    def _repeat(known: PublishedRow, document: IncomingDocument) -> Published:
        if known.sha1 != document.content_sha1() or known.mrn != document.mrn:
            raise InvalidDocument(
                f"unique id {document.unique_id} was published before for other content or "
                "another patient; give a new document a new unique id"
            )
        return Published(record_id=known.record_id, pseudonym=known.pseudonym, created=False)

    def _upload(
        self, document: IncomingDocument, pseudonym: str, record_id: str, actor: str
    ) -> bool:
        """Upload; False when the ledger already had the record (an earlier attempt)."""
        client = self._identities.client(actor)
        with sdk_errors():
            try:
                client.upload(
                    io.BytesIO(document.content),
                    pseudonym=pseudonym,
                    category=document.category,
                    filename=document.title or f"{document.unique_id}.pdf",
                    content_type=document.content_type,
                    record_id=record_id,
                    created_at=document.created,
                )
            except RecordExists:
                return False
        return True

    # --- publishing while the document arrives (ITI-105) ---------------------------------

    async def stage(
        self, facts: SealedFacts, *, actor: str, created: datetime | None
    ) -> Staging | None:
        """Start uploading a document whose data is still arriving, or None when it must
        wait for the whole document: its MRN is not linked, its unique id was published
        (a retry uploads nothing twice) or is being published now, or `STAGED_AT_ONCE`
        staged uploads are running."""
        try:
            pseudonym = self._links.pseudonym_for(facts.mrn)
        except BridgeError:
            return None
        if self._staging_threads.available_tokens < 1:
            return None
        if self._store.published(facts.unique_id) is not None:
            return None
        lock = self._locks[facts.unique_id]
        if lock.locked():
            return None
        await lock.acquire()  # free and awaited by no one: taken without suspending
        target = Target(
            actor=actor,
            pseudonym=pseudonym,
            category=facts.category,
            record_id=record_id_for(self._links.hospital, facts.unique_id),
            unique_id=facts.unique_id,
            filename=facts.title or f"{facts.unique_id}.pdf",
            created=created or datetime.now(UTC),
        )
        return Staging(target, self._identities, self._staging_threads)

    async def finish(
        self, staging: Staging, document: IncomingDocument, *, actor: str, same: bool
    ) -> Published:
        """Publish *document*, whose data *staging* uploaded while it arrived; *same* says
        whether what was sealed (`SealedFacts`) is what the whole document says. If not,
        the staged body is left uncommitted and the document is published as usual."""
        target = staging.target
        if not same:
            self.drop(staging)
            await staging.settle()
            return await self.publish(document, actor=actor)
        try:
            document = dataclasses.replace(document, created=target.created)
            if document.replaces is not None:
                document = self._replacing(document, target.pseudonym)
            with sdk_errors():
                outcome = await staging.commit()
            if outcome is Outcome.STALE_KEY:
                created = await to_thread.run_sync(
                    self._upload, document, target.pseudonym, target.record_id, actor
                )
            else:
                created = outcome is Outcome.CREATED
            self._store.put_published(self._row(document, target.pseudonym, target.record_id))
        finally:
            self.drop(staging)
        return Published(record_id=target.record_id, pseudonym=target.pseudonym, created=created)

    def drop(self, staging: Staging) -> None:
        """End *staging* (abandoned unless committed) and release its unique id."""
        staging.abandon()
        lock = self._locks.get(staging.target.unique_id)
        if lock is not None and lock.locked():
            lock.release()
            self._locks.pop(staging.target.unique_id, None)


@contextlib.contextmanager
def sdk_errors() -> Iterator[None]:
    """The SDK's errors of an upload as the bridge's."""
    try:
        yield
    except Denied as exc:
        raise Forbidden(f"the ledger refused the upload: {exc}") from exc
    except Unavailable as exc:
        raise BridgeUnavailable(f"the gateway cannot take the upload now: {exc}") from exc
    except UsageError as exc:
        raise InvalidDocument(f"the gateway refused the document: {exc}") from exc
    except EhrgateError as exc:
        raise BridgeUnavailable(f"the upload failed: {exc}") from exc
