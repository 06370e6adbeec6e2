// Opening a record's capsule with whatever keys the reader holds (envelope/scopedshare.py
// `open_with_patient_key`, `ScopedSeeds.open_capsule`): the capsule's entry names its key;
// a scoped key must be held, and the metadata must state that very category and month.
import { CryptoError } from "./bytes.js";
import { type OpenedCapsule, capsuleKeyId, openCapsule } from "./capsule.js";
import { type RecordKeyVersion, recordPrivateKey } from "./recordkey.js";
import { parseScopedKeyId, recordPeriod, scopedPrivateKey } from "./scoped.js";
import type { XWingPrivateKey } from "./xwing.js";

/** The key an entry naming `keyId` is sealed to (null: a version 1 capsule), or null if not held. */
export type KeyChooser = (keyId: string | null) => XWingPrivateKey | null;

export class KeyNotHeld extends CryptoError {}

/** With K: the scoped key an entry names, or the single record key of a version 1 capsule. */
export function patientKeyChooser(patientKey: Uint8Array, version: RecordKeyVersion): KeyChooser {
  return (keyId) => {
    if (keyId === null) return recordPrivateKey(patientKey, version);
    const named = parseScopedKeyId(keyId);
    return named === null ? null : scopedPrivateKey(patientKey, named[0], named[1]);
  };
}

export async function openRecordCapsule(capsule: Uint8Array, recipientId: string, keyFor: KeyChooser): Promise<OpenedCapsule> {
  const keyId = capsuleKeyId(capsule, recipientId);
  const named = keyId === null ? null : parseScopedKeyId(keyId);
  if (keyId !== null && named === null) throw new CryptoError("the capsule does not open: changed, or not for this key");
  const key = keyFor(keyId);
  if (key === null) {
    throw new KeyNotHeld(named === null
      ? "the record is sealed to a key that was not shared with you"
      : `the key of ${named[0]} records of ${named[1]} was not shared with you`);
  }
  const opened = await openCapsule(capsule, key, recipientId);
  if (named !== null && (opened.metadata.category !== named[0] || recordPeriod(opened.metadata.created_at) !== named[1])) {
    throw new CryptoError("the capsule does not open: its metadata states another category or month than its key");
  }
  return opened;
}
