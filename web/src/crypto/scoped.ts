// Scoped record keys (docs/envelope.md "Scoped record keys", envelope/scoped.py): one X-Wing
// key pair per (category, UTC month), its seed HKDF-SHA256(K, info
// "ehrgate/scoped-key/v2/month" ‖ 0x00 ‖ category ‖ 0x00 ‖ "YYYY-MM", 32). A capsule names
// the key it is sealed to as "scoped-v2/<category>/<YYYY-MM>".
import { type Bytes, CryptoError, concat, utf8 } from "./bytes.js";
import { hkdfSha256 } from "./hashes.js";
import { type XWingPrivateKey, xwingPrivateKey } from "./xwing.js";

export const SCOPED_KEY_PREFIX = "scoped-v2";
export const MAX_MONTHS = 1200;
const CATEGORY = /^[a-z][a-z0-9-]{0,62}$/;
const MONTH = /^\d{4}-\d\d$/;
const RFC3339_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/;

export type ScopeItem = readonly [category: string, period: string];

export function checkCategory(category: string): string {
  if (!CATEGORY.test(category)) {
    throw new CryptoError(`a category is lowercase letters, digits and '-', starting with a letter, at most 63 characters; got ${JSON.stringify(category)}`);
  }
  return category;
}

export function checkPeriod(period: string): string {
  const month = Number(period.slice(5));
  if (!MONTH.test(period) || month < 1 || month > 12 || period.startsWith("0000")) {
    throw new CryptoError(`a period is a month written YYYY-MM, got ${JSON.stringify(period)}`);
  }
  return period;
}

/** The period of a record: the UTC month of its RFC 3339 UTC created_at. */
export function recordPeriod(createdAt: string): string {
  if (!RFC3339_UTC.test(createdAt)) throw new CryptoError(`created_at must be an RFC 3339 UTC time, got ${JSON.stringify(createdAt)}`);
  return createdAt.slice(0, 7);
}

const indexOf = (period: string): number => Number(period.slice(0, 4)) * 12 + Number(period.slice(5)) - 1;
const periodOf = (index: number): string =>
  `${String(Math.floor(index / 12)).padStart(4, "0")}-${String((index % 12) + 1).padStart(2, "0")}`;

export function nextPeriod(period: string, count = 1): string {
  const index = indexOf(checkPeriod(period)) + count;
  if (index < indexOf("0001-01") || index > indexOf("9999-12")) throw new CryptoError(`${count} months from ${period} is outside the years 1 to 9999`);
  return periodOf(index);
}

/** Every month from `first` to `last`, both included. */
export function months(first: string, last: string): string[] {
  const start = indexOf(checkPeriod(first));
  const end = indexOf(checkPeriod(last));
  if (end < start) throw new CryptoError(`the span ends (${last}) before it starts (${first})`);
  if (end - start >= MAX_MONTHS) throw new CryptoError(`a span covers at most ${MAX_MONTHS} months`);
  return Array.from({ length: end - start + 1 }, (_, i) => periodOf(start + i));
}

export function scopedSeed(patientKey: Uint8Array, category: string, period: string): Bytes {
  if (patientKey.length !== 32) throw new CryptoError("a patient key is 32 bytes");
  const info = concat(utf8("ehrgate/scoped-key/v2/month\u0000"), utf8(checkCategory(category)), utf8("\u0000"), utf8(checkPeriod(period)));
  return hkdfSha256(patientKey, info, 32);
}

export function scopedPrivateKey(patientKey: Uint8Array, category: string, period: string): XWingPrivateKey {
  return xwingPrivateKey(scopedSeed(patientKey, category, period));
}

export function scopedKeyId(category: string, period: string): string {
  return `${SCOPED_KEY_PREFIX}/${checkCategory(category)}/${checkPeriod(period)}`;
}

/** (category, period) of a scoped key id, or null if it names no scoped key. */
export function parseScopedKeyId(keyId: string): ScopeItem | null {
  const parts = keyId.split("/");
  if (parts.length !== 3 || parts[0] !== SCOPED_KEY_PREFIX) return null;
  try {
    return [checkCategory(parts[1]!), checkPeriod(parts[2]!)];
  } catch {
    return null;
  }
}

/** (first, last) month a grant covers: not_before's month to the month of the last instant before not_after. */
export function grantMonths(notBefore: string, notAfter: string): [string, string] {
  const last = new Date(Math.floor((microseconds(notAfter) - 1) / 1000));
  const first = new Date(Math.floor(microseconds(notBefore) / 1000));
  return [first.toISOString().slice(0, 7), last.toISOString().slice(0, 7)];
}

/** Microseconds since the epoch of an RFC 3339 UTC time (the ledger writes microseconds). */
function microseconds(time: string): number {
  const match = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/.exec(time);
  const seconds = match === null ? Number.NaN : Date.parse(`${match[1]}Z`);
  if (Number.isNaN(seconds)) throw new CryptoError(`a grant's times are RFC 3339 UTC, got ${JSON.stringify(time)}`);
  return seconds * 1000 + Number((match![2] ?? "").padEnd(6, "0").slice(0, 6));
}
