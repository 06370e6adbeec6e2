// C2SP signed notes, checkpoints and cosignatures, byte for byte as ledger/wire/notes.py,
// checkpoints.py and cosignatures.py read them (c2sp.org/signed-note, tlog-checkpoint,
// tlog-cosignature):
//
//   <text, ending in a newline>          no control characters but newline
//   <blank line>                         the text ends at the LAST blank line
//   — <key name> <base64(key ID ‖ signature)>   one line per signature (U+2014, space)
//
// A key ID is SHA-256(name ‖ 0x0A ‖ type ‖ public key)[:4]; type 0x01 is Ed25519 over the
// text, 0x04 a witness's cosignature/v1 (8-byte big-endian time, then Ed25519 over
// "cosignature/v1\ntime <seconds>\n" ‖ text). Opening a note: signatures of unknown keys
// (name and key ID not both known) are ignored; every signature of a known key is verified
// and one that fails rejects the note; at least one must verify; more than 100 signature
// lines, or base64 that is not canonical, make the note malformed.
import { ed25519 } from "@noble/curves/ed25519.js";
import { type Bytes, concat, equalBytes, toBase64, toHex, utf8 } from "./bytes.js";
import { sha256 } from "./hashes.js";

export const ALG_ED25519 = 0x01;
export const ALG_COSIGNATURE_V1 = 0x04;
export const MAX_SIGNATURES = 100;
export const MAX_TREE_SIZE = (1n << 63n) - 1n;
const SIGNATURE_PREFIX = "\u2014 ";
const COSIGNATURE_LENGTH = 8 + 64;

/** Every way a note, a vkey or a checkpoint is refused. */
export class NoteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}
/** Not a note (or a vkey, a checkpoint): the bytes break the format. */
export class MalformedNote extends NoteError {}
/** A signature of a known key does not verify. */
export class InvalidNoteSignature extends NoteError {}
/** No known key signed the note. */
export class UntrustedNote extends NoteError {}

// Python's str.isspace() set, which ledger/wire/notes.py forbids in key names
const PYTHON_SPACE = /[\t-\r\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0009\u000b-\u001f]/;

/** Strict standard base64: only the canonical form of a value is accepted. */
export function canonicalBase64(text: string, what: string, length?: number): Bytes {
  let decoded: string;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) throw new MalformedNote(`${what} is not valid base64`);
  try {
    decoded = atob(text);
  } catch {
    throw new MalformedNote(`${what} is not valid base64`);
  }
  const out = new Uint8Array(new ArrayBuffer(decoded.length));
  for (let i = 0; i < decoded.length; i++) out[i] = decoded.charCodeAt(i);
  if (toBase64(out) !== text) throw new MalformedNote(`${what} is not canonical base64`);
  if (length !== undefined && out.length !== length) throw new MalformedNote(`${what} must be ${length} bytes, got ${out.length}`);
  return out;
}

export function keyId(name: string, alg: number, publicKey: Uint8Array): Bytes {
  return sha256(concat(utf8(name), Uint8Array.of(0x0a, alg), publicKey)).slice(0, 4);
}

export function checkKeyName(name: string): string {
  if (name === "" || name.includes("+") || PYTHON_SPACE.test(name) || CONTROL.test(name)) {
    throw new MalformedNote(`${JSON.stringify(name)} is not a key name (non-empty, no spaces, no '+')`);
  }
  return name;
}

function ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    // RFC 8032's strict rules (canonical S and points), as OpenSSL on the Python side
    return signature.length === 64 && ed25519.verify(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
}

/** The bytes a cosignature/v1 signs: header, time line, the checkpoint's note text. */
export function cosignedMessage(text: Uint8Array, timestamp: bigint): Bytes {
  return concat(utf8(`cosignature/v1\ntime ${timestamp.toString()}\n`), text);
}

/** A named public key of one signature type: Ed25519 (0x01) or cosignature/v1 (0x04). */
export class NoteVerifier {
  readonly keyId: Bytes;

  constructor(readonly name: string, readonly alg: number, readonly publicKey: Bytes) {
    checkKeyName(name);
    if (alg !== ALG_ED25519 && alg !== ALG_COSIGNATURE_V1) throw new MalformedNote(`signature type 0x${alg.toString(16).padStart(2, "0")} is not supported`);
    if (publicKey.length !== 32) throw new MalformedNote(`verifier key ${name} is not 32 bytes`);
    this.keyId = keyId(name, alg, publicKey);
  }

