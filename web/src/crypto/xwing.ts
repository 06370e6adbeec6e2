// X-Wing (draft-connolly-cfrg-xwing-kem) over noble: ML-KEM-768 + X25519 with the SHA3-256
// combiner. A private key is either a 32-byte seed (key format version 2) or the 96 expanded
// bytes d‖z‖x25519 that version 1 stored; both give the same working key.
import { x25519 } from "@noble/curves/ed25519.js";
import { ml_kem768 } from "@noble/post-quantum/ml-kem.js";
import { type Bytes, CryptoError, concat, copy, fromHex } from "./bytes.js";
import { sha3, shake } from "./hashes.js";

export const PUBLIC_KEY_LEN = 1216;
export const CIPHERTEXT_LEN = 1120;
const MLKEM_PUBLIC_LEN = 1184;
const MLKEM_CIPHERTEXT_LEN = 1088;
const LABEL = fromHex("5c2e2f2f5e5c");

export interface XWingPrivateKey {
  readonly form: "seed" | "expanded";
  /** what a key file keeps: the seed (32) or the version 1 expanded key (96) */
  readonly raw: Bytes;
  readonly publicKey: Bytes;
  readonly mlkemSecret: Bytes;
  readonly x25519Secret: Bytes;
}

export function xwingPrivateKey(raw: Uint8Array): XWingPrivateKey {
  let expanded: Bytes;
  let form: "seed" | "expanded";
  if (raw.length === 32) {
    expanded = shake(raw, 96);
    form = "seed";
  } else if (raw.length === 96) {
    expanded = copy(raw);
    form = "expanded";
  } else {
    throw new CryptoError("a hybrid private key is a 32-byte seed or a 96-byte version 1 key");
  }
  const pair = ml_kem768.keygen(expanded.subarray(0, 64));
  const x25519Secret = copy(expanded.subarray(64, 96));
  const publicKey = concat(pair.publicKey, x25519.getPublicKey(x25519Secret));
  return { form, raw: copy(raw), publicKey, mlkemSecret: copy(pair.secretKey), x25519Secret };
}

function combine(ssM: Uint8Array, ssX: Uint8Array, ctX: Uint8Array, pkX: Uint8Array): Bytes {
  return sha3(concat(ssM, ssX, ctX, pkX, LABEL));
}

export function decapsulate(key: XWingPrivateKey, ciphertext: Uint8Array): Bytes {
  if (ciphertext.length !== CIPHERTEXT_LEN) throw new CryptoError("wrong X-Wing ciphertext length");
  const ctM = ciphertext.subarray(0, MLKEM_CIPHERTEXT_LEN);
  const ctX = ciphertext.subarray(MLKEM_CIPHERTEXT_LEN);
  const ssM = ml_kem768.decapsulate(ctM, key.mlkemSecret);
  const ssX = x25519.getSharedSecret(key.x25519Secret, ctX);
  return combine(ssM, ssX, ctX, key.publicKey.subarray(MLKEM_PUBLIC_LEN));
}

export function encapsulate(publicKey: Uint8Array): { ciphertext: Bytes; sharedSecret: Bytes } {
  if (publicKey.length !== PUBLIC_KEY_LEN) throw new CryptoError("an X-Wing public key is 1,216 bytes");
  const pkM = publicKey.subarray(0, MLKEM_PUBLIC_LEN);
  const pkX = publicKey.subarray(MLKEM_PUBLIC_LEN);
  const { cipherText: ctM, sharedSecret: ssM } = ml_kem768.encapsulate(pkM);
  const ephemeral = x25519.utils.randomSecretKey();
  const ctX = x25519.getPublicKey(ephemeral);
  const ssX = x25519.getSharedSecret(ephemeral, pkX);
  return { ciphertext: concat(ctM, ctX), sharedSecret: combine(ssM, ssX, ctX, pkX) };
}
