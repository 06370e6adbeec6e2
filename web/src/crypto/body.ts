// Bodies (docs/envelope.md "Body"): a 29-byte header, then AES-256-GCM segments of 64 KiB
// plaintext under the STREAM construction: nonce = counter (11 bytes) ‖ last flag, AAD =
// SHA-256(header). The opener is fed the body piece by piece as it streams in and returns
// plaintext only of segments that verified; at the end it checks the last flag, the sizes
// and both hashes against the capsule's metadata. Plaintext returned before a failure must
// be discarded by the caller (the app shows nothing until finalize succeeds).
import { sha256 as nobleSha256 } from "@noble/hashes/sha2.js";
import { aesGcmDecryptWith, aesGcmEncryptWith, aesGcmKey } from "./aead.js";
import { type Bytes, CryptoError, bytes, concat, equalBytes, fromHex, toHex, u32be, utf8 } from "./bytes.js";
import { hkdfSha256, sha256 } from "./hashes.js";

export const MAGIC = utf8("EHRGBODY");
export const HEADER_LEN = 29;
export const SEGMENT = 65536;
const SEALED_SEGMENT = SEGMENT + 16;
const BODY_INFO = utf8("ehrgate/body/v1");

export interface BodyExpectation {
  readonly body_sha256: string;
  readonly body_size: number;
  readonly plaintext_sha256: string;
  readonly plaintext_size: number;
}

const REFUSED = (): CryptoError => new CryptoError("the file does not open: changed, truncated or not this record's body");

export function segmentNonce(counter: number, last: boolean): Bytes {
  const nonce = bytes(12);
  const view = new DataView(nonce.buffer);
  view.setUint32(3, Math.floor(counter / 2 ** 32));
  view.setUint32(7, counter >>> 0);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

export function segmentKey(dataKey: Uint8Array, salt: Uint8Array): Bytes {
  return hkdfSha256(dataKey, BODY_INFO, 32, salt);
}

export class BodyOpener {
  private pending: Bytes = bytes(0);
  private key: CryptoKey | null = null;
  private aad: Bytes = bytes(0);
  private counter = 0;
  private plaintextSize = 0;
  private bodySize = 0;
  private failed = false;
  private readonly bodyHash = nobleSha256.create();
  private readonly plainHash = nobleSha256.create();

  constructor(private readonly dataKey: Uint8Array, private readonly expected?: BodyExpectation) {}

  /** Feed the next piece of the body; returns the plaintext of the segments it completed. */
  async update(chunk: Uint8Array): Promise<Bytes[]> {
    this.check();
    this.bodySize += chunk.length;
    if (this.expected !== undefined && this.bodySize > this.expected.body_size) return this.fail();
    this.bodyHash.update(chunk);
    this.pending = concat(this.pending, chunk);
    if (this.key === null) {
      if (this.pending.length < HEADER_LEN) return [];
      await this.readHeader();
    }
    const out: Bytes[] = [];
    // a segment is known not to be the last only once a byte after it has arrived
    while (this.pending.length > SEALED_SEGMENT) {
      out.push(await this.decrypt(this.pending.subarray(0, SEALED_SEGMENT), false));
      this.pending = this.pending.slice(SEALED_SEGMENT);
    }
    return out;
  }

  /** The last segment's plaintext, after every end-of-body check. */
  async finalize(): Promise<Bytes[]> {
    this.check();
    if (this.key === null) return this.fail();
    if (this.pending.length < 16) return this.fail();
    const last = await this.decrypt(this.pending, true);
    // an empty last segment is allowed only as the one segment of an empty file
    if (last.length === 0 && this.counter > 1) return this.fail();
    this.pending = bytes(0);
    if (this.expected !== undefined) {
      const e = this.expected;
      if (this.bodySize !== e.body_size || this.plaintextSize !== e.plaintext_size) return this.fail();
      if (!equalBytes(this.bodyHash.digest(), fromHex(e.body_sha256))) return this.fail();
      if (!equalBytes(this.plainHash.digest(), fromHex(e.plaintext_sha256))) return this.fail();
    }
    this.failed = true; // an opener is used once
    return [last];
  }

  private check(): void {
    if (this.failed) throw REFUSED();
  }

  private fail(): never {
    this.failed = true;
    throw REFUSED();
  }

  private async readHeader(): Promise<void> {
    const header = this.pending.slice(0, HEADER_LEN);
    if (!equalBytes(header.subarray(0, 8), MAGIC) || header[8] !== 1) this.fail();
    if (!equalBytes(header.subarray(25, 29), u32be(SEGMENT))) this.fail();
    this.key = await aesGcmKey(segmentKey(this.dataKey, header.subarray(9, 25)));
    this.aad = sha256(header);
    this.pending = this.pending.slice(HEADER_LEN);
  }

  private async decrypt(sealed: Uint8Array, last: boolean): Promise<Bytes> {
    let plain: Bytes;
    try {
      plain = await aesGcmDecryptWith(this.key as CryptoKey, segmentNonce(this.counter, last), sealed, this.aad);
    } catch {
      return this.fail();
    }
    this.counter += 1;
    this.plaintextSize += plain.length;
    this.plainHash.update(plain);
    return plain;
  }
}

/** Open a whole body given as a stream of pieces: all plaintext pieces, or a refusal. */
export async function openBody(
  pieces: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, dataKey: Uint8Array, expected?: BodyExpectation,
): Promise<Bytes[]> {
  const opener = new BodyOpener(dataKey, expected);
  const out: Bytes[] = [];
  for await (const piece of pieces) out.push(...(await opener.update(piece)));
  out.push(...(await opener.finalize()));
  return out;
}

export interface SealedBody {
  body: Bytes;
  bodySha256: string;
  plaintextSha256: string;
}

/** Seal a plaintext into a body (the app seals whole files it already holds in memory). */
export async function sealBody(dataKey: Uint8Array, salt: Uint8Array, plaintext: Uint8Array): Promise<SealedBody> {
  if (salt.length !== 16) throw new CryptoError("a body salt is 16 bytes");
  const header = concat(MAGIC, Uint8Array.of(1), salt, u32be(SEGMENT));
  const key = await aesGcmKey(segmentKey(dataKey, salt));
  const aad = sha256(header);
  const count = Math.max(1, Math.ceil(plaintext.length / SEGMENT));
  const parts: Bytes[] = [header];
  for (let i = 0; i < count; i++) {
    const piece = plaintext.subarray(i * SEGMENT, (i + 1) * SEGMENT);
    parts.push(await aesGcmEncryptWith(key, segmentNonce(i, i === count - 1), piece, aad));
  }
  const body = concat(...parts);
  return { body, bodySha256: toHex(sha256(body)), plaintextSha256: toHex(sha256(plaintext)) };
}