  /** `<name>+<hex key ID>+<base64(type ‖ public key)>` of signature type `alg`. */
  static fromVkey(text: string, alg: number): NoteVerifier {
    const parts = splitPlus(stripPython(text));
    if (parts === null) throw new MalformedNote(`${JSON.stringify(text.slice(0, 60))} is not a verifier key (name+keyid+base64)`);
    const [name, hexId, encoded] = parts;
    checkKeyName(name);
    if (!/^[0-9a-f]{8}$/.test(hexId)) throw new MalformedNote(`the key ID of verifier key ${name} is not 8 lowercase hex digits`);
    const raw = canonicalBase64(encoded, `verifier key ${name}`, 33);
    if (raw[0] !== alg) {
      throw new MalformedNote(`verifier key ${name} has signature type 0x${(raw[0] as number).toString(16).padStart(2, "0")}, expected 0x${alg.toString(16).padStart(2, "0")}`);
    }
    const verifier = new NoteVerifier(name, alg, raw.slice(1));
    if (toHex(verifier.keyId) !== hexId) throw new MalformedNote(`the key ID of verifier key ${name} does not match its key`);
    return verifier;
  }

  vkey(): string {
    return `${this.name}+${toHex(this.keyId)}+${toBase64(concat(Uint8Array.of(this.alg), this.publicKey))}`;
  }

  verify(text: Uint8Array, signature: Uint8Array): boolean {
    if (this.alg === ALG_ED25519) return ed25519Verify(this.publicKey, text, signature);
    if (signature.length !== COSIGNATURE_LENGTH) return false;
    const timestamp = new DataView(signature.buffer, signature.byteOffset, 8).getBigUint64(0);
    if (timestamp > MAX_TREE_SIZE) return false;
    return ed25519Verify(this.publicKey, cosignedMessage(text, timestamp), signature.subarray(8));
  }
}

function stripPython(text: string): string {
  const space = new RegExp(`^${PYTHON_SPACE.source}+|${PYTHON_SPACE.source}+$`, "gu");
  return text.replace(space, "");
}

/** Python's `text.split("+", 2)` when it gives three parts (base64 may hold '+'). */
function splitPlus(text: string): [string, string, string] | null {
  const first = text.indexOf("+");
  const second = first < 0 ? -1 : text.indexOf("+", first + 1);
  if (second < 0) return null;
  return [text.slice(0, first), text.slice(first + 1, second), text.slice(second + 1)];
}

/** The keys a reader trusts, by (name, key ID); no two may share both. */
export class Verifiers {
  private readonly byId = new Map<string, NoteVerifier>();

  constructor(verifiers: Iterable<NoteVerifier>) {
    for (const verifier of verifiers) {
      const slot = `${verifier.name}\n${toHex(verifier.keyId)}`;
      if (this.byId.has(slot)) throw new MalformedNote(`two trusted keys share the name ${verifier.name} and key ID ${toHex(verifier.keyId)}`);
      this.byId.set(slot, verifier);
    }
  }

  find(name: string, id: Uint8Array): NoteVerifier | undefined {
    return this.byId.get(`${name}\n${toHex(id)}`);
  }

  get size(): number {
    return this.byId.size;
  }
}

export interface NoteSignature {
  readonly name: string;
  readonly keyId: Bytes;
  readonly signature: Bytes;
}

export interface Note {
  readonly text: string;
  readonly signatures: readonly NoteSignature[];
}

export interface OpenedNote {
  readonly text: string;
  readonly verified: readonly NoteSignature[];
  readonly unverified: readonly NoteSignature[];
}

function parseSignatureLine(line: string): NoteSignature {
  if (!line.startsWith(SIGNATURE_PREFIX)) throw new MalformedNote(`${JSON.stringify(line.slice(0, 40))} is not a signature line (— name base64)`);
  const rest = line.slice(SIGNATURE_PREFIX.length);
  const space = rest.indexOf(" ");
  if (space < 0) throw new MalformedNote(`${JSON.stringify(line.slice(0, 40))} is not a signature line (— name base64)`);
  const name = checkKeyName(rest.slice(0, space));
  const raw = canonicalBase64(rest.slice(space + 1), `the signature of ${name}`);
  if (raw.length < 5) throw new MalformedNote(`the signature of ${name} is shorter than a key ID and a byte`);
  return { name, keyId: raw.slice(0, 4), signature: raw.slice(4) };
}

