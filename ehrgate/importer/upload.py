"""The importer's uploader over the SDK: each candidate becomes a record with the id the
journal chose (the SDK's RecordExists says the ledger has it already)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from ehrgate.client import Client
from ehrgate.errors import Unavailable
from ehrgate.importer.source import Candidate

# After this many uploads in a row failed because the gateway was unavailable, the rest are
# failed at once (and left for a re-run) instead of each waiting through its retries.
GIVE_UP_AFTER = 8


class GatewayUploader:
    """Satisfies `ehrgate.importer.run.Uploader` with an `ehrgate.Client`."""

    def __init__(self, client: Client, *, give_up_after: int = GIVE_UP_AFTER) -> None:
        self._client = client
        self._give_up_after = give_up_after
        self._lock = threading.Lock()
        self._unavailable_in_a_row = 0
        self.unavailable = 0  # uploads that failed because the gateway was unavailable

    def upload_candidate(self, candidate: Candidate, record_id: str) -> None:
        with self._lock:
            if self._unavailable_in_a_row >= self._give_up_after:
                self.unavailable += 1
                raise Unavailable(
                    "not attempted: the gateway was unavailable for the uploads before"
                )
        created_at = None
        if candidate.document_date is not None:
            # The document's own date is the record's creation time (midnight UTC).
            created_at = datetime.fromisoformat(candidate.document_date).replace(tzinfo=UTC)
        try:
            self._client.upload(
                candidate.path,
                pseudonym=candidate.pseudonym,
                category=candidate.category,
                filename=candidate.path.name,
                content_type="application/pdf",
                record_id=record_id,
                created_at=created_at,
            )
        except Unavailable:
            with self._lock:
                self._unavailable_in_a_row += 1
                self.unavailable += 1
            raise
        with self._lock:
            self._unavailable_in_a_row = 0
