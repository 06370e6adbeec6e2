// Byte helpers shared by the crypto modules: hex, base64, UTF-8, concatenation.

export type Bytes = Uint8Array<ArrayBuffer>;

export class CryptoError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CryptoError";
  }
}

export function bytes(length: number): Bytes {
  return new Uint8Array(new ArrayBuffer(length));
}

export function copy(data: Uint8Array): Bytes {
  const out = bytes(data.length);
  out.set(data);
  return out;
}

export function concat(...parts: Uint8Array[]): Bytes {
  const out = bytes(parts.reduce((total, part) => total + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export function utf8(text: string): Bytes {
  return copy(new TextEncoder().encode(text));
}

export function fromUtf8(data: Uint8Array): string {
  return new TextDecoder("utf-8", { fatal: true }).decode(data);
}

export function toHex(data: Uint8Array): string {
  let out = "";
  for (const byte of data) out += byte.toString(16).padStart(2, "0");
  return out;
}

export function fromHex(text: string): Bytes {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) {
    throw new CryptoError("not hexadecimal");
  }
  const out = bytes(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function toBase64(data: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < data.length; i += 0x8000) {
    binary += String.fromCharCode(...data.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

export function fromBase64(text: string, what = "value"): Bytes {
  if (typeof text !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new CryptoError(`${what} is not base64`);
  }
  const binary = atob(text);
  const out = bytes(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

export function u32be(value: number): Bytes {
  const out = bytes(4);
  new DataView(out.buffer).setUint32(0, value);
  return out;
}
