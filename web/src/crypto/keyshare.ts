// Key shares: what a grantee receives so it can open a patient's records. Each share
// format is one opener in SHARE_FORMATS; `openShare` picks it by the share's `format` name.
// "k-v1" is K itself sealed by HPKE to the grantee (envelope/keyshare.py, no longer accepted
// by the gateway); "scoped-v2" the seeds of exactly the (category, month) keys a grant
// covers (envelope/scopedshare.py), never K.
import { type Bytes, CryptoError, concat, equalBytes, fromBase64, fromUtf8, toBase64, utf8 } from "./bytes.js";
import { canonical, canonicalText } from "./canonical.js";
import { type ScopeItem, checkCategory, checkPeriod, parseScopedKeyId, recordPeriod, scopedSeed } from "./scoped.js";
import { hpkeOpen, hpkeSeal } from "./hpke.js";
import { isPseudonym } from "./pseudonym.js";
import { type RecordKeyVersion, recordKeyVersionOf, recordPrivateKey } from "./recordkey.js";
import { type XWingPrivateKey, xwingPrivateKey } from "./xwing.js";

export const KEY_SHARE_LEN = 1120 + 32 + 16;

export interface ShareContext {
  readonly pseudonym: string;
  readonly granteeId: string;
  readonly granteeKey: XWingPrivateKey;
  /** the patient's registered record public key: the opened K must derive it */
  readonly recordPublicKey?: Uint8Array;
  /** scoped shares: the patient's published public keys by "category/YYYY-MM"; each held
   * seed whose pair was published must derive that very key */
  readonly published?: ReadonlyMap<string, Uint8Array>;
}

/** What opening a share gives: a way to get the private key a record's capsule is sealed to. */
export interface OpenedShare {
  readonly format: string;
  /** K itself, for formats that carry it */
  readonly patientKey?: Bytes;
  /** the (category, month) pairs held, for scoped formats */
  readonly scope?: readonly ScopeItem[];
  /** the key of records of `category` created at `createdAt`, or null if not held */
  recordKey(category: string, createdAt: string): XWingPrivateKey | null;
  /** the key a capsule entry naming `keyId` (null: version 1) is sealed to, or null if not held */
  keyFor(keyId: string | null): XWingPrivateKey | null;
}

export type ShareOpener = (share: Uint8Array, context: ShareContext) => Promise<OpenedShare>;

export function keyShareInfo(pseudonym: string, granteeId: string): Bytes {
  if (!isPseudonym(pseudonym)) throw new CryptoError("a pseudonym is 64 lowercase hexadecimal characters");
  if (granteeId === "") throw new CryptoError("a key share needs a grantee id");
  return concat(utf8("ehrgate/key-share/v1\u0000"), utf8(pseudonym), utf8("\u0000"), utf8(granteeId));
}

async function openPatientKeyShare(share: Uint8Array, context: ShareContext): Promise<OpenedShare> {
  const refused = new CryptoError("the key share does not open: changed, or not for this patient and key");
  let info: Bytes;
  try {
    info = keyShareInfo(context.pseudonym, context.granteeId);
  } catch {
    throw refused;
  }
  if (share.length !== KEY_SHARE_LEN) throw refused;
  const k = await hpkeOpen(context.granteeKey, info, share).catch(() => {
    throw refused;
  });
  if (k.length !== 32) throw refused;
  let version: RecordKeyVersion = 2;
  if (context.recordPublicKey !== undefined) {
    const matched = recordKeyVersionOf(k, context.recordPublicKey);
    if (matched === null) throw refused;
    version = matched;
  }
  const key = recordPrivateKey(k, version);
  return { format: "k-v1", patientKey: k, recordKey: () => key, keyFor: (keyId) => (keyId === null ? key : null) };
}

export const SCOPED_SHARE_FORMAT = "ehrgate-scoped-seeds";
export const MAX_SHARE_SEEDS = 1000;

export function scopedShareInfo(pseudonym: string, granteeId: string): Bytes {
  keyShareInfo(pseudonym, granteeId); // the same checks as a version 1 share
  return concat(utf8("ehrgate/key-share/v2\u0000"), utf8(pseudonym), utf8("\u0000"), utf8(granteeId));
}

/** A share's (category, period) pairs, checked, without repeats, sorted by category then period. */
export function checkScope(scope: Iterable<ScopeItem>): ScopeItem[] {
  const seen = new Map<string, ScopeItem>();
  for (const [category, period] of scope) seen.set(`${checkCategory(category)}/${checkPeriod(period)}`, [category, period]);
  const items = [...seen.values()].sort(([c1, p1], [c2, p2]) => (c1 < c2 ? -1 : c1 > c2 ? 1 : p1 < p2 ? -1 : p1 > p2 ? 1 : 0));
  if (items.length === 0) throw new CryptoError("a scoped share needs at least one (category, month)");
  if (items.length > MAX_SHARE_SEEDS) throw new CryptoError(`a scoped share carries at most ${MAX_SHARE_SEEDS} seeds`);
  return items;
}

