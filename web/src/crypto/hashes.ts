// Hash and key-derivation primitives: SHA-256 (WebCrypto and noble), SHA3-256 and SHAKE256
// (noble: WebCrypto has no SHA-3), HKDF-SHA256, HMAC-SHA256.
import { hkdf } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 as nobleSha256 } from "@noble/hashes/sha2.js";
import { sha3_256, shake256 } from "@noble/hashes/sha3.js";
import { type Bytes, copy } from "./bytes.js";

export function sha256(data: Uint8Array): Bytes {
  return copy(nobleSha256(data));
}

export function sha3(data: Uint8Array): Bytes {
  return copy(sha3_256(data));
}

export function shake(data: Uint8Array, length: number): Bytes {
  return copy(shake256(data, { dkLen: length }));
}

/** HKDF-SHA256; `salt` undefined means no salt (a zero-filled one, as RFC 5869 says). */
export function hkdfSha256(ikm: Uint8Array, info: Uint8Array, length: number, salt?: Uint8Array): Bytes {
  return copy(hkdf(nobleSha256, ikm, salt, info, length));
}

export function hmacSha256(key: Uint8Array, data: Uint8Array): Bytes {
  return copy(hmac(nobleSha256, key, data));
}

export { nobleSha256 };
