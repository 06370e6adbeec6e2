// Key files (docs/envelope.md "Key files"), versions 1 and 2, read in the browser; a
// passphrase-protected secret is opened with scrypt (noble) and AES-256-GCM (WebCrypto).
import { scryptAsync } from "@noble/hashes/scrypt.js";
import { aesGcmDecrypt, aesGcmEncrypt } from "./aead.js";
import { type Bytes, CryptoError, fromBase64, fromUtf8, toBase64, utf8 } from "./bytes.js";
import { canonical } from "./canonical.js";
import { isPseudonym, pseudonym as pseudonymOf } from "./pseudonym.js";
import type { RecordKeyVersion } from "./recordkey.js";
import { verifyKeyOf } from "./signatures.js";
import { type XWingPrivateKey, xwingPrivateKey } from "./xwing.js";

const MAX_SCRYPT_MEMORY = 1024 * 1024 * 1024;

export interface IdentityKeys {
  readonly kind: "identity" | "patient";
  readonly id: string;
  readonly role: string;
  readonly signingKey: Bytes;
  readonly verifyKey: Bytes;
  readonly encryptionKey: XWingPrivateKey;
  /** patients only */
  readonly patientKey?: Bytes;
  readonly pseudonym?: string;
  readonly recordKeyVersion?: RecordKeyVersion;
}

export class KeyFileError extends CryptoError {}

export function keyFileNeedsPassphrase(text: string): boolean {
  try {
    const document = JSON.parse(text) as Record<string, unknown>;
    return typeof document === "object" && document !== null && "encrypted" in document;
  } catch {
    return false;
  }
}

async function decryptSecret(document: Record<string, unknown>, passphrase: string | undefined): Promise<unknown> {
  if ("secret" in document) {
    const { secret } = document;
    delete document.secret;
    return secret;
  }
  const encrypted = document.encrypted as Record<string, unknown> | undefined;
  delete document.encrypted;
  if (typeof encrypted !== "object" || encrypted === null) throw new KeyFileError("this is not a private key file (a public key file?)");
  if (passphrase === undefined || passphrase === "") throw new KeyFileError("this key file is protected: enter its passphrase");
  const { kdf, n, r, p } = encrypted;
  if (kdf !== "scrypt") throw new KeyFileError("unknown key protection");
  for (const value of [n, r, p]) if (!Number.isSafeInteger(value) || (value as number) <= 0) throw new KeyFileError("bad scrypt parameters");
  if (128 * (n as number) * (r as number) > MAX_SCRYPT_MEMORY || (p as number) > 16) throw new KeyFileError("scrypt parameters out of range");
  const salt = fromBase64(encrypted.salt as string, "salt");
  const nonce = fromBase64(encrypted.nonce as string, "nonce");
  const ciphertext = fromBase64(encrypted.ciphertext as string, "ciphertext");
  const key = await scryptAsync(utf8(passphrase), salt, { N: n as number, r: r as number, p: p as number, dkLen: 32, maxmem: MAX_SCRYPT_MEMORY + 1024 });
  try {
    return JSON.parse(fromUtf8(await aesGcmDecrypt(key, nonce, ciphertext, canonical(document))));
  } catch {
    throw new KeyFileError("the passphrase does not open this key file (or the file was changed)");
  }
}

function secretBytes(secret: Record<string, unknown>, name: string, length: number): Bytes {
  const value = secret[name];
  if (typeof value !== "string") throw new KeyFileError(`the key file has no ${name}`);
  const raw = fromBase64(value, name);
  if (raw.length !== length) throw new KeyFileError(`${name} must be ${length} bytes`);
  return raw;
}

function encryptionKey(secret: Record<string, unknown>, version: number): XWingPrivateKey {
  if (version === 1) return xwingPrivateKey(secretBytes(secret, "encryption_key", 96));
  if ("encryption_key_v1" in secret) return xwingPrivateKey(secretBytes(secret, "encryption_key_v1", 96));
  return xwingPrivateKey(secretBytes(secret, "encryption_key", 32));
}