/** The text and signature lines of `data`, unverified; MalformedNote unless it is a note. */
export function parseNote(data: Uint8Array): Note {
  let message: string;
  try {
    message = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(data);
  } catch {
    throw new MalformedNote("a note must be valid UTF-8");
  }
  if (CONTROL.test(message)) throw new MalformedNote("a note may contain no control characters but newline");
  const split = message.lastIndexOf("\n\n");
  if (split < 0) throw new MalformedNote("a note has its text, a blank line and signature lines");
  const text = message.slice(0, split + 1);
  const block = message.slice(split + 2);
  if (block === "" || !block.endsWith("\n")) throw new MalformedNote("a note's signature lines must each end with a newline");
  const lines = block.slice(0, -1).split("\n");
  if (lines.length > MAX_SIGNATURES) throw new MalformedNote(`a note may carry at most ${MAX_SIGNATURES} signatures`);
  return { text, signatures: lines.map(parseSignatureLine) };
}

function sameSignature(a: NoteSignature, b: NoteSignature): boolean {
  return a.name === b.name && equalBytes(a.keyId, b.keyId) && equalBytes(a.signature, b.signature);
}

/** Parse `data` and verify it with `verifiers` (rules above). */
export function openNote(data: Uint8Array, verifiers: Verifiers): OpenedNote {
  const note = parseNote(data);
  const text = utf8(note.text);
  const verified = new Map<string, NoteSignature>();
  const unverified: NoteSignature[] = [];
  for (const signature of note.signatures) {
    const verifier = verifiers.find(signature.name, signature.keyId);
    if (verifier === undefined) {
      if (!unverified.some((known) => sameSignature(known, signature))) unverified.push(signature);
      continue;
    }
    const slot = `${signature.name}\n${toHex(signature.keyId)}`;
    const earlier = verified.get(slot);
    if (earlier !== undefined && sameSignature(earlier, signature)) continue; // the same line again
    if (!verifier.verify(text, signature.signature)) {
      throw new InvalidNoteSignature(`the signature of ${signature.name} (key ${toHex(signature.keyId)}) on this note does not verify`);
    }
    if (earlier === undefined) verified.set(slot, signature);
  }
  if (verified.size === 0) {
    const names = [...new Set(note.signatures.map((s) => s.name))].sort().join(", ");
    throw new UntrustedNote(`no trusted key signed this note (it is signed by ${names})`);
  }
  return { text: note.text, verified: [...verified.values()], unverified };
}

/** The time a cosignature was made (POSIX seconds). */
export function cosignatureTime(signature: NoteSignature): bigint {
  if (signature.signature.length !== COSIGNATURE_LENGTH) throw new MalformedNote(`a cosignature is ${COSIGNATURE_LENGTH} bytes after the key ID`);
  const bytes = signature.signature;
  return new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0);
}

export interface Checkpoint {
  readonly origin: string;
  readonly size: bigint;
  readonly root: Bytes;
  readonly extensions: readonly string[];
}

/** A decimal size with no leading zeros ("0" for the empty tree), at most 2^63 − 1. */
export function parseSize(text: string, what = "tree size"): bigint {
  if (!/^(0|[1-9][0-9]{0,18})$/.test(text) || BigInt(text) > MAX_TREE_SIZE) {
    throw new MalformedNote(`${JSON.stringify(text.slice(0, 30))} is not a ${what} (decimal, no leading zeros)`);
  }
  return BigInt(text);
}

/** A checkpoint's note text, parsed byte for byte. */
export function parseCheckpoint(text: string): Checkpoint {
  if (!text.endsWith("\n")) throw new MalformedNote("a checkpoint's text ends with a newline");
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3 || lines.some((line) => line === "")) throw new MalformedNote("a checkpoint has at least three lines, none of them empty");
  const [origin, size, root, ...extensions] = lines as [string, string, string, ...string[]];
  const digest = canonicalBase64(root, "the checkpoint's root hash", 32);
  return { origin, size: parseSize(size), root: digest, extensions };
}

export function checkpointText(checkpoint: Checkpoint): string {
  return [checkpoint.origin, checkpoint.size.toString(), toBase64(checkpoint.root), ...checkpoint.extensions].map((line) => `${line}\n`).join("");
}

/** A signed checkpoint verified with `verifiers` (the log's key): the checkpoint and the note. */
export function openCheckpoint(data: Uint8Array, verifiers: Verifiers): { checkpoint: Checkpoint; opened: OpenedNote } {
  const opened = openNote(data, verifiers);
  return { checkpoint: parseCheckpoint(opened.text), opened };
}

/**
 * The names of the `witnesses` whose cosignatures on `note` verify (none: an empty list).
 * A cosignature of a trusted witness that fails rejects the note (InvalidNoteSignature).
 */
export function cosigners(note: Uint8Array, witnesses: Verifiers): string[] {
  if (witnesses.size === 0) return [];
  try {
    return openNote(note, witnesses).verified.map((s) => s.name);
  } catch (error) {
    if (error instanceof UntrustedNote) return [];
    throw error;
  }
}
