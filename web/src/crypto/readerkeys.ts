// What a reader holds to open a patient's capsules, as plain data (so that it can be handed
// to the app's crypto worker), and the opening itself: the patient derives every key from
// K; a grantee opens the key share the patient deposited, whose held keys must be exactly
// the scope its ledger entry states (scoped-v2), or K itself in an old share (k-v1), which
// must derive the patient's registered record key.
import { CryptoError } from "./bytes.js";
import type { OpenedCapsule } from "./capsule.js";
import { openShare } from "./keyshare.js";
import type { RecordKeyVersion } from "./recordkey.js";
import { type KeyChooser, openRecordCapsule, patientKeyChooser } from "./recordopen.js";
import type { XWingPrivateKey } from "./xwing.js";

export type ReaderKeys =
  | { readonly kind: "patient"; readonly patientKey: Uint8Array; readonly version: RecordKeyVersion }
  | {
    readonly kind: "scoped-v2"; readonly sealed: Uint8Array; readonly pseudonym: string; readonly granteeId: string;
    readonly granteeKey: XWingPrivateKey; readonly scope: readonly string[];
  }
  | {
    readonly kind: "k-v1"; readonly sealed: Uint8Array; readonly pseudonym: string; readonly granteeId: string;
    readonly granteeKey: XWingPrivateKey; readonly recordPublicKey: Uint8Array;
  };

/** A key share whose content differs from what its ledger entry states. */
export class ShareMismatch extends CryptoError {}

export async function keyChooser(reader: ReaderKeys): Promise<KeyChooser> {
  if (reader.kind === "patient") return patientKeyChooser(reader.patientKey, reader.version);
  const context = { pseudonym: reader.pseudonym, granteeId: reader.granteeId, granteeKey: reader.granteeKey };
  if (reader.kind === "k-v1") {
    // like the SDK: K opens version 1 capsules and, K being K, scoped ones too
    const old = await openShare("k-v1", reader.sealed, { ...context, recordPublicKey: reader.recordPublicKey });
    const withK = patientKeyChooser(old.patientKey as Uint8Array, 2);
    return (keyId) => (keyId === null ? old.keyFor(null) : withK(keyId));
  }
  const opened = await openShare("scoped-v2", reader.sealed, context);
  const held = new Set((opened.scope ?? []).map(([category, period]) => `${category}/${period}`));
  if (held.size !== reader.scope.length || reader.scope.some((item) => !held.has(item))) {
    throw new ShareMismatch("the key share carries other keys than its ledger entry states");
  }
  return (keyId) => opened.keyFor(keyId);
}

/** Open `capsule` for `recipientId` (the pseudonym) with what the reader holds. */
export async function openWithReaderKeys(capsule: Uint8Array, recipientId: string, reader: ReaderKeys): Promise<OpenedCapsule> {
  return openRecordCapsule(capsule, recipientId, await keyChooser(reader));
}