/** Read a key file's text; throws KeyFileError with a message a user can act on. */
export async function loadKeyFile(text: string, passphrase?: string): Promise<IdentityKeys> {
  let document: Record<string, unknown>;
  try {
    document = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new KeyFileError("this file is not JSON: choose an ehrgate key file");
  }
  if (typeof document !== "object" || document === null) throw new KeyFileError("not a key file");
  const kind = document.kind;
  if (kind !== "ehrgate-identity-key" && kind !== "ehrgate-patient-key") {
    throw new KeyFileError("not an ehrgate private key file (a public key file cannot sign in)");
  }
  const version = document.version;
  if (version !== 1 && version !== 2) throw new KeyFileError(`unsupported key file version ${String(version)}`);
  const secret = (await decryptSecret(document, passphrase)) as Record<string, unknown>;
  if (typeof secret !== "object" || secret === null) throw new KeyFileError("malformed secret");
  const signingKey = secretBytes(secret, "signing_key", 32);
  const id = document.id;
  const role = document.role;
  if (typeof id !== "string" || typeof role !== "string") throw new KeyFileError("the key file has no id or role");
  const base = { id, role, signingKey, verifyKey: verifyKeyOf(signingKey), encryptionKey: encryptionKey(secret, version) };
  if (kind === "ehrgate-identity-key") return { kind: "identity", ...base };
  const pseudonym = document.pseudonym;
  if (!isPseudonym(pseudonym)) throw new KeyFileError("the patient key file has no valid pseudonym");
  const recordKeyVersion = version === 1 ? 1 : document.record_key_version;
  if (recordKeyVersion !== 1 && recordKeyVersion !== 2) throw new KeyFileError("bad record_key_version");
  return { kind: "patient", ...base, patientKey: secretBytes(secret, "patient_key", 32), pseudonym, recordKeyVersion };
}

export const KEYFILE_SCRYPT_N = 2 ** 17;

function randomKey(): Bytes {
  return globalThis.crypto.getRandomValues(new Uint8Array(32));
}

/** New patient keys made on the device: K, its pseudonym from the UII, identity keys. */
export function createPatientKeys(uii: unknown): IdentityKeys {
  const patientKey = randomKey();
  const name = pseudonymOf(patientKey, uii);
  const signingKey = randomKey();
  return {
    kind: "patient", id: name, role: "patient", signingKey, verifyKey: verifyKeyOf(signingKey),
    encryptionKey: xwingPrivateKey(randomKey()), patientKey, pseudonym: name, recordKeyVersion: 2,
  };
}

/** A version 2 key file (docs/envelope.md), optionally protected by a passphrase. */
export async function encodeKeyFile(keys: IdentityKeys, passphrase?: string, scryptN = KEYFILE_SCRYPT_N): Promise<string> {
  const document: Record<string, unknown> = keys.kind === "patient"
    ? { kind: "ehrgate-patient-key", version: 2, id: keys.id, role: keys.role, pseudonym: keys.pseudonym, record_key_version: keys.recordKeyVersion }
    : { kind: "ehrgate-identity-key", version: 2, id: keys.id, role: keys.role };
  const secret: Record<string, string> = { signing_key: toBase64(keys.signingKey) };
  secret[keys.encryptionKey.form === "seed" ? "encryption_key" : "encryption_key_v1"] = toBase64(keys.encryptionKey.raw);
  if (keys.kind === "patient") secret.patient_key = toBase64(keys.patientKey!);
  if (passphrase === undefined || passphrase === "") {
    document.secret = secret;
  } else {
    const salt = globalThis.crypto.getRandomValues(new Uint8Array(16));
    const nonce = globalThis.crypto.getRandomValues(new Uint8Array(12));
    const key = await scryptAsync(utf8(passphrase), salt, { N: scryptN, r: 8, p: 1, dkLen: 32, maxmem: MAX_SCRYPT_MEMORY + 1024 });
    const ciphertext = await aesGcmEncrypt(key, nonce, canonical(secret), canonical(document));
    document.encrypted = { kdf: "scrypt", n: scryptN, r: 8, p: 1, salt: toBase64(salt), nonce: toBase64(nonce), ciphertext: toBase64(ciphertext) };
  }
  return `${JSON.stringify(sortKeys(document), null, 2)}\n`;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(Object.keys(value).sort().map((key) => [key, sortKeys((value as Record<string, unknown>)[key])]));
}
