"""Research calls: a clinician's export of a record to a study, and the study's side.

`export_to_study` finds the caller's share right that covers the record now, then either
rewraps the record's data key for the study (the body stays the record's) or, when the
right asks for anonymisation, opens the record, makes the anonymised copy
(`ehrgate.research`), uploads its sealed body and commits the `study_export`. The study
lists its exports and opens each with its own key, under its study pseudonym.
"""

from __future__ import annotations

import hashlib

from ehrgate._client.directory import Directory
from ehrgate._client.fetch import Fetcher
from ehrgate._client.session import Session, items, ledger_now
from ehrgate._client.trust import Trust
from ehrgate.errors import MalformedAnswer, UsageError, VerificationFailed
from ehrgate.models import Permission, Receipt, Record, StudyExport
from ehrgate.research import export_entry, rewrap_for_study, seal_anonymised, study_secret
from envelope import (
    EnvelopeError,
    HybridPublicKey,
    InvalidEnvelope,
    ScopedSeeds,
    b64decode,
    b64encode,
    open_body,
    open_capsule,
)
from ledger.wire.transactions import Transaction


class Research:
    """The calls about exports to studies."""

    def __init__(
        self, session: Session, trust: Trust, directory: Directory, fetcher: Fetcher
    ) -> None:
        self._session = session
        self._trust = trust
        self._directory = directory
        self._fetcher = fetcher

    def _share_right(self, record: Record, permission_id: str | None) -> Permission:
        answer = self._session.get(f"/v1/patients/{record.pseudonym}/permissions")
        now = ledger_now()
        mine = [
            p for p in (Permission.from_json(item) for item in items(answer, "permissions"))
            if p.grantee == self._session.signer().id and "share" in p.rights
            and not p.revoked and p.not_before <= now < p.not_after
            and (p.categories == "all" or record.category in p.categories)
            and (permission_id is None or p.permission_id == permission_id)
        ]  # fmt: skip
        if len(mine) != 1:
            raise UsageError(
                f"{'no' if not mine else 'more than one'} share right of yours covers record "
                f"{record.record_id} ({record.category}) now"
                + ("" if not mine else ": name one with --permission")
            )
        return mine[0]

    def _study_key(self, study_id: str) -> HybridPublicKey:
        study = self._directory.identity_of(study_id)
        if study.role != "study":
            raise UsageError(f"{study_id} is a {study.role}, not a study identity")
        try:
            return HybridPublicKey(b64decode(study.encryption_public_key))
        except EnvelopeError as exc:
            raise MalformedAnswer(f"{study_id}'s enrolled key: {exc}") from exc

    def _commit(self, tx: Transaction, capsule: bytes) -> tuple[StudyExport, Receipt]:
        answer = self._session.post(
            "/v1/study-exports", {"transaction": tx.to_json(), "capsule": b64encode(capsule)}
        )
        return StudyExport.from_json(answer.get("export")), self._trust.receipt(answer, tx)

    def export_to_study(
        self, record_id: str, *, permission_id: str | None = None
    ) -> tuple[StudyExport, Receipt]:
        """Export one record to the study of the caller's share right (see the module)."""
        exporter = self._session.signer()
        record = self._fetcher.record(record_id).record
        right = self._share_right(record, permission_id)
        if right.study_id is None:
            raise UsageError(f"permission {right.permission_id} names no study")
        study_key = self._study_key(right.study_id)
        if right.anonymise:
            _, plaintext = self._fetcher.fetch_bytes(record_id)
            copy = seal_anonymised(
                exporter=exporter, right=right, study_key=study_key, record=record,
                plaintext=plaintext,
            )  # fmt: skip
            stored = self._session.connection.request(
                "POST", "/v1/study-exports/bodies", params={"permission_id": right.permission_id},
                content=copy.body, headers={"Content-Type": "application/octet-stream"},
            ).json()  # fmt: skip
            tx = export_entry(
                exporter, right=right, secret=study_secret(exporter, right), record=record,
                created_at=copy.created_at, body_sha256=copy.body_sha256, size=copy.size,
                locators=list(stored["locators"]), capsule=copy.capsule,
            )  # fmt: skip
            return self._commit(tx, copy.capsule)
        seeds = self._fetcher.seeds_of(record.pseudonym)
        if not isinstance(seeds, ScopedSeeds):
            raise UsageError("exporting needs the patient's scoped key share")
        capsule = self._session.connection.request(
            "GET", f"/v1/records/{record_id}/capsule"
        ).content
        if hashlib.sha256(capsule).hexdigest() != record.capsule_sha256:
            raise VerificationFailed("the capsule's SHA-256 is not the one on the ledger")
        prepared = rewrap_for_study(
            exporter=exporter, right=right, seeds=seeds, study_key=study_key, record=record,
            capsule=capsule,
        )  # fmt: skip
        return self._commit(prepared.transaction, prepared.capsule)

    def study_exports(self) -> list[StudyExport]:
        """What was exported to the calling study."""
        study = self._session.signer()
        answer = self._session.get(f"/v1/studies/{study.id}/exports")
        return [StudyExport.from_json(item) for item in items(answer, "exports")]

    def open_study_export(self, export: StudyExport) -> bytes:
        """The plaintext of one export, opened with the study's key and checked."""
        study = self._session.signer()
        connection = self._session.connection
        capsule = connection.request("GET", f"/v1/study-exports/{export.export_id}/capsule")
        body = connection.request("GET", f"/v1/study-exports/{export.export_id}/body").content
        if hashlib.sha256(capsule.content).hexdigest() != export.capsule_sha256:
            raise VerificationFailed("the export's capsule is not the one on the ledger")
        if hashlib.sha256(body).hexdigest() != export.body_sha256:
            raise VerificationFailed("the export's body is not the one on the ledger")
        try:
            opened = open_capsule(capsule.content, study.encryption_key, export.study_pseudonym)
            return b"".join(open_body([body], opened))
        except InvalidEnvelope as exc:
            raise VerificationFailed(
                f"export {export.export_id} does not open with {study.id}'s key"
            ) from exc
