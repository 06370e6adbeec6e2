"""`ehrgate seal` and `ehrgate open`: seal a file for recipients, open it again (offline).

The sealer signs as the identity in `--as KEYFILE` (the uploader), and the patient's record
key is always a recipient: exactly one `--to` must be a patient's public file. `open`
writes the plaintext to a temporary file next to the output and moves it into place only
after every segment and the plaintext hash verified, so a tampered input leaves nothing.
"""

from __future__ import annotations

import mimetypes
from datetime import UTC, datetime
from pathlib import Path

import click

from ehrgate.commands._keyfiles import load_recipient, read_public_identity
from ehrgate.commands._session import passphrase
from ehrgate.commands._shared import (
    emit,
    force_option,
    json_option,
    output_file,
    passphrase_option,
    refuse_existing,
)
from ehrgate.errors import UsageError, VerificationFailed
from envelope import (
    EnvelopeError,
    IdentityKeys,
    InvalidEnvelope,
    InvalidSignature,
    OpenedCapsule,
    PatientKeys,
    open_body,
    open_capsule,
    read_chunks,
    seal,
    verify_capsule_signature,
)
from envelope.capsule import MAX_CAPSULE_SIZE

CAPSULE_SUFFIX = ".capsule"


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _identity_of(keys: IdentityKeys | PatientKeys) -> IdentityKeys:
    return keys.identity if isinstance(keys, PatientKeys) else keys


