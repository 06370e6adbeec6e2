// AES-256-GCM through WebCrypto (in the browser and in Node alike). Every failure is the
// one opaque CryptoError, so that opening is no oracle.
import { type Bytes, CryptoError, copy } from "./bytes.js";

const subtle = (): SubtleCrypto => globalThis.crypto.subtle;

async function importKey(key: Uint8Array, use: KeyUsage): Promise<CryptoKey> {
  return subtle().importKey("raw", copy(key), { name: "AES-GCM" }, false, [use]);
}

export async function aesGcmKey(key: Uint8Array): Promise<CryptoKey> {
  return subtle().importKey("raw", copy(key), { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
}

export async function aesGcmDecryptWith(
  key: CryptoKey, nonce: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array,
): Promise<Bytes> {
  try {
    const plain = await subtle().decrypt(
      { name: "AES-GCM", iv: copy(nonce), additionalData: copy(aad), tagLength: 128 }, key, copy(ciphertext),
    );
    return new Uint8Array(plain);
  } catch {
    throw new CryptoError("the data does not open: changed, truncated or not for this key");
  }
}

export async function aesGcmEncryptWith(
  key: CryptoKey, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array,
): Promise<Bytes> {
  const sealed = await subtle().encrypt(
    { name: "AES-GCM", iv: copy(nonce), additionalData: copy(aad), tagLength: 128 }, key, copy(plaintext),
  );
  return new Uint8Array(sealed);
}

export async function aesGcmDecrypt(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array): Promise<Bytes> {
  return aesGcmDecryptWith(await importKey(key, "decrypt"), nonce, ciphertext, aad);
}

export async function aesGcmEncrypt(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Promise<Bytes> {
  return aesGcmEncryptWith(await importKey(key, "encrypt"), nonce, plaintext, aad);
}
