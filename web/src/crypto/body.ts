// Bodies (docs/envelope.md "Body"): a 29-byte header, then AES-256-GCM segments of 64 KiB
// plaintext under the STREAM construction: nonce = counter (11 bytes) ‖ last flag, AAD =
// SHA-256(header). The opener is fed the body piece by piece as it streams in and returns
// plaintext only of segments that verified; at the end it checks the last flag, the sizes
// and both hashes against the capsule's metadata. Plaintext returned before a failure must
// be discarded by the caller (the app shows nothing until finalize succeeds).
import { sha256 as nobleSha256 } from "@noble/hashes/sha2.js";
import { aesGcmDecryptWith, aesGcmKey } from "./aead.js";
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

/** The body size a plaintext of `plaintextSize` bytes seals to (header, segments, tags). */
export function bodySizeFor(plaintextSize: number): number {
  return HEADER_LEN + plaintextSize + 16 * Math.max(1, Math.ceil(plaintextSize / SEGMENT));
}

async function digestHex(data: Bytes): Promise<string> {
  return toHex(new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", data)));
}

/**
 * The opener for a body whose sizes and hashes the capsule states (the app's case): the
 * body is written into one buffer of the stated size as it arrives, each complete segment
 * is decrypted and authenticated at once (several in flight), its plaintext written in
 * place; at the end the last segment, both sizes and both SHA-256 (WebCrypto, one pass each)
 * are checked. Any failure refuses the whole body; nothing is returned before the end.
 */
export class SizedBodyOpener {
  private readonly body: Bytes;
  private readonly plain: Bytes;
  private received = 0;
  private at = HEADER_LEN;
  private counter = 0;
  private key: CryptoKey | null = null;
  private aad: Bytes = bytes(0);
  private failed = false;

  constructor(private readonly dataKey: Uint8Array, private readonly expected: BodyExpectation) {
    const e = expected;
    if (!Number.isSafeInteger(e.plaintext_size) || e.plaintext_size < 0 || e.body_size !== bodySizeFor(e.plaintext_size)) {
      this.failed = true;
      throw REFUSED();
    }
    this.body = bytes(e.body_size);
    this.plain = bytes(e.plaintext_size);
  }

  /** Bytes of the body received and, up to the last whole segment, decrypted and checked. */
  get done(): number {
    return this.received;
  }

  /** Feed the next piece of the body; complete segments are decrypted before it returns. */
  async update(chunk: Uint8Array): Promise<void> {
    this.check();
    if (this.received + chunk.length > this.body.length) return this.fail();
    this.body.set(chunk, this.received);
    this.received += chunk.length;
    if (this.key === null) {
      if (this.received < HEADER_LEN) return;
      await this.readHeader();
    }
    // a segment is known not to be the last while a byte after it is still to come
    const jobs: Promise<void>[] = [];
    while (this.at + SEALED_SEGMENT < this.body.length && this.at + SEALED_SEGMENT <= this.received) {
      jobs.push(this.decrypt(this.at, SEALED_SEGMENT, this.counter, false));
      this.at += SEALED_SEGMENT;
      this.counter += 1;
    }
    await this.settle(jobs);
  }

  /** The whole plaintext, after every end-of-body check. */
  async finalize(): Promise<Bytes> {
    this.check();
    if (this.key === null || this.received !== this.body.length) return this.fail();
    const rest = this.body.length - this.at;
    if (rest < 16 || rest > SEALED_SEGMENT) return this.fail();
    await this.settle([this.decrypt(this.at, rest, this.counter, true)]);
    const e = this.expected;
    const [bodyHash, plainHash] = await Promise.all([digestHex(this.body), digestHex(this.plain)]);
    if (bodyHash !== e.body_sha256.toLowerCase() || plainHash !== e.plaintext_sha256.toLowerCase()) return this.fail();
    this.failed = true; // an opener is used once
    return this.plain;
  }

  private check(): void {
    if (this.failed) throw REFUSED();
  }

  private fail(): never {
    this.failed = true;
    throw REFUSED();
  }

  private async settle(jobs: Promise<void>[]): Promise<void> {
    const results = await Promise.allSettled(jobs);
    if (results.some((r) => r.status === "rejected")) this.fail();
  }

  private async readHeader(): Promise<void> {
    const header = this.body.subarray(0, HEADER_LEN);
    if (!equalBytes(header.subarray(0, 8), MAGIC) || header[8] !== 1) this.fail();
    if (!equalBytes(header.subarray(25, 29), u32be(SEGMENT))) this.fail();
    this.key = await aesGcmKey(segmentKey(this.dataKey, header.subarray(9, 25)));
    this.aad = sha256(header);
  }

  private async decrypt(offset: number, length: number, counter: number, last: boolean): Promise<void> {
    const plain = new Uint8Array(await globalThis.crypto.subtle.decrypt(
      { name: "AES-GCM", iv: segmentNonce(counter, last), additionalData: this.aad, tagLength: 128 },
      this.key as CryptoKey, this.body.subarray(offset, offset + length),
    ));
    const to = (offset - HEADER_LEN) - 16 * counter;
    // the plaintext lands where its segment says; a short segment before the last cannot
    // decrypt (its tag covers its length), an empty last one only for an empty file
    if (to + plain.length > this.plain.length || (last && plain.length === 0 && counter > 0)) throw REFUSED();
    if (last && to + plain.length !== this.plain.length) throw REFUSED();
    this.plain.set(plain, to);
  }
}

/** Open a whole body given as a stream of pieces: all plaintext pieces, or a refusal. */
export async function openSizedBody(
  pieces: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, dataKey: Uint8Array, expected: BodyExpectation,
): Promise<Bytes> {
  const opener = new SizedBodyOpener(dataKey, expected);
  for await (const piece of pieces) await opener.update(piece);
  return opener.finalize();
}

export interface SealedBody {
  body: Bytes;
  bodySha256: string;
  plaintextSha256: string;
}

/**
 * Seal a plaintext into a body: one buffer of the final size, segments encrypted a batch at
 * a time (`progress` is told the plaintext bytes sealed), both hashes by WebCrypto.
 */
export async function sealBody(
  dataKey: Uint8Array, salt: Uint8Array, plaintext: Uint8Array<ArrayBuffer>, progress?: (done: number, total: number) => void,
): Promise<SealedBody> {
  if (salt.length !== 16) throw new CryptoError("a body salt is 16 bytes");
  const header = concat(MAGIC, Uint8Array.of(1), salt, u32be(SEGMENT));
  const key = await aesGcmKey(segmentKey(dataKey, salt));
  const aad = sha256(header);
  const count = Math.max(1, Math.ceil(plaintext.length / SEGMENT));
  const body = bytes(bodySizeFor(plaintext.length));
  body.set(header, 0);
  const BATCH = 32;
  for (let first = 0; first < count; first += BATCH) {
    const sealed = await Promise.all(Array.from({ length: Math.min(BATCH, count - first) }, (_, n) => {
      const i = first + n;
      const piece = plaintext.subarray(i * SEGMENT, (i + 1) * SEGMENT);
      return globalThis.crypto.subtle.encrypt(
        { name: "AES-GCM", iv: segmentNonce(i, i === count - 1), additionalData: aad, tagLength: 128 }, key, piece,
      );
    }));
    sealed.forEach((part, n) => body.set(new Uint8Array(part), HEADER_LEN + (first + n) * SEALED_SEGMENT));
    progress?.(Math.min(plaintext.length, (first + sealed.length) * SEGMENT), plaintext.length);
  }
  const [bodySha256, plaintextSha256] = await Promise.all([digestHex(body), digestHex(plaintext)]);
  return { body, bodySha256, plaintextSha256 };
}