@click.command(name="seal")
@click.option(
    "--to",
    "recipients",
    multiple=True,
    required=True,
    metavar="PUBLIC.json",
    help="A recipient's public key file; exactly one must be the patient's. Repeatable.",
)
@click.option(
    "--as",
    "signer_file",
    required=True,
    metavar="KEYFILE",
    help="Your key file: the uploader who signs.",
)
@click.option("--category", default="general", show_default=True, help="The record's category.")
@click.option("--filename", help="File name stored in the capsule (default: PLAIN's name).")
@click.option("--content-type", help="Media type stored in the capsule (default: guessed).")
@passphrase_option()
@force_option
@json_option
@click.argument("plain", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.argument("sealed", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def seal_command(
    ctx: click.Context,
    recipients: tuple[str, ...],
    signer_file: str,
    category: str,
    filename: str | None,
    content_type: str | None,
    passphrase_env: str | None,
    force: bool,
    as_json: bool,
    plain: Path,
    sealed: Path,
) -> None:
    """Seal PLAIN into the body SEALED and the capsule SEALED.capsule."""
    loaded = [load_recipient(path) for path in recipients]
    patients = [recipient_id for recipient_id, _, is_patient in loaded if is_patient]
    if len(patients) != 1:
        raise UsageError(
            "give exactly one patient public key file with --to "
            f"(got {len(patients)}): the patient's record key must be a recipient"
        )
    signer = _identity_of(passphrase(ctx, passphrase_env).load(signer_file))
    capsule_path = sealed.with_name(sealed.name + CAPSULE_SUFFIX)
    refuse_existing(sealed, force)
    refuse_existing(capsule_path, force)
    name = filename or plain.name
    media_type = content_type or mimetypes.guess_type(plain.name)[0] or "application/octet-stream"
    created_at = utc_now()
    try:
        with output_file(sealed, force=force) as body_out, plain.open("rb") as source:
            result = seal(
                source,
                body_out,
                recipients=[(recipient_id, key) for recipient_id, key, _ in loaded],
                filename=name,
                content_type=media_type,
                pseudonym=patients[0],
                category=category,
                created_at=created_at,
                uploader_id=signer.id,
                signer=signer,
            )
        try:
            with output_file(capsule_path, force=force) as capsule_out:
                capsule_out.write(result.capsule)
        except BaseException:
            sealed.unlink(missing_ok=True)
            raise
    except EnvelopeError as exc:
        raise UsageError(str(exc)) from exc
    except OSError as exc:
        raise UsageError(f"cannot seal {plain}: {exc.strerror}") from exc
    emit(
        as_json,
        {
            "body": str(sealed),
            "capsule": str(capsule_path),
            "body_sha256": result.body_sha256,
            "body_size": result.body_size,
            "capsule_sha256": result.capsule_sha256,
            "plaintext_sha256": result.plaintext_sha256,
            "plaintext_size": result.plaintext_size,
            "pseudonym": patients[0],
            "category": category,
            "created_at": created_at,
            "signer_id": signer.id,
            "recipients": [recipient_id for recipient_id, _, _ in loaded],
        },
        f"sealed {plain} ({result.plaintext_size} bytes) into {sealed} and {capsule_path}\n"
        f"body sha256 {result.body_sha256}\n"
        f"recipients: {', '.join(recipient_id for recipient_id, _, _ in loaded)}",
    )


def _open_to(sealed: Path, opened: OpenedCapsule, plain: Path, force: bool) -> None:
    with sealed.open("rb") as body, output_file(plain, force=force, mode=0o600) as out:
        for piece in open_body(read_chunks(body), opened):
            out.write(piece)


@click.command(name="open")
@click.option(
    "--key", "key_file", required=True, metavar="KEYFILE", help="Your patient or identity key file."
)
@click.option(
    "--capsule",
    "capsule_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Default: SEALED.capsule.",
)
@click.option(
    "--signer",
    "signer_file",
    metavar="PUBLIC.json",
    help="Also check the signature against this signer's public identity.",
)
@passphrase_option()
@force_option
@json_option
@click.argument("sealed", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("plain", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def open_command(
    ctx: click.Context,
    key_file: str,
    capsule_path: Path | None,
    signer_file: str | None,
    passphrase_env: str | None,
    force: bool,
    as_json: bool,
    sealed: Path,
    plain: Path,
) -> None:
    """Verify and decrypt SEALED into PLAIN; PLAIN appears only if everything verified."""
    keys = passphrase(ctx, passphrase_env).load(key_file)
    signer = read_public_identity(signer_file) if signer_file else None
    capsule_path = capsule_path or sealed.with_name(sealed.name + CAPSULE_SUFFIX)
    refuse_existing(plain, force)
    if not sealed.is_file():
        raise UsageError(f"no sealed file at {sealed}")
    try:
        with capsule_path.open("rb") as handle:
            capsule = handle.read(MAX_CAPSULE_SIZE + 1)
    except FileNotFoundError as exc:
        raise UsageError(f"no capsule at {capsule_path} (give it with --capsule)") from exc
    if isinstance(keys, PatientKeys):
        private, recipient_id = keys.patient_key.record_private_key(), keys.pseudonym
    else:
        private, recipient_id = keys.encryption_key, keys.id
    failure = (
        f"{sealed} could not be opened: it is not sealed to {recipient_id}, "
        "or it or its capsule was changed or truncated"
    )
    try:
        opened = open_capsule(capsule, private, recipient_id)
        if signer is not None:
            if signer.id != opened.signer_id:
                raise InvalidSignature(f"signed by {opened.signer_id}, not {signer.id}")
            verify_capsule_signature(
                opened,
                signer.verify_key,
                pseudonym=opened.pseudonym,
                category=opened.category,
                created_at=opened.created_at,
            )
        _open_to(sealed, opened, plain, force)
    except InvalidEnvelope as exc:
        raise VerificationFailed(failure) from exc
    except InvalidSignature as exc:
        raise VerificationFailed(f"the signature on {sealed} does not verify: {exc}") from exc
    except OSError as exc:
        raise UsageError(f"cannot open {sealed}: {exc.strerror or exc}") from exc
    emit(
        as_json,
        {"plain": str(plain), "signature_verified": signer is not None, **opened.metadata()},
        f"opened {sealed} into {plain}: {opened.filename} ({opened.content_type}, "
        f"{opened.plaintext_size} bytes), category {opened.category}, "
        f"signed by {opened.signer_id} at {opened.created_at}"
        + (" (signature verified)" if signer is not None else ""),
    )
