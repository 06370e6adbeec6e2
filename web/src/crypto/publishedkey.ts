// A patient's published (category, month) key, believed only from the patient's own signed
// `publish_keys` transaction (ehrgate/_client/keys.py): the signer is the patient's identity,
// the Ed25519 signature over canonical {type, body, signer} verifies with its enrolled key,
// the body is for this pseudonym and carries the pair, and the SHA-256 the gateway names is
// that key's. (The receipt proving the entry is on the ledger is checked by the caller.)
import { type Bytes, CryptoError, fromBase64, toHex } from "./bytes.js";
import { canonical } from "./canonical.js";
import { sha256 } from "./hashes.js";
import { verifyBytes } from "./signatures.js";
import { PUBLIC_KEY_LEN } from "./xwing.js";

export interface SignedTx {
  type: string;
  body: Record<string, unknown>;
  signer: string;
  signature: string;
}

export interface PublishedKeyClaim {
  readonly pseudonym: string;
  readonly category: string;
  readonly period: string;
  /** the patient's identity id and enrolled Ed25519 key */
  readonly patientId: string;
  readonly patientVerifyKey: Uint8Array;
  /** the hex SHA-256 the gateway names for the key */
  readonly publicKeySha256: string;
}

export function publishedKeyFrom(tx: SignedTx, claim: PublishedKeyClaim): Bytes {
  if (tx.type !== "publish_keys" || tx.signer !== claim.patientId || tx.body.pseudonym !== claim.pseudonym) {
    throw new CryptoError("the published key is not in the patient's own publish_keys");
  }
  const { signature, ...payload } = tx;
  let signed = false;
  try {
    signed = verifyBytes(claim.patientVerifyKey, canonical(payload), fromBase64(signature));
  } catch {
    signed = false;
  }
  if (!signed) throw new CryptoError("the publish_keys entry is not signed by the patient's enrolled key");
  const items = Array.isArray(tx.body.keys) ? (tx.body.keys as unknown[]) : [];
  const item = items.find((k): k is Record<string, unknown> =>
    typeof k === "object" && k !== null && (k as Record<string, unknown>).category === claim.category
    && (k as Record<string, unknown>).period === claim.period);
  if (item === undefined || typeof item.public_key !== "string") {
    throw new CryptoError(`the signed entry carries no key for ${claim.category} in ${claim.period}`);
  }
  const raw = fromBase64(item.public_key);
  if (raw.length !== PUBLIC_KEY_LEN) throw new CryptoError("the published key is not an X-Wing key");
  if (toHex(sha256(raw)) !== claim.publicKeySha256) throw new CryptoError("the gateway names another key than the signed one");
  return raw;
}
