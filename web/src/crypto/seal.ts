// Sealing a file in the browser (a clinician's upload): fresh data key and salt, the body,
// the uploader-signed metadata and the capsule, byte for byte as envelope/sealer.py makes them.
import { type Bytes, CryptoError, toBase64 } from "./bytes.js";
import { type Metadata, buildCapsule, capsuleSha256, encryptMetadata } from "./capsule.js";
import { canonical } from "./canonical.js";
import { type SealedBody, sealBody } from "./body.js";
import { recordPeriod, scopedKeyId } from "./scoped.js";
import { signBytes, signedContent } from "./signatures.js";

export interface SealRequest extends SealFacts {
  readonly plaintext: Uint8Array<ArrayBuffer>;
}

/** What a capsule states about a document besides its bytes. */
export interface SealFacts {
  readonly recipients: ReadonlyArray<readonly [string, Uint8Array]>;
  /** seal to the patient's scoped key of (category, month of createdAt): a version 2 capsule
   * whose pseudonym entry names "scoped-v2/<category>/<YYYY-MM>" (the others: "identity") */
  readonly scoped?: boolean;
  readonly filename: string;
  readonly contentType: string;
  readonly pseudonym: string;
  readonly category: string;
  readonly createdAt: string;
  readonly uploaderId: string;
  readonly signerId: string;
  readonly signingKey: Uint8Array;
}

export interface SealResult {
  readonly body: Bytes;
  readonly capsule: Bytes;
  readonly capsuleSha256: string;
  readonly bodySha256: string;
  readonly plaintextSha256: string;
  readonly metadata: Metadata;
}

export interface SealParts {
  readonly dataKey: Uint8Array;
  readonly salt: Uint8Array;
  readonly metaNonce: Uint8Array;
}

function random(length: number): Bytes {
  return globalThis.crypto.getRandomValues(new Uint8Array(length));
}

export async function seal(request: SealRequest, parts?: SealParts): Promise<SealResult> {
  checkRecipients(request);
  const dataKey = parts?.dataKey ?? random(32);
  const sealed = await sealBody(dataKey, parts?.salt ?? random(16), request.plaintext);
  return finishSeal(request, sealed, request.plaintext.length, dataKey, parts?.metaNonce);
}

function checkRecipients(request: SealFacts): void {
  if (!request.recipients.some(([id]) => id === request.pseudonym)) {
    throw new CryptoError("the patient's record key must be a recipient");
  }
}

/** A fresh data key and body salt for sealing elsewhere (the app's worker) with `sealBody`. */
export function freshBodyKeys(): { dataKey: Bytes; salt: Bytes } {
  return { dataKey: random(32), salt: random(16) };
}

/**
 * The signed metadata and the capsule for a body already sealed under `dataKey` (by
 * `sealBody`, in the app's worker): the same bytes `seal` makes from the same parts.
 */
export async function finishSeal(
  request: SealFacts, sealed: SealedBody, plaintextSize: number, dataKey: Uint8Array, metaNonce?: Uint8Array,
): Promise<SealResult> {
  checkRecipients(request);
  const keyIds = request.scoped === true
    ? new Map([[request.pseudonym, scopedKeyId(request.category, recordPeriod(request.createdAt))]])
    : undefined;
  const facts = { pseudonym: request.pseudonym, category: request.category, created_at: request.createdAt };
  const signature = signBytes(request.signingKey, canonical(signedContent({ plaintext_sha256: sealed.plaintextSha256 }, facts)));
  const metadata: Metadata = {
    filename: request.filename,
    content_type: request.contentType,
    plaintext_sha256: sealed.plaintextSha256,
    plaintext_size: plaintextSize,
    body_sha256: sealed.bodySha256,
    body_size: sealed.body.length,
    uploader_id: request.uploaderId,
    signer_id: request.signerId,
    ...facts,
    signature: toBase64(signature),
  };
  const meta = await encryptMetadata(dataKey, metadata, metaNonce ?? random(12));
  const capsule = await buildCapsule(dataKey, request.recipients, meta, keyIds);
  return {
    body: sealed.body, capsule, capsuleSha256: capsuleSha256(capsule),
    bodySha256: sealed.bodySha256, plaintextSha256: sealed.plaintextSha256, metadata,
  };
}
