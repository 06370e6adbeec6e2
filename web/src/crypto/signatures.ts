// Ed25519 over canonical JSON: uploaders' record signatures, tree heads, and the actor's own
// signatures (auth challenge, ledger transactions).
import { ed25519 } from "@noble/curves/ed25519.js";
import { type Bytes, CryptoError, copy, fromBase64, toBase64 } from "./bytes.js";
import { canonical } from "./canonical.js";
import type { Metadata } from "./capsule.js";

export function verifyBytes(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    return signature.length === 64 && publicKey.length === 32 && ed25519.verify(signature, message, publicKey);
  } catch {
    return false;
  }
}

export function signBytes(secretKey: Uint8Array, message: Uint8Array): Bytes {
  return copy(ed25519.sign(message, secretKey));
}

export function signJson(secretKey: Uint8Array, value: unknown): string {
  return toBase64(signBytes(secretKey, canonical(value)));
}

export function verifyKeyOf(secretKey: Uint8Array): Bytes {
  return copy(ed25519.getPublicKey(secretKey));
}

export interface RecordFacts {
  readonly pseudonym: string;
  readonly category: string;
  readonly created_at: string;
}

export function signedContent(meta: Pick<Metadata, "plaintext_sha256">, facts: RecordFacts): Record<string, string> {
  return {
    context: "ehrgate/record-content/v1",
    plaintext_sha256: meta.plaintext_sha256,
    pseudonym: facts.pseudonym,
    category: facts.category,
    created_at: facts.created_at,
  };
}

/** The signer's signature must cover the plaintext hash and the ledger's facts of the record. */
export function verifyRecordSignature(meta: Metadata, signerVerifyKey: Uint8Array, facts: RecordFacts): void {
  if (meta.pseudonym !== facts.pseudonym || meta.category !== facts.category || meta.created_at !== facts.created_at) {
    throw new CryptoError("the file's metadata disagrees with the ledger's record");
  }
  const ok = verifyBytes(signerVerifyKey, canonical(signedContent(meta, facts)), fromBase64(meta.signature));
  if (!ok) throw new CryptoError(`the uploader's signature (${meta.signer_id}) does not verify`);
}
