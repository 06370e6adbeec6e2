// Opening a record on the device: proof against the pinned ledger key, the capsule checked
// against the ledger's hash and opened, the body streamed and decrypted segment by segment,
// the uploader's signature checked; only then is the plaintext handed out. The capsule and
// the body are opened in the crypto worker (cryptoworker.ts), so the page never stalls.
import {
  CryptoError, KeyNotHeld, type Metadata, type ReaderKeys, type Receipt, ShareMismatch, canonical, capsuleSha256,
  fromBase64, leafHash, toBase64, toHex, verifyReceipt, verifyRecordSignature,
} from "../crypto/index.js";
import { ApiError, getJson, stream } from "./api.js";
import { openCapsuleInWorker, openInWorker } from "./cryptoworker.js";
import { signingKeyAt } from "./identitykeys.js";
import { type OfferedConsistency, advancePin, session } from "./session.js";
import { requireWitnessed } from "./witness/witnessed.js";

export interface RecordOut {
  record_id: string;
  pseudonym: string;
  category: string;
  body_sha256: string;
  size: number;
  capsule_sha256: string;
  content_type: string;
  created_at: string;
  uploader: string;
  on_behalf_of?: string | null;
  entry_index: number;
}

interface RecordWithProof {
  record: RecordOut;
  receipt: Receipt;
  transaction: { type: string; body: Record<string, unknown>; signer: string; signature: string } | null;
}

/** GET /v1/records/{id}/open: the record with its proof, capsule and key share under one
 * audited request, and the ticket its body is read with (under the same `access` entry). */
interface RecordOpened extends RecordWithProof {
  capsule: string;
  key_share: KeyShareOut | null;
  ticket: string;
  /** Given known_size: the proof between that tree and the receipt's. */
  consistency?: OfferedConsistency | null;
}

export interface OpenedRecord {
  readonly metadata: Metadata;
  readonly plaintext: Blob;
  readonly checks: string[];
}

export class RefusedOpen extends Error {}

interface KeyShareOut {
  sealed_key: string;
  record_public_key: string;
  scope: string[] | null;
}

/**
 * What this identity holds to open `pseudonym`'s capsules (opened in the crypto worker): the
 * patient, K; a grantee, its key share (scoped: the seeds of the (category, month) keys its
 * grant covers), fetched on every open, so a share replaced or withdrawn on the ledger
 * takes effect at once.
 */
async function readerKeys(pseudonym: string, given: KeyShareOut | null): Promise<ReaderKeys> {
  const { keys } = session();
  if (keys.kind === "patient" && keys.pseudonym === pseudonym) {
    return { kind: "patient", patientKey: keys.patientKey!, version: keys.recordKeyVersion! };
  }
  // the open carries the share; without one, the key-share route says why
  const share = given ?? await getJson<KeyShareOut>(`/v1/patients/${pseudonym}/key-share`);
  const holder = { sealed: fromBase64(share.sealed_key), pseudonym, granteeId: keys.id, granteeKey: keys.encryptionKey };
  if (share.scope === null) {
    // a share deposited before scoped keys: K itself, checked against the registered record key
    const patient = await getJson<{ record_public_key: string }>(`/v1/patients/${pseudonym}`);
    if (patient.record_public_key !== share.record_public_key) throw new RefusedOpen("the key share names another record key than the patient's");
    return { kind: "k-v1", ...holder, recordPublicKey: fromBase64(share.record_public_key) };
  }
  return { kind: "scoped-v2", ...holder, scope: share.scope };
}

async function checkProof(proof: RecordWithProof, offered: OfferedConsistency | null = null): Promise<string> {
  const s = session();
  verifyReceipt(proof.receipt, s.ledgerKey);
  if (proof.transaction === null || toHex(leafHash(canonical(proof.transaction))) !== proof.receipt.tx_hash) {
    throw new RefusedOpen("the ledger's proof is not for this record's transaction");
  }
  const consistent = await advancePin(proof.receipt.tree_head, offered);
  const witnessed = await requireWitnessed(proof.receipt.tree_head);
  return witnessed === null ? consistent : `${consistent}, ${witnessed}`;
}

/** The key the uploader signed with when its record was committed (it may have rotated since). */
async function signerKey(signerId: string, entryIndex: number): Promise<Uint8Array> {
  if (signerId === "ledger") return session().ledgerKey;
  return signingKeyAt(signerId, entryIndex);
}

export async function listRecords(pseudonym: string): Promise<RecordOut[]> {
  return (await getJson<{ records: RecordOut[] }>(`/v1/patients/${pseudonym}/records`)).records;
}

export async function openRecord(recordId: string, progress: (done: number, total: number) => void): Promise<OpenedRecord> {
  const checks: string[] = [];
  // one audited request: record, proof, capsule and key share; the body follows on its ticket
  // the pinned tree's size asks the gateway to send the consistency proof along
  const pinned = session().pinnedHead;
  const known = pinned === null ? "" : `?known_size=${pinned.tree_size}`;
  const proof = await getJson<RecordOpened>(`/v1/records/${recordId}/open${known}`);
  const record = proof.record;
  if (record.record_id !== recordId) throw new RefusedOpen("the gateway answered with another record");
  const consistent = await checkProof(proof, proof.consistency ?? null);
  checks.push(`ledger entry ${proof.receipt.index} is in the signed tree of ${proof.receipt.tree_head.tree_size} entries, ${consistent}`);
  const capsule = fromBase64(proof.capsule, "capsule");
  if (capsuleSha256(capsule) !== record.capsule_sha256) throw new RefusedOpen("the capsule is not the one on the ledger");
  const opened = await openCapsuleInWorker(capsule, record.pseudonym, await readerKeys(record.pseudonym, proof.key_share));
  const meta = opened.metadata;
  if (meta.body_sha256 !== record.body_sha256 || meta.body_size !== record.size) throw new RefusedOpen("the capsule describes another body than the ledger's");
  const writer = record.on_behalf_of ?? record.uploader;
  if (meta.signer_id !== record.uploader || meta.uploader_id !== writer) throw new RefusedOpen("the capsule names another uploader than the ledger");
  verifyRecordSignature(meta, await signerKey(meta.signer_id, record.entry_index), record);
  checks.push(`signed by ${meta.signer_id}${meta.uploader_id !== meta.signer_id ? ` for ${meta.uploader_id}` : ""}`);
  // the body streams in; the worker decrypts and checks each segment as it arrives
  const job = openInWorker(opened.dataKey, meta, progress);
  let plaintext: Blob;
  try {
    const { reader } = await stream(`/v1/records/${recordId}/open/body?ticket=${encodeURIComponent(proof.ticket)}`);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      job.push(value);
    }
    plaintext = await job.finish();
  } catch (error) {
    job.abort();
    throw error;
  }
  checks.push(`${Math.ceil(meta.plaintext_size / 65536) || 1} segments decrypted and checked; SHA-256 matches the signed hash`);
  return { metadata: meta, plaintext: new Blob([plaintext], { type: meta.content_type }), checks };
}

/** A refusal in words a clinician can act on. */
export function explain(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 403) return `Refused by the gateway: ${error.detail}`;
    if (error.status === 404) return `Not found: ${error.detail}`;
    return `${error.title}: ${error.detail}`;
  }
  if (error instanceof RefusedOpen) return `Not shown: ${error.message}`;
  if (error instanceof KeyNotHeld || error instanceof ShareMismatch) return `Not shown: ${error.message}`;
  if (error instanceof CryptoError) return `Not shown, verification failed: ${error.message}`;
  return `Unexpected error: ${String(error)}`;
}

export { toBase64 };
