// The pseudonym H(K‖UII) (docs/envelope.md "Pseudonym"): SHA3-256 over a domain label, K and
// the RFC 8785 JSON of the folded UII. Folding = NFC, whitespace collapse (the characters
// Python's str.isspace() accepts), then Unicode full case folding.
import { type Bytes, CryptoError, concat, toHex, utf8 } from "./bytes.js";
import { canonical } from "./canonical.js";
import { sha3 } from "./hashes.js";

const DOMAIN = utf8("ehrgate/pseudonym/v1\u0000");
const WHITESPACE = /[\t-\r\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/u;

// Full case folding where "upper case, then lower case, one code point at a time" gives
// another answer (CaseFolding.txt status F/C entries that differ).
const FOLD_EXCEPTIONS: Record<string, string> = {
  "\u1e9e": "ss", // capital sharp s
  "\u0130": "i\u0307", // capital I with dot above
  "\u03c2": "\u03c3", // final sigma
};

export type Uii = Record<string, string>;

function foldCodePoint(char: string): string {
  const exception = FOLD_EXCEPTIONS[char];
  if (exception !== undefined) return exception;
  // Cherokee small letters fold to their capitals
  const code = char.codePointAt(0) as number;
  if ((code >= 0xab70 && code <= 0xabbf) || (code >= 0x13f8 && code <= 0x13fd)) return char.toUpperCase();
  if (code >= 0x13a0 && code <= 0x13f5) return char;
  let out = "";
  for (const upper of char.toUpperCase()) out += upper.toLowerCase();
  return out;
}

export function caseFold(text: string): string {
  let out = "";
  for (const char of text) out += foldCodePoint(char);
  return out;
}

export function foldValue(value: string): string {
  const collapsed = value.normalize("NFC").split(WHITESPACE).filter((part) => part !== "").join(" ");
  return caseFold(collapsed);
}

export function canonicalUii(uii: unknown): Bytes {
  if (typeof uii !== "object" || uii === null || Array.isArray(uii)) {
    throw new CryptoError("the identifying fields must be a mapping of names to text");
  }
  const entries = Object.entries(uii as Record<string, unknown>);
  if (entries.length === 0) throw new CryptoError("give at least one identifying field");
  const folded: Uii = {};
  for (const [key, value] of entries) {
    if (key === "") throw new CryptoError("an identifying field needs a name");
    if (typeof value !== "string") throw new CryptoError(`field ${key} must be text`);
    const fold = foldValue(value);
    if (fold === "") throw new CryptoError(`field ${key} is empty: leave the field out instead`);
    folded[key] = fold;
  }
  return canonical(folded);
}

export function pseudonym(patientKey: Uint8Array, uii: unknown): string {
  if (patientKey.length !== 32) throw new CryptoError("a patient key is 32 bytes");
  return toHex(sha3(concat(DOMAIN, patientKey, canonicalUii(uii))));
}

export function isPseudonym(value: unknown): value is string {
  return typeof value === "string" && /^[0-9a-f]{64}$/.test(value);
}
