// Key shares: what a grantee receives so it can open a patient's records. Each share
// format is one opener in SHARE_FORMATS; `openShare` picks it by the share's `format`
// name. Today's format "k-v1" is K itself sealed by HPKE to the grantee (envelope/keyshare.py).
// Another format (scoped seeds per category and month) is added as one more entry.
import { type Bytes, CryptoError, concat, utf8 } from "./bytes.js";
import { hpkeOpen, hpkeSeal } from "./hpke.js";
import { isPseudonym } from "./pseudonym.js";
import { type RecordKeyVersion, recordKeyVersionOf, recordPrivateKey } from "./recordkey.js";
import type { XWingPrivateKey } from "./xwing.js";

export const KEY_SHARE_LEN = 1120 + 32 + 16;

export interface ShareContext {
  readonly pseudonym: string;
  readonly granteeId: string;
  readonly granteeKey: XWingPrivateKey;
  /** the patient's registered record public key: the opened K must derive it */
  readonly recordPublicKey?: Uint8Array;
}

/** What opening a share gives: a way to get the private key a record's capsule is sealed to. */
export interface OpenedShare {
  readonly format: string;
  /** K itself, for formats that carry it */
  readonly patientKey?: Bytes;
  recordKey(category: string, createdAt: string): XWingPrivateKey;
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
  return { format: "k-v1", patientKey: k, recordKey: () => key };
}

export const SHARE_FORMATS: Record<string, ShareOpener> = {
  "k-v1": openPatientKeyShare,
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
