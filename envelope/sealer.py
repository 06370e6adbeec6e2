"""Sealing a file for its recipients, and opening a sealed body as a verified stream.

`seal` works on two binary streams; `Sealer` is the same thing fed in pieces (an HTTP
gateway seals while the upload streams in, with no temporary file); `open_body` turns
body chunks back into plaintext. There are no nonce, salt or key parameters: those are
made inside. The private `Sealer._from_parts` (and `_seal_with_parts` over it) fixes them
for test vectors only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, NotRequired, TypedDict, Unpack

from envelope.body import BodySealer, Buffer, DataKey
from envelope.canonical import b64encode
from envelope.capsule import (
    META_NONCE_LEN,
    OpenedCapsule,
    Recipient,
    _encrypt_metadata,
    build_capsule,
    capsule_sha256,
    check_created_at,
    check_recipients,
    check_text,
    signed_content,
)
from envelope.errors import EnvelopeError
from envelope.identity import IdentityKeys, SigningKey
from envelope.patient import is_pseudonym
from envelope.scoped import key_id, record_period

READ_SIZE = 1024 * 1024


@dataclass(frozen=True, slots=True)
class SealResult:
    """What sealing produced besides the body bytes themselves."""

    capsule: bytes
    body_sha256: str
    body_size: int
    plaintext_sha256: str
    plaintext_size: int

    @property
    def capsule_sha256(self) -> str:
        return capsule_sha256(self.capsule)


class SealArguments(TypedDict):
    """The keywords of `Sealer` and `seal`: what is sealed, for whom, signed by whom."""

    recipients: Sequence[Recipient]
    filename: str
    content_type: str
    pseudonym: str
    category: str
    created_at: str
    uploader_id: str
    signer: IdentityKeys | SigningKey
    signer_id: NotRequired[str | None]
    scoped: NotRequired[bool]


class Sealer:
    """Seals a plaintext given in pieces: `update` and `finalize` return the body bytes.

    The patient's record key must be among *recipients*, under the pseudonym as its id.
    The signer signs the plaintext's SHA-256 with the pseudonym, category and time; it is
    usually the uploader, but a gateway sealing on a system's behalf signs with its own
    key (pass *signer_id* with a bare SigningKey). With *scoped*, the pseudonym's entry is
    the patient's scoped key for (category, month of created_at) (`envelope.scoped`), and
    the capsule (version 2) names it. After `finalize`, `result` holds the capsule and the
    hashes.
    """

    def __init__(
        self,
        *,
        recipients: Sequence[Recipient],
        filename: str,
        content_type: str,
        pseudonym: str,
        category: str,
        created_at: str,
        uploader_id: str,
        signer: IdentityKeys | SigningKey,
        signer_id: str | None = None,
        scoped: bool = False,
    ) -> None:
        if not is_pseudonym(pseudonym):
            raise EnvelopeError("a pseudonym is 64 lowercase hexadecimal characters")
        self._recipients = check_recipients(recipients)
        if pseudonym not in {recipient_id for recipient_id, _ in self._recipients}:
            raise EnvelopeError(
                "the recipients must include the patient's record key, with the pseudonym as id"
            )
        check_created_at(created_at)
        self._key_ids = {pseudonym: key_id(category, record_period(created_at))} if scoped else None
        if isinstance(signer, IdentityKeys):
            if signer_id is not None and signer_id != signer.id:
                raise EnvelopeError(f"signer_id {signer_id!r} differs from the identity's id")
            signer_id, signing_key = signer.id, signer.signing_key
        elif isinstance(signer, SigningKey):
            if signer_id is None:
                raise EnvelopeError("a bare SigningKey needs signer_id")
            signing_key = signer
        else:
            raise EnvelopeError("signer must be IdentityKeys or a SigningKey")
        self._fields = {
            "filename": check_text("filename", filename, basename=True),
            "content_type": check_text("content type", content_type),
            "pseudonym": pseudonym,
            "category": check_text("category", category),
            "created_at": created_at,
            "uploader_id": check_text("uploader id", uploader_id),
            "signer_id": check_text("signer id", signer_id),
        }
        self._signing_key = signing_key
        self._dek = DataKey.generate()
        self._meta_nonce = os.urandom(META_NONCE_LEN)
        self._body = BodySealer(self._dek)
        self._result: SealResult | None = None

    @classmethod
    def _from_parts(
        cls, *, dek: DataKey, salt: bytes, meta_nonce: bytes, **arguments: Unpack[SealArguments]
    ) -> Sealer:
        """A sealer whose data key, body salt and metadata nonce are given: for test vectors
        only (reusing them for two plaintexts would break the encryption)."""
        sealer = cls(**arguments)
        sealer._body.close()
        sealer._dek, sealer._meta_nonce = dek, meta_nonce
        sealer._body = BodySealer._with_salt(dek, salt)
        return sealer

    def update_segments(self, chunk: Buffer) -> list[Buffer]:
        """Like `update` without joining the pieces (one copy fewer for large inputs)."""
        return self._body.update_segments(chunk)

    def update(self, chunk: Buffer) -> bytes:
        """Take more plaintext; return body bytes to store (the header comes first)."""
        return self._body.update(chunk)

    def finalize_segments(self) -> list[Buffer]:
        tail = self._body.finalize_segments()
        plaintext_sha256 = self._body.plaintext_sha256()
        body_sha256 = self._body.body_sha256()
        fields = self._fields
        signature = self._signing_key.sign(
            signed_content(
                plaintext_sha256=plaintext_sha256,
                pseudonym=fields["pseudonym"],
                category=fields["category"],
                created_at=fields["created_at"],
            )
        )
        metadata = {
            **fields,
            "plaintext_sha256": plaintext_sha256,
            "plaintext_size": self._body.plaintext_size,
            "body_sha256": body_sha256,
            "body_size": self._body.body_size,
            "signature": b64encode(signature),
        }
        meta = _encrypt_metadata(self._dek, metadata, self._meta_nonce)
        self._result = SealResult(
            capsule=build_capsule(self._dek, self._recipients, meta, self._key_ids),
            body_sha256=body_sha256,
            body_size=self._body.body_size,
            plaintext_sha256=plaintext_sha256,
            plaintext_size=self._body.plaintext_size,
        )
        return tail

    def finalize(self) -> bytes:
        """Seal the last segment and make the capsule; return the last body bytes."""
        return b"".join(self.finalize_segments())

    @property
    def result(self) -> SealResult:
        if self._result is None:
            raise EnvelopeError("the sealer is not finalised yet")
        return self._result

    def close(self) -> None:
        """Release resources of a sealer abandoned before `finalize` (a failed upload)."""
        self._body.close()


def _pump(sealer: Sealer, plaintext: IO[bytes], body_out: IO[bytes]) -> SealResult:
    try:
        while chunk := plaintext.read(READ_SIZE):
            body_out.writelines(sealer.update_segments(chunk))
        body_out.writelines(sealer.finalize_segments())
    except BaseException:
        sealer.close()
        raise
    return sealer.result


def seal(
    plaintext: IO[bytes], body_out: IO[bytes], **arguments: Unpack[SealArguments]
) -> SealResult:
    """Read *plaintext* to its end, write the sealed body to *body_out*, return the capsule.

    The keywords are `Sealer`'s. Memory use stays at about one read (1 MiB) whatever the
    size of the file.
    """
    return _pump(Sealer(**arguments), plaintext, body_out)


def _seal_with_parts(
    plaintext: IO[bytes],
    body_out: IO[bytes],
    *,
    dek: DataKey,
    salt: bytes,
    meta_nonce: bytes,
    **arguments: Unpack[SealArguments],
) -> SealResult:
    """`seal` with the data key, salt and metadata nonce fixed: for test vectors only."""
    sealer = Sealer._from_parts(dek=dek, salt=salt, meta_nonce=meta_nonce, **arguments)
    return _pump(sealer, plaintext, body_out)


def open_body(chunks: Iterable[bytes], opened: OpenedCapsule) -> Iterator[bytes]:
    """Yield the plaintext of each body segment once it has verified.

    Raises InvalidEnvelope, at the latest after the last chunk, if anything is wrong
    (including truncation, or a plaintext that is not the one the capsule describes).
    Plaintext yielded before an error must be discarded: write it somewhere temporary and
    keep it only when the iteration ends without error.
    """
    opener = opened.body_opener()
    for chunk in chunks:
        yield from opener.update_pieces(chunk)
    last = opener.finalize()
    if last:
        yield last


def read_chunks(stream: IO[bytes], size: int = READ_SIZE) -> Iterator[bytes]:
    """Chunks of *size* bytes from a binary stream, for `open_body`."""
    while chunk := stream.read(size):
        yield chunk
