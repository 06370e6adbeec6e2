// Capsules (docs/envelope.md "Capsule"): canonical JSON holding the data key wrapped per
// recipient, the encrypted metadata and a MAC under the data key. Opening checks the exact
// canonical form, unwraps, checks the MAC, then decrypts and checks the metadata.
import { aesGcmDecrypt, aesGcmEncrypt } from "./aead.js";
import { type Bytes, CryptoError, concat, equalBytes, fromBase64, fromUtf8, toBase64, toHex, utf8 } from "./bytes.js";
import { canonical, canonicalText } from "./canonical.js";
import { hkdfSha256, hmacSha256, sha256 } from "./hashes.js";
import { hpkeOpen, hpkeSeal } from "./hpke.js";
import { isPseudonym } from "./pseudonym.js";
import type { XWingPrivateKey } from "./xwing.js";

export const WRAPPED_KEY_LEN = 1120 + 32 + 16;
const META_INFO = utf8("ehrgate/capsule-meta/v1");
const MAC_INFO = utf8("ehrgate/capsule-mac/v1");
const MAX_CAPSULE_SIZE = 4 * 1024 * 1024;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const RFC3339_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/;

export interface Metadata {
  filename: string;
  content_type: string;
  plaintext_sha256: string;
  plaintext_size: number;
  body_sha256: string;
  body_size: number;
  uploader_id: string;
  signer_id: string;
  pseudonym: string;
  category: string;
  created_at: string;
  signature: string;
}

export interface OpenedCapsule {
  readonly metadata: Metadata;
  readonly dataKey: Bytes;
}

const REFUSED = (): CryptoError => new CryptoError("the capsule does not open: changed, or not for this key");

/** The wrap's info: version 1 binds the recipient id; version 2 also the key id it names. */
export function wrapInfo(recipientId: string, keyId?: string): Bytes {
  if (keyId === undefined) return concat(utf8("ehrgate/capsule-key/v1\u0000"), utf8(recipientId));
  return concat(utf8("ehrgate/capsule-key/v2\u0000"), utf8(recipientId), utf8("\u0000"), utf8(keyId));
}

export const IDENTITY_KEY_ID = "identity";

export function capsuleSha256(capsule: Uint8Array): string {
  return toHex(sha256(capsule));
}

interface ParsedCapsule {
  wrapped: Map<string, Bytes>;
  /** version 2: the key each recipient's entry names */
  keyIds: Map<string, string> | null;
  meta: Bytes;
  mac: Bytes;
  unsigned: Bytes;
}

function parseCapsule(capsule: Uint8Array): ParsedCapsule {
  if (capsule.length > MAX_CAPSULE_SIZE) throw REFUSED();
  const text = fromUtf8(capsule);
  const value: unknown = JSON.parse(text);
  // exactly one byte form: anything not already canonical (duplicates, spacing) is refused
  if (canonicalText(value) !== text || typeof value !== "object" || value === null) throw REFUSED();
  const { format, version, recipients, meta, mac, ...rest } = value as Record<string, unknown>;
  if (Object.keys(rest).length > 0 || format !== "ehrgate-capsule" || (version !== 1 && version !== 2)) throw REFUSED();
  if (!Array.isArray(recipients) || recipients.length === 0 || recipients.length > 1000) throw REFUSED();
  const wrapped = new Map<string, Bytes>();
  const keyIds = new Map<string, string>();
  for (const entry of recipients as unknown[]) {
    if (typeof entry !== "object" || entry === null) throw REFUSED();
    const { id, wrapped_key, key: keyId, ...extra } = entry as Record<string, unknown>;
    if (Object.keys(extra).length > 0 || typeof id !== "string" || id === "" || wrapped.has(id)) throw REFUSED();
    if (version === 1 ? keyId !== undefined : typeof keyId !== "string" || keyId === "" || keyId.includes("\u0000")) throw REFUSED();
    if (typeof wrapped_key !== "string") throw REFUSED();
    const key = fromBase64(wrapped_key);
    if (key.length !== WRAPPED_KEY_LEN) throw REFUSED();
    wrapped.set(id, key);
    if (typeof keyId === "string") keyIds.set(id, keyId);
  }
  if (typeof meta !== "string" || typeof mac !== "string") throw REFUSED();
  const metaBytes = fromBase64(meta);
  const macBytes = fromBase64(mac);
  if (metaBytes.length < 28 || macBytes.length !== 32) throw REFUSED();
  const unsigned = canonical({ format, version, recipients, meta });
  return { wrapped, keyIds: version === 1 ? null : keyIds, meta: metaBytes, mac: macBytes, unsigned };
}

