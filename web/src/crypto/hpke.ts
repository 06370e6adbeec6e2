// HPKE (RFC 9180) base mode, single shot, with the suite ehrgate uses everywhere:
// KEM X-Wing (0x647A), KDF HKDF-SHA256 (0x0001), AEAD AES-256-GCM (0x0002).
// The X-Wing shared secret is HPKE's shared_secret as it is (the KEM has no ExtractAndExpand).
import { extract, expand } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { type Bytes, CryptoError, concat, copy, utf8 } from "./bytes.js";
import { aesGcmDecrypt, aesGcmEncrypt } from "./aead.js";
import { CIPHERTEXT_LEN, type XWingPrivateKey, decapsulate, encapsulate } from "./xwing.js";

const SUITE_ID = concat(utf8("HPKE"), Uint8Array.of(0x64, 0x7a, 0x00, 0x01, 0x00, 0x02));
const VERSION = utf8("HPKE-v1");

function labeledExtract(salt: Uint8Array, label: string, ikm: Uint8Array): Uint8Array {
  return extract(sha256, concat(VERSION, SUITE_ID, utf8(label), ikm), salt);
}

function labeledExpand(prk: Uint8Array, label: string, info: Uint8Array, length: number): Bytes {
  const prefix = Uint8Array.of(length >> 8, length & 0xff);
  return copy(expand(sha256, prk, concat(prefix, VERSION, SUITE_ID, utf8(label), info), length));
}

function keySchedule(sharedSecret: Uint8Array, info: Uint8Array): { key: Bytes; nonce: Bytes } {
  const empty = new Uint8Array(0);
  const context = concat(
    Uint8Array.of(0),
    labeledExtract(empty, "psk_id_hash", empty),
    labeledExtract(empty, "info_hash", info),
  );
  const secret = labeledExtract(sharedSecret, "secret", empty);
  return { key: labeledExpand(secret, "key", context, 32), nonce: labeledExpand(secret, "base_nonce", context, 12) };
}

/** enc ‖ ciphertext, as `cryptography`'s HPKE and envelope/kem.py lay it out. */
export async function hpkeSeal(publicKey: Uint8Array, info: Uint8Array, plaintext: Uint8Array): Promise<Bytes> {
  const { ciphertext: enc, sharedSecret } = encapsulate(publicKey);
  const { key, nonce } = keySchedule(sharedSecret, info);
  return concat(enc, await aesGcmEncrypt(key, nonce, plaintext, new Uint8Array(0)));
}

export async function hpkeOpen(privateKey: XWingPrivateKey, info: Uint8Array, sealed: Uint8Array): Promise<Bytes> {
  if (sealed.length < CIPHERTEXT_LEN + 16) throw new CryptoError("sealed value too short");
  const sharedSecret = decapsulate(privateKey, sealed.subarray(0, CIPHERTEXT_LEN));
  const { key, nonce } = keySchedule(sharedSecret, info);
  return aesGcmDecrypt(key, nonce, sealed.subarray(CIPHERTEXT_LEN), new Uint8Array(0));
}
