// The patient's record key pair, derived from K (docs/envelope.md): version 2 is the X-Wing
// seed HKDF-SHA256(K, info "ehrgate/record-key/v2", 32); version 1 the 96 expanded bytes
// HKDF-SHA256(K, info "ehrgate/record-key/v1", 96).
import { CryptoError, equalBytes, utf8 } from "./bytes.js";
import { hkdfSha256 } from "./hashes.js";
import { type XWingPrivateKey, xwingPrivateKey } from "./xwing.js";

export type RecordKeyVersion = 1 | 2;

export function recordPrivateKey(patientKey: Uint8Array, version: RecordKeyVersion): XWingPrivateKey {
  if (patientKey.length !== 32) throw new CryptoError("a patient key is 32 bytes");
  const raw = version === 2
    ? hkdfSha256(patientKey, utf8("ehrgate/record-key/v2"), 32)
    : hkdfSha256(patientKey, utf8("ehrgate/record-key/v1"), 96);
  return xwingPrivateKey(raw);
}

/** The version (2 first, then 1) whose record public key is `publicKey`, or null. */
export function recordKeyVersionOf(patientKey: Uint8Array, publicKey: Uint8Array): RecordKeyVersion | null {
  for (const version of [2, 1] as const) {
    if (equalBytes(recordPrivateKey(patientKey, version).publicKey, publicKey)) return version;
  }
  return null;
}