function checkMetadata(value: unknown): Metadata {
  if (typeof value !== "object" || value === null) throw REFUSED();
  const m = value as Record<string, unknown>;
  const strings = ["filename", "content_type", "plaintext_sha256", "body_sha256", "uploader_id", "signer_id",
    "pseudonym", "category", "created_at", "signature"];
  const integers = ["plaintext_size", "body_size"];
  if (Object.keys(m).length !== strings.length + integers.length) throw REFUSED();
  for (const name of strings) if (typeof m[name] !== "string" || m[name] === "") throw REFUSED();
  for (const name of integers) if (!Number.isSafeInteger(m[name]) || (m[name] as number) < 0) throw REFUSED();
  const meta = m as unknown as Metadata;
  if (!SHA256_HEX.test(meta.plaintext_sha256) || !SHA256_HEX.test(meta.body_sha256)) throw REFUSED();
  if (!isPseudonym(meta.pseudonym) || !RFC3339_UTC.test(meta.created_at)) throw REFUSED();
  if (/[/\\]/.test(meta.filename) || meta.filename === "." || meta.filename === "..") throw REFUSED();
  if (fromBase64(meta.signature).length !== 64) throw REFUSED();
  return meta;
}

/**
 * Which key `recipientId`'s entry is wrapped to: a version 2 capsule's `key` (such as
 * "scoped-v2/lab-results/2026-01"), null for version 1. Read before opening to choose the
 * key; opening proves it (the key id is bound into the wrap).
 */
export function capsuleKeyId(capsule: Uint8Array, recipientId: string): string | null {
  let parsed: ParsedCapsule;
  try {
    parsed = parseCapsule(capsule);
  } catch {
    throw REFUSED();
  }
  if (!parsed.wrapped.has(recipientId)) throw REFUSED();
  return parsed.keyIds?.get(recipientId) ?? null;
}

/** Unwrap the data key for `recipientId`, check the MAC and decrypt the metadata. */
export async function openCapsule(capsule: Uint8Array, key: XWingPrivateKey, recipientId: string): Promise<OpenedCapsule> {
  try {
    const parsed = parseCapsule(capsule);
    const sealedKey = parsed.wrapped.get(recipientId);
    if (sealedKey === undefined) throw REFUSED();
    const dataKey = await hpkeOpen(key, wrapInfo(recipientId, parsed.keyIds?.get(recipientId)), sealedKey);
    if (dataKey.length !== 32) throw REFUSED();
    if (!equalBytes(hmacSha256(hkdfSha256(dataKey, MAC_INFO, 32), parsed.unsigned), parsed.mac)) throw REFUSED();
    const metaKey = hkdfSha256(dataKey, META_INFO, 32);
    const plain = await aesGcmDecrypt(metaKey, parsed.meta.subarray(0, 12), parsed.meta.subarray(12), META_INFO);
    const text = fromUtf8(plain);
    const value: unknown = JSON.parse(text);
    if (canonicalText(value) !== text) throw REFUSED();
    return { metadata: checkMetadata(value), dataKey };
  } catch {
    throw REFUSED();
  }
}

export async function encryptMetadata(dataKey: Uint8Array, metadata: Metadata, nonce: Uint8Array): Promise<Bytes> {
  const metaKey = hkdfSha256(dataKey, META_INFO, 32);
  return concat(nonce, await aesGcmEncrypt(metaKey, nonce, canonical(metadata), META_INFO));
}

/** A capsule of version 1, or of version 2 when `keyIds` names the key of some recipients
 * (by recipient id; the others' is "identity"), as envelope/capsule.py builds it. */
export async function buildCapsule(
  dataKey: Uint8Array, recipients: ReadonlyArray<readonly [string, Uint8Array]>, meta: Uint8Array,
  keyIds?: ReadonlyMap<string, string>,
): Promise<Bytes> {
  const ids = new Set(recipients.map(([id]) => id));
  for (const [id, keyId] of keyIds ?? []) {
    if (!ids.has(id)) throw new CryptoError(`a key id is given for ${id}, not a recipient`);
    if (keyId === "" || keyId.includes("\u0000")) throw new CryptoError("a key id is non-empty text without NUL");
  }
  const entries = [];
  for (const [id, publicKey] of recipients) {
    const keyId = keyIds === undefined ? undefined : keyIds.get(id) ?? IDENTITY_KEY_ID;
    const wrapped = toBase64(await hpkeSeal(publicKey, wrapInfo(id, keyId), dataKey));
    entries.push(keyId === undefined ? { id, wrapped_key: wrapped } : { id, key: keyId, wrapped_key: wrapped });
  }
  const document = { format: "ehrgate-capsule", version: keyIds === undefined ? 1 : 2, recipients: entries, meta: toBase64(meta) };
  const mac = hmacSha256(hkdfSha256(dataKey, MAC_INFO, 32), canonical(document));
  return canonical({ ...document, mac: toBase64(mac) });
}