/** Seal the seeds of `scope`'s (category, month) keys, derived from K, to the grantee. */
export async function sealScopedShare(
  patientKey: Uint8Array, pseudonym: string, granteeId: string, granteePublicKey: Uint8Array, scope: Iterable<ScopeItem>,
): Promise<Bytes> {
  const info = scopedShareInfo(pseudonym, granteeId);
  const seeds = checkScope(scope).map(([category, period]) => ({ category, period, seed: toBase64(scopedSeed(patientKey, category, period)) }));
  const document = { format: SCOPED_SHARE_FORMAT, version: 2, pseudonym, grantee_id: granteeId, seeds };
  return hpkeSeal(granteePublicKey, info, canonical(document));
}

function parseScopedShare(plaintext: Uint8Array, pseudonym: string, granteeId: string): Map<string, Bytes> {
  const text = fromUtf8(plaintext);
  const value: unknown = JSON.parse(text);
  if (canonicalText(value) !== text || typeof value !== "object" || value === null) throw new Error("not canonical");
  const { format, version, pseudonym: p, grantee_id: g, seeds, ...rest } = value as Record<string, unknown>;
  if (Object.keys(rest).length > 0 || format !== SCOPED_SHARE_FORMAT || version !== 2 || p !== pseudonym || g !== granteeId) {
    throw new Error("not a scoped share for this patient and grantee");
  }
  if (!Array.isArray(seeds)) throw new Error("no seeds");
  const held = new Map<string, Bytes>();
  const order: ScopeItem[] = [];
  for (const entry of seeds as unknown[]) {
    if (typeof entry !== "object" || entry === null) throw new Error("bad seed entry");
    const { category, period, seed, ...extra } = entry as Record<string, unknown>;
    if (Object.keys(extra).length > 0 || typeof category !== "string" || typeof period !== "string" || typeof seed !== "string") {
      throw new Error("bad seed entry");
    }
    const raw = fromBase64(seed);
    if (raw.length !== 32) throw new Error("bad seed");
    held.set(`${checkCategory(category)}/${checkPeriod(period)}`, raw);
    order.push([category, period]);
  }
  const sorted = checkScope(order);
  if (sorted.length !== order.length || sorted.some(([c, q], i) => c !== order[i]![0] || q !== order[i]![1])) {
    throw new Error("seeds out of order or repeated");
  }
  return held;
}

async function openScopedKeyShare(share: Uint8Array, context: ShareContext): Promise<OpenedShare> {
  const refused = new CryptoError("the key share does not open: changed, or not for this patient and key");
  let seeds: Map<string, Bytes>;
  try {
    const plaintext = await hpkeOpen(context.granteeKey, scopedShareInfo(context.pseudonym, context.granteeId), share);
    seeds = parseScopedShare(plaintext, context.pseudonym, context.granteeId);
  } catch {
    throw refused;
  }
  // a key is derived (an ML-KEM key generation) when a capsule needs it, or at once when
  // its published public key is to be checked: a share of many months opens quickly
  const keys = new Map<string, XWingPrivateKey>();
  for (const [item, seed] of seeds) {
    const published = context.published?.get(item);
    if (published === undefined) continue;
    const key = xwingPrivateKey(seed);
    if (!equalBytes(key.publicKey, published)) throw refused;
    keys.set(item, key);
  }
  const keyOf = (item: string): XWingPrivateKey | null => {
    const known = keys.get(item);
    if (known !== undefined) return known;
    const seed = seeds.get(item);
    if (seed === undefined) return null;
    const key = xwingPrivateKey(seed);
    keys.set(item, key);
    return key;
  };
  const scope = [...seeds.keys()].map((item) => item.split("/") as unknown as ScopeItem);
  return {
    format: "scoped-v2",
    scope,
    recordKey: (category, createdAt) => keyOf(`${category}/${recordPeriod(createdAt)}`),
    keyFor: (keyId) => {
      const named = keyId === null ? null : parseScopedKeyId(keyId);
      return named === null ? null : keyOf(`${named[0]}/${named[1]}`);
    },
  };
}

export const SHARE_FORMATS: Record<string, ShareOpener> = {
  "k-v1": openPatientKeyShare,
  "scoped-v2": openScopedKeyShare,
};

export async function openShare(format: string, share: Uint8Array, context: ShareContext): Promise<OpenedShare> {
  const opener = SHARE_FORMATS[format];
  if (opener === undefined) throw new CryptoError(`unknown key share format ${format}`);
  return opener(share, context);
}

export async function sealPatientKeyShare(
  patientKey: Uint8Array, pseudonym: string, granteeId: string, granteePublicKey: Uint8Array,
): Promise<Bytes> {
  return hpkeSeal(granteePublicKey, keyShareInfo(pseudonym, granteeId), patientKey);
}
