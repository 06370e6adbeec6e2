"""A clinician's side of a research export: one record made ready for a study.

The exporter holds a share right (with the patient's study terms: the study pseudonym it
publishes and the study secret sealed to the exporter) and the scoped keys of the record
(its key share). What `POST /v1/study-exports` takes:

- without anonymisation (`rewrap_for_study`): the record's data key rewrapped for the
  study's encryption key under the study pseudonym (a new capsule; the body is the
  record's own);
- with anonymisation (`seal_anonymised`, then `export_entry` with the stored body's
  locators): the plaintext (which the caller fetched and opened) anonymised
  (`ehrgate.anonymise`) and sealed anew for the study: a neutral file name, no uploader id
  (the copy says "anonymised"), the study pseudonym instead of the patient's, and the
  record's time moved by the patient's offset for this study. It is signed by the
  exporter, whose id the copy carries as its signer.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any, Protocol

from ehrgate.anonymise import anonymised_content, neutral_filename
from ehrgate.errors import UsageError
from envelope import (
    HybridPrivateKey,
    HybridPublicKey,
    IdentityKeys,
    InvalidEnvelope,
    ScopedSeeds,
    StudySecret,
    b64decode,
    open_study_secret,
    rewrap_capsule,
    seal,
)
from ledger.wire import builders
from ledger.wire.clock import format_time, parse_time
from ledger.wire.transactions import Transaction

ANONYMISED_UPLOADER = "anonymised"


class ShareRight(Protocol):
    @property
    def permission_id(self) -> str: ...
    @property
    def pseudonym(self) -> str: ...
    @property
    def grantee(self) -> str: ...
    @property
    def study_id(self) -> str | None: ...
    @property
    def anonymise(self) -> bool | None: ...
    @property
    def study_pseudonym(self) -> str | None: ...
    @property
    def study_secret(self) -> str | None: ...


class RecordFacts(Protocol):
    @property
    def record_id(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def created_at(self) -> str: ...
    @property
    def content_type(self) -> str: ...
    @property
    def body_sha256(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def locators(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class PreparedExport:
    """What the exporter sends for a rewrapped export: the signed entry and the capsule."""

    transaction: Transaction
    capsule: bytes


def study_secret(exporter: IdentityKeys, right: ShareRight) -> StudySecret:
    """The patient's study secret, opened from the share right (checked against the study
    pseudonym the grant publishes)."""
    if right.study_id is None or right.study_pseudonym is None or right.study_secret is None:
        raise UsageError(
            f"permission {right.permission_id} carries no study terms: the patient must grant "
            "the share right again (with its study pseudonym)"
        )
    try:
        return open_study_secret(
            b64decode(right.study_secret),
            exporter.encryption_key,
            pseudonym=right.pseudonym,
            grantee_id=exporter.id,
            study_id=right.study_id,
            study_pseudonym=right.study_pseudonym,
        )
    except InvalidEnvelope as exc:
        raise UsageError(
            f"the study secret of permission {right.permission_id} does not open for "
            f"{exporter.id} or does not give the study pseudonym the grant publishes"
        ) from exc


def _record_key(seeds: ScopedSeeds, record: RecordFacts) -> HybridPrivateKey:
    key = seeds.key_for(record.category, record.created_at)
    if key is None:
        raise UsageError(
            f"the key share holds no key for {record.category} in {record.created_at[:7]}: "
            "the exporter cannot open this record"
        )
    return key


def rewrap_for_study(
    *,
    exporter: IdentityKeys,
    right: ShareRight,
    seeds: ScopedSeeds,
    study_key: HybridPublicKey,
    record: RecordFacts,
    capsule: bytes,
    issued_at: Any = None,
) -> PreparedExport:
    """The export of *record* without anonymisation: its data key rewrapped for the study
    under the study pseudonym; the entry names the record's own body."""
    secret = study_secret(exporter, right)
    if right.anonymise:
        raise UsageError(
            f"permission {right.permission_id} asks for anonymisation: seal an anonymised "
            "copy (seal_anonymised) instead of rewrapping the record"
        )
    try:
        new_capsule = rewrap_capsule(
            capsule,
            _record_key(seeds, record),
            right.pseudonym,
            [(secret.pseudonym, study_key)],
            key_ids={secret.pseudonym: "identity"},
        )
    except InvalidEnvelope as exc:
        raise UsageError(
            f"record {record.record_id}'s capsule does not open with the exporter's key share"
        ) from exc
    tx = export_entry(
        exporter,
        right=right,
        secret=secret,
        record=record,
        created_at=record.created_at,
        body_sha256=record.body_sha256,
        size=record.size,
        locators=list(record.locators),
        capsule=new_capsule,
        issued_at=issued_at,
    )
    return PreparedExport(tx, new_capsule)


@dataclass(frozen=True, slots=True)
class SealedCopy:
    """An anonymised copy sealed for the study: upload `body`, then commit `capsule`."""

    body: bytes
    capsule: bytes
    body_sha256: str
    size: int
    created_at: str


def seal_anonymised(
    *,
    exporter: IdentityKeys,
    right: ShareRight,
    study_key: HybridPublicKey,
    record: RecordFacts,
    plaintext: bytes,
) -> SealedCopy:
    """A new sealed copy of *plaintext* for the study, with no direct identifiers."""
    secret = study_secret(exporter, right)
    shifted = format_time(secret.shift(parse_time(record.created_at, "created_at")))
    content = anonymised_content(plaintext, record.content_type)
    body_out = io.BytesIO()
    result = seal(
        io.BytesIO(content),
        body_out,
        recipients=[(secret.pseudonym, study_key)],
        filename=neutral_filename(record.content_type),
        content_type=record.content_type,
        pseudonym=secret.pseudonym,
        category=record.category,
        created_at=shifted,
        uploader_id=ANONYMISED_UPLOADER,
        signer=exporter,
    )
    return SealedCopy(
        body=body_out.getvalue(),
        capsule=result.capsule,
        body_sha256=result.body_sha256,
        size=result.body_size,
        created_at=shifted,
    )


def export_entry(
    exporter: IdentityKeys,
    *,
    right: ShareRight,
    secret: StudySecret,
    record: RecordFacts,
    created_at: str,
    body_sha256: str,
    size: int,
    locators: list[str],
    capsule: bytes,
    issued_at: Any = None,
) -> Transaction:
    """The signed `study_export` entry."""
    assert right.study_id is not None
    return builders.study_export(
        exporter,
        permission_id=right.permission_id,
        study_id=right.study_id,
        study_pseudonym=secret.pseudonym,
        source_record_id=record.record_id,
        anonymise=bool(right.anonymise),
        category=record.category,
        created_at=created_at,
        content_type=record.content_type,
        body_sha256=body_sha256,
        size=size,
        locators=locators,
        capsule_sha256=hashlib.sha256(capsule).hexdigest(),
        issued_at=issued_at,
    )
